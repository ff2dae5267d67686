"""A small, fast text table for listings of many rows.

rich renders a 165-row table in 0.2-0.5 s on these machines, longer than ``zoo list`` may take
in total; this lays out the same kind of table (aligned columns, long cells wrapped at word
boundaries to fit the terminal, bold header on a terminal) in a few milliseconds.
"""

from __future__ import annotations

import os
import shutil
import sys
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

GAP = "  "


@dataclass(frozen=True)
class Column:
    title: str
    wrap: bool = True  # False: never shortened or wrapped (names users type)
    right: bool = False
    # Left out when the table cannot fit the width otherwise: higher numbers go first; 0 stays.
    drop: int = 0


def render(
    columns: Sequence[Column],
    rows: Sequence[Sequence[str]],
    width: int | None = None,
    bold_header: bool | None = None,
) -> str:
    width = width or shutil.get_terminal_size((100, 24)).columns
    if bold_header is None:
        bold_header = sys.stdout.isatty() and "NO_COLOR" not in os.environ
    columns, rows = _droppable(columns, rows, width)
    natural = [max([len(c.title), *(len(r[i]) for r in rows)]) for i, c in enumerate(columns)]
    widths = _fit(columns, natural, _least(columns, rows), width - len(GAP) * (len(columns) - 1))
    lines = [_line(columns, widths, [c.title for c in columns])]
    if bold_header:
        lines[0] = f"\x1b[1m{lines[0]}\x1b[0m"
    for row in rows:
        cells = [
            textwrap.wrap(text, w, break_on_hyphens=False) or [""] if c.wrap else [text]
            for c, text, w in zip(columns, row, widths, strict=True)
        ]
        for index in range(max(len(cell) for cell in cells)):
            lines.append(
                _line(columns, widths, [cell[index] if index < len(cell) else "" for cell in cells])
            )
    return "\n".join(lines)


def _least(columns: Sequence[Column], rows: Sequence[Sequence[str]]) -> list[int]:
    """The narrowest each column may get: its title and longest word stay whole."""
    return [
        max([len(c.title), *(len(w) for r in rows for w in r[i].split())])
        if c.wrap
        else max([len(c.title), *(len(r[i]) for r in rows)])
        for i, c in enumerate(columns)
    ]


def _droppable(
    columns: Sequence[Column], rows: Sequence[Sequence[str]], width: int
) -> tuple[Sequence[Column], Sequence[Sequence[str]]]:
    """Leave out droppable columns, highest ``drop`` first, until the narrowest layout fits."""
    while True:
        least = sum(_least(columns, rows)) + len(GAP) * (len(columns) - 1)
        optional = [i for i, c in enumerate(columns) if c.drop]
        if least <= width or not optional:
            return columns, rows
        gone = max(optional, key=lambda i: columns[i].drop)
        columns = [c for i, c in enumerate(columns) if i != gone]
        rows = [[cell for i, cell in enumerate(r) if i != gone] for r in rows]


def _fit(columns: Sequence[Column], natural: list[int], least: list[int], room: int) -> list[int]:
    """Shrink the widest wrappable columns until the table fits ``room`` (never below a
    column's longest word)."""
    widths = list(natural)
    while sum(widths) > room:
        candidates = [i for i, c in enumerate(columns) if c.wrap and widths[i] > least[i]]
        if not candidates:
            break
        widest = max(candidates, key=lambda i: widths[i])
        widths[widest] -= 1
    return widths


def _line(columns: Sequence[Column], widths: list[int], cells: list[str]) -> str:
    parts = [
        text.rjust(width) if column.right else text.ljust(width)
        for column, width, text in zip(columns, widths, cells, strict=True)
    ]
    return GAP.join(parts).rstrip()
