"""The chat client against a real HTTP server on loopback that streams what engines stream."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from zoo.chat.client import ChatClient, ChatError
from zoo.chat.reasoning import ANSWER, REASONING, Piece


def _event(delta: dict[str, str], finish: str | None = None) -> bytes:
    body = {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return f"data: {json.dumps(body)}\n\n".encode()


class Server:
    """Answers /v1/chat/completions with the scripted ``reply`` and records the requests."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.headers: list[str | None] = []
        self.status = 200
        self.reply: list[bytes] = []
        self.cut = False
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                body = json.dumps({"data": [{"id": "smol"}]}).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                outer.requests.append(json.loads(self.rfile.read(length)))
                outer.headers.append(self.headers.get("Authorization"))
                if outer.status != 200:
                    body = json.dumps({"error": {"message": "model is loading"}}).encode()
                    self.send_response(outer.status)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                if outer.cut:
                    self.send_header("Content-Length", "100000")  # promised, never sent
                else:
                    self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for part in outer.reply:
                    if outer.cut:
                        self.wfile.write(part)
                    else:
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                    self.wfile.flush()
                if outer.cut:
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.wfile.write(b"0\r\n\r\n")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


def test_streams_answer_and_reasoning_field_and_sends_options_and_key(server: Server) -> None:
    server.reply = [
        _event({"role": "assistant"}),
        _event({"reasoning_content": "Hmm."}),
        _event({"content": "Par"}),
        _event({"content": "is."}, finish="length"),
        b"data: [DONE]\n\n",
    ]
    with ChatClient(server.url, "smol", api_key="k-123") as client:
        pieces = list(client.stream([{"role": "user", "content": "q"}], {"temperature": 0}))
        assert pieces == [Piece(REASONING, "Hmm."), Piece(ANSWER, "Par"), Piece(ANSWER, "is.")]
        assert client.outcome.finish_reason == "length"
        assert client.alive()
    assert server.requests == [
        {
            "model": "smol",
            "messages": [{"role": "user", "content": "q"}],
            "stream": True,
            "temperature": 0,
        }
    ]
    assert server.headers == ["Bearer k-123"]


def test_inline_think_tags_are_split_with_the_familys_tags(server: Server) -> None:
    server.reply = [_event({"content": "<think>a</th"}), _event({"content": "ink>b"})]
    with ChatClient(server.url, "smol", reasoning_tags=("<think>", "</think>")) as client:
        assert list(client.stream([], {})) == [Piece(REASONING, "a"), Piece(ANSWER, "b")]
        assert not ChatClient(server.url, "other").alive()  # not a model it serves


def test_server_errors_are_one_line_with_its_message(server: Server) -> None:
    server.status = 503
    with (
        ChatClient(server.url, "smol") as client,
        pytest.raises(ChatError, match="answered 503: model is loading"),
    ):
        list(client.stream([], {}))
    server.status = 401
    with ChatClient(server.url, "smol") as client, pytest.raises(ChatError, match="ZOO_API_KEY"):
        list(client.stream([], {}))


def test_an_error_event_mid_stream_is_reported(server: Server) -> None:
    server.reply = [_event({"content": "a"}), b'data: {"error": {"message": "out of memory"}}\n\n']
    with ChatClient(server.url, "smol") as client, pytest.raises(ChatError, match="out of memory"):
        list(client.stream([], {}))


def test_a_connection_cut_mid_answer_says_so(server: Server) -> None:
    server.cut = True
    server.reply = [_event({"content": "a"})]
    with (
        ChatClient(server.url, "smol") as client,
        pytest.raises(ChatError, match="broke mid-answer"),
    ):
        list(client.stream([], {}))


def test_nothing_listening_is_one_friendly_line() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with ChatClient(f"http://127.0.0.1:{port}/v1", "smol") as client:
        with pytest.raises(ChatError, match="cannot reach"):
            list(client.stream([], {}))
        assert not client.alive()
