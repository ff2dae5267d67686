"""The web UI's models page with the full catalog, in a real browser: time to first paint, to
interactive, and what the browser downloads for it.

A real `zoo serve` (its own process, the default catalog in specs/ and the plugins', one API key
from an environment variable, nothing loaded: the page is the catalog) and Debian's Chromium
driven by Playwright (headless, the system executable: no browser download). The bench logs in
once through the login form, then opens each page ``--runs`` times, each in a new browser
context (empty cache, the session cookie only), pages alternating: the models page (``/``) and
the playground (``/ui/playground``) beside it for scale. Per load, from the page's own
Performance API (times from navigation start):

- first contentful paint (the ``paint`` entry);
- DOMContentLoaded (``domContentLoadedEventEnd``) and load (``loadEventEnd``);
- interactive: when the page's script has wired its controls, which models.js marks by setting
  ``document.documentElement.dataset.ready = "1"`` (seen by a MutationObserver installed before
  the page's own scripts). A page that sets no mark counts its load event instead, and the
  report says which was used;
- bytes: the document and every resource entry, split into HTML, CSS, JS and data (fetches),
  as transferred (headers included) and as bodies; the count of requests the browser sent
  (Playwright's request events) must equal the entries counted, or the report says so.

    .venv/bin/python bench/ui_page.py [--runs 10] [--no-record]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

from gateway import Procs, percentile, rss_mib, wait_answer  # noqa: E402
from results import record  # noqa: E402
from ui_browser import launch  # noqa: E402  (the browser tests' Chromium, started one way)

HEADING = "## Web UI (zoo serve)"
KEY_ENV = "ZOO_UI_BENCH_KEY"
CONFIG = f"api_keys:\n  - key_env: {KEY_ENV}\n"
# The models page first; the other pages beside it for scale.
PAGES = {
    "models": "/",
    "running": "/ui/running",
    "playground": "/ui/playground",
    "metrics": "/ui/metrics",
}
READY_TIMEOUT_MS = 15_000

# Installed in every page before its own scripts run (Playwright's init scripts are not page
# scripts, so the UI's CSP does not block them): notes when first contentful paint happened
# and when the page marked itself interactive.
OBSERVE = """(() => {
  const seen = (window.__zooBench = {ready: null});
  const mark = () => {
    const root = document.documentElement;
    if (seen.ready === null && root && root.dataset.ready === "1") seen.ready = performance.now();
  };
  new MutationObserver(mark).observe(document, {
    subtree: true, childList: true, attributes: true, attributeFilter: ["data-ready"],
  });
  mark();
})();"""

# The timings and every byte the load fetched, from the page's Performance API.
MEASURE = """() => {
  const nav = performance.getEntriesByType("navigation")[0];
  const paint = performance.getEntriesByType("paint")
    .find((e) => e.name === "first-contentful-paint");
  const marked = [...document.querySelectorAll("main [data-family]")];
  const rows = marked.length ? marked : [...document.querySelectorAll("main table tbody tr")];
  return {
    fcp: paint ? paint.startTime : null,
    ttfb: nav.responseStart,
    dcl: nav.domContentLoadedEventEnd,
    load: nav.loadEventEnd,
    ready: window.__zooBench.ready,
    hasModelsJs: [...document.scripts].some((s) => /\\/models\\.js(\\?|$)/.test(s.src)),
    rows: rows.length,
    visibleRows: rows.filter((r) => r.getClientRects().length > 0).length,
    entries: [
      {name: nav.name, type: "navigation", transfer: nav.transferSize, body: nav.encodedBodySize,
       decoded: nav.decodedBodySize},
      ...performance.getEntriesByType("resource").map((e) => ({
        name: e.name, type: e.initiatorType, transfer: e.transferSize,
        body: e.encodedBodySize, decoded: e.decodedBodySize,
      })),
    ],
  };
}"""

KINDS = ("HTML", "CSS", "JS", "data")


def kind_of(entry: dict[str, Any]) -> str:
    if entry["type"] == "navigation":
        return "HTML"
    path = urlsplit(entry["name"]).path
    if path.endswith(".css"):
        return "CSS"
    if path.endswith((".js", ".mjs")):
        return "JS"
    return "data"


@dataclass
class Load:
    """One page load in a fresh context."""

    fcp: float
    ttfb: float
    dcl: float
    load: float
    interactive: float
    marked: bool  # interactive is the page's own ready mark (False: its load event)
    rows: int
    visible_rows: int
    transfer: dict[str, int]
    body: dict[str, int]
    requests: int  # what the browser sent (Playwright's events)
    entries: int  # what the Performance API counted
    errors: list[str]  # console errors (a CSP violation is one) and uncaught exceptions


@dataclass
class Page:
    path: str
    loads: list[Load] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # console errors, a missing ready mark

    def values(self, pick: Callable[[Load], float]) -> list[float]:
        return [pick(load) for load in self.loads]


def open_once(browser: Any, url: str, path: str, cookies: list[dict[str, Any]]) -> Load:
    """``path`` in a new context (nothing cached) that holds only the session cookie."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        context.add_cookies(cookies)
        context.add_init_script(OBSERVE)
        page = context.new_page()
        sent: list[str] = []
        page.on("request", lambda request: sent.append(request.url))
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda error: errors.append(f"uncaught: {error}"))
        answer = page.goto(url + path, wait_until="load")
        if answer is None or answer.status != 200 or "/ui/login" in page.url:
            status = answer.status if answer else None
            raise RuntimeError(f"GET {path}: {status} at {page.url} (not logged in?)")
        marked = page.evaluate("() => window.__zooBench.ready !== null")
        if not marked and page.evaluate(MEASURE)["hasModelsJs"]:
            # models.js is on the page: it sets the mark once the filters work. If it never
            # does, the load counts its load event and the report says so.
            with contextlib.suppress(PlaywrightTimeout):
                page.wait_for_function(
                    "() => window.__zooBench.ready !== null", timeout=READY_TIMEOUT_MS
                )
        page.wait_for_function("() => performance.getEntriesByType('navigation')[0].loadEventEnd")
        got = page.evaluate(MEASURE)
    finally:
        context.close()
    transfer = dict.fromkeys(KINDS, 0)
    body = dict.fromkeys(KINDS, 0)
    for entry in got["entries"]:
        transfer[kind_of(entry)] += int(entry["transfer"])
        body[kind_of(entry)] += int(entry["body"])
    return Load(
        fcp=got["fcp"] if got["fcp"] is not None else float("nan"),
        ttfb=got["ttfb"],
        dcl=got["dcl"],
        load=got["load"],
        interactive=got["ready"] if got["ready"] is not None else got["load"],
        marked=got["ready"] is not None,
        rows=got["rows"],
        visible_rows=got["visibleRows"],
        transfer=transfer,
        body=body,
        requests=len(sent),
        entries=len(got["entries"]),
        errors=errors,
    )


