"""The hooks of ``zoo.hookspecs`` with their exact signatures, for the plugin-author guide.

The guide (``docs/plugins.rst``) is written by hand, datasette-style, so each hook can have a
real example; a test uses this module to fail when a hook is missing from the guide or its
signature there differs from the code.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any


def hook_specs() -> dict[str, Callable[..., Any]]:
    """Every hook specification, by name, in the order they are defined."""
    from zoo import hookspecs

    found = {
        name: func
        for name, func in vars(hookspecs).items()
        if callable(func) and hasattr(func, "zoo_spec")
    }
    return dict(sorted(found.items(), key=lambda item: item[1].__code__.co_firstlineno))


def signature(func: Callable[..., Any]) -> str:
    """``def name(arg: Type) -> Return`` as written in the source (annotations unevaluated)."""
    sig = inspect.signature(func)
    params = []
    for param in sig.parameters.values():
        text = param.name
        if param.annotation is not inspect.Parameter.empty:
            text += f": {_annotation(param.annotation)}"
        params.append(text)
    result = ""
    if sig.return_annotation is not inspect.Signature.empty:
        result = f" -> {_annotation(sig.return_annotation)}"
    return f"def {func.__name__}({', '.join(params)}){result}"


def _annotation(value: Any) -> str:
    return value if isinstance(value, str) else inspect.formatannotation(value)


def label(name: str) -> str:
    return f"hook-{name.replace('_', '-')}"
