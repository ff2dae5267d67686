"""The gateway's HTTP app: OpenAI routes, Ollama routes, health, status, metrics, the web UI.

Every route but ``/health`` needs a key when keys are configured (``Authorization: Bearer``,
or Ollama clients' same header, or the web UI's session cookie with its CSRF token on state
changes); a key may be scoped to some models. Errors are OpenAI-shaped
JSON. Answers stream through as the engine sends them, with the lease on the model held until
the last byte (or until the client goes away, which closes the upstream request too).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from zoo.kinds import EMBEDDING, KINDS, RERANK
from zoo.serve.body import read_json
from zoo.serve.config import ApiKey
from zoo.serve.errors import (
    BrowserRefused,
    Forbidden,
    GatewayError,
    InvalidRequest,
    Unauthorized,
)
from zoo.serve.gateway import Gateway, open_leases, served_models, stream_with
from zoo.serve.types import ModelEntry
from zoo.serve.ui import access
from zoo.serve.ui.session import COOKIE, CSRF_HEADER, Session, Sessions, matching_key, same_token

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from zoo.serve.fim import Fim

OLLAMA_VERSION = "0.12.0"
# The key the request in hand was let in with (None: no keys are set), for the routes that do
# not see the request itself (the Ollama side).
_caller_key: ContextVar[ApiKey | None] = ContextVar("caller_key", default=None)


def build_app(gateway: Gateway, keys: Sequence[ApiKey] | None = None) -> Starlette:
    """The ASGI app for ``gateway``; ``keys``, when given, replace ``gateway.api_keys`` (the
    keys checked on each request, so that a config reload revokes and adds keys)."""
    from zoo.serve.ollama import ollama_routes
    from zoo.serve.ui import site

    if keys is not None:
        gateway.api_keys = tuple(keys)
    ui = site.Ui(gateway, Sessions())

    async def chat(request: Request) -> Response:
        return await _openai(gateway, request, "/v1/chat/completions", route="chat")

    async def completions(request: Request) -> Response:
        return await _openai(gateway, request, "/v1/completions", route="completions")

    async def fim(request: Request) -> Response:
        return await _openai(gateway, request, "/v1/completions", route="fim", fim_only=True)

    def pooling(kind_name: str) -> Callable[[Request], Awaitable[Response]]:
        async def route(request: Request) -> Response:
            return await _pooling(gateway, request, kind_name)

        return route

    async def models(request: Request) -> Response:
        data = [m for m in served_models(gateway) if _allowed(request, gateway.entries[m["id"]])]
        return JSONResponse({"object": "list", "data": data})

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def status(request: Request) -> Response:
        states = [s.to_json() for s in gateway.scheduler.snapshot()]
        return JSONResponse({"version": 1, "models": states, "started_at": gateway.started_at})

    async def root(request: Request) -> Response:
        # Ollama clients probe the root before anything else and expect text; a browser
        # (asking for HTML) gets the web UI.
        if request.method == "GET" and access.wants_html(request.scope.get("headers", ())):
            return await site.home(ui, request)
        return Response("zoo serve is running", media_type="text/plain")

    async def metrics(request: Request) -> Response:
        body, content_type = gateway.metrics.render(gateway.scheduler)
        return Response(body, media_type=content_type)

    routes = [
        Route("/health", health, methods=["GET"]),
        Route("/v1/models", models, methods=["GET"]),
        Route("/v1/chat/completions", chat, methods=["POST"]),
        Route("/v1/completions", completions, methods=["POST"]),
        Route("/v1/fim", fim, methods=["POST"]),
        # Every route of the embedding and rerank kinds, as zoo.kinds lists them.
        *(
            Route(path, pooling(name), methods=["POST"])
            for name in (EMBEDDING, RERANK)
            for path in KINDS[name].routes
        ),
        Route("/status", status, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        *ollama_routes(_OllamaSide(gateway)),
        *site.routes(ui),
        Route("/", root, methods=["GET", "HEAD"]),
    ]
    app = Starlette(
        routes=routes, exception_handlers={GatewayError: _error, HTTPException: _http_error}
    )
    app.add_middleware(_Auth, gateway=gateway, sessions=ui.sessions)
    app.add_middleware(_LeaveWhenGone)
    return app


async def _error(request: Request, error: Exception) -> Response:
    assert isinstance(error, GatewayError)
    return JSONResponse(error.body(), status_code=error.status)


async def _http_error(request: Request, error: Exception) -> Response:
    """Starlette's own 404 and 405 (plain text by default), OpenAI-shaped like the rest."""
    assert isinstance(error, HTTPException)
    status, path = error.status_code, request.url.path
    code, message = "invalid_request", str(error.detail)
    if status == 404:
        code, message = "not_found", f"no route {path!r} here"
    elif status == 405:
        allowed = (error.headers or {}).get("Allow", "")
        code, message = "method_not_allowed", f"{path} takes {allowed}, not {request.method}"
    fields = {"message": message, "type": "invalid_request_error", "code": code, "param": None}
    return JSONResponse({"error": fields}, status_code=status, headers=error.headers)


