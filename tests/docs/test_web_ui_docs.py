"""docs/web-ui.rst is true: its route table lists exactly the web UI's routes, its commands use
options ``zoo serve`` has, and the names and numbers it gives (cookie, CSRF header, error code,
session lifetime, metrics windows, the bench script) are the code's."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "web-ui.rst"


def _text() -> str:
    return PAGE.read_text(encoding="utf-8")


def _blocks(language: str) -> list[str]:
    """The page's ``.. code-block:: <language>`` bodies, dedented, in order."""
    found = re.findall(rf"\.\. code-block:: {language}\n\n((?:   .*\n|\n)+)", _text())
    return [textwrap.dedent(body).strip() + "\n" for body in found]


def _route_literals() -> set[tuple[str, str]]:
    """(method, path) for every ``METHOD /path`` literal in the first cells of the route
    table (a first cell may hold several, and a note after them)."""
    text = _text()
    table = text[text.index(".. list-table::", text.index("\nRoutes\n")) :]
    cells: list[str] = []
    for line in table.splitlines()[1:]:
        if line and not line.startswith(" "):
            break
        if line.startswith("   * - "):
            cells.append(line[7:])
        elif line.startswith("       ") and cells and not line.startswith("     - "):
            cells[-1] += " " + line.strip()
    found = set()
    for cell in cells[1:]:  # without the header row
        for literal in re.findall(r"``([A-Z]+ /[^`]*)``", cell):
            method, path = literal.split(" ", 1)
            found.add((method, path))
    return found


def test_the_route_table_lists_exactly_the_web_uis_routes() -> None:
    from starlette.routing import Route

    from zoo.serve.app import build_app

    app = build_app(None)  # type: ignore[arg-type]  # the routes only: no request is served
    served = {
        (method, route.path)
        for route in app.routes
        if isinstance(route, Route) and route.path.startswith("/ui/")
        for method in (route.methods or set()) - {"HEAD"}
    }
    documented = _route_literals()
    assert ("GET", "/") in documented  # a browser's models page
    documented.discard(("GET", "/"))
    # Starlette writes a path parameter with its converter ({family:path}); the page does not.
    served = {(m, re.sub(r"\{(\w+):\w+\}", r"{\1}", p)) for m, p in served}
    assert documented == served


def test_the_shell_examples_use_options_zoo_serve_has() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "zoo", "serve", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "200"},
        check=True,
    )
    commands = [
        line.split("#")[0].split()
        for block in _blocks("shell")
        for line in block.splitlines()
        if line.startswith("zoo ")
    ]
    assert commands
    prose = re.findall(r"``(zoo serve[^`]*)``", _text())
    for words in [*commands, *(p.split() for p in prose)]:
        assert words[:2] == ["zoo", "serve"], words
        for option in (w for w in words if w.startswith("--")):
            assert option in done.stdout, (words, option)


def test_the_names_and_numbers_are_the_codes() -> None:
    from zoo.serve import errors
    from zoo.serve.ui import metrics_page, session
    from zoo.serve.ui.render import SECURITY_HEADERS

    text = " ".join(_text().split())
    assert f"``{session.COOKIE}``" in text
    assert f"``{session.CSRF_HEADER}``".lower() in text.lower()
    assert f"after {session.IDLE_SECONDS // 3600} idle hours" in text
    assert f"``{errors.BrowserRefused.code}``" in text and errors.BrowserRefused.status == 403
    assert "frame-ancestors 'none'" in SECURITY_HEADERS["Content-Security-Policy"]
    assert "script-src 'self'" in SECURITY_HEADERS["Content-Security-Policy"]
    assert f"``Cache-Control: {SECURITY_HEADERS['Cache-Control']}``" in text
    windows = re.search(r"\(``\?window=(\w+)``, ``(\w+)`` or ``(\w+)``\)", text)
    assert windows is not None
    assert set(windows.groups()) == {w.key for w in metrics_page.WINDOWS}
    assert "``bench/ui_page.py``" in text and (ROOT / "bench" / "ui_page.py").is_file()
