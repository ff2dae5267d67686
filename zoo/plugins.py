"""The plugin manager factory and a typed facade over its hooks.

Plugins are modules named by entry points in the ``zoo`` group. zoo calls their hooks only
through this module, one plugin at a time, so that whatever a plugin gets wrong is that
plugin's problem and never breaks the command:

- a module that fails to import, a misspelled hook name (pluggy's ``check_pending``) or a
  hook signature pluggy rejects: the plugin is not loaded;
- a hook that raises or returns something other than a list, or an engine/hub that breaks
  the contract (``zoo.plugin_contract``): that hook's result, or that object, is left out;
- two plugins registering the same engine or hub name: the first one registered is kept;
- an engine or hub method that raises later on: see ``zoo.plugin_guard``.

Each problem is recorded against the plugin (``zoo plugins`` lists them; failures seen at run
time are kept for it by ``zoo.plugin_problems``) and printed as one warning line on stderr,
once per plugin and place. ``ZOO_STRICT_PLUGINS=1`` raises ``PluginError`` instead, for
plugin authors. ``ZOO_DISABLE_PLUGINS`` is a comma-separated list of entry-point names not to
load (pluggy's ``set_blocked``; ``hubs`` is the built-in hubs). ``ZOO_TRACE_PLUGINS=1``
prints every hook call and what it returned on stderr.
"""

from __future__ import annotations

import os
import sys
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pluggy

from zoo import hookspecs
from zoo.plugin_contract import PluginError, describe, engine_problems, hub_problems
from zoo.plugin_guard import Report, Rule, engine_rules, guard, hub_rules, one_line

if TYPE_CHECKING:
    import typer

    from zoo.engine import Engine
    from zoo.hubs.base import Hub

__all__ = [
    "ENTRY_POINT_GROUP",
    "PluginError",
    "PluginRecord",
    "add_plugin_commands",
    "get_catalog_paths",
    "get_engines",
    "get_hubs",
    "new_plugin_manager",
    "plugin_manager",
    "plugin_records",
    "plugin_report",
]

ENTRY_POINT_GROUP = "zoo"
T = TypeVar("T")


@dataclass
class PluginRecord:
    """One plugin: what it is, where it comes from, whether it loaded, what went wrong.

    ``problems`` are one line each, in the order they were found; ``error`` joins them.
    """

    name: str
    module: str
    distribution: str | None
    version: str | None
    problems: list[str] = field(default_factory=list)
    disabled: bool = False
    loaded: bool = True

    @property
    def error(self) -> str | None:
        return "; ".join(self.problems) or None


@dataclass
class _State:
    """What zoo keeps beside one plugin manager."""

    records: dict[str, PluginRecord] = field(default_factory=dict)
    warned: set[tuple[str, str]] = field(default_factory=set)
    # hook name -> (the implementations it was computed from, the objects registered)
    registered: dict[str, tuple[tuple[object, ...], dict[str, Any]]] = field(default_factory=dict)


_STATES: weakref.WeakKeyDictionary[pluggy.PluginManager, _State] = weakref.WeakKeyDictionary()


class _Warnings:
    """Off while ``zoo plugins`` builds its report: it lists the problems itself."""

    quiet = False


def _state(pm: pluggy.PluginManager) -> _State:
    state = _STATES.get(pm)
    if state is None:
        state = _STATES[pm] = _State()
    return state


def disabled_plugin_names() -> set[str]:
    raw = os.environ.get("ZOO_DISABLE_PLUGINS", "")
    return {name.strip() for name in raw.split(",") if name.strip()}


def strict_mode() -> bool:
    return os.environ.get("ZOO_STRICT_PLUGINS", "") not in ("", "0")


def trace_mode() -> bool:
    return os.environ.get("ZOO_TRACE_PLUGINS", "") not in ("", "0")


def new_plugin_manager(load_entry_points: bool = True) -> pluggy.PluginManager:
    """A fresh manager with the hook specs added and (by default) entry points loaded.

    Tests make their own with this; the CLI shares one through ``plugin_manager()``.
    """
    pm = pluggy.PluginManager("zoo")
    pm.add_hookspecs(hookspecs)
    _state(pm)
    if trace_mode():
        _trace_hook_calls(pm)
    for name in sorted(disabled_plugin_names()):
        pm.set_blocked(name)
    if load_entry_points:
        _load_entry_points(pm)
    return pm


