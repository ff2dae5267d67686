"""The gateway's proxy in front of one engine: what ``zoo launch`` puts before engines that
check no key or want another model name.

``transformers serve`` and ``mlx_lm.server`` check no key and want the model directory (or no
model) in requests. This proxy listens on the public address, refuses requests without the
key (401, OpenAI-shaped; ``/health`` stays open for probes), rewrites the request's ``model``
to what the engine wants, answers ``GET /v1/models`` with the served name, and renames
``model`` back to the served name in JSON answers and in every event of a stream (SSE, with
``zoo.serve.proxy.EventRenamer``, as the gateway does), so a client never sees the engine's
model directory. Everything else passes through as the engine sends it.

Given the model's kind (``--kind``), it does what the gateway does for one: a route of
another kind is a 400 naming the right one (``zoo.kinds.wrong_route``), and an embedding
model or reranker gets the gateway's body checks and answer shaping (``zoo.serve.pooling``:
Matryoshka ``dimensions`` cut and renormalized, base64, rerank sorted, ``top_n``,
``return_documents``, ``{"text"}`` documents, ``/rerank`` and ``/v2/rerank`` sent to the
engine's ``/v1/rerank``), so ``zoo launch`` answers alike on every engine. The facts it needs
come in argv (``zoo.runtime.invocation.proxy_argv``): it reads no catalog.

It is the gateway's stack (uvicorn, httpx with a kept-alive connection pool to the engine)
as a bare ASGI app with no routing: one model, one upstream. It runs as its own process
(``python -m zoo.serve.single``) recorded with the instance, so stopping the instance stops
both; the key comes in the environment (``ZOO_PROXY_API_KEY``), never in argv.
"""

from __future__ import annotations

import argparse
import contextlib
import hmac
import json
import os
import socket
import ssl
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
from starlette.background import BackgroundTask
from starlette.responses import JSONResponse, Response, StreamingResponse

from zoo import kinds
from zoo.catalog.model import EmbeddingFacts
from zoo.serve import pooling
from zoo.serve.errors import GatewayError, InvalidRequest, Unauthorized, WrongRoute
from zoo.serve.proxy import EventRenamer, _renamed_json, send_streaming

if TYPE_CHECKING:
    from starlette.types import Message, Receive, Scope, Send

API_KEY_ENV = "ZOO_PROXY_API_KEY"
MAX_BODY = 64 * 1024 * 1024
# Headers that describe one hop, not the message (RFC 9110 §7.6.1); httpx and uvicorn set
# their own framing and Host.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
        "host",
        "content-length",
        "expect",  # uvicorn has answered any 100-continue already
    }
)


@dataclass(frozen=True)
class ProxyConfig:
    """What the proxy does. ``request_model``: None passes the model through, "" removes it."""

    upstream_host: str
    upstream_port: int
    served_name: str
    api_key: str | None = None
    request_model: str | None = None
    # The model's kind (None: pass every route through) and what pooling needs of it.
    kind: str | None = None
    context_length: int | None = None
    embedding: EmbeddingFacts | None = None
    # The spec's truncate: an engine's "input too large" is cut and sent again (True) or a
    # 400 naming the limit (False).
    truncate: bool = True


class BadGateway(GatewayError):
    status = 502
    code = "engine_unreachable"
    kind = "server_error"


class TooLarge(InvalidRequest):
    status = 413


