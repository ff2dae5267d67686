"""zoo: a plugin-based model-zoo registry and launcher for open models."""

from zoo.hookspecs import hookimpl

__version__ = "0.1.0"

__all__ = ["__version__", "hookimpl"]