def _load_entry_points(pm: pluggy.PluginManager) -> None:
    from importlib.metadata import entry_points

    records = _state(pm).records
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        dist = ep.dist
        distribution = dist.metadata["Name"] if dist is not None else None
        if ep.name in records:
            first = records[ep.name].distribution
            _problem(
                pm,
                ep.name,
                "load",
                f"the entry point name {ep.name!r} is used by {first} and by {distribution}: "
                f"{distribution}'s is not loaded (uninstall one of them)",
            )
            continue
        record = records[ep.name] = PluginRecord(
            name=ep.name,
            module=ep.value,
            distribution=distribution,
            version=dist.version if dist is not None else None,
        )
        if pm.is_blocked(ep.name):
            record.disabled, record.loaded = True, False
            continue  # not even imported: a disabled plugin cannot break anything
        try:
            module = ep.load()
            pm.register(module, name=ep.name)
        # SystemExit too: a plugin's sys.exit() at import or in a hook would end every
        # command, silently, with the plugin's status.
        except (Exception, SystemExit) as error:  # a broken plugin must not break zoo
            record.loaded = False
            _problem(pm, ep.name, "load", f"failed to load: {_error_words(error)}", error)
            continue
        _drop_pending(pm)


def _drop_pending(pm: pluggy.PluginManager) -> None:
    """Unregister each plugin with a hook implementation that matches no hook spec.

    Such a hook is almost always a misspelling (``zoo_register_engine``) that would otherwise
    be silently never called. pluggy's ``check_pending`` names the first one; each is
    recorded and its plugin unregistered until none is left.
    """
    from difflib import get_close_matches

    while True:
        try:
            pm.check_pending()
            return
        except pluggy.PluginValidationError as error:
            plugin = error.plugin
            name = _plugin_name(pm, plugin)
            unknown = _unknown_hooks(pm, plugin)
            pm.unregister(plugin)
            _record(pm, name, plugin).loaded = False
            for hook in unknown:
                close = get_close_matches(hook, _spec_names(pm), n=1)
                guess = f": did you mean {close[0]!r}?" if close else ""
                _problem(
                    pm,
                    name,
                    "hooks",
                    f"implements {hook!r}, which is not a zoo hook{guess} "
                    "(the plugin is not loaded until it is fixed)",
                    error,
                )


def _unknown_hooks(pm: pluggy.PluginManager, plugin: object) -> list[str]:
    return sorted(
        caller.name
        for caller in pm.get_hookcallers(plugin) or ()
        if not caller.has_spec()
        and any(impl.plugin is plugin and not impl.optionalhook for impl in caller.get_hookimpls())
    )


def _spec_names(pm: pluggy.PluginManager) -> list[str]:
    return [name for name, caller in vars(pm.hook).items() if caller.has_spec()]


@cache
def plugin_manager() -> pluggy.PluginManager:
    """The process-wide manager, created on first use."""
    return new_plugin_manager()


def _manager(pm: pluggy.PluginManager | None) -> pluggy.PluginManager:
    return pm if pm is not None else plugin_manager()


# -- problems --------------------------------------------------------------------------------


def _plugin_name(pm: pluggy.PluginManager, plugin: object) -> str:
    return pm.get_name(plugin) or getattr(plugin, "__name__", None) or repr(plugin)


def _record(pm: pluggy.PluginManager, name: str, plugin: object = None) -> PluginRecord:
    """The record of plugin ``name``; plugins registered by hand (tests) get one on demand."""
    records = _state(pm).records
    if name not in records:
        plugin = plugin if plugin is not None else pm.get_plugin(name)
        module = getattr(plugin, "__name__", None) or type(plugin).__module__
        records[name] = PluginRecord(name=name, module=module, distribution=None, version=None)
    return records[name]


def _problem(
    pm: pluggy.PluginManager,
    plugin: str,
    where: str,
    message: str,
    error: BaseException | None = None,
    *,
    strict: bool = True,
) -> bool:
    """Record a problem of ``plugin`` (at ``where``: a hook, a method, "load") and warn once
    per (plugin, where). Strict mode raises instead. True when the problem is new."""
    if strict and strict_mode():
        raise PluginError(f"plugin {plugin!r}: {message}") from error
    state = _state(pm)
    record = _record(pm, plugin)
    if message in record.problems:
        return False
    record.problems.append(message)
    if (plugin, where) not in state.warned and not _Warnings.quiet:
        state.warned.add((plugin, where))
        print(
            f"zoo: warning: plugin {plugin!r}: {message} (`zoo plugins` lists plugin "
            f"problems; ZOO_DISABLE_PLUGINS={plugin} turns it off)",
            file=sys.stderr,
        )
    return True


