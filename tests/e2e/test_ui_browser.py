"""The web UI in a real browser: Debian's Chromium, driven by Playwright, against ONE real
``zoo serve`` process (the CLI) that serves SmolLM2 on llama.cpp behind an API key.

A wrong key is refused at the login form and the right one logs in; the models page filters
the catalog; a catalog description full of markup is shown as text (nothing it says becomes an
element or runs); a chat in the playground loads SmolLM2 and streams its answer in; the running
page unloads it and it leaves. Every page is screenshotted at desktop and phone widths, light
and dark, and checked for layout breakage: nothing wider than the window, no visible section
left empty, no console error (a CSP violation is one) or uncaught exception.

The screenshots go to ``$ZOO_UI_SCREENSHOTS`` (default: a pytest temporary folder); the
screenshot tests print where. The tests share the module's gateway and run in file order.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import env_cache
from test_serve_e2e import SMOLLM2_REPO, SMOLLM2_REVISION, Served, start_gateway, wait_for
from ui_browser import VARIANTS, Watch, launch, layout_problems

from zoo.testing.hubserver import HubServer

pytestmark = pytest.mark.slow

KEY_ENV = "ZOO_UI_BROWSER_KEY"
SMOLLM2_FAMILY = "smollm2-135m-instruct"
MARKUP_FAMILY = "zoo-markup-test"
MARKUP = "<img src=x onerror=alert(1)><b>bold</b>"
# One family of the catalog folder: its description is untrusted text holding markup.
MARKUP_SPEC = f"""\
name: {MARKUP_FAMILY}
description: '{MARKUP} is what this family says about itself.'
context_length: 2048
languages: [en]
abilities: [chat]
specs:
  - format: ggufv2
    size: 0.001
    quantizations: [Q8_0]
    sources:
      huggingface:
        model_id: zoo-test/{MARKUP_FAMILY}-GGUF
        file: {MARKUP_FAMILY}.{{quantization}}.gguf
"""
# keep_alive -1: SmolLM2 stays loaded from the chat until the running page unloads it.
CONFIG = f"""\
keep_alive: -1
api_keys:
  - key_env: {KEY_ENV}
models:
  smollm2: {{"family": "{SMOLLM2_FAMILY}", "engine": "llamacpp", "hub": "huggingface"}}
