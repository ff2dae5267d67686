"""When a streamed answer is whole: ``[DONE]``, or (transformers serve, which never sends
``[DONE]``) a ``finish_reason`` event and a clean end; anything else gets the error event."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx

from zoo.serve.proxy import Forwarder
from zoo.serve.types import Upstream

UPSTREAM = Upstream("http://engine", "served", None, "i-1", 0, "RAM")
CHUNK = b'data: {"model": "served", "choices": [{"index": 0, "delta": {"content": "hi"}}]}\n\n'
FINAL = (
    b'data: {"model": "served", "choices": [{"index": 0, "delta": {}, '
    b'"finish_reason": "length"}]}\n\n'
)


class _Body(httpx.AsyncByteStream):
    def __init__(self, pieces: list[bytes], fail: bool) -> None:
        self.pieces = pieces
        self.fail = fail

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for piece in self.pieces:
            yield piece
        if self.fail:
            raise httpx.RemoteProtocolError("peer closed connection")


def _streamed(pieces: list[bytes], *, fail: bool = False) -> bytes:
    async def run() -> bytes:
        forwarder = Forwarder()
        forwarder.client = httpx.AsyncClient(
            transport=httpx.MockTransport(
                lambda request: httpx.Response(
                    200,
                    headers={"content-type": "text/event-stream"},
                    stream=_Body(pieces, fail),
                )
            )
        )
        try:
            answer = await forwarder.send(UPSTREAM, "/v1/chat/completions", {}, "asked")
            return b"".join([chunk async for chunk in answer.body])
        finally:
            await forwarder.aclose()

    return asyncio.run(run())


def test_a_stream_ending_with_done_is_whole() -> None:
    out = _streamed([CHUNK, b"data: [DONE]\n\n"])
    assert b"engine_stopped" not in out and b'"model": "asked"' in out


def test_a_finish_reason_and_a_clean_end_is_whole_without_done() -> None:
    out = _streamed([CHUNK, FINAL])  # what transformers serve sends
    assert b"engine_stopped" not in out
    assert out.count(b'"model": "asked"') == 2


def test_a_stream_that_stops_without_finishing_is_cut() -> None:
    out = _streamed([CHUNK])
    assert out.startswith(CHUNK.replace(b"served", b"asked")) and b"engine_stopped" in out


def test_a_connection_broken_after_the_finish_reason_is_cut() -> None:
    assert b"engine_stopped" in _streamed([CHUNK, FINAL], fail=True)
