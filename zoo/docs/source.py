"""Loading the catalog for documentation: all of it, or nothing with every error listed.

Docs must never publish a partial catalog silently, so any error-level problem stops the
render with one message naming each problem (``path:line:col: error[code]: ...``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from zoo.catalog.model import Family
from zoo.errors import NotFoundError, ZooError
from zoo.registry import catalog_with_plugins


class CatalogError(ZooError):
    """The catalog has errors; the message lists them, one per line after the first.

    ``problems`` keeps them as objects (``zoo.catalog.problems.Problem``) for callers that
    report them their own way, like the Sphinx extension.
    """

    def __init__(self, message: str, problems: Sequence[object]) -> None:
        super().__init__(message)
        self.problems = list(problems)


def require_paths(paths: Sequence[Path] | None) -> None:
    """Every named spec file or folder exists: a mistyped ``--catalog`` would otherwise
    publish an empty site without a word."""
    missing = [str(p) for p in paths or () if not os.path.lexists(p)]
    if missing:
        raise NotFoundError(f"no such spec file or folder: {', '.join(missing)}")


def load_families(paths: Sequence[Path] | None = None) -> list[Family]:
    """Families of the catalog at ``paths`` (default: zoo's catalog folders), by name."""
    require_paths(paths)
    catalog = catalog_with_plugins(paths)
    errors = [p for p in catalog.problems if getattr(p, "is_error", True)]
    if errors:
        listing = "\n".join(f"  {p}" for p in errors)
        raise CatalogError(
            f"the catalog has {len(errors)} error(s); nothing was written:\n{listing}",
            errors,
        )
    return sorted(catalog.families.values(), key=lambda f: f.name)
