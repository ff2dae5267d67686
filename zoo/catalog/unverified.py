"""Facts marked ``unverified``: written from best knowledge, not yet checked against a hub.

Hand-written specs list them in a source's ``unverified`` ([file, quantizations]); importers
and corrections in a family's or spec's ``extra.unverified``. ``zoo catalog check
--unverified`` lists each at its ``file:line:col`` (no network), so they can be checked one by
one. Positions come from re-reading the spec file with positions; where that fails the source's
or family's own location is used.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from zoo.catalog.model import Family, Location
    from zoo.catalog.yamlpos import Document

UNVERIFIED = "unverified"


@dataclass(frozen=True)
class Unverified:
    """The facts (field names) of one family, spec or source that no one has checked."""

    path: str
    line: int
    column: int
    family: str
    what: str  # "family", "ggufv2 3B", "ggufv2 3B huggingface org/repo"
    facts: tuple[str, ...]

    def __str__(self) -> str:
        from zoo.catalog.problems import one_line

        where = f"{self.path}:{self.line}:{self.column}" if self.line else self.path
        return one_line(f"{where}: {self.family} {self.what}: {', '.join(self.facts)}")

    def to_json(self) -> dict[str, object]:
        return {
            "path": self.path,
            "line": self.line,
            "column": self.column,
            "family": self.family,
            "what": self.what,
            "facts": list(self.facts),
        }


def _marks(extra: Any) -> tuple[str, ...]:
    value = extra.get(UNVERIFIED) if isinstance(extra, dict) else None
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list | tuple):
        return tuple(str(v) for v in value)
    return ()


def unverified_facts(families: Sequence[Family]) -> list[Unverified]:
    """Every unverified mark of ``families``, in file order."""
    return [item for family in families for item in _family_marks(family)]


def _family_marks(family: Family) -> list[Unverified]:
    document = _document(family.location)

    def at(path: tuple[str | int, ...], fallback: Location | None) -> tuple[str, int, int]:
        if document is not None:
            line, column = document.where(path)
            return document.path, line, column
        if fallback is not None:
            return fallback.path, fallback.line, fallback.column
        return family.name, 0, 0

    found: list[Unverified] = []
    marks = _marks(family.extra)
    if marks:
        where = at(("extra", UNVERIFIED), family.location)
        found.append(Unverified(*where, family.name, "family", marks))
    for i, spec in enumerate(family.specs):
        label = f"{spec.format} {spec.size_label}B"
        marks = _marks(spec.extra)
        if marks:
            where = at(("specs", i, "extra", UNVERIFIED), spec.location)
            found.append(Unverified(*where, family.name, label, marks))
        for source in spec.sources:
            if source.unverified:
                where = at(("specs", i, "sources", source.hub, UNVERIFIED), source.location)
                what = f"{label} {source.hub} {source.model_id}"
                found.append(Unverified(*where, family.name, what, source.unverified))
    return found


def _document(location: Location | None) -> Document | None:
    from zoo.catalog import yamlpos

    if location is None:
        return None
    try:
        document, _ = yamlpos.load(Path(location.path), location.path)
    except Exception:  # the file changed since the catalog was read: fall back to locations
        return None
    return document
