"""Cut over-long pooling inputs, as the spec's ``truncate: true`` says:
``--middleware zoo_vllm.truncate.CutToContext``.

vLLM 0.32 refuses an input longer than ``--max-model-len`` (a 400: "This model's maximum
context length is 256 tokens. However, your prompt contains at least 257 input tokens ...")
unless the request carries ``truncate_prompt_tokens``, where ``-1`` means "cut to the
model's maximum input" (``TokenizeParams``: -1 maps to max_input_tokens; for a
(query, document) pair the pair is cut, as a cross-encoder's tokenizer does). It has no
server-wide default, so this middleware adds ``"truncate_prompt_tokens": -1`` to the JSON
body of the pooling routes unless the client set the field itself. zoo passes the family's
context_length as ``--max-model-len``, so the cut is the spec's limit. With ``truncate:
false`` the plugin leaves this middleware out and vLLM's own 400 (naming the limit) stands.

Cohere's /v2/embed has its own ``truncate`` field and is left alone. Loaded by vLLM in its
API server process by the dotted path: the standard library only.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

ROUTES = frozenset(
    {"/v1/embeddings", "/pooling", "/v1/rerank", "/rerank", "/v2/rerank", "/score", "/v1/score"}
)
FIELD = "truncate_prompt_tokens"
TO_MODEL_MAXIMUM = -1

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


def with_truncation(body: bytes) -> bytes | None:
    """The body asking vLLM to cut to the model's maximum, or None to send it as it is (not a
    JSON object, or the client chose its own ``truncate_prompt_tokens``)."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return None  # vLLM answers its own 400 for broken JSON
    if not isinstance(data, dict) or FIELD in data:
        return None
    data[FIELD] = TO_MODEL_MAXIMUM
    return json.dumps(data).encode()


class CutToContext:
    """Pure ASGI middleware for the pooling routes (see the module's docstring)."""

    def __init__(self, app: App) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not (
            scope["type"] == "http" and scope.get("method") == "POST" and scope["path"] in ROUTES
        ):
            await self.app(scope, receive, send)
            return
        parts: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay(b"".join(parts), receive, message), send)
                return  # the client went away: the app sees the disconnect
            parts.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(parts)
        new = with_truncation(body)
        if new is not None:
            headers = [(k, v) for k, v in scope.get("headers", []) if k != b"content-length"]
            headers.append((b"content-length", str(len(new)).encode()))
            scope = {**scope, "headers": headers}
            body = new
        await self.app(scope, _replay(body, receive, None), send)


def _replay(body: bytes, receive: Receive, last: Message | None) -> Receive:
    """A ``receive`` that hands ``body`` to the app once, then whatever came (``last``) or
    comes next from the client."""
    sent = False

    async def replay() -> Message:
        nonlocal sent, last
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        if last is not None:
            message, last = last, None
            return message
        return await receive()

    return replay
