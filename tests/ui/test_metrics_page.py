"""The Metrics page over real HTTP against a real gateway: after real requests through it,
the totals, the plots (inline SVG), the table of numbers, the fragment the page's script swaps
in and the JSON series all show them; a bad window is one clear 400; the page needs a login
when keys are set; a scoped key sees the gateway-wide sums /metrics gives it, no model names."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.serve.gateway_helpers import Running, running_gateway, serve_files, write_catalog
from zoo.serve.config import ApiKey
from zoo.serve.types import ModelEntry
from zoo.testing.hubserver import HubServer

from .ui_helpers import Browser

KEY = "metrics-key-0123456789abc"
SCOPED = "metrics-scoped-0123456789"
CHAT = "metered-chat"
MISSING = "metered-missing"  # in the catalog, but its file is on no hub: its load fails


@pytest.fixture
def running(tmp_path: Path, hub_server: HubServer) -> Iterator[Running]:
    serve_files(hub_server, [CHAT])
    catalog = write_catalog(tmp_path / "specs", {CHAT: False, MISSING: False})
    entries = {n: ModelEntry(name=n, family=n, download=True) for n in (CHAT, MISSING)}
    keys = (ApiKey(KEY), ApiKey(SCOPED, models=(CHAT,)))
    with running_gateway(catalog, entries, keys=keys) as gateway:
        yield gateway


def logged_in(url: str, key: str = KEY) -> Browser:
    browser = Browser(url)
    assert browser.login(key).status_code == 303
    return browser


def chat(running: Running, model: str = CHAT) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    return httpx.post(
        running.v1 + "/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {KEY}"},
        timeout=60,
        trust_env=False,
    )


def total(text: str, name: str) -> int:
    found = re.search(rf'<dd data-total="{name}"[^>]*>(\d+)</dd>', text)
    assert found is not None, text[:2000]
    return int(found.group(1))


def svg(text: str, plot: str) -> str:
    found = re.search(rf'<figure class="mx-plot" id="mx-plot-{plot}">(.*?)</figure>', text, re.S)
    assert found is not None, f"no {plot} plot in {text[:2000]}"
    return found.group(1)


def test_before_any_request_the_page_says_so(running: Running) -> None:
    answer = logged_in(running.url).page("/ui/metrics")
    assert answer.status_code == 200
    assert 'aria-current="page">Metrics' in answer.text
    assert 'id="mx-empty"' in answer.text and "No requests yet" in answer.text
    assert total(answer.text, "requests") == 0
    assert "<svg" not in answer.text
    # The window form is there all the same (a plain GET form: it works without script).
    assert '<form method="get" action="/ui/metrics"' in answer.text
    assert re.search(r'<option value="15m" selected>', answer.text)


def test_real_requests_show_in_the_totals_plots_and_table(running: Running) -> None:
    for _ in range(3):
        assert chat(running).status_code == 200
    failed = chat(running, MISSING)
    assert failed.status_code >= 400
    browser = logged_in(running.url)
    answer = browser.page("/ui/metrics?window=5m")
    assert answer.status_code == 200, answer.text
    text = answer.text
    assert "No requests yet" not in text
    # Totals from the counters /metrics exports: 4 requests, 1 of them an error; the test
    # engine reports 3 prompt and 5 completion tokens per answer.
    assert total(text, "requests") == 4 and total(text, "errors") == 1
    assert total(text, "tokens_in") == 9 and total(text, "tokens_out") == 15
    scraped = httpx.get(
        running.url + "/metrics", headers={"Authorization": f"Bearer {KEY}"}, trust_env=False
    ).text
    counted = sum(
        float(line.rsplit(" ", 1)[1])
        for line in scraped.splitlines()
        if line.startswith("zoo_requests_total{")
    )
    assert counted == 4
    # The window's summary and the chosen window in the form.
    assert "4 requests, 1 error;" in text
    assert '<option value="5m" selected>' in text
    # Three plots, each an accessible image with a title and a description of its numbers.
    requests = svg(text, "requests")
    assert 'role="img"' in requests and '<title id="mx-requests-title">' in requests
    # The requests happened within seconds: one bucket holds them all (rarely two).
    bars = re.findall(r'<rect class="mx-requests"[^>]*><title>([^<]*)</title>', requests)
    assert 1 <= len(bars) <= 2
    most = 4 if len(bars) == 1 else r"[123]"
    assert re.search(rf"4 requests, 1 error; at most {most} in 10 s\.", requests), requests
    counts = [re.search(r"(\d+) requests?,", bar) for bar in bars]
    assert sum(int(c.group(1)) for c in counts if c is not None) == 4
    assert re.search(r'<rect class="mx-errors"', requests)
    # Time axis of a 5 min window: now back to −5 min (a real minus sign).
    ticks = re.findall(r'<text x="[\d.]+" y="[\d.]+" text-anchor="\w+">([^<]+)</text>', requests)
    assert ticks == ["now", "−1 min", "−2 min", "−3 min", "−4 min", "−5 min"]
    latency = svg(text, "latency")
    assert (
        'class="mx-line mx-latency-mean"' in latency or 'class="mx-dot mx-latency-mean"' in latency
    )
    assert "Latency over the last 5 min: mean" in latency
    tokens = svg(text, "tokens")
    assert "(15 out, 9 in)" in tokens
    assert re.search(r'<path class="mx-line mx-tokens-out" d="M[^"]+"', tokens)
    # The numbers as a table: the busy buckets' rows add up to the totals.
    rows = re.findall(
        r'<td class="num" data-label="Requests">(\d+)</td><td class="num" data-label="Errors">'
        r"(\d+)</td>",
        text,
    )
    assert sum(int(r) for r, _ in rows) == 4 and sum(int(e) for _, e in rows) == 1
    # The page's own script and style are served (hashed URLs, from this origin).
    assets = re.findall(r'(?:src|href)="(/ui/static/metrics\.(?:js|css)\?v=\w+)"', text)
    assert len(assets) == 2
    for asset in assets:
        assert browser.page(asset).status_code == 200


def test_the_fragment_and_the_json_follow_the_requests(running: Running) -> None:
    browser = logged_in(running.url)
    empty = browser.page("/ui/metrics/plots?window=1h")
    assert empty.status_code == 200 and "data-metrics-fragment" in empty.text
    assert "No requests yet" in empty.text and "<html" not in empty.text
    assert chat(running).status_code == 200
    assert chat(running).status_code == 200
    fragment = browser.page("/ui/metrics/plots?window=1h")
    assert fragment.status_code == 200
    assert fragment.headers["content-security-policy"].startswith("default-src 'none'")
    assert total(fragment.text, "requests") == 2
    ticks = re.findall(r'text-anchor="\w+">([^<]+)</text>', svg(fragment.text, "requests"))
    assert ticks[0] == "now" and ticks[-1] == "−1 h"
    assert 'data-window="1h"' in fragment.text

    data: dict[str, Any] = browser.client.get("/ui/api/metrics?window=15m").json()
    assert data["window"] == "15m" and data["window_s"] == 900 and data["bucket_s"] == 10
    assert len(data["buckets"]) == 90
    assert sum(b["requests"] for b in data["buckets"]) == 2
    assert sum(b["tokens_out"] for b in data["buckets"]) == 10
    busy = [b for b in data["buckets"] if b["requests"]]
    assert all(b["latency_mean"] > 0 and b["latency_max"] >= b["latency_mean"] for b in busy)
    assert sum(b["tokens_per_second"] for b in data["buckets"]) == pytest.approx(10 / 10)
    assert data["totals"] == data["totals"] | {"requests": 2, "errors": 0, "tokens_out": 10}
    assert data["summary"]["tokens_per_second"] == pytest.approx(10 / 900)
    # An API client with its key reads the same JSON.
    api = httpx.get(
        running.url + "/ui/api/metrics",
        headers={"Authorization": f"Bearer {KEY}"},
        trust_env=False,
    )
    assert api.status_code == 200 and api.json()["window"] == "15m"


@pytest.mark.parametrize("path", ["/ui/metrics/plots", "/ui/api/metrics"])
def test_a_bad_window_is_one_clear_400(running: Running, path: str) -> None:
    browser = logged_in(running.url)
    answer = browser.page(f"{path}?window=2d")
    assert answer.status_code == 400
    message = answer.json()["error"]["message"]
    assert message == "window must be one of 5m, 15m, 1h, not '2d'"
    long = browser.page(f"{path}?window={'x' * 500}")
    assert long.status_code == 400 and len(long.json()["error"]["message"]) < 120


def test_a_bad_window_on_the_page_is_a_page_with_the_line(running: Running) -> None:
    answer = logged_in(running.url).page("/ui/metrics?window=<b>x</b>")
    assert answer.status_code == 400
    assert answer.headers["content-type"].startswith("text/html")
    assert "window must be one of 5m, 15m, 1h, not &#39;&lt;b&gt;x&lt;/b&gt;&#39;" in answer.text
    assert "<b>x</b>" not in answer.text
    assert '<form method="get" action="/ui/metrics"' in answer.text


def test_the_page_needs_a_login_when_keys_are_set(running: Running) -> None:
    stranger = Browser(running.url)
    for path in ("/ui/metrics", "/ui/metrics/plots?window=5m", "/ui/api/metrics"):
        answer = stranger.client.get(path, follow_redirects=False)
        assert answer.status_code == 303, path
        assert answer.headers["location"].startswith("/ui/login?next=")
    wrong = httpx.get(
        running.url + "/ui/api/metrics",
        headers={"Authorization": "Bearer not-a-key"},
        trust_env=False,
    )
    assert wrong.status_code == 401
    assert logged_in(running.url).page("/ui/metrics").status_code == 200


def test_a_scoped_key_sees_the_sums_metrics_gives_it_and_no_model_names(
    running: Running,
) -> None:
    assert chat(running).status_code == 200
    assert chat(running, MISSING).status_code >= 400
    browser = logged_in(running.url, SCOPED)
    text = browser.page("/ui/metrics").text
    # /metrics answers a scoped key with the gateway's counters, every model's: so does this.
    scraped = httpx.get(
        running.url + "/metrics", headers={"Authorization": f"Bearer {SCOPED}"}, trust_env=False
    )
    assert scraped.status_code == 200
    assert total(text, "requests") == 2 and total(text, "errors") == 1
    # ... summed: no model is named, not even one the key may use.
    api = browser.client.get("/ui/api/metrics").text
    for shown in (text, browser.page("/ui/metrics/plots").text, api):
        assert CHAT not in shown and MISSING not in shown
    assert json.loads(api)["totals"]["requests"] == 2


# --- the drawing, on a history with an injected clock (no gateway needed) ---


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def drawn(events: list[tuple[float, int, float, int]], now: float, window: str) -> dict[str, Any]:
    """The page's view of a history holding ``events`` (time, status, seconds, tokens out)."""
    from types import SimpleNamespace

    from zoo.serve.metrics import History, Metrics
    from zoo.serve.ui.metrics_page import view, window_of
    from zoo.serve.ui.site import Ui

    clock = Clock(0.0)
    metrics = Metrics()
    metrics.history = History(clock=clock)
    for at, status, seconds, tokens in events:
        clock.now = at
        metrics.request_done("m", "chat", status, seconds)
        metrics.tokens_used("m", 1, tokens)
    clock.now = now
    gateway = SimpleNamespace(metrics=metrics, started_at=now - 7200)
    return view(Ui(gateway, None), window_of(window), now=now)  # type: ignore[arg-type]


