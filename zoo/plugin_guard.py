"""Plugin code that raises (or returns the wrong thing) becomes the plugin's error, not zoo's.

Every engine and hub that a plugin registers is guarded in place: each method zoo calls is
replaced, on that instance, by a wrapper that calls the plugin's method and checks what comes
back. The instance and its class stay the plugin's own (``type(engine).__module__`` still
names the plugin's package, which the runtime relies on), so nothing else in zoo needs to
know about guarding: resolution calls ``engine.check`` and the runtime calls
``engine.server_command`` as before.

What happens when a method fails (raises an exception that is not a ``ZooError``, or returns
a value of the wrong type):

- ``Engine.check`` answers ``Match.no("the plugin ... raised ...")``: only that candidate is
  dropped, and the plan's reasons say why;
- methods with a harmless answer (``Hub.reachable`` -> False, ``Hub.cached`` -> None,
  ``Hub.cache_entries`` -> (), ...) give it, so the other hubs still work;
- every other method raises ``PluginError`` naming the plugin, the object and the method
  (the CLI prints it as one line; ``--debug`` shows the plugin's traceback).

Each failure is reported to a ``Report`` callback (``zoo.plugins`` records it for
``zoo plugins`` and prints one warning line per plugin and method). A ``ZooError`` raised by
plugin code is the plugin's deliberate, friendly error and passes through untouched.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from zoo.errors import ZooError
from zoo.plugin_contract import PluginError, describe

GUARD_ATTRIBUTE = "_zoo_guard"


class Report(Protocol):
    """Told about each failure: the plugin, ``"engine 'x'.method"``, the message, and
    whether the caller carried on (a fallback answer) or gets the error raised."""

    def __call__(self, plugin: str, where: str, message: str, *, raised: bool) -> None: ...


# A check of a method's return value: a description of what was expected, or None if fine.
Returns = Callable[[object], str | None]


@dataclass(frozen=True)
class Rule:
    """How to guard one method: what it must return, and the answer to use if it fails
    (``fallback(message)``), or None to raise ``PluginError``."""

    returns: Returns
    fallback: Callable[[str], object] | None = None


@dataclass
class Guard:
    """Who owns a guarded object, and where its failures are reported (replaced when the
    same object is registered again, e.g. by a second plugin manager)."""

    plugin: str
    what: str  # "engine 'echo'", "hub 'mirror'"
    report: Report


def guard(obj: object, plugin: str, what: str, rules: Mapping[str, Rule], report: Report) -> None:
    """Replace ``obj``'s methods named in ``rules`` by guarded ones, in place (idempotent)."""
    current = Guard(plugin, what, report)
    if isinstance(vars(obj).get(GUARD_ATTRIBUTE), Guard):
        object.__setattr__(obj, GUARD_ATTRIBUTE, current)
        return
    try:
        object.__setattr__(obj, GUARD_ATTRIBUTE, current)
    except (AttributeError, TypeError):
        return  # __slots__ without __dict__: cannot be guarded, runs as it is
    for name, rule in rules.items():
        method = getattr(obj, name, None)
        if callable(method):
            object.__setattr__(obj, name, _guarded(obj, name, method, rule))


def _guarded(obj: object, name: str, method: Callable[..., Any], rule: Rule) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        owner: Guard = vars(obj)[GUARD_ATTRIBUTE]
        try:
            value = method(*args, **kwargs)
        except ZooError as error:
            if rule.fallback is not None and isinstance(error, PluginError):
                # Raised by another guarded method this one called: already reported.
                return rule.fallback(Exception.__str__(error))
            raise
        except (Exception, SystemExit) as error:  # a plugin's sys.exit() ends no command
            problem = f"{name}() raised {type(error).__name__}: {one_line(error)}"
            return _fail(owner, name, rule, problem, error)
        expected = rule.returns(value)
        if expected is None:
            return value
        return _fail(
            owner, name, rule, f"{name}() returned {describe(value)}, not {expected}", None
        )

    call.__name__ = name
    call.__doc__ = getattr(method, "__doc__", None)
    call.__wrapped__ = method  # type: ignore[attr-defined]
    return call


