"""Reading a request body with a bound: refused from its Content-Length before a byte is
read when it announces more, and read only up to the bound when it does not (chunked); and
reading it as the JSON object every POST route takes."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from zoo.serve.errors import InvalidRequest, TooLarge

if TYPE_CHECKING:
    from starlette.requests import Request

# Largest request body read (a chat with a long context is a few MB at most).
MAX_BODY = 32 * 1024 * 1024


async def read_body(request: Request, limit: int = MAX_BODY) -> bytes:
    """The whole body, or TooLarge (413) past ``limit`` bytes."""
    announced = request.headers.get("content-length", "")
    if announced.isdigit() and int(announced) > limit:
        raise _too_large(limit)
    # Pieces joined once at the end: gluing each onto the last copies the body's square.
    pieces: list[bytes] = []
    size = 0
    async for piece in request.stream():
        size += len(piece)
        if size > limit:
            raise _too_large(limit)
        pieces.append(piece)
    return b"".join(pieces)


async def read_json(request: Request) -> dict[str, Any]:
    """The request body as a JSON object, or a 400 saying what is wrong with it."""
    raw = await read_body(request)
    try:
        body = json.loads(raw or b"{}")
    except RecursionError as error:  # nested deeper than Python's parser goes
        raise InvalidRequest("the request body is nested too deeply") from error
    except ValueError as error:
        raise InvalidRequest(f"the request body is not JSON: {error}") from error
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object")
    return body


def _too_large(limit: int) -> TooLarge:
    return TooLarge(f"the request body is larger than {limit // 2**20} MB")