async def _openai(
    gateway: Gateway, request: Request, path: str, *, route: str, fim_only: bool = False
) -> Response:
    body = await read_json(request)
    if body.get("stream") is not None and not isinstance(body["stream"], bool):
        raise InvalidRequest("`stream` must be true or false")
    name = body.get("model")
    entry = gateway.entry(name)
    if not _allowed(request, entry):
        raise Forbidden(f"this API key may not use {entry.name}")
    # The client's own path in the message: /v1/fim is sent upstream as /v1/completions.
    gateway.check_kind(entry, path, asked=request.url.path)
    fim = _fim_of(gateway, entry.family) if (fim_only or "suffix" in body) else None
    if fim is not None:
        from zoo.serve.fim import fim_request

        body = fim_request(body, fim)
    _, answer, stack = await gateway.complete(str(name), body, path, route=route)
    if answer.streaming:
        stream = answer.body
        if fim is not None:
            from zoo.serve.fim import cut_sse

            stream = cut_sse(stream, fim)
        return StreamingResponse(
            stream_with(stack, stream), status_code=answer.status, headers=answer.headers
        )
    try:
        raw = b"".join([chunk async for chunk in answer.body])
    finally:
        await stack.aclose()
    if fim is not None and answer.status == 200:
        from zoo.serve.fim import cut_completion

        with contextlib.suppress(ValueError):
            raw = json.dumps(cut_completion(json.loads(raw), fim)).encode()
    headers = {k: v for k, v in answer.headers.items() if k.lower() != "content-type"}
    return Response(
        raw,
        status_code=answer.status,
        headers=headers,
        media_type=answer.headers.get("content-type", "application/json"),
    )


async def _pooling(gateway: Gateway, request: Request, kind_name: str) -> Response:
    """/v1/embeddings or a rerank route: checked, forwarded, the answer made uniform."""
    from zoo.serve.pooling import forward

    body = await read_json(request)
    name = body.get("model")
    entry = gateway.entry(name)
    if not _allowed(request, entry):
        raise Forbidden(f"this API key may not use {entry.name}")
    answer = await forward(
        gateway, str(name), body, kind_name, route=kind_name, asked=request.url.path
    )
    return Response(
        answer.raw,
        status_code=answer.status,
        headers=answer.headers,
        media_type=answer.media_type,
    )


def _fim_of(gateway: Gateway, family_name: str) -> Fim:
    """The family's fill-in-the-middle template and stops."""
    from zoo.serve.fim import Fim

    family = gateway.catalog.get(family_name)
    fim = Fim.from_family(family)
    if fim is None:
        raise InvalidRequest(f"{family_name} has no fill-in-the-middle template: omit `suffix`")
    return fim


def _allowed(request: Request | None, entry: ModelEntry) -> bool:
    """Whether the request's key may use ``entry`` (``None``: the request in hand)."""
    key = _caller_key.get() if request is None else request.scope.get("zoo.key")
    return key is None or key.allows(entry)


