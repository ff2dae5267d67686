"""Reading a request body with a bound: refused from its Content-Length before a byte is
read when it announces more, and read only up to the bound when it does not (chunked)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from zoo.serve.errors import TooLarge

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


def _too_large(limit: int) -> TooLarge:
    return TooLarge(f"the request body is larger than {limit // 2**20} MB")