def log_in(browser: Any, url: str, key: str) -> list[dict[str, Any]]:
    """The session cookie that logging in through the form gives, as a user does."""
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(url + "/")
        if "/ui/login" not in page.url:
            raise RuntimeError(f"/ without a session went to {page.url}, not the login form")
        page.fill("#key", key)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_load_state()
        if "/ui/login" in page.url:
            raise RuntimeError("the login form refused the key")
        cookies: list[dict[str, Any]] = context.cookies()
    finally:
        context.close()
    if not any(c["name"] == "zoo_session" for c in cookies):
        raise RuntimeError(f"no session cookie after logging in: {cookies}")
    return cookies


def catalog_families() -> int:
    from zoo.registry import catalog_with_plugins

    return len(list(catalog_with_plugins()))


# --- the report ------------------------------------------------------------------------------


def ms(values: list[float]) -> str:
    """Median / p90 in milliseconds."""
    return f"{statistics.median(values):.0f} / {percentile(values, 0.9):.0f}"


def kib(n: float) -> str:
    return f"{n / 1024:.1f}"


def page_table(pages: dict[str, Page]) -> str:
    names = list(pages)
    lines = [
        "| ms from navigation start, median / p90 | " + " | ".join(names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    rows: list[tuple[str, Callable[[Load], float]]] = [
        ("HTML first byte (server render)", lambda x: x.ttfb),
        ("first contentful paint", lambda x: x.fcp),
        ("DOMContentLoaded", lambda x: x.dcl),
        ("load event", lambda x: x.load),
        ("**interactive**", lambda x: x.interactive),
    ]
    for label, pick in rows:
        cells = " | ".join(ms(p.values(pick)) for p in pages.values())
        lines.append(f"| {label} | {cells} |")
    how = []
    for p in pages.values():
        marked = sum(load.marked for load in p.loads)
        if marked == len(p.loads):
            how.append("ready mark")
        elif marked == 0:
            how.append("load event")
        else:
            how.append(f"ready mark {marked}/{len(p.loads)}")
    lines.append("| interactive counted as | " + " | ".join(how) + " |")
    return "\n".join(lines) + "\n"


def bytes_table(pages: dict[str, Page]) -> str:
    """Bytes per load (identical in every run of a page: the median load's figures)."""
    names = list(pages)
    lines = [
        "| KiB per load, transferred (bodies) | " + " | ".join(names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    firsts = {n: p.loads[len(p.loads) // 2] for n, p in pages.items()}
    for kind in (*KINDS, "total"):

        def cell(load: Load, kind: str = kind) -> str:
            if kind == "total":
                t, b = sum(load.transfer.values()), sum(load.body.values())
                return f"**{kib(t)}** ({kib(b)})"
            return f"{kib(load.transfer[kind])} ({kib(load.body[kind])})"

        lines.append(f"| {kind} | " + " | ".join(cell(firsts[n]) for n in names) + " |")
    lines.append("| requests | " + " | ".join(str(firsts[n].requests) for n in names) + " |")
    return "\n".join(lines) + "\n"


def ratios(pages: dict[str, Page]) -> str:
    """The models page's medians over each other page's."""

    def total(load: Load) -> float:
        return float(sum(load.transfer.values()))

    models = pages["models"]
    lines = [
        "| models page / | first contentful paint | interactive | bytes transferred |",
        "|---|---:|---:|---:|",
    ]
    for name, other in pages.items():
        if other is models:
            continue
        cells = []
        for pick in (lambda x: x.fcp, lambda x: x.interactive, total):
            mine = statistics.median(models.values(pick))
            cells.append(f"{mine / statistics.median(other.values(pick)):.2f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def compressed_html(url: str, paths: dict[str, str], cookies: list[dict[str, Any]]) -> str:
    """What each page's HTML would weigh compressed (the gateway sends it uncompressed)."""
    import gzip

    import httpx

    jar = {c["name"]: c["value"] for c in cookies}
    sizes = []
    with httpx.Client(trust_env=False, timeout=60, cookies=jar) as client:
        for name, path in paths.items():
            answer = client.get(url + path, headers={"Accept": "text/html"})
            answer.raise_for_status()
            sizes.append(
                f"{name} {kib(len(answer.content))} KiB, gzip -6 "
                f"{kib(len(gzip.compress(answer.content, 6)))} KiB"
            )
    return "; ".join(sizes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="loads per page (each cold)")
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    from zoo.runtime import process

    def say(line: str) -> None:
        print(line, flush=True)

    home = Path(tempfile.mkdtemp(prefix="zoo-bench-ui-"))
    key = secrets.token_urlsafe(24)
    env = dict(os.environ, ZOO_HOME=str(home), **{KEY_ENV: key})
    env.pop("ZOO_API_KEY", None)  # the config's key is the only one
    os.environ["ZOO_HOME"] = str(home)
    config = home / "gateway.yaml"
    config.write_text(CONFIG)
    families = catalog_families()
    port = process.free_port()
    url = f"http://127.0.0.1:{port}"
    procs = Procs(home)
    pages = {name: Page(path) for name, path in PAGES.items()}
    load_before = os.getloadavg()
    began = time.monotonic()
    try:
        argv = [sys.executable, "-m", "zoo", "serve", "--port", str(port)]
        served = procs.start("zoo-serve", [*argv, "--config", str(config)], env=env)
        up_s = wait_answer(url, "/health", {}, timeout=60)
        idle_rss = rss_mib(served.pid)
        with sync_playwright() as playwright:
            browser = launch(playwright)
            try:
                cookies = log_in(browser, url, key)
                # The first load after start (templates compiled, the catalog's rows planned
                # for the first time): reported apart, not in the runs.
                first = open_once(browser, url, PAGES["models"], cookies)
                say(f"first models page after start: interactive {first.interactive:.0f} ms")
                for path in list(PAGES.values())[1:]:
                    open_once(browser, url, path, cookies)
                for i in range(args.runs):
                    order = list(pages.items()) if i % 2 == 0 else list(pages.items())[::-1]
                    for name, p in order:
                        load = open_once(browser, url, p.path, cookies)
                        p.loads.append(load)
                        p.problems.extend(e for e in load.errors if e not in p.problems)
                        say(
                            f"run {i + 1} {name}: fcp {load.fcp:.0f} ms, interactive "
                            f"{load.interactive:.0f} ms ({'mark' if load.marked else 'load'}), "
                            f"{kib(sum(load.transfer.values()))} KiB"
                        )
            finally:
                browser.close()
        compressed = compressed_html(url, PAGES, cookies)
        served_rss = rss_mib(served.pid)
    finally:
        procs.stop_all()
    elapsed = time.monotonic() - began
    load_after = os.getloadavg()
    models = pages["models"]
    for p in pages.values():
        if any(load.requests != load.entries for load in p.loads):
            p.problems.append("the Performance API missed requests the browser sent")
    if not all(load.marked for load in models.loads):
        models.problems.append(
            "the models page set no ready mark (documentElement.dataset.ready): interactive "
            "is its load event"
        )
    rows = {(load.rows, load.visible_rows) for load in models.loads}
    if {r for r, _ in rows} == {0}:
        models.problems.append("the page showed no catalog rows")
    row_text = ", ".join(f"{r} rows ({v} visible)" for r, v in sorted(rows))
    report = (
        f"### Web UI models page, {time.strftime('%Y-%m-%d %H:%M')}\n\n"
        f"`.venv/bin/python bench/ui_page.py --runs {args.runs}` on {platform.node()} "
        f"({platform.machine()}, {os.cpu_count()} cores shared by the browser and the gateway, "
        f"Python {platform.python_version()}), load average {load_before[0]:.1f} before, "
        f"{load_after[0]:.1f} after ({elapsed:.0f} s). A real `zoo serve --config` (up in "
        f"{up_s:.2f} s) with one API key, the full catalog ({families} families) and nothing "
        f"loaded; headless Debian Chromium through Playwright, logged in once through the "
        f"form, then each page loaded {args.runs} times in a new context (empty cache), the "
        f"pages in turn (the order reversed every other round), 1280x800. Interactive: the "
        f"models page's ready mark (models.js sets `data-ready` once its filters work), the "
        f"load event for pages that set none. The models page listed {row_text}, "
        f"counted as `main [data-family]` (else table rows); the other pages are as they are with "
        f"nothing loaded (the playground lists what is downloaded on this machine).\n\n"
        f"{page_table(pages)}\n"
        f"{bytes_table(pages)}\n"
        f"{ratios(pages)}\n"
        f"HTML as sent and compressed (the gateway does not compress): {compressed}.\n\n"
        f"First models page after the gateway started (templates compiled, rows planned once): "
        f"first byte {first.ttfb:.0f} ms, interactive {first.interactive:.0f} ms. `zoo serve` "
        f"RSS {idle_rss:.1f} MiB idle after start, {served_rss:.1f} MiB after the loads.\n"
    )
    notes = [f"{name}: {problem}" for name, p in pages.items() for problem in p.problems]
    if notes:
        report += "\nNotes: " + "; ".join(notes) + ".\n"
    print(report)
    if not args.no_record:
        record(HEADING, report)


if __name__ == "__main__":
    main()