def _error_words(error: BaseException) -> str:
    return f"{type(error).__name__}: {one_line(error)}"


def _runtime_report(pm: pluggy.PluginManager) -> Report:
    """Where guarded engines and hubs report a failing method (see ``zoo.plugin_guard``)."""

    def report(plugin: str, where: str, message: str, *, raised: bool) -> None:
        # A raised failure becomes the command's error line: no warning line beside it.
        state = _state(pm)
        if raised:
            state.warned.add((plugin, where))
        if _problem(pm, plugin, where, message, strict=not raised):
            from zoo.plugin_problems import remember

            remember(plugin, _record(pm, plugin).version, where, message)

    return report


# -- calling hooks -----------------------------------------------------------------------------


def _call_each(pm: pluggy.PluginManager, hook: str, **kwargs: object) -> list[tuple[str, object]]:
    """Call ``hook`` of each plugin in turn: [(plugin name, what it returned)].

    One at a time (through pluggy, so tracing sees each call), so that a plugin that raises
    is recorded and skipped while the others' results are kept.
    """
    _drop_pending(pm)
    impls = getattr(pm.hook, hook).get_hookimpls()
    results: list[tuple[str, object]] = []
    for impl in impls:
        plugin = _plugin_name(pm, impl.plugin)
        others = [other.plugin for other in impls if other is not impl]
        try:
            returned = pm.subset_hook_caller(hook, others)(**kwargs)
        except (Exception, SystemExit) as error:
            _problem(pm, plugin, hook, f"{hook}() raised {_error_words(error)}", error)
            continue
        results.append((plugin, returned[0] if returned else None))
    return results


def _registered(
    pm: pluggy.PluginManager,
    hook: str,
    kind: str,
    problems_of: Callable[[object], list[str]],
    rules: Callable[[], Mapping[str, Rule]],
) -> dict[str, Any]:
    """Every valid object the plugins return from ``hook``, by name, guarded; computed once
    per manager (again only if plugins are registered or unregistered meanwhile)."""
    state = _state(pm)
    impls = tuple(getattr(pm.hook, hook).get_hookimpls())
    cached = state.registered.get(hook)
    if cached is not None and cached[0] == impls:
        return dict(cached[1])
    found: dict[str, Any] = {}
    owners: dict[str, str] = {}
    report = _runtime_report(pm)
    methods = rules()
    for plugin, value in _call_each(pm, hook):
        if not isinstance(value, list | tuple):
            hint = " (return [] to register nothing)" if value is None else ""
            _problem(pm, plugin, hook, f"{hook}() returned {describe(value)}, not a list{hint}")
            continue
        for item in value:
            problems = problems_of(item)
            if problems:
                named = getattr(item, "name", None)
                what = f"{kind} {named!r} " if isinstance(named, str) and named else ""
                _problem(pm, plugin, hook, f"{hook}(): {what}left out: {'; '.join(problems)}")
                continue
            name: str = item.name  # checked by problems_of
            label = f"{kind} {name!r}"
            if name in found:
                _problem(
                    pm,
                    plugin,
                    hook,
                    f"{hook}(): {label} is also registered by plugin {owners[name]!r}, whose "
                    "one is used (disable one of them with ZOO_DISABLE_PLUGINS)",
                )
                continue
            guard(item, plugin, label, methods, report)
            found[name] = item
            owners[name] = plugin
    state.registered[hook] = (impls, found)
    return dict(found)


def get_engines(pm: pluggy.PluginManager | None = None) -> dict[str, Engine]:
    """Every valid registered engine by name (guarded: see ``zoo.plugin_guard``)."""
    return _registered(
        _manager(pm), "zoo_register_engines", "engine", engine_problems, engine_rules
    )


def get_hubs(pm: pluggy.PluginManager | None = None) -> dict[str, Hub]:
    """Every valid registered hub by name (guarded: see ``zoo.plugin_guard``)."""
    return _registered(_manager(pm), "zoo_register_hubs", "hub", hub_problems, hub_rules)