class SingleProxy:
    """The ASGI app: one served name in front of one engine."""

    def __init__(self, config: ProxyConfig) -> None:
        self.config = config
        self.created = int(time.time())
        host = config.upstream_host
        self.base = f"http://{f'[{host}]' if ':' in host else host}:{config.upstream_port}"
        # No read timeout: a long generation streams for minutes; connecting must be quick.
        # The engine is plain HTTP: a TLS context without CA certificates spares the 0.1 s
        # httpx spends loading them at start (and still verifies, so trusts nothing).
        self.client = httpx.AsyncClient(
            timeout=httpx.Timeout(connect=10.0, read=None, write=60.0, pool=None),
            # Idle connections are dropped well before engines drop them (llama.cpp and
            # uvicorn after 5 s): reusing one the engine is closing fails the request.
            limits=httpx.Limits(
                max_connections=None, max_keepalive_connections=64, keepalive_expiry=2.0
            ),
            trust_env=False,
            verify=ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT),
        )
        self._key = config.api_key.encode() if config.api_key else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        try:
            response = await self._handle(scope, receive)
        except GatewayError as error:
            response = JSONResponse(error.body(), status_code=error.status)
        await response(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.client.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def authorized(self, headers: list[tuple[bytes, bytes]]) -> bool:
        if self._key is None:
            return True
        given = next((v for k, v in headers if k == b"authorization"), b"")
        scheme, _, token = given.partition(b" ")
        return scheme.lower() == b"bearer" and hmac.compare_digest(token.strip(), self._key)

    async def _handle(self, scope: Scope, receive: Receive) -> Response:
        method: str = scope["method"]
        path: str = scope["path"]
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        if path != "/health" and not self.authorized(headers):
            raise Unauthorized("a valid API key is required (Authorization: Bearer KEY)")
        body = await _read_body(receive)
        if method == "GET" and path.rstrip("/") == "/v1/models":
            model = {
                "id": self.config.served_name,
                "object": "model",
                "created": self.created,
                "owned_by": "zoo",
            }
            if self.config.kind is not None:
                model["kind"] = self.config.kind
            return JSONResponse({"object": "list", "data": [model]})
        if self.config.kind is not None:
            wrong = kinds.wrong_route(self.config.served_name, self.config.kind, path)
            if wrong is not None:
                raise WrongRoute(wrong)
            routes = kinds.KINDS[self.config.kind].routes
            if method == "POST" and self.config.kind != kinds.LLM and path in routes:
                return await self._pooled(headers, body)
        content_type = _header(headers, b"content-type") or b"json"
        if body and b"json" in content_type:
            body = self._rewrite_request(body)
        return await self._forward(scope, method, headers, body)

    def _rewrite_request(self, body: bytes) -> bytes:
        wanted = self.config.request_model
        if wanted is None:
            return body
        try:
            data = json.loads(body)
        except ValueError:
            return body
        if not isinstance(data, dict) or "model" not in data:
            return body
        if wanted == "":
            del data["model"]
        else:
            data["model"] = wanted
        return json.dumps(data).encode()

    async def _pooled(
        self, headers: list[tuple[bytes, bytes]], body: bytes, cut: list[Any] | None = None
    ) -> Response:
        """An embeddings or rerank request checked and planned as the gateway does, sent to
        the kind's main route, and its answer finished the same way. ``cut``: the input as
        token ids cut to the limit (or the rerank documents cut), for the one retry after an
        engine's "too large"."""
        config = self.config
        asked = _json_object(body)
        plan: pooling.EmbeddingsPlan | pooling.RerankPlan
        if config.kind == kinds.RERANK:
            plan = pooling.plan_rerank(asked)
        else:
            plan = pooling.plan_vectors(asked, config.served_name, config.embedding)
        upstream = dict(plan.upstream)
        if cut is not None:
            upstream["documents" if isinstance(plan, pooling.RerankPlan) else "input"] = cut
        if config.request_model == "":
            upstream.pop("model", None)
        elif config.request_model is not None:
            upstream["model"] = config.request_model
        # Every route of the kind goes to its main one (llama.cpp has no /v2/rerank).
        route = kinds.KINDS[str(config.kind)].main_route
        request = self.client.build_request(
            "POST", self.base + route, headers=_sent(headers), content=json.dumps(upstream)
        )
        try:
            answer = await send_streaming(self.client, request)
        except httpx.HTTPError as error:
            raise BadGateway(f"the engine is not answering: {error}") from error
        # Float vectors at full length pass as the engine sends them (the benchmarked case):
        # streamed through, unless the model must be renamed.
        if answer.status_code == 200 and _as_sent(plan) and config.request_model is None:
            kept = [
                (k, v)
                for k, v in answer.headers.raw
                if k.decode("latin-1").lower() not in HOP_BY_HOP
            ]
            length = answer.headers.get("content-length")
            if length is not None:
                kept.append((b"content-length", length.encode()))
            out = StreamingResponse(_raw(answer), 200, background=BackgroundTask(answer.aclose))
            out.raw_headers = kept
            return out
        try:
            raw = await answer.aread()
        except httpx.HTTPError as error:
            raise BadGateway(f"the engine's answer broke off: {error}") from error
        finally:
            await answer.aclose()
        if answer.status_code == 200 and _as_sent(plan):
            return _replayed(answer, _renamed_json(raw, config.served_name))
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError):
            data = None
        if answer.status_code != 200:
            message = pooling.too_long(data, config.served_name, config.context_length)
            if message is not None and cut is None and config.truncate and config.context_length:
                shorter = await self._cut(upstream, config.context_length)
                if shorter is not None:
                    return await self._pooled(headers, body, shorter)
            if message is not None:
                raise InvalidRequest(message)
            return _replayed(answer, raw)
        if not isinstance(data, dict):
            return _replayed(answer, raw)
        if isinstance(plan, pooling.RerankPlan):
            data = pooling.finish_rerank(data, plan)
        else:
            data = pooling.finish_embeddings(data, plan)
        if "model" in data:
            data["model"] = config.served_name
        return _replayed(answer, json.dumps(data, ensure_ascii=False).encode())

    async def _cut(self, upstream: dict[str, Any], limit: int) -> list[Any] | None:
        """The request's input (or rerank documents) cut to ``limit`` by the engine's own
        tokenizer (the spec's truncate), None when it cannot be cut."""
        if self.config.kind == kinds.RERANK:
            query, documents = upstream["query"], upstream["documents"]
            return await pooling.cut_documents(self._post, query, documents, limit)
        return await pooling.cut_inputs(self._post, upstream["input"], limit)

    async def _post(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        """POST ``body`` to the engine: its status and JSON (None when it is not JSON)."""
        try:
            answer = await self.client.post(self.base + path, json=body)
        except httpx.HTTPError as error:
            raise BadGateway(f"the engine is not answering: {error}") from error
        try:
            return answer.status_code, answer.json()
        except (ValueError, RecursionError):
            return answer.status_code, None

    async def _forward(
        self, scope: Scope, method: str, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> Response:
        target = scope.get("raw_path") or scope["path"].encode()
        if scope.get("query_string"):
            target += b"?" + scope["query_string"]
        request = self.client.build_request(
            method, self.base + target.decode("latin-1"), headers=_sent(headers), content=body
        )
        try:
            answer = await send_streaming(self.client, request)
        except httpx.HTTPError as error:
            raise BadGateway(f"the engine is not answering: {error}") from error
        kept = [
            (k, v) for k, v in answer.headers.raw if k.decode("latin-1").lower() not in HOP_BY_HOP
        ]
        content_type = answer.headers.get("content-type", "").lower()
        # With request_model None the engine was asked for the served name and answers with
        # it itself: nothing to rename, so the answer passes through untouched.
        renamed = (
            self.config.request_model is not None
            and _has_body(method, answer.status_code)
            and answer.headers.get("content-encoding", "identity") == "identity"
        )
        if renamed and "json" in content_type:
            try:
                payload = await answer.aread()
            except httpx.HTTPError as error:
                raise BadGateway(f"the engine's answer broke off: {error}") from error
            finally:
                await answer.aclose()
            out = Response(_renamed_json(payload, self.config.served_name), answer.status_code)
            out.raw_headers = [*kept, (b"content-length", str(len(out.body)).encode())]
            return out
        if renamed and "text/event-stream" in content_type:
            stream = _renamed_events(answer, EventRenamer(self.config.served_name))
        else:
            stream = _raw(answer)
            length = answer.headers.get("content-length")
            if length is not None and _has_body(method, answer.status_code):
                kept.append((b"content-length", length.encode()))
        out = StreamingResponse(
            stream, answer.status_code, background=BackgroundTask(answer.aclose)
        )
        out.raw_headers = kept
        return out


def _json_object(body: bytes) -> dict[str, object]:
    """The request body as a JSON object, or the gateway's 400s for what it is instead."""
    try:
        data = json.loads(body or b"{}")
    except RecursionError as error:
        raise InvalidRequest("the request body is nested too deeply") from error
    except ValueError as error:
        raise InvalidRequest(f"the request body is not JSON: {error}") from error
    if not isinstance(data, dict):
        raise InvalidRequest("the request body must be a JSON object")
    return data


def _as_sent(plan: pooling.EmbeddingsPlan | pooling.RerankPlan) -> bool:
    """Whether the engine's embeddings answer is the client's as it is (full-length floats)."""
    return isinstance(plan, pooling.EmbeddingsPlan) and plan.dimensions is None and not plan.base64


def _sent(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The client's headers as they go to the engine: this hop's own left out, and identity
    encoding, so a JSON answer can be renamed (engines on loopback do not compress)."""
    sent = [(k, v) for k, v in headers if k.decode("latin-1") not in HOP_BY_HOP]
    sent = [(k, v) for k, v in sent if k != b"accept-encoding"]
    sent.append((b"accept-encoding", b"identity"))
    return sent


def _replayed(answer: httpx.Response, body: bytes) -> Response:
    """``body`` with the engine's status and headers (its length made right)."""
    out = Response(body, answer.status_code)
    kept = [
        (k, v)
        for k, v in answer.headers.raw
        if k.decode("latin-1").lower() not in HOP_BY_HOP
        and k.lower() not in (b"content-encoding", b"content-length")
    ]
    out.raw_headers = [*kept, (b"content-length", str(len(body)).encode())]
    return out


async def _read_body(receive: Receive) -> bytes:
    parts: list[bytes] = []
    total = 0
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            raise InvalidRequest("the client went away")
        chunk = message.get("body", b"")
        total += len(chunk)
        if total > MAX_BODY:
            raise TooLarge(f"the request body is larger than {MAX_BODY // 2**20} MB")
        parts.append(chunk)
        if not message.get("more_body", False):
            return b"".join(parts)


async def _raw(answer: httpx.Response) -> AsyncIterator[bytes]:
    """The engine's bytes as they come; a body that ends early simply ends (the status line
    has gone out already, so the client sees a short answer, which is the truth)."""
    try:
        async for chunk in answer.aiter_raw():
            yield chunk
    except httpx.HTTPError:
        return
    finally:
        await answer.aclose()


async def _renamed_events(answer: httpx.Response, renamer: EventRenamer) -> AsyncIterator[bytes]:
    try:
        with contextlib.suppress(httpx.HTTPError):
            async for chunk in answer.aiter_raw():
                out = renamer.feed(chunk)
                if out:
                    yield out
        rest = renamer.close()
        if rest:
            yield rest
    finally:
        await answer.aclose()


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    return next((v for k, v in headers if k == name), None)


def _has_body(method: str, status: int) -> bool:
    """Answers to HEAD, 1xx, 204 and 304 carry no body, whatever their headers say."""
    return method != "HEAD" and status >= 200 and status not in (204, 304)


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named, not 0: asyncio sets TCP_NODELAY only on sockets that say they are
    # TCP, and without it a small answer's second write waits 40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


def serve(config: ProxyConfig, host: str, port: int) -> None:
    """Serve until SIGTERM or SIGINT (uvicorn's handlers; open streams get a second)."""
    import uvicorn

    sock = _listen(host, port)
    server = uvicorn.Server(
        uvicorn.Config(
            SingleProxy(config),
            log_level="warning",
            access_log=False,
            lifespan="on",
            # The engine's own Date and Server headers pass through; uvicorn adds none.
            server_header=False,
            date_header=False,
            timeout_graceful_shutdown=1,
            # Longer than clients keep idle connections (httpx: 5 s), so a client never
            # reuses one this side is closing (it would see "disconnected without a response").
            timeout_keep_alive=30,
        )
    )
    print(
        f"zoo proxy listening on {host}:{port} -> {config.upstream_host}:{config.upstream_port}",
        flush=True,
    )
    server.run(sockets=[sock])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m zoo.serve.single")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream-host", default="127.0.0.1")
    parser.add_argument("--upstream-port", type=int, required=True)
    parser.add_argument("--served-name", required=True)
    parser.add_argument(
        "--request-model",
        default=None,
        help='the model the engine wants in requests ("" removes it)',
    )
    parser.add_argument("--kind", choices=kinds.KIND_NAMES, default=None)
    parser.add_argument("--context-length", type=int, default=None)
    parser.add_argument("--dimensions", type=int, default=None, help="an embedding's length")
    parser.add_argument("--matryoshka-dimensions", default="", help="comma-separated sizes")
    parser.add_argument("--unnormalized", action="store_true", help="vectors are not unit")
    parser.add_argument(
        "--no-truncate", action="store_true", help="refuse over-long inputs, never cut them"
    )
    args = parser.parse_args(argv)
    facts = None
    if args.dimensions is not None:
        sizes = tuple(int(n) for n in args.matryoshka_dimensions.split(",") if n)
        facts = EmbeddingFacts(
            args.dimensions, sizes, normalized=False if args.unnormalized else None
        )
    config = ProxyConfig(
        upstream_host=args.upstream_host,
        upstream_port=args.upstream_port,
        served_name=args.served_name,
        api_key=os.environ.get(API_KEY_ENV) or None,
        request_model=args.request_model,
        kind=args.kind,
        context_length=args.context_length,
        embedding=facts,
        truncate=not args.no_truncate,
    )
    try:
        serve(config, args.host, args.port)
    except OSError as error:
        print(f"zoo proxy: cannot listen on {args.host}:{args.port}: {error}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
