"""The Running page over real HTTP against a real gateway with real engine processes: its rows
and their JSON, the budget summary, unloading, the engine log streamed as server-sent events,
the key's scope and escaping. (In a real browser: tests/e2e/test_ui_browser.py.)"""

from __future__ import annotations

import html
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.serve.gateway_helpers import Running, running_gateway, serve_files, write_catalog
from zoo.host import GIB, Gpu, Host
from zoo.serve.config import ApiKey
from zoo.serve.types import ModelEntry
from zoo.serve.ui import running as running_page
from zoo.serve.ui.render import duration
from zoo.testing.hubserver import HubServer

from .ui_helpers import Browser

KEY = "running-key-0123456789"
ONLY_B = "running-only-b-0123456"
HOSTILE = 'rp<b onmouseover="1">x</script>'
FAILING = "<i>broken</i>"
EVENTS = {"Accept": "text/event-stream"}
_TEMPLATES = re.compile(r"<template .*?</template>", re.S)


def shown_rows(text: str) -> list[str]:
    """The models of the page's rows (not of the blank row its script clones)."""
    return re.findall(r'<tr data-model="([^"]*)">', _TEMPLATES.sub("", text))


@pytest.fixture
def gateway(tmp_path: Path, hub_server: HubServer) -> Iterator[Running]:
    serve_files(hub_server, ["rp-a", "rp-b"])
    catalog = write_catalog(tmp_path / "specs", {"rp-a": False, "rp-b": False})
    entries = {
        "rp-a": ModelEntry(name="rp-a", family="rp-a", download=True),
        "rp-b": ModelEntry(name="rp-b", family="rp-b", download=True),
        HOSTILE: ModelEntry(name=HOSTILE, family="rp-a", download=True),
        # Its engine exits at once: the load fails with an error that names it.
        FAILING: ModelEntry(
            name=FAILING, family="rp-b", download=True, engine_args=("--mode", "exit")
        ),
    }
    keys = (ApiKey(KEY), ApiKey(ONLY_B, models=("rp-b",)))
    with running_gateway(catalog, entries, keys=keys, keep_alive=600) as served:
        yield served


def logged_in(url: str, key: str = KEY) -> Browser:
    browser = Browser(url)
    assert browser.login(key).status_code == 303
    return browser


def load(browser: Browser, name: str) -> None:
    answer = browser.post("/ui/api/load", {"model": name})
    assert answer.status_code == 200, answer.text


def rows(browser: Browser) -> dict[str, dict[str, Any]]:
    answer = browser.page("/ui/api/running")
    assert answer.status_code == 200, answer.text
    return {r["name"]: r for r in answer.json()["rows"]}


def test_nothing_running_shows_the_empty_state_then_a_loaded_models_row(
    gateway: Running,
) -> None:
    browser = logged_in(gateway.url)
    empty = browser.page("/ui/running")
    assert empty.status_code == 200
    assert shown_rows(empty.text) == []
    assert '<p id="rp-empty" class="panel">Nothing is running.' in empty.text
    assert '<table id="rp-table" class="cards rp-table" hidden>' in empty.text
    # The budget summary is there with nothing in it used.
    assert "0.0 GiB of 8.0 GiB" in empty.text

    load(browser, "rp-a")
    page = browser.page("/ui/running").text
    assert shown_rows(page) == ["rp-a"]
    assert '<p id="rp-empty" class="panel" hidden>' in page
    row = page[page.index('<tr data-model="rp-a">') :]
    row = row[: row.index("</tr>")]
    assert '<span data-field="engine">gw</span>' in row
    assert '<span class="badge" data-field="quantization">Q8_0</span>' in row
    assert 'data-status="ready">ready</span>' in row
    # The plan's memory (the engine's 1 GiB and the weights) of the 8 GiB RAM budget.
    memory = gateway.gateway.backend.plan(gateway.gateway.entries["rp-a"]).memory.total_bytes
    fraction = round(memory / (8 * GIB), 4)
    assert f"{memory / GIB:.1f} GiB of 8.0 GiB RAM" in row
    assert f'aria-valuenow="{round(fraction * 100)}"' in row
    assert f'data-fraction="{fraction}"' in row
    assert "0 in flight, 0 queued" in row
    assert re.search(r'data-field="keep_alive">(9|10) min \d+ s<', row), row
    assert 'aria-label="Unload rp-a">Unload</button>' in row
    assert 'data-action="log" aria-expanded="false">Log</button>' in row
    # The summary counts it against RAM; the page's script and style are served.
    assert f"{memory / GIB:.1f} GiB of 8.0 GiB</span>" in page
    assets = re.findall(r'(?:src|href)="(/ui/static/running\.(?:js|css)\?v=\w+)"', page)
    assert len(assets) == 2
    for asset in assets:
        assert browser.page(asset).status_code == 200


