"""Pages as HTML: Jinja2 templates with autoescaping on for every value (catalog text is
untrusted input), and the headers every UI answer carries.

The Content-Security-Policy allows scripts, styles and connections from this origin only:
no inline script runs, so markup that slipped through as HTML still could not execute. Page
data for scripts travels as ``<script type="application/json">`` (``|tojson`` escapes ``<``,
``>`` and ``&``), which the browser never executes.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import jinja2
    from starlette.requests import Request
    from starlette.responses import HTMLResponse

    from zoo.serve.ui.session import Session

HERE = Path(__file__).parent
STATIC = HERE / "static"
TEMPLATES = HERE / "templates"
STATIC_PREFIX = "/ui/static/"

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # same-origin, not no-referrer: with no-referrer Chromium sends `Origin: null` on form
    # POSTs (the login form), which the Origin check must refuse.
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

# The navigation, in order: (path, label). Pages name their own path as ``active``.
NAV = (
    ("/", "Models"),
    ("/ui/running", "Running"),
    ("/ui/playground", "Playground"),
    ("/ui/metrics", "Metrics"),
)


@functools.cache
def environment() -> jinja2.Environment:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,  # every template, whatever its name
        undefined=jinja2.StrictUndefined,  # a misspelt variable fails the test, not the page
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["static"] = static_url
    env.globals["nav"] = NAV
    return env


@functools.cache
def static_url(name: str) -> str:
    """The URL of a static file with its content hash, so browsers may cache it for good."""
    path = (STATIC / name).resolve()
    if STATIC.resolve() not in path.parents:
        raise ValueError(f"{name!r} is not a static file")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    return f"{STATIC_PREFIX}{name}?v={digest}"


def csrf_token(request: Request) -> str:
    """The token this browser's state changes must carry (its session's, or the gateway's
    anonymous one when no keys are set)."""
    session: Session | None = request.scope.get("zoo.session")
    if session is not None:
        return session.csrf
    sessions = request.scope["zoo.sessions"]
    return str(sessions.anonymous_csrf)


def page(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    active: str = "",
    title: str = "",
    status: int = 200,
) -> HTMLResponse:
    """``template`` rendered with ``context`` and what every page has: the CSRF token, the
    navigation (``active``: this page's nav path), whether a key is in use (a logout button)."""
    from starlette.responses import HTMLResponse

    session: Session | None = request.scope.get("zoo.session")
    values = {
        "csrf": csrf_token(request),
        "active": active,
        "title": title,
        "logged_in": session is not None and bool(session.key),
        **(context or {}),
    }
    html = environment().get_template(template).render(values)
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


def duration(seconds: float) -> str:
    """``1 h 2 min``, ``4 min 12 s``, ``40 s``: a keep-alive left, an uptime."""
    whole = max(0, int(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{secs} s"
