"""The plugin manager factory and a typed facade over its hooks.

Plugins are modules named by entry points in the ``zoo`` group. A plugin that fails to load
is recorded (``zoo plugins`` shows it) and skipped, so one broken plugin never breaks the CLI;
``ZOO_STRICT_PLUGINS=1`` raises instead, for plugin authors. ``ZOO_DISABLE_PLUGINS`` is a
comma-separated list of entry-point names not to load.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, cast

import pluggy

from zoo import hookspecs
from zoo.errors import ZooError

if TYPE_CHECKING:
    from zoo.engine import Engine
    from zoo.hubs.base import Hub

ENTRY_POINT_GROUP = "zoo"


@dataclass(frozen=True)
class PluginRecord:
    """One entry point: what it is, where it comes from, and whether it loaded."""

    name: str
    module: str
    distribution: str | None
    version: str | None
    error: str | None = None
    disabled: bool = False


class PluginError(ZooError):
    """A plugin broke the contract (strict mode) or two plugins clash."""


def disabled_plugin_names() -> set[str]:
    raw = os.environ.get("ZOO_DISABLE_PLUGINS", "")
    return {name.strip() for name in raw.split(",") if name.strip()}


def strict_mode() -> bool:
    return os.environ.get("ZOO_STRICT_PLUGINS", "") not in ("", "0")


def new_plugin_manager(load_entry_points: bool = True) -> pluggy.PluginManager:
    """A fresh manager with the hook specs added and (by default) entry points loaded.

    Tests make their own with this; the CLI shares one through ``plugin_manager()``.
    """
    from importlib.metadata import entry_points

    pm = pluggy.PluginManager("zoo")
    pm.add_hookspecs(hookspecs)
    records: list[PluginRecord] = []
    if load_entry_points:
        disabled = disabled_plugin_names()
        for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            dist = ep.dist
            record = PluginRecord(
                name=ep.name,
                module=ep.value,
                distribution=dist.metadata["Name"] if dist is not None else None,
                version=dist.version if dist is not None else None,
            )
            if ep.name in disabled:
                records.append(_replace(record, disabled=True))
                continue
            try:
                module = ep.load()
                pm.register(module, name=ep.name)
            except Exception as error:  # a broken plugin must not break zoo
                if strict_mode():
                    raise PluginError(f"plugin {ep.name!r} failed to load: {error}") from error
                records.append(_replace(record, error=f"{type(error).__name__}: {error}"))
                continue
            records.append(record)
        if strict_mode():
            pm.check_pending()
    pm.zoo_records = records  # type: ignore[attr-defined]
    return pm


def _replace(record: PluginRecord, **changes: object) -> PluginRecord:
    from dataclasses import replace

    return replace(record, **changes)  # type: ignore[arg-type]


@cache
def plugin_manager() -> pluggy.PluginManager:
    """The process-wide manager, created on first use."""
    return new_plugin_manager()


def plugin_records(pm: pluggy.PluginManager | None = None) -> list[PluginRecord]:
    pm = pm or plugin_manager()
    return list(getattr(pm, "zoo_records", []))


def plugin_report(pm: pluggy.PluginManager | None = None) -> list[dict[str, object]]:
    """Every plugin as data for ``zoo plugins``: entry point, module, distribution, version,
    the ``zoo_`` hooks it implements, and its error or disabled state."""
    pm = pm or plugin_manager()
    report: list[dict[str, object]] = []
    for record in plugin_records(pm):
        plugin = pm.get_plugin(record.name)
        hooks = (
            sorted(caller.name for caller in pm.get_hookcallers(plugin) or ())
            if plugin is not None
            else []
        )
        report.append(
            {
                "name": record.name,
                "module": record.module,
                "distribution": record.distribution,
                "version": record.version,
                "hooks": hooks,
                "error": record.error,
                "disabled": record.disabled,
            }
        )
    return report


def get_engines(pm: pluggy.PluginManager | None = None) -> dict[str, Engine]:
    """Every registered engine by name; a name registered twice is an error naming both."""
    pm = pm or plugin_manager()
    found: dict[str, Engine] = {}
    owners: dict[str, str] = {}
    for impl in pm.hook.zoo_register_engines.get_hookimpls():
        plugin_name = pm.get_name(impl.plugin) or repr(impl.plugin)
        try:
            engines = cast("list[Engine]", impl.function() or [])
        except Exception as error:
            if strict_mode():
                raise
            _record_hook_error(pm, plugin_name, "zoo_register_engines", error)
            continue
        for engine in engines:
            if engine.name in found:
                raise PluginError(
                    f"engine {engine.name!r} is registered by both {owners[engine.name]!r} "
                    f"and {plugin_name!r}; disable one with ZOO_DISABLE_PLUGINS"
                )
            found[engine.name] = engine
            owners[engine.name] = plugin_name
    return found


def get_hubs(pm: pluggy.PluginManager | None = None) -> dict[str, Hub]:
    """Every registered hub by name; a name registered twice is an error naming both."""
    pm = pm or plugin_manager()
    found: dict[str, Hub] = {}
    owners: dict[str, str] = {}
    for impl in pm.hook.zoo_register_hubs.get_hookimpls():
        plugin_name = pm.get_name(impl.plugin) or repr(impl.plugin)
        try:
            hubs = cast("list[Hub]", impl.function() or [])
        except Exception as error:
            if strict_mode():
                raise
            _record_hook_error(pm, plugin_name, "zoo_register_hubs", error)
            continue
        for hub in hubs:
            if hub.name in found:
                raise PluginError(
                    f"hub {hub.name!r} is registered by both {owners[hub.name]!r} "
                    f"and {plugin_name!r}; disable one with ZOO_DISABLE_PLUGINS"
                )
            found[hub.name] = hub
            owners[hub.name] = plugin_name
    return found


def get_catalog_paths(pm: pluggy.PluginManager | None = None) -> list[Path]:
    pm = pm or plugin_manager()
    paths: list[Path] = []
    for result in pm.hook.zoo_catalog_paths():
        paths.extend(Path(p) for p in result or [])
    return paths


def _record_hook_error(pm: pluggy.PluginManager, plugin: str, hook: str, error: Exception) -> None:
    records: list[PluginRecord] = getattr(pm, "zoo_records", [])
    for index, record in enumerate(records):
        if record.name == plugin and record.error is None:
            records[index] = _replace(record, error=f"{hook}: {type(error).__name__}: {error}")
