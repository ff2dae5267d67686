"""Rerank answers in the shape zoo promises: ``--middleware zoo_vllm.rerank.RerankShape``.

vLLM 0.32's /v1/rerank, /rerank and /v2/rerank honour ``top_n`` but have no
``return_documents``: every result carries its document, as ``{"text": ..., "multi_modal":
null}``. The Jina/Cohere clients zoo's rerank route is for (and ``zoo.kinds``) ask for the
documents with ``return_documents``, so this middleware drops them from a successful answer
when the request said ``"return_documents": false``, and drops vLLM's empty ``multi_modal``
from the documents it keeps (``{"text": ...}``). Every other request and answer passes
through untouched, streamed as vLLM sends it.

Loaded by vLLM in its API server process by the dotted path: the standard library only.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

ROUTES = frozenset({"/v1/rerank", "/rerank", "/v2/rerank"})

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


def reshaped(answer: bytes, *, documents: bool) -> bytes | None:
    """The answer without documents (or without vLLM's ``multi_modal``), None to keep it."""
    try:
        data = json.loads(answer)
    except ValueError:
        return None
    results = data.get("results") if isinstance(data, dict) else None
    if not isinstance(results, list):
        return None
    for result in results:
        if not isinstance(result, dict):
            return None
        document = result.get("document")
        if not documents:
            result.pop("document", None)
        elif isinstance(document, dict) and document.get("multi_modal") is None:
            document.pop("multi_modal", None)
    return json.dumps(data).encode()


def wants_documents(body: bytes) -> bool:
    """``return_documents`` of a rerank request; vLLM's behaviour (True) when absent."""
    try:
        data = json.loads(body)
    except ValueError:
        return True
    return not (isinstance(data, dict) and data.get("return_documents") is False)


class RerankShape:
    """Pure ASGI middleware for the rerank routes (see the module's docstring)."""

    def __init__(self, app: App) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not (
            scope["type"] == "http" and scope.get("method") == "POST" and scope["path"] in ROUTES
        ):
            await self.app(scope, receive, send)
            return
        body, replay = await _read_all(receive)
        documents = wants_documents(body)
        held: list[Message] = []
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                held.append(message)
                return
            if message["type"] != "http.response.body" or not held:
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            start, answer = held[0], b"".join(chunks)
            new = reshaped(answer, documents=documents) if start["status"] == 200 else None
            if new is not None:
                headers = [(k, v) for k, v in start.get("headers", []) if k != b"content-length"]
                headers.append((b"content-length", str(len(new)).encode()))
                start = {**start, "headers": headers}
                answer = new
            await send(start)
            await send({"type": "http.response.body", "body": answer})

        await self.app(scope, replay, capture)


async def _read_all(receive: Receive) -> tuple[bytes, Receive]:
    """The request's body, and a ``receive`` that hands it to the app again."""
    parts: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break  # the client went away: the app sees the disconnect below
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    body = b"".join(parts)
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return body, replay
