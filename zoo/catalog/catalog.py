"""The Catalog: every family from every catalog folder, indexed by name.

FIRST CUT (to be replaced by the catalog work, keeping this API): loads YAML with
``yaml.safe_load`` and builds families without validation.

Public API used across zoo:
- ``load_catalog(paths=None) -> Catalog``: built-in specs, the user folder,
  ``ZOO_CATALOG_PATH`` folders and plugin folders (or exactly ``paths`` when given).
- ``Catalog.families`` (name -> Family, sorted by name), ``Catalog.get(name)`` (raises
  NotFoundError with a did-you-mean), ``Catalog.problems`` (validation problems found).
- ``builtin_catalog_dir() -> Path``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from zoo.catalog.model import Family, Location, family_from_data
from zoo.errors import NotFoundError


@dataclass
class Catalog:
    families: dict[str, Family] = field(default_factory=dict)
    problems: list[object] = field(default_factory=list)

    def get(self, name: str) -> Family:
        family = self.families.get(name) or self.families.get(name.lower())
        if family is None:
            import difflib

            close = difflib.get_close_matches(name.lower(), list(self.families), n=3)
            hint = f"did you mean {', '.join(close)}?" if close else "see `zoo list`"
            raise NotFoundError(f"unknown model {name!r}", hint=hint)
        return family

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.families.values())

    def __len__(self) -> int:
        return len(self.families)


def builtin_catalog_dir() -> Path:
    """The catalog shipped with zoo: ``zoo/_builtin_specs`` when installed, else ``specs/``."""
    import zoo

    package_dir = Path(zoo.__file__).parent
    installed = package_dir / "_builtin_specs"
    if installed.is_dir():
        return installed
    return package_dir.parent / "specs"


def default_catalog_dirs() -> list[Path]:
    from zoo.paths import user_catalog_dir
    from zoo.plugins import get_catalog_paths

    dirs = [builtin_catalog_dir(), user_catalog_dir()]
    extra = os.environ.get("ZOO_CATALOG_PATH", "")
    dirs.extend(Path(p) for p in extra.split(os.pathsep) if p)
    dirs.extend(get_catalog_paths())
    return dirs


def spec_files(paths: Iterable[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml")))
        elif path.is_file():
            files.append(path)
    return files


def load_catalog(paths: Sequence[Path] | None = None) -> Catalog:
    import yaml

    catalog = Catalog()
    for file in spec_files(default_catalog_dirs() if paths is None else paths):
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
        family = family_from_data(data, Location(str(file)))
        catalog.families.setdefault(family.name, family)
    catalog.families = dict(sorted(catalog.families.items()))
    return catalog