def test_bars_stand_where_their_bucket_is_on_the_time_axis() -> None:
    from zoo.serve.ui.metrics_page import LEFT, RIGHT, WIDTH

    now = 1_000_000.0
    # Two requests 100 s ago (one failed), one in the current bucket.
    context = drawn(
        [(now - 100, 200, 0.2, 4), (now - 100, 500, 0.4, 0), (now, 200, 1.0, 6)], now, "5m"
    )
    requests, latency, tokens = context["plots"]
    bars = [b for b in requests.bars if b.css == "mx-requests"]
    errors = [b for b in requests.bars if b.css == "mx-errors"]
    assert len(bars) == 2 and len(errors) == 1
    slot = (WIDTH - LEFT - RIGHT) / 30  # 30 buckets of 10 s in 5 min
    # The current bucket is the last slot; 100 s ago is ten slots before it.
    assert bars[-1].x == pytest.approx(LEFT + 29 * slot + 1, abs=0.1)
    assert bars[0].x == pytest.approx(LEFT + 19 * slot + 1, abs=0.1)
    # The y scale ends at a round tick at or above the busiest bucket; the error bar is half.
    assert [t.label for t in requests.y_ticks] == ["0", "0.5", "1", "1.5", "2"]
    assert errors[0].height == pytest.approx(bars[0].height / 2, abs=0.1)
    assert bars[0].title == "−1 min 30 s: 2 requests, 1 error"
    # Latency: two lone buckets, drawn as dots (a line needs neighbours), mean and slowest.
    assert {(d.css, d.title) for d in latency.dots} == {
        ("mx-latency-mean", "−1 min 30 s: mean 300 ms"),
        ("mx-latency-max", "−1 min 30 s: slowest 400 ms"),
        ("mx-latency-mean", "now: mean 1 s"),
        ("mx-latency-max", "now: slowest 1 s"),
    }
    assert [t.label for t in latency.y_ticks][-1] == "1 s"
    # Tokens per second: 6 out in the current 10 s bucket is 0.6 tokens/s at its top.
    assert "(10 out, 3 in)" in tokens.description
    out = {css: d for d, css in tokens.lines}["mx-tokens-out"]
    assert out.startswith("M") and " L" in out
    # The table: the busy buckets, newest first, with their numbers.
    assert [(r["when"], r["requests"], r["errors"]) for r in context["rows"]] == [
        ("now", 1, 0),
        ("−1 min 30 s", 2, 1),
    ]
    assert context["totals"].requests == 3 and context["totals"].errors == 1
    assert context["uptime"] == "2 h 0 min"


