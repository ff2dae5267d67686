"""Validate spec files: read, parse with positions, check the schema, lint, build the Family.

``check_file`` never raises for any input; everything wrong becomes a positioned Problem.
A file whose problems are only warnings yields a Family; a file with an error yields none.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo.catalog.problems import Problem

if TYPE_CHECKING:
    from zoo.catalog.model import Family, Location
    from zoo.catalog.yamlpos import Document


@dataclass
class FileResult:
    """One spec file's outcome: its data and positions when usable, and its problems."""

    path: str
    data: dict[str, Any] | None
    problems: list[Problem]
    # Positions the Family keeps for messages: family, each spec, each spec's sources.
    positions: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.data is not None

    @property
    def name(self) -> str | None:
        return self.data.get("name") if self.data else None

    def family(self) -> Family:
        """The Family (only for a result without errors)."""
        assert self.data is not None
        return build_family(self.data, self.path, self.positions)


def build_family(data: dict[str, Any], path: str, positions: dict[str, Any]) -> Family:
    # The data model is imported on demand: `zoo list` shows cached summaries and never
    # needs it (creating its dataclasses is a noticeable part of start-up).
    from zoo.catalog.lock import load_lock
    from zoo.catalog.model import Location, family_from_data

    def loc(pair: Any) -> Location:
        return Location(path, int(pair[0]), int(pair[1])) if pair else Location(path)

    return family_from_data(
        data,
        loc(positions.get("family")),
        [loc(p) for p in positions.get("specs", [])],
        [{hub: loc(p) for hub, p in by_hub.items()} for by_hub in positions.get("sources", [])],
        # What the hubs said when the family was last checked: next to its spec file.
        load_lock(Path(path).parent, str(data["name"])),
    )


def check_document(document: Document) -> FileResult:
    from zoo.catalog import lint, schema

    problems = schema.check(document) + lint.lint(document)
    return _result(document, problems)


def _result(document: Document, problems: list[Problem]) -> FileResult:
    problems = sorted(set(problems))
    data = document.data
    if any(p.is_error for p in problems) or not isinstance(data, dict):
        return FileResult(document.path, None, problems)
    positions: dict[str, Any] = {
        "family": document.where(()),
        "name": document.where(("name",)),
        "specs": [document.where(("specs", i)) for i in range(len(data["specs"]))],
        "sources": [
            {hub: document.where(("specs", i, "sources", hub), key=True) for hub in spec["sources"]}
            for i, spec in enumerate(data["specs"])
        ],
    }
    return FileResult(document.path, data, problems, positions)


def check_text(text: str, display: str) -> FileResult:
    from zoo.catalog import yamlpos

    document, problems = yamlpos.parse(text, display)
    if document is None:
        return FileResult(display, None, problems)
    result = check_document(document)
    result.problems = sorted(set(problems + result.problems))
    if any(p.is_error for p in problems):
        result.data = None
    return result


def check_file(path: Path, display: str | None = None) -> FileResult:
    from zoo.catalog import yamlpos

    name = display or str(path)
    text, problems = yamlpos.read_text(path, name)
    if text is None:
        return FileResult(name, None, problems)
    return check_text(text, name)


def duplicate_problems(results: Iterable[FileResult]) -> list[Problem]:
    """E306 at both definitions of every family name defined more than once (first wins)."""
    first: dict[str, FileResult] = {}
    problems: list[Problem] = []
    for result in results:
        name = result.name
        if name is None:
            continue
        if name not in first:
            first[name] = result
            continue
        original = first[name]
        here = _name_location(result)
        there = _name_location(original)
        problems.append(
            Problem(
                result.path,
                here.line,
                here.column,
                "E306",
                f"family {name!r} is already defined at {there} (the first definition wins)",
            )
        )
        problems.append(
            Problem(
                original.path,
                there.line,
                there.column,
                "E306",
                f"family {name!r} is defined again at {here}",
            )
        )
    return problems


def _name_location(result: FileResult) -> Location:
    from zoo.catalog.model import Location

    line, column = result.positions.get("name") or (0, 0)
    return Location(result.path, int(line), int(column))
