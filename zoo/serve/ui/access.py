"""Which requests are the web UI's, and the checks that only browsers need.

A browser is the one client that carries credentials a page from another site can use: its
session cookie, and its reach to 127.0.0.1. So the UI's routes refuse a Host header that is
not this machine while the gateway listens on loopback (DNS rebinding: evil.example resolving
to 127.0.0.1 would otherwise be same-origin with the UI), and refuse a state change whose
Origin is another site's. API clients (Bearer keys) are not browsers and are not affected.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from urllib.parse import urlsplit

UI_PREFIX = "/ui/"
# Reached without a key: the login form itself and static files (code, no data).
# /ui/logout only forgets the session its cookie names (SameSite=Strict: never sent from
# another site), so it needs neither a key nor a CSRF token (an HTML form cannot send one).
PUBLIC_PREFIXES = ("/ui/login", "/ui/logout", "/ui/static/")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def header(headers: Sequence[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def wants_html(headers: Sequence[tuple[bytes, bytes]]) -> bool:
    """Whether the client asked for a page (a browser), not text (Ollama's probe of ``/``)."""
    accept = header(headers, b"accept") or ""
    return "text/html" in accept


def is_ui(path: str, method: str, headers: Sequence[tuple[bytes, bytes]]) -> bool:
    """Whether the request is the UI's: under /ui/, or a browser's GET of ``/``."""
    if path.startswith(UI_PREFIX):
        return True
    return path == "/" and method in ("GET", "HEAD") and wants_html(headers)


def is_public(path: str) -> bool:
    return path.startswith(PUBLIC_PREFIXES)


def _host_name(value: str) -> str:
    """The name in a Host header or an Origin's netloc, without the port; "" when the value
    is not a name with an optional numeric port (``[::1]evil.com`` names nothing)."""
    if value.startswith("["):  # [::1]:11435
        name, bracket, rest = value[1:].partition("]")
    elif value.count(":") == 1:
        name, bracket, rest = value.partition(":")
        rest = ":" + rest
    else:
        name, bracket, rest = value, "", ""
    if value.startswith("[") and not bracket:
        return ""
    if rest and not (rest.startswith(":") and rest[1:].isdigit()):
        return ""
    return name


def is_loopback_name(name: str) -> bool:
    name = name.lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def host_problem(headers: Sequence[tuple[bytes, bytes]], bind_host: str) -> str | None:
    """Why the UI must not answer this Host (None: it may)."""
    from zoo.runtime.process import is_loopback

    if not is_loopback(bind_host):
        return None  # listening beyond this machine was the user's choice; keys guard it
    host = header(headers, b"host")
    if host is None or is_loopback_name(_host_name(host)):
        return None
    return (
        f"this gateway's web UI answers only on this machine's own address, not {host!r}: "
        "open it at http://127.0.0.1:PORT/"
    )


def origin_problem(headers: Sequence[tuple[bytes, bytes]]) -> str | None:
    """Why a state change must be refused for its Origin (None: same origin, or none sent)."""
    origin = header(headers, b"origin")
    if origin is None:
        return None
    host = header(headers, b"host") or ""
    if origin == "null" or urlsplit(origin).netloc.lower() != host.lower():
        return f"a page from {origin!r} may not change this gateway's state"
    return None


def safe_next(target: str | None) -> str:
    """Where a login may send the browser on: a path on this site, else the models page."""
    if (
        not target
        or not target.startswith("/")
        or target.startswith("//")
        or "\\" in target
        or not target.isprintable()
    ):
        return "/"
    return target