class _Auth:
    """Requires one of the gateway's keys on every route but /health (constant-time
    comparison). The keys are read per request: a reload's new keys count at once.

    A request carries its key as ``Authorization: Bearer``; a browser instead carries the web
    UI's session cookie (``zoo.serve.ui.session``), which counts only with the session's CSRF
    token on a state change. The UI's routes also refuse a foreign Host (DNS rebinding) and a
    foreign Origin on state changes (``zoo.serve.ui.access``), and send a browser without a
    session to the login form.
    """

    def __init__(self, app: ASGIApp, gateway: Gateway, sessions: Sessions) -> None:
        self.app = app
        self.gateway = gateway
        self.sessions = sessions

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] == "/health":
            await self.app(scope, receive, send)
            return
        headers, method, path = scope.get("headers", ()), scope["method"], scope["path"]
        scope["zoo.sessions"] = self.sessions
        ui = access.is_ui(path, method, headers)
        unsafe = method not in access.SAFE_METHODS
        problem = access.host_problem(headers, self.gateway.bind_host) if ui else None
        if problem is None and ui and unsafe:
            problem = access.origin_problem(headers)
        if problem is not None:
            await _refuse(BrowserRefused(problem), scope, receive, send)
            return
        keys = self.gateway.api_keys
        sent = _bearer(headers)
        key: ApiKey | None = None
        session: Session | None = None
        if sent is not None and keys:
            key = matching_key(sent, keys)
            if key is None:
                await _refuse(_NO_KEY, scope, receive, send)
                return
        elif sent is None:
            session = self.sessions.get(_cookie(headers, COOKIE))
            if session is not None and keys:
                key = matching_key(session.key, keys)
                if key is None:  # its key was taken out of the config: the session ends
                    self.sessions.logout(session.token)
                    session = None
            if keys and key is None and not (ui and access.is_public(path)):
                if ui and method in ("GET", "HEAD"):
                    await _to_login(scope, receive, send)
                else:
                    await _refuse(_NO_KEY, scope, receive, send)
                return
            # A cookie is sent by the browser on its own: a state change it authorises must
            # also carry the token only this origin's pages know. Without keys, the UI's own
            # state changes carry the gateway's anonymous token.
            expected: str | None = None
            if ui and access.is_public(path):
                expected = None  # the login form: Origin-checked above, it has no token yet
            elif session is not None and keys:
                expected = session.csrf
            elif ui:
                expected = self.sessions.anonymous_csrf
            sent_token = access.header(headers, CSRF_HEADER.encode())
            if unsafe and expected is not None and not same_token(sent_token, expected):
                error = BrowserRefused(f"this request needs the page's CSRF token ({CSRF_HEADER})")
                await _refuse(error, scope, receive, send)
                return
        scope["zoo.key"] = key
        scope["zoo.session"] = session
        token = _caller_key.set(key)
        try:
            await self.app(scope, receive, send)
        finally:
            _caller_key.reset(token)


_NO_KEY = Unauthorized("a valid API key is required (Authorization: Bearer KEY)")


async def _refuse(error: GatewayError, scope: Scope, receive: Receive, send: Send) -> None:
    response = JSONResponse(error.body(), status_code=error.status)
    await response(scope, receive, send)


async def _to_login(scope: Scope, receive: Receive, send: Send) -> None:
    from urllib.parse import quote

    from starlette.responses import RedirectResponse

    target = scope["path"] + (
        f"?{scope['query_string'].decode('latin-1')}" if scope.get("query_string") else ""
    )
    response = RedirectResponse(f"/ui/login?next={quote(target, safe='')}", status_code=303)
    await response(scope, receive, send)


def _cookie(headers: Sequence[tuple[bytes, bytes]], name: str) -> str | None:
    # Starlette's lenient parser, as request.cookies reads it (logout too): the stdlib's drops
    # every cookie when one is malformed, and cookies for 127.0.0.1 are shared with every
    # other local app on any port.
    from starlette.requests import cookie_parser

    raw = access.header(headers, b"cookie")
    return cookie_parser(raw).get(name) if raw else None


