"""The compiled-catalog cache: validated spec files, so ``zoo list`` does not re-parse YAML.

One JSON file in ``zoo.paths.cache_dir()`` holds, per spec file, its validated data, positions
and problems, keyed by the file's (path, mtime, size) and a fingerprint of the validator
itself (zoo's version plus the mtimes of the catalog code and schema, so a development
checkout never serves results from older rules). A changed file is re-validated alone.

JSON rather than pickle: the cache is read on every run, and loading it must never be able to
execute code even if something else wrote the file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from zoo.catalog.problems import Problem
from zoo.catalog.validate import FileResult

FORMAT = 1
CACHE_NAME = "catalog-v1.json"
_VALIDATOR_FILES = (
    "yamlpos.py",
    "schema.py",
    "lint.py",
    "validate.py",
    "quantizations.py",
    "model.py",
    "spec.schema.json",
    "problems.py",
    "files.py",
)


def validator_fingerprint() -> str:
    from zoo import __version__

    here = Path(__file__).parent
    stamps = []
    for name in _VALIDATOR_FILES:
        try:
            stamps.append(str((here / name).stat().st_mtime_ns))
        except OSError:
            stamps.append("-")
    return f"{__version__}:{':'.join(stamps)}"


def file_key(stat: os.stat_result) -> list[int]:
    return [stat.st_mtime_ns, stat.st_size]


class CompiledCatalog:
    """Read once, looked up per file, written back (atomically) only when something changed."""

    def __init__(self, location: Path | None) -> None:
        self.location = location
        self.fingerprint = validator_fingerprint()
        self.entries: dict[str, Any] = {}
        self.extra: dict[str, Any] = {}
        self.dirty = False
        if location is not None:
            self._read(location)

    @classmethod
    def open(cls) -> CompiledCatalog:
        from zoo.paths import cache_dir

        return cls(cache_dir() / CACHE_NAME)

    def _read(self, location: Path) -> None:
        try:
            raw = json.loads(location.read_bytes())
        except (OSError, ValueError):
            return  # missing or corrupt: start over, it is only a cache
        if (
            isinstance(raw, dict)
            and raw.get("format") == FORMAT
            and raw.get("fingerprint") == self.fingerprint
            and isinstance(raw.get("files"), dict)
        ):
            self.entries = raw["files"]
            extra = raw.get("extra")
            self.extra = extra if isinstance(extra, dict) else {}

    def lookup(self, path: str, stat: os.stat_result) -> FileResult | None:
        entry = self.entries.get(path)
        if not isinstance(entry, dict) or entry.get("key") != file_key(stat):
            return None
        try:
            problems = [Problem(*p) for p in entry["problems"]]
            return FileResult(path, entry["data"], problems, entry["positions"])
        except (KeyError, TypeError):
            return None

    def store(self, path: str, stat: os.stat_result, result: FileResult) -> None:
        self.entries[path] = {
            "key": file_key(stat),
            "data": result.data,
            "positions": result.positions,
            "problems": [[p.path, p.line, p.column, p.code, p.message] for p in result.problems],
        }
        self.dirty = True

    def keep_only(self, paths: set[str]) -> None:
        """Forget files that are gone, so the cache does not grow forever."""
        for stale in set(self.entries) - paths:
            del self.entries[stale]
            self.dirty = True

    def set_extra(self, key: str, value: Any) -> None:
        self.extra[key] = value
        self.dirty = True

    def save(self) -> None:
        if not self.dirty or self.location is None:
            return
        payload = {
            "format": FORMAT,
            "fingerprint": self.fingerprint,
            "files": self.entries,
            "extra": self.extra,
        }
        try:
            self.location.parent.mkdir(parents=True, exist_ok=True)
            temporary = self.location.with_name(f".{self.location.name}.{os.getpid()}.tmp")
            temporary.write_text(json.dumps(payload, separators=(",", ":")), encoding="utf-8")
            os.replace(temporary, self.location)
        except (OSError, ValueError):
            pass  # a read-only cache folder only costs speed
        self.dirty = False
