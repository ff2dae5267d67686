"""The key check vLLM's own leaves out: ``--middleware zoo_vllm.auth.RequireKey``.

vLLM 0.32's ``--api-key``/``VLLM_API_KEY`` guards only paths under /v1, /v2, /inference and
/cohere (its docs say so). The same server answers /rerank, /score, /pooling, /invocations
(SageMaker's route to every task, chat included), /tokenize and /metrics to anyone. zoo
lists /rerank as a rerank route and tells users the key is required, so this middleware
refuses every request without the key except ``GET /health``, zoo's readiness probe.

vLLM imports it by its dotted path in its API server process, in the engine's own
environment: the standard library only. It reads the key from the variable vLLM reads, so
the key stays out of argv.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

API_KEY_ENV = "VLLM_API_KEY"
OPEN = frozenset({("GET", "/health")})

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

UNAUTHORIZED = json.dumps(
    {
        "error": {
            "message": "a valid API key is required (Authorization: Bearer KEY)",
            "type": "authentication_error",
            "code": 401,
        }
    }
).encode()


class RequireKey:
    """Pure ASGI middleware: 401 unless ``Authorization: Bearer <VLLM_API_KEY>``."""

    def __init__(self, app: App, key: str | None = None) -> None:
        self.app = app
        secret = key if key is not None else os.environ.get(API_KEY_ENV, "")
        # Compared as digests: equal length, so compare_digest's time says nothing.
        self._digest = hashlib.sha256(secret.encode()).digest() if secret else None

    def allowed(self, scope: Scope) -> bool:
        if self._digest is None:
            return True
        if scope["type"] == "http" and (scope.get("method"), scope.get("path")) in OPEN:
            return True
        headers = dict(scope.get("headers") or ())
        scheme, _, token = headers.get(b"authorization", b"").partition(b" ")
        if scheme.lower() != b"bearer":
            return False
        return hmac.compare_digest(hashlib.sha256(token.strip()).digest(), self._digest)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or self.allowed(scope):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"www-authenticate", b"Bearer"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": UNAUTHORIZED})