"""
# Every page, by name: its path ("model": found from the models page's link to SmolLM2).
PAGES = {
    "login": "/ui/login",
    "models": "/",
    "model": "",
    "running": "/ui/running",
    "playground": "/ui/playground?model=smollm2",
    "metrics": "/ui/metrics",
}
SETTLE_MS = 800  # scripts that fill a page after load (the running page's first poll)


@pytest.fixture(scope="module")
def key() -> str:
    return secrets.token_urlsafe(24)


@pytest.fixture(scope="module")
def hub(smollm2_gguf: Path) -> Iterator[HubServer]:
    server = HubServer().start()
    server.add_repo(
        SMOLLM2_REPO, {smollm2_gguf.name: smollm2_gguf.read_bytes()}, commit=SMOLLM2_REVISION
    )
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def gateway(hub: HubServer, key: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("ui-browser")
    catalog = root / "specs"
    catalog.mkdir()
    (catalog / f"{MARKUP_FAMILY}.yaml").write_text(MARKUP_SPEC)
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HUB_OFFLINE", "ZOO_HUB", "ZOO_API_KEY")
    }
    env.update(hub.hf_env())
    env.update(
        {KEY_ENV: key},
        ZOO_CATALOG_PATH=str(catalog),
        ZOO_ENVS_DIR=str(env_cache()),
        HF_HOME=str(root / "hf"),
        HOME=str(root),
    )
    served = start_gateway(env, root / "gateway", CONFIG)
    try:
        yield served
    finally:
        served.stop()
        served.zoo("stop", "--all", check=False)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    chromium = launch(playwright)
    try:
        yield chromium
    finally:
        chromium.close()
        playwright.stop()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    given = os.environ.get("ZOO_UI_SCREENSHOTS")
    folder = Path(given) if given else tmp_path_factory.mktemp("ui-screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class Tab:
    """One browser context and its page, watched for console errors and dialogs."""

    def __init__(self, browser: Any, url: str, **options: Any) -> None:
        self.url = url
        self.watch = Watch()
        self.context = browser.new_context(**options)
        self.context.set_default_timeout(15_000)
        self.watch.attach(self.context)
        self.page = self.context.new_page()

    def goto(self, path: str) -> Any:
        answer = self.page.goto(self.url + path)
        assert answer is not None, path
        assert answer.status == 200, (
            f"GET {path} answered {answer.status}: {self.page.inner_text('body')[:300]!r}"
        )
        return answer

    def login(self, key: str, path: str = "/") -> None:
        self.page.goto(self.url + path)
        self.page.fill("#key", key)
        self.page.get_by_role("button", name="Log in").click()
        self.page.wait_for_load_state()
        assert "/ui/login" not in self.page.url, self.page.inner_text("main")

    def problems(self) -> list[str]:
        return self.watch.take()

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def tab(browser: Any, gateway: Served) -> Iterator[Tab]:
    opened = Tab(browser, gateway.url, viewport={"width": 1280, "height": 800})
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def user(tab: Tab, key: str) -> Tab:
    """A tab logged in with the right key."""
    tab.login(key)
    return tab


def api(gateway: Served, key: str) -> dict[str, dict[str, Any]]:
    """What ``/v1/models`` says of each served model, asked with the key."""
    answer = httpx.get(
        gateway.url + "/v1/models",
        headers={"Authorization": f"Bearer {key}"},
        trust_env=False,
        timeout=30,
    )
    answer.raise_for_status()
    return {m["id"]: m for m in answer.json()["data"]}


# --- the checks themselves catch what they look for ------------------------------------------

BROKEN = """<!doctype html><html><head><meta name="viewport" content="width=device-width">
<style>.wide { width: 600px; height: 10px; }</style></head>
<body><main><section id="empty"><div></div></section><section>fine</section>
<div class="wide">wide</div><script>console.log("inline ran")</script></main></body></html>"""


def test_the_layout_checks_catch_a_broken_page(browser: Any) -> None:
    """A page 600 px wide in a 375 px window, with an empty section and an inline script that
    the CSP blocks: each is reported (so a clean report of the UI's pages means something)."""
    tab = Tab(browser, "http://zoo.invalid", viewport={"width": 375, "height": 740})
    try:
        headers = {"Content-Type": "text/html", "Content-Security-Policy": "script-src 'self'"}
        tab.context.route(
            "http://zoo.invalid/", lambda route: route.fulfill(body=BROKEN, headers=headers)
        )
        tab.goto("/")
        problems = layout_problems(tab.page)
        assert len(problems) == 2, problems
        assert problems[0].startswith("scrolls sideways: 6"), problems
        assert "div.wide" in problems[0], problems
        assert problems[1] == "empty sections: ['#empty']", problems
        seen = tab.problems()
        assert len(seen) == 1 and "Content Security Policy" in seen[0], seen
    finally:
        tab.close()


# --- logging in ---------------------------------------------------------------------------


def test_a_wrong_key_is_refused(tab: Tab) -> None:
    page = tab.page
    page.goto(tab.url + "/")
    assert page.url.startswith(tab.url + "/ui/login"), page.url  # no key yet: to the form
    # The browser logs the refused form POST's 401 as a failed resource: that one is expected.
    tab.watch.expected.append("status of 401")
    page.fill("#key", "not-" + secrets.token_urlsafe(12))
    with page.expect_response(lambda r: r.url.endswith("/ui/login")) as sent:
        page.get_by_role("button", name="Log in").click()
    assert sent.value.status == 401
    alert = page.get_by_role("alert")
    assert "not one of this gateway's API keys" in alert.inner_text()
    assert page.url.startswith(tab.url + "/ui/login"), page.url
    assert page.locator("#key").is_visible()
    assert not page.context.cookies(), page.context.cookies()  # no session was given
    assert tab.problems() == []


def test_the_right_key_logs_in(tab: Tab, key: str) -> None:
    page = tab.page
    tab.login(key)
    assert page.url == tab.url + "/", page.url
    assert page.get_by_role("button", name="Log out").is_visible()
    nav = page.get_by_role("navigation", name="Main")
    assert nav.get_by_role("link", name="Models").get_attribute("aria-current") == "page"
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert cookies["zoo_session"]["httpOnly"], cookies
    assert key not in page.url and key not in page.content()  # the key is in no URL or page
    assert tab.problems() == []


# --- the models page ------------------------------------------------------------------------

# The catalog's rows, whatever the page draws them with: elements marked with their family, or
# the rows of its table. Counted when visible (a client-side filter hides rows).
_VISIBLE_ROWS = """() => {
  const marked = [...document.querySelectorAll("main [data-family]")];
  const rows = marked.length ? marked : [...document.querySelectorAll("main table tbody tr")];
  return rows.filter((r) => r.getClientRects().length > 0).map((r) => r.innerText);
}"""


def visible_rows(tab: Tab) -> list[str]:
    """The visible rows' text; none while the page navigates (a submitted filter form)."""
    from playwright.sync_api import Error

    try:
        rows: list[str] = tab.page.evaluate(_VISIBLE_ROWS)
    except Error as error:
        if "context was destroyed" not in str(error):
            raise
        return []
    return rows


def narrowed(tab: Tab, before: int, change: Callable[[], None]) -> list[str]:
    """The rows once ``change`` has narrowed them (a filter applied in the page, or after the
    form it submits has come back)."""
    change()
    tab.page.wait_for_load_state()
    return list(
        wait_for(
            "the rows to narrow",
            lambda: (rows := visible_rows(tab)) and len(rows) < before and rows,
            10,
        )
    )


def search_box(tab: Tab) -> Any:
    box = tab.page.locator("main input[type=search]")
    assert box.count() == 1, "the models page has no (single) search box, input[type=search]"
    return box


def test_search_narrows_the_catalog(user: Tab) -> None:
    user.goto("/")
    every = visible_rows(user)
    assert len(every) > 10, f"the models page lists {len(every)} families: {every[:3]}"
    box = search_box(user)

    def search() -> None:
        box.fill("smollm2")
        if len(visible_rows(user)) == len(every):  # filtered by the server: submit the form
            box.press("Enter")

    rows = narrowed(user, len(every), search)
    assert all("smollm2" in row.lower() for row in rows), rows
    assert any(SMOLLM2_FAMILY in row for row in rows), rows
    assert user.problems() == []


def test_a_kind_filter_narrows_the_catalog(user: Tab) -> None:
    user.goto("/")
    every = visible_rows(user)
    kind = user.page.get_by_label(re.compile(r"^\s*kind", re.I))
    assert kind.count() == 1, "the models page has no (single) select labelled Kind"
    options = [o.strip() for o in kind.locator("option").all_inner_texts()]
    embedding = next((o for o in options if "embed" in o.lower()), None)
    assert embedding is not None, f"no embedding kind among {options}"

    def choose() -> None:
        kind.select_option(label=embedding)
        if len(visible_rows(user)) == len(every):
            kind.evaluate("(s) => s.form && s.form.requestSubmit()")

    rows = narrowed(user, len(every), choose)
    assert not any(SMOLLM2_FAMILY in row for row in rows), rows  # a chat model: filtered out
    assert user.problems() == []


def model_page_path(tab: Tab, family: str) -> str:
    """The path of ``family``'s model page, from the models page's link to it."""
    tab.goto("/")
    link = tab.page.locator(f'main a[href*="{family}"]').first
    assert link.count() == 1, f"the models page links to no page for {family}"
    href = link.get_attribute("href") or ""
    assert href.startswith("/"), href
    return href


def assert_shown_as_text(tab: Tab) -> None:
    page = tab.page
    assert page.get_by_text(MARKUP, exact=False).first.is_visible(), page.inner_text("main")[:500]
    # Nothing the description says became an element (the page's own <b> or <img> would need
    # another test; this page has none).
    assert page.locator("main b").count() == 0, page.inner_html("main")[:800]
    assert page.locator("img[src=x], main img").count() == 0
    assert page.evaluate("document.querySelectorAll('[onerror]').length") == 0


def test_a_description_with_markup_is_shown_as_text(user: Tab) -> None:
    page = user.page
    user.goto("/")
    box = search_box(user)
    box.fill("markup")
    box.press("Enter")  # a client-side filter ignores it; a server-side search submits
    page.wait_for_load_state()
    wait_for("the markup family's row", lambda: any(MARKUP_FAMILY in r for r in visible_rows(user)))
    assert page.locator("main b").count() == 0
    assert page.locator("img[src=x]").count() == 0
    if MARKUP in page.inner_text("main"):  # the models page shows descriptions
        assert_shown_as_text(user)
    user.goto(model_page_path(user, MARKUP_FAMILY))
    assert_shown_as_text(user)
    page.wait_for_timeout(SETTLE_MS)  # an onerror that slipped through would fire by now
    assert user.watch.dialogs == []
    assert user.problems() == []


# --- load, chat, unload ---------------------------------------------------------------------


def test_the_model_page_loads_smollm2(user: Tab, gateway: Served, key: str) -> None:
    page = user.page
    user.goto(model_page_path(user, SMOLLM2_FAMILY))
    load = page.get_by_role("button", name=re.compile(r"^\s*load", re.I))
    assert load.count() >= 1, "SmolLM2's model page has no Load button"
    with page.expect_response(lambda r: "/ui/api/load" in r.url, timeout=600_000) as sent:
        load.first.click()
    assert sent.value.status == 200, sent.value.text()
    assert api(gateway, key)["smollm2"]["status"] == "loaded"
    page.get_by_text(re.compile(r"\bloaded\b", re.I)).first.wait_for(timeout=30_000)
    assert user.problems() == []


# Records the assistant's answer each time the transcript changes: a streamed answer grows.
_RECORD = """() => {
  window.zooSeen = [];
  const transcript = document.getElementById("pg-transcript");
  new MutationObserver(() => {
    const replies = transcript.querySelectorAll(".pg-assistant .pg-text");
    const last = replies[replies.length - 1];
    if (last) window.zooSeen.push(last.textContent);
  }).observe(transcript, {childList: true, subtree: true, characterData: true});
}"""


@pytest.mark.timeout(1200)  # a cold start of llama.cpp (its environment builds on a first run)
def test_a_chat_in_the_playground_streams_the_answer(user: Tab, gateway: Served, key: str) -> None:
    page = user.page
    user.goto(PAGES["playground"])
    page.fill("#pg-system", "You are a helpful assistant.")
    page.fill("#pg-temperature", "0")
    page.fill("#pg-max-tokens", "24")
    page.fill("#pg-message", "What is the capital of France?")
    page.evaluate(_RECORD)
    page.click("#pg-send")
    page.wait_for_function(
        "() => document.getElementById('pg-send').disabled === false"
        " && document.querySelector('.pg-assistant .pg-text')",
        timeout=900_000,
    )
    error = page.locator("#pg-chat-error")
    assert error.is_hidden(), error.inner_text()
    answer = page.locator(".pg-assistant .pg-text").last.inner_text()
    assert "Paris" in answer, answer
    seen = [text for text in page.evaluate("window.zooSeen") if text]
    assert len(set(seen)) > 1, seen  # it grew piece by piece, not all at once
    assert seen[-1] == answer
    assert api(gateway, key)["smollm2"]["status"] == "loaded"
    assert user.problems() == []


# --- every page, at two widths and in both color schemes --------------------------------------


@pytest.mark.timeout(600)
@pytest.mark.parametrize("name", list(PAGES))
def test_screenshots_show_no_broken_layout(
    browser: Any, gateway: Served, key: str, shots: Path, name: str
) -> None:
    print(f"\nscreenshots in {shots}")
    path = PAGES[name]
    if not path:
        finder = Tab(browser, gateway.url)
        try:
            finder.login(key)
            path = model_page_path(finder, SMOLLM2_FAMILY)
        finally:
            finder.close()
    problems: dict[str, list[str]] = {}
    for variant, viewport, scheme in VARIANTS:
        tab = Tab(browser, gateway.url, viewport=viewport, color_scheme=scheme)
        try:
            if name != "login":
                tab.login(key)
            tab.goto(path)
            tab.page.wait_for_timeout(SETTLE_MS)
            tab.page.screenshot(path=str(shots / f"{name}-{variant}.png"), full_page=True)
            found = layout_problems(tab.page) + tab.problems()
        finally:
            tab.close()
        if found:
            problems[variant] = found
    assert problems == {}, f"{name} ({path}), screenshots in {shots}: {problems}"


def test_the_running_page_unloads_smollm2(user: Tab, gateway: Served, key: str) -> None:
    if api(gateway, key)["smollm2"]["status"] != "loaded":  # the chat's test failed: load it
        answer = httpx.post(
            gateway.url + "/v1/chat/completions",
            json={
                "model": "smollm2",
                "messages": [{"role": "user", "content": "Hi"}],
                "max_tokens": 1,
            },
            headers={"Authorization": f"Bearer {key}"},
            trust_env=False,
            timeout=600,
        )
        assert answer.status_code == 200, answer.text
    page = user.page
    user.watch.confirm = True  # "Unload smollm2?" may be asked first
    user.goto("/ui/running")
    row = page.locator("main [data-model], main [data-instance], main tbody tr").filter(
        has_text="smollm2"
    )
    assert row.count() >= 1, f"the running page shows no smollm2: {page.inner_text('main')[:400]}"
    unload = row.first.get_by_role("button", name=re.compile(r"unload|stop", re.I))
    assert unload.count() == 1, "smollm2's row on the running page has no Unload button"
    unload.click()
    row.first.wait_for(state="detached", timeout=60_000)  # it left the page without a reload
    assert api(gateway, key)["smollm2"]["status"] != "loaded"
    assert user.problems() == []