class _LeaveWhenGone:
    """Cancels a request whose client goes away before its answer begins.

    Starlette notices a disconnect only while it streams an answer; a request waiting for
    its model (queued behind a swap, or for a load) would keep its place in the queue, count
    against the model's concurrency, and be sent to the engine for nobody (editors cancel FIM
    requests all the time). Once the body is read, only ``http.disconnect`` can arrive: this
    waits for it and cancels the request if no answer has started (the scheduler's waits are
    cancellation-safe); an answer under way is ended by starlette's own watch, which closes
    the upstream request. The app's later ``receive`` calls get the disconnect from here.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        import anyio

        body_read, gone = anyio.Event(), anyio.Event()
        started = False

        async def app_receive() -> Message:
            if body_read.is_set():
                await gone.wait()
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.disconnect":
                gone.set()
            elif not message.get("more_body", False):
                body_read.set()
            return message

        async def app_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        failure: Exception | None = None
        leases: list[contextlib.AsyncExitStack] = []
        token = open_leases.set(leases)
        try:
            async with anyio.create_task_group() as group:

                async def watch() -> None:
                    await body_read.wait()
                    await receive()  # the disconnect (or the end of the answer)
                    gone.set()
                    if not started:
                        group.cancel_scope.cancel()

                group.start_soon(watch)
                try:
                    await self.app(scope, app_receive, app_send)
                except Exception as error:  # raised as itself, not in an ExceptionGroup
                    failure = error
                group.cancel_scope.cancel()
        finally:
            open_leases.reset(token)
            with anyio.CancelScope(shield=True):  # released even when the request is cancelled
                for stack in leases:
                    await stack.aclose()
        if failure is not None:
            raise failure


def _bearer(headers: Sequence[tuple[bytes, bytes]]) -> str | None:
    for name, value in headers:
        if name.lower() == b"authorization":
            text = value.decode("latin-1").strip()
            if text.lower().startswith("bearer "):
                return text[7:].strip()
    return None


class _OllamaSide:
    """The gateway as the Ollama routes see it (``zoo.serve.ollama.GatewayLike``)."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    @property
    def version(self) -> str:
        # Clients compare it with the Ollama release they need: answer as a recent one would.
        return OLLAMA_VERSION

    def _entry(self, name: str) -> ModelEntry:
        """The entry ``name`` names, if the request's key may use it (as on /v1)."""
        entry = self.gateway.entry(name)
        if not _allowed(None, entry):
            raise Forbidden(f"this API key may not use {entry.name}")
        return entry

    def list_models(self) -> list[dict[str, Any]]:
        entries = self.gateway.entries
        return [m for m in served_models(self.gateway) if _allowed(None, entries[m["id"]])]

    def show(self, name: str) -> dict[str, Any]:
        from zoo.serve.fim import Fim

        entry = self._entry(name)
        family = self.gateway.family(entry)
        found = next(iter(served_models(self.gateway, only=entry.name)), {})
        return {
            **found,
            "id": entry.name,
            "family": family.name,
            "context_length": family.context_length,
            "kind": family.kind,
            "abilities": list(family.abilities),
            "fim": Fim.from_family(family),
        }

    async def complete(
        self, name: str, body: dict[str, Any], path: str
    ) -> tuple[int, Mapping[str, str], AsyncIterator[bytes]]:
        self._entry(name)
        _, answer, stack = await self.gateway.complete(name, body, path, route="ollama")
        return answer.status, answer.headers, stream_with(stack, answer.body)

    async def embed(self, name: str, body: dict[str, Any]) -> tuple[int, Any, float]:
        from zoo.serve.pooling import forward

        self._entry(name)
        answer = await forward(self.gateway, name, body, EMBEDDING, route="ollama")
        return answer.status, answer.json(), answer.load_seconds

    async def load(self, name: str, keep_alive: Any) -> None:
        from zoo.serve.config import parse_duration

        entry = self._entry(name)
        try:
            seconds = None if keep_alive is None else parse_duration(keep_alive)
        except ValueError as error:  # a 400, as on the routes that generate (it was a 500)
            raise InvalidRequest(f"keep_alive {keep_alive!r}: {error}") from error
        async with self.gateway.scheduler.lease(entry.name, keep_alive=seconds):
            pass

    async def unload(self, name: str) -> bool:
        entry = self._entry(name)
        return await self.gateway.scheduler.unload(entry.name)
