"""The built site in a real headless Chromium (Debian's ``chromium``): screenshots of the
pages a newcomer sees (home, models index, a model page, a search for a model name), a layout
check at desktop and phone widths, search ranking, and options printed as typed.

Screenshots go to the test's tmp folder (``screenshots/``) and, when ``ZOO_DOCS_SCREENSHOTS``
names a folder, are copied there too (e.g. ``docs/_build/screenshots``) for a person to look
at. The layout check loads each page in an iframe of the viewport's width from a probe page on
the same origin, and reads back what the page measured: no Playwright or CDP client needed.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import shutil
import struct
import subprocess
import threading
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest

from zoo.cli.app import main

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
)
DESKTOP = (1280, 900)
PHONE = (390, 844)
PAGES = {
    "home": "index.html",
    "models-index": "models/index.html",
    "model-page": "models/seed-oss.html",
    "search": "search.html?q=smollm2",
}
# Measures the framed page once it (and, for search, its results) has loaded.
PROBE = """<!doctype html><html><body style="margin:0">
<pre id="result"></pre>
<script>
const params = new URLSearchParams(location.search);
const frame = document.createElement("iframe");
frame.style.border = "0";
frame.width = params.get("w");
frame.height = params.get("h");
frame.src = params.get("page");
frame.onload = () => setTimeout(() => {
  const doc = frame.contentDocument;
  const main = doc.querySelector("article") || doc.querySelector("main") || doc.body;
  document.getElementById("result").textContent = JSON.stringify({
    scrollWidth: doc.documentElement.scrollWidth,
    clientWidth: doc.documentElement.clientWidth,
    mainText: main.innerText.trim().length,
    title: doc.title,
  });
}, 3000);
document.body.appendChild(frame);
</script></body></html>
"""


def _chromium() -> str:
    found = shutil.which("chromium")
    assert found, "Debian's chromium is missing: run `make system-deps`"
    return found


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    catalog = Path(__file__).parent / "data" / "catalog"
    with pytest.raises(SystemExit) as exit_info:
        main(["docs", "build", "--out", str(out), "--catalog", str(catalog)])
    assert exit_info.value.code in (0, None)
    (out / "zoo-layout-probe.html").write_text(PROBE, encoding="utf-8")
    return out


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def served(site: Path) -> Iterator[str]:
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _run(args: list[str], profile: Path) -> str:
    return subprocess.run(
        [_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout


def _dom(url: str, profile: Path) -> str:
    # Virtual time lets the page's scripts (search, the probe's timer) finish before the dump.
    return _run(["--virtual-time-budget=15000", "--dump-dom", url], profile)


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_screenshots_of_home_models_a_model_page_and_search(served: str, tmp_path: Path) -> None:
    shots = tmp_path / "screenshots"
    shots.mkdir()
    for name, page in PAGES.items():
        for label, (width, height) in (("desktop", DESKTOP), ("phone", PHONE)):
            path = shots / f"{name}-{label}.png"
            _run(
                [
                    "--virtual-time-budget=10000",
                    f"--window-size={width},{height}",
                    f"--screenshot={path}",
                    f"{served}/{page}",
                ],
                tmp_path / "profile",
            )
            assert _png_size(path) == (width, height), path
            # A blank page compresses to almost nothing; a rendered one does not.
            assert path.stat().st_size > 10_000, path
    keep = os.environ.get("ZOO_DOCS_SCREENSHOTS")
    if keep:
        shutil.copytree(shots, Path(keep), dirs_exist_ok=True)


@pytest.mark.parametrize("size", [DESKTOP, PHONE], ids=["desktop", "phone"])
@pytest.mark.parametrize("name", list(PAGES))
def test_pages_fit_the_viewport_and_are_not_empty(
    served: str, tmp_path: Path, name: str, size: tuple[int, int]
) -> None:
    width, height = size
    page = PAGES[name].replace("?", "%3F").replace("=", "%3D")
    dom = _dom(f"{served}/zoo-layout-probe.html?w={width}&h={height}&page={page}", tmp_path)
    found = re.search(r'<pre id="result">(.*?)</pre>', dom, re.S)
    assert found and found.group(1), dom[-2000:]
    measured = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert measured["scrollWidth"] <= measured["clientWidth"], measured  # no sideways scroll
    assert measured["mainText"] > 200, measured
    assert measured["title"], measured


class _SearchResults(HTMLParser):
    """The links of Sphinx's result list (``<ul class="search">``), in order."""

    def __init__(self) -> None:
        super().__init__()
        self.depth = 0
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        classes = (dict(attrs).get("class") or "").split()
        if tag == "ul" and "search" in classes:
            self.depth = 1
        elif tag == "ul" and self.depth:
            self.depth += 1
        elif tag == "a" and self.depth:
            link = dict(attrs).get("href") or ""
            self.links.append(link.split("?")[0].split("#")[0])

    def handle_endtag(self, tag: str) -> None:
        if tag == "ul" and self.depth:
            self.depth -= 1


def _search(served: str, query: str, profile: Path) -> list[str]:
    results = _SearchResults()
    results.feed(_dom(f"{served}/search.html?q={query}", profile))
    return list(dict.fromkeys(results.links))


def _is_model_page(link: str) -> bool:
    name = link.removeprefix("models/").removesuffix(".html")
    return link.startswith("models/") and not (
        name in ("index", "matrix") or name.startswith(("ability-", "kind-"))
    )


@pytest.mark.parametrize(
    ("query", "first"),
    [
        # Sphinx alone ties the chat ability page ("chat" in its title) with SmolLM2's page and
        # lists "ability-chat" first, by name.
        ("smollm2+chat", "models/smollm2-135m-instruct.html"),
        ("seed+oss", "models/seed-oss.html"),
        ("seed-coder-8b-base", "models/seed-coder-8b-base.html"),
    ],
)
def test_search_ranks_the_model_page_first(
    served: str, tmp_path: Path, query: str, first: str
) -> None:
    links = _search(served, query, tmp_path)
    assert links and links[0] == first, links
    models = [i for i, link in enumerate(links) if _is_model_page(link)]
    others = [i for i, link in enumerate(links) if not _is_model_page(link)]
    assert others, links  # ability or index pages were found too, and come after
    assert max(models) < min(others), links


def test_options_are_printed_as_typed_never_as_dashes(site: Path) -> None:
    """docutils' smart quotes would turn ``--model`` in running text into "–model"."""
    dash_word = re.compile("(?<![\\w-])[\u2013\u2014][a-z]{2,}")
    pages = sorted(site.rglob("*.html"))
    assert len(pages) > 10
    for page in pages:
        text = page.read_text(encoding="utf-8")
        assert not dash_word.search(text), (page, dash_word.findall(text)[:5])
    cli = (site / "cli.html").read_text(encoding="utf-8")
    assert "--model" in cli
