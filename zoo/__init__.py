"""zoo: a plugin-based model-zoo registry and launcher for open models."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from zoo.hookspecs import hookimpl

__version__ = "0.1.0"

__all__ = ["__version__", "hookimpl"]


def __getattr__(name: str) -> Any:
    # ``zoo.hookimpl`` needs pluggy; importing it only when a plugin asks keeps pluggy off the
    # start-up path of commands that never load plugins (``zoo --version``, ``zoo list``).
    if name == "hookimpl":
        from zoo.hookspecs import hookimpl

        return hookimpl
    raise AttributeError(f"module 'zoo' has no attribute {name!r}")
