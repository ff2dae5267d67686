"""Browser sessions for the web UI: a key typed into the login form, never into a URL.

The key stays on the server: the browser holds only a random session token in a cookie that
scripts cannot read (HttpOnly), that no other site's page sends (SameSite=Strict; a page on
another port of this machine is the same *site*, so the CSRF token and the Origin check are
what stop it) and that ends with the browser session (no Max-Age). Each session has its own
CSRF token, which every state-changing request from the UI carries in the ``X-Zoo-CSRF``
header (a header another origin cannot set without a CORS preflight, which zoo never
grants). Without API keys there
is no login; state changes still need the gateway's anonymous CSRF token, so a page on
another site cannot load or unload models through the user's browser.

A session remembers the key it logged in with, not its scope: each request looks the key up
among the gateway's current keys, so a key taken out of the config by a reload ends its
sessions at once.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from zoo.serve.config import ApiKey

COOKIE = "zoo_session"
CSRF_HEADER = "x-zoo-csrf"
# Idle sessions end after this long; a busy UI (polling its pages) keeps its session.
IDLE_SECONDS = 12 * 3600
# A bound on the memory a client trying logins can make the gateway hold.
MAX_SESSIONS = 1000


@dataclass
class Session:
    token: str = field(repr=False)
    csrf: str = field(repr=False)
    key: str = field(repr=False)  # the API key it logged in with ("" without keys)
    last_seen: float


class Sessions:
    """The UI's sessions, in memory (a restarted gateway asks for the key again)."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._by_token: dict[str, Session] = {}
        # State changes without keys (nobody logs in) carry this one.
        self.anonymous_csrf = secrets.token_urlsafe(32)

    def login(self, key: str) -> Session:
        """A new session for ``key`` (already checked by the caller)."""
        self._expire()
        if len(self._by_token) >= MAX_SESSIONS:  # the least recently seen goes
            oldest = min(self._by_token.values(), key=lambda s: s.last_seen)
            del self._by_token[oldest.token]
        session = Session(
            token=secrets.token_urlsafe(32),
            csrf=secrets.token_urlsafe(32),
            key=key,
            last_seen=self._clock(),
        )
        self._by_token[session.token] = session
        return session

    def get(self, token: str | None) -> Session | None:
        """The live session ``token`` names (and it counts as seen now), or None."""
        if not token:
            return None
        session = self._by_token.get(token)
        if session is None:
            return None
        now = self._clock()
        if now - session.last_seen > IDLE_SECONDS:
            del self._by_token[token]
            return None
        session.last_seen = now
        return session

    def logout(self, token: str | None) -> None:
        if token:
            self._by_token.pop(token, None)

    def _expire(self) -> None:
        now = self._clock()
        for token in [t for t, s in self._by_token.items() if now - s.last_seen > IDLE_SECONDS]:
            del self._by_token[token]


def matching_key(sent: str, keys: Sequence[ApiKey]) -> ApiKey | None:
    """The configured key equal to ``sent`` (constant-time, as bytes: compare_digest refuses
    str with non-ASCII characters), or None."""
    raw = sent.encode("utf-8", "surrogateescape")
    return next((k for k in keys if hmac.compare_digest(k.key.encode(), raw)), None)


def same_token(sent: str | None, expected: str) -> bool:
    """Whether ``sent`` is ``expected`` (constant-time)."""
    if sent is None:
        return False
    return hmac.compare_digest(sent.encode("utf-8", "surrogateescape"), expected.encode())
