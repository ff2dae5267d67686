"""The Sphinx site: ``zoo docs build`` is warning-free, and its search finds seed-oss in a real
headless Chromium (Debian's ``chromium``; ``make system-deps`` installs it)."""

from __future__ import annotations

import functools
import http.server
import shutil
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
)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repository's docs/ built with the small fixture catalog (the full catalog is built
    by ``make test``'s docs step)."""
    out = tmp_path_factory.mktemp("site")
    catalog = Path(__file__).parent / "data" / "catalog"
    with pytest.raises(SystemExit) as exit_info:
        main(["docs", "build", "--out", str(out), "--catalog", str(catalog)])
    assert exit_info.value.code in (0, None)
    return out


def test_build_writes_every_page(site: Path) -> None:
    for page in (
        "index.html",
        "getting-started.html",
        "spec-format.html",
        "cli.html",
        "plugins.html",
        "models/index.html",
        "models/matrix.html",
        "models/seed-oss.html",
        "searchindex.js",
    ):
        assert (site / page).is_file(), page
    seed = (site / "models/seed-oss.html").read_text(encoding="utf-8")
    assert "https://huggingface.co/QuantTrio/Seed-OSS-36B-Instruct-GPTQ-Int4" in seed
    assert "{quantization}" not in seed


@pytest.fixture
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


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


class _SearchResults(HTMLParser):
    """Collects the links inside Sphinx's result list (``<ul class="search">``)."""

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
            self.links.append(dict(attrs).get("href") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "ul" and self.depth:
            self.depth -= 1


def test_search_for_seed_finds_the_seed_oss_page(served: str, tmp_path: Path) -> None:
    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is missing: run `make system-deps`"
    dom = subprocess.run(
        [
            chromium,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={tmp_path / 'profile'}",
            # Virtual time lets the page's scripts load the index and search before the dump.
            "--virtual-time-budget=15000",
            "--dump-dom",
            f"{served}/search.html?q=seed",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    results = _SearchResults()
    results.feed(dom)
    pages = {link.split("?")[0].split("#")[0] for link in results.links}
    assert "models/seed-oss.html" in pages, results.links
