"""The web UI's security, over real HTTP against a real gateway: the login form and its
session cookie, CSRF tokens on state changes, and the Host and Origin checks that keep other
sites' pages (and DNS rebinding) away from a gateway on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.serve.gateway_helpers import running_gateway, write_catalog
from zoo.serve.config import ApiKey

from .ui_helpers import HTML, Browser

KEY = "ui-test-key-0123456789"


@pytest.fixture
def catalog(tmp_path: Path):  # type: ignore[no-untyped-def]
    return write_catalog(tmp_path / "specs", {"alpha": False})


@pytest.fixture
def keyed(catalog) -> Iterator[str]:  # type: ignore[no-untyped-def]
    with running_gateway(catalog, {}, keys=(ApiKey(KEY),)) as gateway:
        yield gateway.url


def test_a_browser_without_a_session_is_sent_to_the_login_form(keyed: str) -> None:
    answer = httpx.get(keyed + "/ui/models?x=1", headers=HTML, trust_env=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/ui/login?next=%2Fui%2Fmodels%3Fx%3D1"
    # Ollama's probe of / (no HTML asked) and API clients get the API's answer, not a page.
    assert httpx.get(keyed + "/", trust_env=False).status_code == 401


def test_a_wrong_key_is_refused_and_a_right_one_opens_a_session(keyed: str) -> None:
    browser = Browser(keyed)
    wrong = browser.login("not-the-key")
    assert wrong.status_code == 401
    assert "not one of this gateway" in wrong.text
    assert "zoo_session" not in wrong.headers.get("set-cookie", "")
    right = browser.login(KEY)
    assert right.status_code == 303
    cookie = right.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Max-Age" not in cookie
    assert KEY not in cookie and KEY not in right.headers["location"]
    page = browser.page("/")
    assert page.status_code == 200 and KEY not in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]


def test_state_changes_need_the_csrf_token(keyed: str) -> None:
    browser = Browser(keyed)
    browser.login(KEY)
    bare = browser.client.post("/ui/api/unload", json={"model": "alpha"})
    assert bare.status_code == 403
    assert bare.json()["error"]["code"] == "browser_request_refused"
    forged = browser.post("/ui/api/unload", {"model": "alpha"}, csrf="forged")
    assert forged.status_code == 403
    good = browser.post("/ui/api/unload", {"model": "alpha"})
    assert good.status_code == 200 and good.json() == {"model": "alpha", "unloaded": False}
    # The API's own routes, reached with the cookie instead of a key, need it too.
    chat = browser.client.post("/v1/chat/completions", json={"model": "alpha", "messages": []})
    assert chat.status_code == 403


def test_another_sites_origin_and_a_foreign_host_are_refused(keyed: str) -> None:
    browser = Browser(keyed)
    browser.login(KEY)
    token = browser.csrf()
    other = browser.client.post(
        "/ui/api/unload",
        json={"model": "alpha"},
        headers={"X-Zoo-CSRF": token, "Origin": "http://evil.example"},
    )
    assert other.status_code == 403 and "evil.example" in other.json()["error"]["message"]
    rebound = browser.client.get("/ui/models", headers={"Host": "evil.example"})
    assert rebound.status_code == 403
    assert browser.client.get("/ui/models", headers={"Host": "localhost:1"}).status_code == 200
    assert browser.client.get("/ui/models", headers={"Host": "[::1]:1"}).status_code == 200
    # A loopback-looking start is not a loopback name.
    for host in ("[::1]evil.example", "127.0.0.1:evil", "[::1", "localhost:1:2"):
        assert browser.client.get("/ui/models", headers={"Host": host}).status_code == 403, host
    # A login forced from another site's page is refused before the key is looked at.
    forced = browser.client.post(
        "/ui/login",
        content=f"key={KEY}",
        headers={
            "Origin": "http://evil.example",
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    assert forced.status_code == 403


def test_logout_and_a_revoked_key_end_the_session(catalog) -> None:  # type: ignore[no-untyped-def]
    with running_gateway(catalog, {}, keys=(ApiKey(KEY),)) as gateway:
        browser = Browser(gateway.url)
        browser.login(KEY)
        assert browser.page("/ui/models").status_code == 200
        gateway.gateway.api_keys = (ApiKey("another-key-9876543210"),)  # a reload took it out
        assert browser.page("/ui/models").status_code == 303
        gateway.gateway.api_keys = (ApiKey(KEY),)
        assert browser.page("/ui/models").status_code == 303  # that session is gone for good
        browser.login(KEY)
        assert browser.client.post("/ui/logout").status_code == 303
        assert browser.page("/ui/models").status_code == 303


def test_without_keys_no_login_but_still_a_csrf_token(catalog) -> None:  # type: ignore[no-untyped-def]
    with running_gateway(catalog, {}) as gateway:
        browser = Browser(gateway.url)
        assert browser.page("/").status_code == 200
        assert browser.page("/ui/login").status_code == 303  # nothing to log in to
        assert browser.client.post("/ui/api/unload", json={"model": "alpha"}).status_code == 403
        assert browser.post("/ui/api/unload", {"model": "alpha"}).status_code == 200


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\\evil", ""])
def test_login_never_sends_the_browser_off_site(keyed: str, target: str) -> None:
    browser = Browser(keyed)
    answer = browser.client.post(
        "/ui/login",
        content=f"key={KEY}&next={target}",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/"