def test_the_json_view_has_each_instance_and_place(gateway: Running) -> None:
    browser = logged_in(gateway.url)
    load(browser, "rp-a")
    answer = browser.page("/ui/api/running")
    assert answer.headers["content-type"] == "application/json"
    view = answer.json()
    (row,) = view["rows"]
    assert {k: row[k] for k in ("name", "status", "engine", "quantization", "place")} == {
        "name": "rp-a",
        "status": "ready",
        "engine": "gw",
        "quantization": "Q8_0",
        "place": "RAM",
    }
    memory = gateway.gateway.backend.plan(gateway.gateway.entries["rp-a"]).memory.total_bytes
    assert GIB < memory < 1.1 * GIB  # the engine's overhead and the weights
    assert row["memory_bytes"] == memory and row["budget_bytes"] == 8 * GIB
    assert row["fraction"] == round(memory / (8 * GIB), 4)
    assert (row["in_flight"], row["queued"], row["last_error"]) == (0, 0, None)
    assert 500 < row["keep_alive_left_s"] <= 600
    assert row["tokens_per_second"] == 0.0
    assert row["show"]["memory"] == f"{memory / GIB:.1f} GiB of 8.0 GiB RAM"
    assert view["places"] == [
        {
            "place": "RAM",
            "used_bytes": memory,
            "budget_bytes": 8 * GIB,
            "fraction": row["fraction"],
            "show": {"place": "RAM", "memory": f"{memory / GIB:.1f} GiB of 8.0 GiB", "detail": ""},
        }
    ]
    assert view["failed"] == []
    # Tokens a model generated count in its tokens/s (over the last minute).
    gateway.gateway.metrics.tokens_used("rp-a", 5, 120)
    assert rows(browser)["rp-a"]["tokens_per_second"] == 2.0
    assert rows(browser)["rp-a"]["show"]["tps"] == "2.0"


def test_unloading_removes_the_row(gateway: Running) -> None:
    browser = logged_in(gateway.url)
    load(browser, "rp-a")
    load(browser, "rp-b")
    assert set(rows(browser)) == {"rp-a", "rp-b"}
    answer = browser.post("/ui/api/unload", {"model": "rp-a"})
    assert answer.status_code == 200 and answer.json()["unloaded"] is True
    assert set(rows(browser)) == {"rp-b"}
    assert shown_rows(browser.page("/ui/running").text) == ["rp-b"]


def read_events(lines: Iterator[str], found: list[tuple[str, str]], until: str) -> None:
    """Collect (event, data) pairs of an event stream into ``found`` until one's data holds
    ``until`` (or the stream ends)."""
    kind = "message"
    for line in lines:
        if line.startswith("event: "):
            kind = line[7:]
        elif line.startswith("data: "):
            found.append((kind, line[6:]))
            kind = "message"
            if until in line:
                return


def test_the_log_streams_its_tail_then_new_lines_until_the_model_leaves(
    gateway: Running,
) -> None:
    browser = logged_in(gateway.url)
    load(browser, "rp-a")
    (state,) = [s for s in gateway.gateway.scheduler.snapshot() if s.name == "rp-a"]
    assert state.instance_id is not None
    path = gateway.gateway.backend.log_path(state.instance_id)
    assert path is not None
    found: list[tuple[str, str]] = []
    with browser.client.stream("GET", "/ui/api/logs/rp-a", headers=EVENTS) as answer:
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/event-stream")
        lines = answer.iter_lines()
        # The engine's first line, from the tail.
        read_events(lines, found, "gateway engine up: rp-a")
        assert found[0] == ("reset", "the log's last lines follow")
        assert ("message", next(d for _, d in found if "gateway engine up" in d)) in found
        # A line written now arrives (colour codes dropped; markup stays text for the page).
        with path.open("a") as log:
            log.write("\x1b[31mnew <b>line</b>\x1b[0m\r\n")
        read_events(lines, found, "new <b>line</b>")
        assert found[-1] == ("message", "new <b>line</b>")

        # Unloading ends the stream with an `end` event (the page then closes it).
        done = threading.Thread(target=browser.post, args=("/ui/api/unload", {"model": "rp-a"}))
        done.start()
        read_events(lines, found, "the log ends here")
        done.join(timeout=30)
        assert found[-1] == ("end", "rp-a stopped: the log ends here")


