"""Small reStructuredText builders that escape what they are given.

Catalog text (descriptions, ids, file names) comes from YAML written by many people; every
helper here makes sure such text is shown as written and can never become RST markup.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

# Characters that start or end inline markup or references in running text.
_BACKTICKED = re.compile(r"`([^`]+)`")
_INLINE_SPECIAL = "\\`*_|[]<>:"
# Text that docutils would read as the start of a list, a directive or a table.
_LIST_START = re.compile(r"^(?:[^A-Za-z0-9\\]|[A-Za-z0-9]{1,3}[.)](?:\s|$)|\(\w+\)(?:\s|$))")


def text(value: str) -> str:
    """``value`` as plain running text: markup characters escaped, whitespace collapsed."""
    flat = " ".join(value.split())
    escaped = "".join("\\" + ch if ch in _INLINE_SPECIAL else ch for ch in flat)
    if _LIST_START.match(escaped):
        # A leading "- ", "1. " or "#. " would turn a description into a list.
        escaped = "\\" + escaped
    return escaped


def literal(value: str) -> str:
    """``value`` as inline code.

    Inline literals cannot contain a backtick pair and must not start or end with spaces;
    the ``:literal:`` role with escaped backticks is used for the rare values that would.
    """
    flat = " ".join(value.split())
    if not flat:
        return r"\ "
    if "`" in flat:
        escaped = flat.replace("\\", "\\\\").replace("`", "\\`")
        return f":literal:`{escaped}`"
    return f"``{flat}``"


def link(label: str, url: str) -> str:
    """An anonymous hyperlink (``__``), so equal labels on one page never clash."""
    # In a link label only backslashes, backticks and angle brackets are special.
    safe_label = "".join("\\" + ch if ch in "\\`<>" else ch for ch in " ".join(label.split()))
    if not url.startswith(("https://", "http://")):
        return text(label)  # javascript:, data: or file: from a catalog never becomes a link
    return f"`{safe_label or _url(url)} <{_url(url)}>`__"


def _url(url: str) -> str:
    # Inside <...> only '<', '>' and '`' break the target; a URL with them is not one we made.
    # Whitespace and control characters are encoded too: a newline in a URL from a spec would
    # end the link and let the rest be read as reStructuredText (a directive, an include).
    out = url.replace("<", "%3C").replace(">", "%3E").replace("`", "%60")
    return "".join(
        f"%{ord(ch):02X}" if ch.isspace() or ord(ch) < 32 or ord(ch) == 127 else ch for ch in out
    )


def ref(label: str, target: str) -> str:
    """A cross-reference to a label made by ``label_line``."""
    return f":ref:`{text(label)} <{target}>`"


def doc(label: str, document: str) -> str:
    return f":doc:`{text(label)} <{document}>`"


def heading(title: str, char: str, overline: bool = False) -> str:
    line = char * max(len(title), 4)
    return f"{line}\n{title}\n{line}\n" if overline else f"{title}\n{line}\n"


def label_line(label: str) -> str:
    return f".. _{label}:\n"


def field_list(fields: Sequence[tuple[str, str]]) -> str:
    """A field list; values are already RST. Empty values are left out."""
    lines = []
    for name, value in fields:
        if value:
            lines.append(f":{name}: {value}")
    return "\n".join(lines) + "\n"


def list_table(header: Sequence[str], rows: Sequence[Sequence[str]], widths: str = "") -> str:
    """A ``list-table``; cells are already RST and may hold several lines."""
    out = [".. list-table::", "   :header-rows: 1"]
    if widths:
        out.append(f"   :widths: {widths}")
    out.append("")
    for row in [header, *rows]:
        for index, cell in enumerate(row):
            bullet = "   * - " if index == 0 else "     - "
            cell_lines = cell.split("\n") if cell else ["\\ "]
            out.append(bullet + cell_lines[0])
            out.extend(("       " + line) if line else "" for line in cell_lines[1:])
    return "\n".join(out) + "\n"


def line_block(lines: Sequence[str]) -> str:
    """Several short lines in one table cell (each kept on its own line)."""
    if len(lines) == 1:
        return lines[0]
    return "\n".join(f"| {line}" for line in lines)


def footnote_ref(label: str) -> str:
    """A reference to the page's footnote ``label``, attached to the text before it (several
    references may share one footnote: the page says a thing once, where it is marked)."""
    return f"\\ [#{label}]_"


def footnote(label: str, body: str) -> str:
    """The footnote ``label`` refers to; ``body`` is already RST."""
    return f".. [#{label}] {body}\n"


def code_block(code: str, language: str = "console") -> str:
    body = "\n".join(("   " + line) if line else "" for line in code.splitlines())
    return f".. code-block:: {language}\n\n{body}\n"


def prose(markdownish: str) -> str:
    """Text with Markdown-style `code` (schema descriptions, CLI help) as RST."""
    pieces = _BACKTICKED.split(" ".join(markdownish.split()))
    out: list[str] = []
    for index, piece in enumerate(pieces):
        if index % 2:
            # Inline markup needs a non-word character on each side ("``x``\\ s").
            before = "\\ " if out and out[-1][-1:].isalnum() else ""
            out.append(before + literal(piece))
        else:
            after = "\\ " if index and piece[:1].isalnum() else ""
            out.append(after + "".join("\\" + ch if ch in _INLINE_SPECIAL else ch for ch in piece))
    joined = "".join(out)
    return "\\" + joined if _LIST_START.match(joined) and not joined.startswith("``") else joined