def test_a_latency_line_breaks_where_no_request_was_answered() -> None:
    now = 1_000_000.0
    busy = [(now - s, 200, 0.1, 1) for s in (50, 40, 10, 0)]  # two runs of two buckets
    latency = drawn(busy, now, "5m")["plots"][1]
    mean = {css: d for d, css in latency.lines}["mx-latency-mean"]
    assert mean.count("M") == 2 and mean.count("L") == 2
    assert latency.dots == []


def test_the_time_axis_of_each_window() -> None:
    now = 1_000_000.0
    labels = {
        w: [t.label for t in drawn([(now, 200, 0.1, 1)], now, w)["plots"][0].x_ticks]
        for w in ("5m", "15m", "1h")
    }
    assert labels["15m"] == ["now", "−5 min", "−10 min", "−15 min"]
    assert labels["1h"] == ["now", "−15 min", "−30 min", "−45 min", "−1 h"]
    assert len(labels["5m"]) == 6


def test_nice_ticks_and_words() -> None:
    from zoo.serve.ui.metrics_page import ago, nice_ticks, number_text, seconds_text

    assert nice_ticks(0) == [0, 0.5, 1.0]
    assert nice_ticks(float("nan")) == [0, 0.5, 1.0]
    assert nice_ticks(7) == [0, 2, 4, 6, 8]
    assert nice_ticks(10) == [0, 5, 10]
    assert nice_ticks(0.003) == [0, 0.001, 0.002, 0.003]
    assert ago(0) == "now" and ago(40) == "−40 s" and ago(150) == "−2 min 30 s"
    assert ago(3600) == "−1 h"
    assert seconds_text(None) == "—" and seconds_text(0.0123) == "12 ms"
    assert seconds_text(2.5) == "2.5 s"
    assert number_text(0.0667) == "0.0667" and number_text(12) == "12"
    assert number_text(1234) == "1.2k"


@pytest.mark.slow
def test_in_chromium_the_script_swaps_in_fresh_plots_and_the_select_picks_the_window(
    running: Running,
) -> None:
    from playwright.sync_api import sync_playwright

    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 375, "height": 740})
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda error: problems.append(str(error)))
            page.goto(running.url + "/ui/metrics")
            page.fill("#key", KEY)
            page.click("button[type=submit]")
            page.wait_for_selector("#mx-empty")
            assert chat(running).status_code == 200
            # Within one refresh (10 s) the plots replace the empty state, without a reload.
            page.wait_for_selector("#mx-plot-requests svg[role=img]", timeout=15_000)
            assert page.inner_text("[data-total=requests]") == "1"
            assert page.evaluate("document.documentElement.scrollWidth") <= 375
            page.select_option("#mx-window", "1h")
            page.wait_for_url("**/ui/metrics?window=1h")
            assert page.locator("#mx-plots").get_attribute("data-window") == "1h"
        finally:
            browser.close()
    assert problems == []
