"""Browsing a real test gateway (tests/serve/gateway_helpers.py) as the web UI does, over
HTTP with httpx: log in through the form, read a page's CSRF token, send its state changes.
The tests in a real browser are tests/e2e/test_ui_browser.py."""

from __future__ import annotations

import re

import httpx

HTML = {"Accept": "text/html"}
_CSRF = re.compile(r'<meta name="zoo-csrf" content="([^"]+)">')


class Browser:
    """A cookie-keeping client of one gateway, as a browser on the same machine is."""

    def __init__(self, url: str) -> None:
        self.client = httpx.Client(base_url=url, trust_env=False, timeout=60, headers=HTML)

    def login(self, key: str) -> httpx.Response:
        return self.client.post(
            "/ui/login",
            content=f"key={key}&next=/",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )

    def page(self, path: str) -> httpx.Response:
        return self.client.get(path)

    def csrf(self, path: str = "/") -> str:
        """The CSRF token the page at ``path`` carries."""
        answer = self.page(path)
        answer.raise_for_status()
        found = _CSRF.search(answer.text)
        assert found is not None, answer.text[:500]
        return found.group(1)

    def post(self, path: str, body: object, *, csrf: str | None = None) -> httpx.Response:
        """A state change as the UI's script sends it (JSON, the page's CSRF token)."""
        token = self.csrf() if csrf is None else csrf
        return self.client.post(path, json=body, headers={"X-Zoo-CSRF": token})

    def close(self) -> None:
        self.client.close()