def _fail(owner: Guard, name: str, rule: Rule, problem: str, error: BaseException | None) -> Any:
    where = f"{owner.what}.{name}"
    message = f"{owner.what}: {problem}"
    if rule.fallback is not None:
        owner.report(owner.plugin, where, message, raised=False)
        return rule.fallback(f"{problem} (a bug in plugin {owner.plugin!r})")
    owner.report(owner.plugin, where, message, raised=True)
    raise PluginError(
        f"plugin {owner.plugin!r}: {message}",
        hint=f"a bug in the plugin; `zoo plugins` lists it, ZOO_DISABLE_PLUGINS={owner.plugin} "
        "turns it off",
    ) from error


def one_line(error: BaseException) -> str:
    """An exception's message on one line, shortened: warnings and records are single lines."""
    text = " | ".join(line.strip() for line in str(error).splitlines() if line.strip())
    return text if len(text) <= 300 else text[:297] + "..."


# -- what each method must return ---------------------------------------------------------


def _instance(kind: type, label: str, *, optional: bool = False) -> Returns:
    def check(value: object) -> str | None:
        if value is None and optional:
            return None
        return None if isinstance(value, kind) else label

    return check


def _sequence_of(kind: type, label: str, *, optional: bool = False) -> Returns:
    def check(value: object) -> str | None:
        if value is None and optional:
            return None
        ok = (
            isinstance(value, Sequence)
            and not isinstance(value, str | bytes)
            and all(isinstance(item, kind) for item in value)
        )
        return None if ok else label

    return check


def _optional_str(value: object) -> str | None:
    return None if value is None or isinstance(value, str) else "a string or None"


def _str(value: object) -> str | None:
    return None if isinstance(value, str) else "a string"


def _bool(value: object) -> str | None:
    return None if isinstance(value, bool) else "True or False"


def _bytes(value: object) -> str | None:
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
    return None if ok else "a number of bytes"


def _none(value: object) -> str | None:
    return None if value is None else "None"


def _server_command(value: object) -> str | None:
    from zoo.engine import ServerCommand

    if not isinstance(value, ServerCommand):
        return "a ServerCommand"
    argv = value.argv
    if not isinstance(argv, tuple | list) or not argv or not all(isinstance(a, str) for a in argv):
        return "a ServerCommand whose argv is a non-empty tuple of strings"
    env = value.env
    if not isinstance(env, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in env.items()
    ):
        return "a ServerCommand whose env maps strings to strings"
    return None


def engine_rules() -> dict[str, Rule]:
    """The guarded methods of ``Engine``: every one zoo calls."""
    from zoo.engine import Capabilities, Match

    return {
        "check": Rule(_instance(Match, "a Match"), fallback=Match.no),
        "check_family": Rule(_instance(Match, "a Match"), fallback=Match.no),
        "capabilities_for": Rule(_instance(Capabilities, "a Capabilities")),
        "device": Rule(_str),
        "server_command": Rule(_server_command),
        "requirements": Rule(_sequence_of(str, "a sequence of requirement strings")),
        "env_uninstall": Rule(_sequence_of(str, "a sequence of package names")),
        "runtime_module": Rule(_optional_str),
        "overhead_bytes": Rule(_bytes),
    }


def hub_rules() -> dict[str, Rule]:
    """The guarded methods of ``Hub``; those with a harmless answer give it on failure."""
    from pathlib import Path

    from zoo.hubs.base import CacheEntry, FetchResult, RemoteFile

    listing = "a sequence of RemoteFile"
    return {
        "reachable": Rule(_bool, fallback=lambda _: False),
        "offline": Rule(_bool, fallback=lambda _: False),
        "endpoint": Rule(_str),
        "web_url": Rule(_optional_str, fallback=lambda _: None),
        "check_repo_id": Rule(_none),
        "list_files": Rule(_sequence_of(RemoteFile, listing)),
        "cached_listing": Rule(
            _sequence_of(RemoteFile, listing + " or None", optional=True), fallback=lambda _: None
        ),
        "fetch": Rule(_instance(FetchResult, "a FetchResult")),
        "cached": Rule(
            _instance(FetchResult, "a FetchResult or None", optional=True), fallback=lambda _: None
        ),
        "planned_root": Rule(
            _instance(Path, "a Path or None", optional=True), fallback=lambda _: None
        ),
        "cache_root": Rule(
            _instance(Path, "a Path or None", optional=True), fallback=lambda _: None
        ),
        "cache_entries": Rule(
            _sequence_of(CacheEntry, "a sequence of CacheEntry"), fallback=lambda _: ()
        ),
        "remove": Rule(_sequence_of(CacheEntry, "a sequence of CacheEntry")),
    }