def test_a_reconnecting_log_resumes_and_a_stream_ends_after_a_while(
    gateway: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    browser = logged_in(gateway.url)
    load(browser, "rp-a")
    (state,) = [s for s in gateway.gateway.scheduler.snapshot() if s.name == "rp-a"]
    assert state.instance_id is not None
    path = gateway.gateway.backend.log_path(state.instance_id)
    assert path is not None
    monkeypatch.setattr(running_page, "STREAM_S", 1.0)
    found: list[tuple[str, str]] = []
    # A stream ends by itself after STREAM_S, with no `end` (the browser reconnects), and
    # its ids say how far it read.
    with browser.client.stream("GET", "/ui/api/logs/rp-a", headers=EVENTS) as answer:
        raw = list(answer.iter_lines())
    ids = [line[4:] for line in raw if line.startswith("id: ")]
    assert ids and ids[-1] == f"{state.instance_id}:{path.stat().st_size}"
    assert not any(line == "event: end" for line in raw)

    # The reconnect sends that id back: the stream resumes there, no reset and no tail.
    with path.open("a") as log:
        log.write("written while away\n")
    resumed = {**EVENTS, "Last-Event-ID": ids[-1]}
    with browser.client.stream("GET", "/ui/api/logs/rp-a", headers=resumed) as answer:
        read_events(answer.iter_lines(), found, "written while away")
    assert found[0] == ("mark", "") and found[-1] == ("message", "written while away")
    assert [kind for kind, _ in found].count("reset") == 0
    # Another instance's id (the model was reloaded): from the tail again.
    found.clear()
    other = {**EVENTS, "Last-Event-ID": "someone-else:5"}
    with browser.client.stream("GET", "/ui/api/logs/rp-a", headers=other) as answer:
        read_events(answer.iter_lines(), found, "written while away")
    assert found[0] == ("reset", "the log's last lines follow")
    assert running_page.resume_offset("x:12", "x") == 12
    assert running_page.resume_offset("x:-1", "x") is None
    assert running_page.resume_offset("12", "x") is None


def test_the_log_is_refused_when_not_running_unknown_or_out_of_scope(gateway: Running) -> None:
    browser = logged_in(gateway.url)
    load(browser, "rp-a")
    scoped = logged_in(gateway.url, ONLY_B)
    for who, name in ((browser, "rp-b"), (browser, "nothing"), (scoped, "rp-a")):
        answer = who.page(f"/ui/api/logs/{name}")
        assert answer.status_code == 404, (name, answer.text)
        assert answer.json()["error"]["code"] == "model_not_found"
    # The path is the backend's, never the request's.
    traversal = browser.page("/ui/api/logs/..%2F..%2Fetc%2Fpasswd")
    assert traversal.status_code == 404


def test_a_scoped_key_sees_only_its_models(gateway: Running) -> None:
    browser = logged_in(gateway.url)
    load(browser, "rp-a")
    load(browser, "rp-b")
    scoped = logged_in(gateway.url, ONLY_B)
    assert set(rows(scoped)) == {"rp-b"}
    page = scoped.page("/ui/running").text
    assert shown_rows(page) == ["rp-b"]
    assert '"rp-a"' not in page and ">rp-a<" not in page
    # The machine's budget counts both (a fact of the machine, with no names).
    assert "2.0 GiB of 8.0 GiB" in page
    assert set(rows(browser)) == {"rp-a", "rp-b"}


def test_markup_in_a_name_or_an_error_is_text(gateway: Running) -> None:
    browser = logged_in(gateway.url)
    load(browser, HOSTILE)
    failed = browser.post("/ui/api/load", {"model": FAILING})
    assert failed.status_code == 503
    page = browser.page("/ui/running").text
    assert HOSTILE not in page and FAILING not in page
    assert "<b onmouseover" not in page and "<i>broken" not in page
    escaped = html.escape(HOSTILE).replace("&quot;", "&#34;")
    assert f'<tr data-model="{escaped}">' in page
    assert f'aria-label="Unload {escaped}"' in page
    # The failed load is listed with its error, escaped.
    assert '<section id="rp-failed-section" class="rp-failed" aria-labelledby' in page
    section = page[page.index('id="rp-failed-section"') :]
    assert html.escape(FAILING).replace("&#x27;", "&#39;") + " failed to start" in section
    view = browser.page("/ui/api/running").json()
    assert [r["name"] for r in view["rows"]] == [HOSTILE]
    assert [f["name"] for f in view["failed"]] == [FAILING]
    assert view["failed"][0]["show"]["error"].startswith(f"{FAILING} failed to start")


def test_the_summary_shows_the_places_this_machine_has() -> None:
    budgets = {"RAM": 8 * GIB, "GPU memory": 70 * GIB, "unified memory": 6 * GIB}
    cpu_only = Host(os="linux", arch="x86_64", ram_bytes=10 * GIB)
    assert [p["place"] for p in running_page.places([], budgets, cpu_only)] == ["RAM"]
    gpus = (Gpu("NVIDIA H100", 80 * GIB), Gpu("NVIDIA H100", 80 * GIB))
    cuda = Host(os="linux", arch="x86_64", ram_bytes=10 * GIB, gpus=gpus)
    shown = {p["place"]: p for p in running_page.places([], budgets, cuda)}
    assert list(shown) == ["RAM", "GPU memory"]
    assert shown["GPU memory"]["show"] == {
        "place": "GPU memory",
        "memory": "0.0 GiB of 70.0 GiB",
        "detail": "NVIDIA H100 (80.0 GiB), NVIDIA H100 (80.0 GiB)",
    }


def test_log_lines_are_split_cleaned_and_bounded() -> None:
    lines, rest = running_page.split_lines(b"one\r\n\x1b[1mtwo\x1b[0m\rthree\n\nfour")
    assert (lines, rest) == (["one", "two", "three"], b"four")
    long, rest = running_page.split_lines(b"x" * (running_page.MAX_LINE * 2 + 5))
    assert long == ["x" * running_page.MAX_LINE] * 2 and rest == b"xxxxx"
    assert duration(3725) == "1 h 2 min" and duration(59.9) == "59 s"


@pytest.mark.slow  # a real browser (Debian chromium through Playwright)
def test_in_a_browser_rows_follow_the_gateway_and_the_log_is_live_text(
    gateway: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    from playwright.sync_api import sync_playwright

    monkeypatch.setattr(running_page, "STREAM_S", 1.0)  # the page reconnects and resumes

    problems: list[str] = []
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=["--no-sandbox"]
        )
        try:
            page = chromium.new_page(viewport={"width": 375, "height": 800})
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda error: problems.append(str(error)))
            page.on("dialog", lambda dialog: dialog.accept())  # "Unload rp-a?"
            page.goto(gateway.url + "/ui/login?next=/ui/running")
            page.fill("input[name=key]", KEY)
            page.keyboard.press("Enter")
            page.wait_for_url(lambda url: urlsplit(url).path == "/ui/running")
            assert page.locator("#rp-empty").is_visible()

            # A model loaded meanwhile gets its row without a reload, its meter drawn.
            browser = logged_in(gateway.url)
            load(browser, "rp-a")
            row = page.locator('main tr[data-model="rp-a"]')
            row.wait_for(timeout=10_000)
            assert not page.locator("#rp-empty").is_visible()
            bar = row.locator(".meter > span")
            assert bar.evaluate("bar => bar.style.width") == "13%"

            # The log panel: the engine's lines, then one written now, as text.
            row.get_by_role("button", name="Log").click()
            log = page.locator("pre.rp-log")
            log.wait_for()
            page.wait_for_function(
                "() => document.querySelector('pre.rp-log').textContent.includes('engine up')"
            )
            (state,) = [s for s in gateway.gateway.scheduler.snapshot() if s.name == "rp-a"]
            assert state.instance_id is not None
            path = gateway.gateway.backend.log_path(state.instance_id)
            assert path is not None
            with path.open("a") as out:
                out.write("<b id=injected>bold?</b>\n")
            page.wait_for_function(
                "() => document.querySelector('pre.rp-log').textContent.includes('bold?</b>')"
            )
            assert page.locator("#injected").count() == 0
            page.wait_for_timeout(2500)  # streams ended and resumed meanwhile: no line twice
            assert log.inner_text().count("bold?") == 1
            assert log.inner_text().count("gateway engine up") == 1
            assert (
                row.get_by_role("button", name="Hide log").get_attribute("aria-expanded") == "true"
            )
            # Narrow: nothing wider than the window.
            overflow = "() => document.documentElement.scrollWidth > window.innerWidth"
            assert page.evaluate(overflow) is False

            # Unload from the page (keyboard): the row and its log leave without a reload.
            row.get_by_role("button", name="Unload rp-a").focus()
            page.keyboard.press("Enter")
            row.wait_for(state="detached", timeout=30_000)
            assert log.count() == 0
            assert page.locator("#rp-empty").is_visible()
            assert page.locator("#zoo-status").inner_text() == "rp-a is unloaded."
        finally:
            chromium.close()
    assert problems == []
