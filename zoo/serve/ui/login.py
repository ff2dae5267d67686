"""The login form: an API key typed in once, kept server-side behind a session cookie.

Without API keys there is nothing to log in to: the form sends the browser to the models page.
A wrong key gets the form again with a 401 and one line saying so, after a short pause that
makes guessing slow (keys are long random strings; this is not their only defence).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import BaseRoute

    from zoo.serve.ui.site import Ui

WRONG_KEY_PAUSE_S = 0.5
MAX_FORM_BYTES = 16 * 1024


def routes(ui: Ui) -> list[BaseRoute]:
    from starlette.routing import Route

    async def login_form(request: Request) -> Response:
        return await _form(ui, request)

    async def login_submit(request: Request) -> Response:
        return await _submit(ui, request)

    async def logout(request: Request) -> Response:
        return _logout(ui, request)

    return [
        Route("/ui/login", login_form, methods=["GET"]),
        Route("/ui/login", login_submit, methods=["POST"]),
        Route("/ui/logout", logout, methods=["POST"]),
    ]


async def _form(ui: Ui, request: Request, *, problem: str = "", status: int = 200) -> Response:
    from starlette.responses import RedirectResponse

    from zoo.serve.ui.access import safe_next
    from zoo.serve.ui.render import page

    target = safe_next(request.query_params.get("next"))
    if not ui.gateway.api_keys:
        return RedirectResponse(target, status_code=303)
    return page(
        request,
        "login.html",
        {"next": target, "problem": problem},
        title="Log in",
        status=status,
    )


async def _submit(ui: Ui, request: Request) -> Response:
    from starlette.responses import PlainTextResponse, RedirectResponse

    from zoo.serve.ui.access import origin_problem, safe_next
    from zoo.serve.ui.render import SECURITY_HEADERS, page
    from zoo.serve.ui.session import COOKIE, matching_key

    problem = origin_problem(request.scope.get("headers", ()))
    if problem is not None:  # a login forced on the user from another site
        return PlainTextResponse(problem, status_code=403, headers=SECURITY_HEADERS)
    body = await request.body()
    fields = parse_qs(body[:MAX_FORM_BYTES].decode("utf-8", "replace"), max_num_fields=4)
    sent = (fields.get("key") or [""])[0].strip()
    target = safe_next((fields.get("next") or ["/"])[0])
    if not ui.gateway.api_keys:
        return RedirectResponse(target, status_code=303)
    key = matching_key(sent, ui.gateway.api_keys) if sent else None
    if key is None:
        await asyncio.sleep(WRONG_KEY_PAUSE_S)
        return page(
            request,
            "login.html",
            {"next": target, "problem": "That is not one of this gateway's API keys."},
            title="Log in",
            status=401,
        )
    session = ui.sessions.login(key.key)
    answer = RedirectResponse(target, status_code=303)
    # No max_age: the cookie ends with the browser session. Not `secure`: the gateway serves
    # plain HTTP on 127.0.0.1 by default, where browsers treat it as a secure context anyway.
    answer.set_cookie(COOKIE, session.token, httponly=True, samesite="strict", path="/")
    return answer


def _logout(ui: Ui, request: Request) -> Response:
    from starlette.responses import RedirectResponse

    from zoo.serve.ui.session import COOKIE

    ui.sessions.logout(request.cookies.get(COOKIE))
    answer = RedirectResponse("/ui/login", status_code=303)
    answer.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return answer