def get_catalog_paths(pm: pluggy.PluginManager | None = None) -> list[Path]:
    """The spec folders (or files) plugins ship, in plugin order."""
    pm = _manager(pm)
    paths: list[Path] = []
    for plugin, value in _call_each(pm, "zoo_catalog_paths"):
        if not isinstance(value, list | tuple) or not all(
            isinstance(p, str | os.PathLike) for p in value
        ):
            hint = " (return [] for none)" if value is None else ""
            _problem(
                pm,
                plugin,
                "zoo_catalog_paths",
                f"zoo_catalog_paths() returned {describe(value)}, not a list of paths{hint}",
            )
            continue
        paths.extend(Path(p) for p in value)
    return paths


def add_plugin_commands(app: typer.Typer, pm: pluggy.PluginManager | None = None) -> None:
    """Let every plugin add its commands to ``app`` (a plugin that raises adds none)."""
    _call_each(_manager(pm), "zoo_register_commands", app=app)


# -- reporting -------------------------------------------------------------------------------


def plugin_records(pm: pluggy.PluginManager | None = None) -> list[PluginRecord]:
    """Every plugin of ``pm``: entry points (loaded, failed or disabled), then any plugin
    registered by hand, each with the problems found so far."""
    pm = _manager(pm)
    for name, plugin in pm.list_name_plugin():
        if plugin is not None:
            _record(pm, name, plugin)
    return list(_state(pm).records.values())


def plugin_report(pm: pluggy.PluginManager | None = None) -> list[dict[str, object]]:
    """Every plugin as data for ``zoo plugins``: entry point, module, distribution, version,
    the ``zoo_`` hooks it implements, whether it loaded or is disabled, and its problems.

    Calls every registration hook first (quietly) so that their problems are listed, and
    adds the failures that earlier commands saw (``zoo.plugin_problems``).
    """
    import typer

    from zoo.plugin_problems import remembered

    quiet, _Warnings.quiet = _Warnings.quiet, True
    try:
        pm = _manager(pm)
        get_engines(pm)
        get_hubs(pm)
        get_catalog_paths(pm)
        add_plugin_commands(typer.Typer(), pm)
    finally:
        _Warnings.quiet = quiet
    report: list[dict[str, object]] = []
    for record in plugin_records(pm):
        plugin = pm.get_plugin(record.name)
        hooks = (
            sorted(caller.name for caller in pm.get_hookcallers(plugin) or ())
            if plugin is not None
            else []
        )
        earlier = [
            {"where": r.where, "message": r.message, "when": _iso(r.when)}
            for r in remembered(record.name, record.version)
            if r.message not in record.problems
        ]
        report.append(
            {
                "name": record.name,
                "module": record.module,
                "distribution": record.distribution,
                "version": record.version,
                "hooks": hooks,
                "loaded": record.loaded and plugin is not None,
                "disabled": record.disabled,
                "error": record.error,
                "problems": list(record.problems),
                "earlier_problems": earlier,
            }
        )
    return report


def _iso(when: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(when))


# -- tracing ---------------------------------------------------------------------------------


def _trace_hook_calls(pm: pluggy.PluginManager) -> None:
    """``ZOO_TRACE_PLUGINS=1``: one stderr line per hook call and one for its outcome.

    zoo calls each plugin's implementation on its own, so a line names one plugin and shows
    what that plugin returned (pluggy's list of results, unwrapped).
    """
    started: list[float] = []

    def who(hook: str, impls: Sequence[Any]) -> str:
        names = [_plugin_name(pm, impl.plugin) for impl in impls]
        return f"{names[0]}.{hook}" if len(names) == 1 else f"{hook} [{', '.join(names)}]"

    def before(hook: str, impls: Sequence[Any], kwargs: Mapping[str, object]) -> None:
        started.append(time.perf_counter())
        args = ", ".join(f"{key}={describe(value)}" for key, value in kwargs.items())
        print(f"zoo: trace: {who(hook, impls)}({args})", file=sys.stderr)

    def after(outcome: Any, hook: str, impls: Sequence[Any], kwargs: Mapping[str, object]) -> None:
        took = (time.perf_counter() - started.pop()) * 1000 if started else 0.0
        if outcome.exception is not None:
            result = f"raised {_error_words(outcome.exception)}"
        else:
            value = outcome.get_result()
            if len(impls) == 1 and isinstance(value, list):
                value = value[0] if value else None  # pluggy leaves out a None result
            result = f"-> {describe(value)}"
        print(f"zoo: trace: {who(hook, impls)} {result} ({took:.1f} ms)", file=sys.stderr)

    pm.add_hookcall_monitoring(before, after)
