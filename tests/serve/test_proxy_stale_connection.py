"""An engine that closes a kept-alive connection as the next request arrives (llama.cpp's
server does, now and then, after a streamed answer) costs the client nothing: the request
goes out again on a new connection. An engine that never answers is still reported."""

from __future__ import annotations

import asyncio
import json

import pytest

from zoo.serve.errors import LoadFailed
from zoo.serve.proxy import STALE_CONNECTION_RETRIES, Forwarder
from zoo.serve.types import Upstream

ANSWER = json.dumps({"model": "served", "choices": []}).encode()


class _Engine:
    """An HTTP/1.1 server on 127.0.0.1 that drops the first ``drops`` requests it reads on
    reused connections, closing the socket without a word, and answers the rest (or, with
    ``answers``, only that many in all: an engine gone bad)."""

    def __init__(self, drops: int, answers: int | None = None) -> None:
        self.drops = drops
        self.answers = answers
        self.connections = 0
        self.answered = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        served_here = 0
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                await reader.readexactly(length)
                if served_here and self.drops:
                    self.drops -= 1
                    return  # the race: the engine closes as the request arrives
                if self.answers is not None and self.answered >= self.answers:
                    return
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                    + b"content-length: %d\r\n\r\n" % len(ANSWER)
                    + ANSWER
                )
                await writer.drain()
                served_here += 1
                self.answered += 1
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


async def _send_twice(engine: _Engine) -> list[int]:
    server = await asyncio.start_server(engine.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    upstream = Upstream(f"http://127.0.0.1:{port}", "served", None, "i-1", 0, "RAM")
    forwarder = Forwarder()
    try:
        statuses = []
        for _ in range(2):
            answer = await forwarder.send(upstream, "/v1/completions", {"prompt": "x"}, "asked")
            statuses.append(answer.status)
        return statuses
    finally:
        await forwarder.aclose()
        server.close()
        await server.wait_closed()


def test_a_request_on_a_connection_the_engine_closed_goes_out_again() -> None:
    engine = _Engine(drops=1)
    assert asyncio.run(_send_twice(engine)) == [200, 200]
    assert engine.answered == 2 and engine.connections == 2


def test_an_engine_that_keeps_dropping_requests_is_reported() -> None:
    engine = _Engine(drops=0, answers=1)
    with pytest.raises(LoadFailed, match="did not answer"):
        asyncio.run(_send_twice(engine))
    # The first connection, then one for each try of the second request: bounded.
    assert engine.connections == 1 + STALE_CONNECTION_RETRIES
