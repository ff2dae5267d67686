"""What a registered engine or hub must be: checked once, when a plugin registers it.

A plugin that returns an object which is not an ``Engine``/``Hub``, or one whose name,
display name or capabilities are missing or of the wrong type, would otherwise fail much
later (mid-download, or with a type error deep in resolution) and far from its cause. These
checks return every problem in words that name the attribute and say what to write instead;
``zoo.plugins`` records them against the plugin and leaves the object out.

Missing required methods are caught earlier still: ``Engine`` and ``Hub`` are abstract base
classes, so instantiating one without ``server_command`` (or ``fetch``, ...) raises inside
the plugin's hook, which records that too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from zoo.errors import ZooError

# Engine names: users type them (--engine) and they become parts of file names (engine
# environments), so no slashes and no dot first.
ENGINE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
# Hub names are keys under a spec's ``sources``: the schema's pattern for them.
HUB_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")


class PluginError(ZooError):
    """A plugin broke the contract: it failed to load, registered something invalid, or its
    code raised. The message names the plugin; ``zoo plugins`` lists every such problem."""

    code = "plugin"


def describe(value: object) -> str:
    """A short description of a value for messages: its type, and the value when small."""
    if value is None:
        return "None"
    if isinstance(value, type):
        return f"the class {value.__name__}"
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} {text}"


def engine_problems(engine: object) -> list[str]:
    """Why ``engine`` cannot be registered as an engine ([] when it can)."""
    from zoo.engine import Capabilities, Engine

    if isinstance(engine, type) and issubclass(engine, Engine):
        return [
            f"returned the class {engine.__name__}, not an instance: return {engine.__name__}()"
        ]
    if not isinstance(engine, Engine):
        return [
            f"returned {describe(engine)}, not an engine (a zoo.engine.Engine subclass instance)"
        ]
    problems = _name_problems(
        engine,
        "engine",
        ENGINE_NAME,
        "letters, digits, '.', '_', '-'; users type it after --engine",
    )
    caps = getattr(engine, "capabilities", None)
    if not isinstance(caps, Capabilities):
        problems.append(f"capabilities is {describe(caps)}, not a zoo.engine.Capabilities")
    else:
        problems += [f"capabilities: {p}" for p in capabilities_problems(caps)]
    variants = getattr(engine, "variants", ())
    if not isinstance(variants, tuple | list) or not all(
        isinstance(v, Capabilities) for v in variants
    ):
        problems.append(f"variants is {describe(variants)}, not a tuple of Capabilities")
        variants = ()
    for index, variant in enumerate(variants):
        problems += [f"variants[{index}]: {p}" for p in capabilities_problems(variant)]
        if not variant.opt_in:
            problems.append(
                f"variants[{index}] has no opt_in: a variant is only used when a user opts in"
            )
    if isinstance(caps, Capabilities) and not caps.formats and not any(v.formats for v in variants):
        problems.append(
            "declares no formats: set capabilities = Capabilities(formats={...}) "
            'to say what it runs (e.g. {"ggufv2": ("*",)})'
        )
    priority = getattr(engine, "priority", 0)
    if not _is_int(priority):
        problems.append(f"priority is {describe(priority)}, not an int")
    return problems


def hub_problems(hub: object) -> list[str]:
    """Why ``hub`` cannot be registered as a hub ([] when it can)."""
    from zoo.hubs.base import Hub

    if isinstance(hub, type) and issubclass(hub, Hub):
        return [f"returned the class {hub.__name__}, not an instance: return {hub.__name__}()"]
    if not isinstance(hub, Hub):
        return [f"returned {describe(hub)}, not a hub (a zoo.hubs.base.Hub subclass instance)"]
    problems = _name_problems(
        hub, "hub", HUB_NAME, "lower-case letters, digits, '_'; spec files name it under sources"
    )
    for flag in ("cheap_listing", "names_exact_files"):
        value = getattr(hub, flag, None)
        if not isinstance(value, bool):
            problems.append(f"{flag} is {describe(value)}, not True or False")
    return problems


def capabilities_problems(caps: Any) -> list[str]:
    """Fields of a ``Capabilities`` whose values are of the wrong shape.

    Catches the common slips that would otherwise misbehave quietly: ``("*")`` (a string, not
    a tuple: every quantization would be matched by substring), ``requirements="vllm"``
    (pip would be asked for "v", "l", ...), a number of bytes given as a string.
    """
    problems: list[str] = []
    formats = caps.formats
    if not isinstance(formats, Mapping):
        problems.append(f"formats is {describe(formats)}, not a dict of format -> quantizations")
    else:
        for fmt, quantizations in formats.items():
            if not isinstance(fmt, str) or not _strings(quantizations):
                problems.append(
                    f"formats[{fmt!r}] is {describe(quantizations)}, not a tuple of "
                    'quantization names (write ("*",) for any; ("*") is a string)'
                )
    accels = caps.format_accelerators
    if not isinstance(accels, Mapping) or not all(_strings(v) for v in accels.values()):
        problems.append(f"format_accelerators is {describe(accels)}, not a dict of tuples")
    for field in (
        "accelerators",
        "requirements",
        "experimental_formats",
        "preferred_on",
        "uninstall",
        "kinds",
    ):
        value = getattr(caps, field)
        if not _strings(value):
            problems.append(f"{field} is {describe(value)}, not a tuple of strings")
    platforms = caps.platforms
    if not isinstance(platforms, tuple | list) or not all(
        isinstance(p, tuple | list) and len(p) == 2 and _strings(p) for p in platforms
    ):
        problems.append(f"platforms is {describe(platforms)}, not a tuple of (os, arch) pairs")
    for field in ("opt_in", "runtime_module", "variant"):
        value = getattr(caps, field)
        if value is not None and not isinstance(value, str):
            problems.append(f"{field} is {describe(value)}, not a string or None")
    if _strings(caps.kinds) and not caps.kinds:
        problems.append('kinds is empty: name the model kinds it serves, e.g. ("llm",)')
    elif _strings(caps.kinds):
        problems += _kind_problems(caps.kinds)
    if not _is_int(caps.overhead_bytes) or caps.overhead_bytes < 0:
        problems.append(f"overhead_bytes is {describe(caps.overhead_bytes)}, not a number of bytes")
    efficiency = caps.decode_efficiency
    if not _is_number(efficiency) or not 0 < efficiency <= 1:
        problems.append(f"decode_efficiency is {describe(efficiency)}, not a share in (0, 1]")
    overhead = caps.token_overhead_s
    if not _is_number(overhead) or not 0 <= overhead < 60:
        problems.append(f"token_overhead_s is {describe(overhead)}, not seconds per token")
    for field in ("requires_accelerator", "honours_context"):
        value = getattr(caps, field, False)
        if not isinstance(value, bool):
            problems.append(f"{field} is {describe(value)}, not True or False")
    return problems


def _kind_problems(names: tuple[str, ...] | list[str]) -> list[str]:
    """A kind zoo does not know would match no family: the engine would quietly serve nothing."""
    import difflib

    from zoo.kinds import KIND_NAMES

    problems: list[str] = []
    for name in dict.fromkeys(names):
        if name in KIND_NAMES:
            continue
        problem = f"kinds names {name!r}, not a model kind zoo knows ({', '.join(KIND_NAMES)})"
        close = difflib.get_close_matches(name, KIND_NAMES, n=1)
        problems.append(f"{problem}: did you mean {close[0]!r}?" if close else problem)
    return problems


def _name_problems(obj: object, kind: str, pattern: re.Pattern[str], rule: str) -> list[str]:
    problems: list[str] = []
    name = getattr(obj, "name", None)
    if not isinstance(name, str) or not pattern.fullmatch(name):
        problems.append(
            f"name is {describe(name) if name else 'not set'}: set name to a short name ({rule})"
        )
    display = getattr(obj, "display_name", None)
    if not isinstance(display, str) or not display.strip() or "\n" in display:
        problems.append(
            f"display_name is {describe(display) if display else 'not set'}: "
            f"set display_name to the {kind}'s name as people write it"
        )
    return problems


def _strings(value: object) -> bool:
    return isinstance(value, tuple | list) and all(isinstance(v, str) for v in value)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    """A finite int or float (not a bool: True is not a share)."""
    import math

    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
