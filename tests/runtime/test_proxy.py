"""The launch path's key/served-name proxy (``python -m zoo.serve.single``, the gateway's proxy
for one model) in front of a real server process, streaming included."""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from runtime_helpers import FAKE_ENGINE

from zoo.runtime import process
from zoo.serve.proxy import EventRenamer


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[int]:
    port = process.free_port()
    proc = process.start(
        [sys.executable, str(FAKE_ENGINE), "--port", str(port), "--name", "/models/dir"],
        log_path=tmp_path / "up.log",
        foreground=True,
    )
    process.wait_ready(
        f"http://127.0.0.1:{port}",
        health_path="/health",
        model=None,
        api_key=None,
        alive=lambda: proc.poll() is None,
        timeout=20,
        log_path=tmp_path / "up.log",
        what="upstream",
    )
    yield port
    process.stop_group(proc.pid, reap=proc)


def _proxy(tmp_path: Path, upstream: int, *extra: str, key: str = "") -> Iterator[str]:
    port = process.free_port()
    proc = process.start(
        [
            sys.executable,
            "-m",
            "zoo.serve.single",
            "--port",
            str(port),
            "--upstream-port",
            str(upstream),
            "--served-name",
            "served",
            *extra,
        ],
        log_path=tmp_path / "proxy.log",
        env={"ZOO_PROXY_API_KEY": key},
        foreground=True,
    )
    deadline = time.monotonic() + 10
    while "listening" not in (tmp_path / "proxy.log").read_text():
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    process.stop_group(proc.pid, reap=proc)


@pytest.fixture
def proxied(tmp_path: Path, upstream: int) -> Iterator[str]:
    yield from _proxy(tmp_path, upstream, "--request-model", "", key="k1")


def test_health_is_open_but_everything_else_needs_the_key(proxied: str) -> None:
    assert httpx.get(f"{proxied}/health", trust_env=False).status_code == 200
    denied = httpx.post(f"{proxied}/v1/chat/completions", json={}, trust_env=False)
    assert denied.status_code == 401
    assert denied.json()["error"]["type"] == "authentication_error"


def test_request_model_is_removed_and_answer_renamed(proxied: str) -> None:
    answer = httpx.post(
        f"{proxied}/v1/chat/completions",
        trust_env=False,
        headers={"Authorization": "Bearer k1"},
        json={"model": "served", "messages": []},
    ).json()
    assert '"model": "<none>"' in answer["choices"][0]["message"]["content"]
    assert answer["model"] == "served"


def test_streams_carry_the_served_name_in_every_event(proxied: str) -> None:
    body = {"model": "served", "messages": [], "stream": True}
    with httpx.stream(
        "POST",
        f"{proxied}/v1/chat/completions",
        json=body,
        trust_env=False,
        headers={"Authorization": "Bearer k1"},
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream"
        events = [line for line in response.iter_lines() if line.startswith("data: ")]
    assert len(events) == 3 and events[-1] == "data: [DONE]"
    chunks = [json.loads(event.removeprefix("data: ")) for event in events[:-1]]
    # The engine names its model directory; the client must only ever see the served name.
    assert [chunk["model"] for chunk in chunks] == ["served", "served"]
    assert "/models/dir" not in "".join(events)
    text = "".join(chunk["choices"][0]["delta"]["content"] for chunk in chunks)
    assert json.loads(text) == {"model": "<none>", "auth": "Bearer k1"}


def test_openai_client_works_through_the_proxy(proxied: str) -> None:
    from openai import OpenAI

    client = OpenAI(base_url=f"{proxied}/v1", api_key="k1")
    assert [m.id for m in client.models.list()] == ["served"]
    reply = client.chat.completions.create(
        model="served", messages=[{"role": "user", "content": "hi"}]
    )
    assert reply.model == "served"
    chunks = list(
        client.chat.completions.create(
            model="served", stream=True, messages=[{"role": "user", "content": "hi"}]
        )
    )
    assert chunks and {c.model for c in chunks} == {"served"}
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert '"auth": "Bearer k1"' in text


def test_without_a_key_and_rewrite_it_is_a_plain_pass_through(
    tmp_path: Path, upstream: int
) -> None:
    for base in _proxy(tmp_path, upstream):
        answer = httpx.post(
            f"{base}/v1/chat/completions", trust_env=False, json={"model": "served", "messages": []}
        ).json()
        assert '"model": "served"' in answer["choices"][0]["message"]["content"]
        assert answer["model"] == "/models/dir"


def test_engine_down_is_a_502(tmp_path: Path) -> None:
    dead = process.free_port()
    for base in _proxy(tmp_path, dead):
        answer = httpx.post(f"{base}/v1/chat/completions", json={}, trust_env=False)
        assert answer.status_code == 502


def test_garbage_request_gets_a_400_not_a_crash(proxied: str) -> None:
    import socket

    host, port = proxied.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(b"NONSENSE\r\nbroken header line\r\n\r\n")
        assert sock.recv(1000).startswith(b"HTTP/1.1 400")
    assert httpx.get(f"{proxied}/health", trust_env=False).status_code == 200


def _raw_upstream(
    pieces: list[bytes], requests: list[bytes] | None = None
) -> tuple[int, threading.Thread]:
    """An engine that answers one request with exactly these bytes, one write each, then
    closes: to test framings and splits the fake engine never produces. The request it got
    goes into ``requests``."""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def answer() -> None:
        with server, server.accept()[0] as conn:
            received = b""
            while b"\r\n\r\n" not in received:
                received += conn.recv(65536)
            head, _, body = received.partition(b"\r\n\r\n")
            length = next(
                (
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                ),
                0,
            )
            while len(body) < length:
                body += conn.recv(65536)
            if requests is not None:
                requests.append(head + b"\r\n\r\n" + body)
            for piece in pieces:
                conn.sendall(piece)
                time.sleep(0.05)

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    return port, thread


def test_a_stream_without_framing_split_mid_line_is_renamed_intact(tmp_path: Path) -> None:
    event = json.dumps({"model": "/models/dir", "choices": [{"delta": {"content": "é \\n"}}]})
    cut = len(event) // 2
    pieces = [
        # No Content-Length and no chunking: the stream runs until the engine closes.
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n",
        b": a comment line\r\n\r\ndata: " + event[:cut].encode(),
        event[cut:].encode() + b"\r\n\r\n",
        b'data: {"usage": {"total_tokens": 3}}\r\n\r\ndata: [DONE]\r\n\r\n',
    ]
    port, thread = _raw_upstream(pieces)
    for base in _proxy(tmp_path, port, "--request-model", ""):
        with httpx.stream(
            "POST",
            f"{base}/v1/chat/completions",
            json={"model": "served", "stream": True},
            trust_env=False,
        ) as response:
            received = b"".join(response.iter_bytes())
    thread.join(5)
    expected = event.replace('"/models/dir"', '"served"')
    assert received.split(b"\r\n\r\n") == [
        b": a comment line",
        b"data: " + json.dumps(json.loads(expected), ensure_ascii=False).encode(),
        b'data: {"usage": {"total_tokens": 3}}',
        b"data: [DONE]",
        b"",
    ]


def test_json_answers_without_a_length_are_renamed_too(tmp_path: Path) -> None:
    answer = json.dumps({"model": "/models/dir", "object": "chat.completion"}).encode()
    port, thread = _raw_upstream(
        [b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n", answer]
    )
    for base in _proxy(tmp_path, port, "--request-model", ""):
        reply = httpx.post(f"{base}/v1/chat/completions", json={"model": "x"}, trust_env=False)
    thread.join(5)
    assert reply.json() == {"model": "served", "object": "chat.completion"}


def test_event_renamer_keeps_every_other_byte() -> None:
    renamer = EventRenamer("served")
    stream = (
        b'data: {"model": "/d", "x": 1}\n\n'
        b'data:{"model": "served"}\r\r'
        b'event: ping\ndata: not json with "model"\n\n'
        b'data: ["model"]\n\n'
        b'data: {"model": "/d"}'
    )
    # Every split point, so a line cut anywhere (even between \r and \n) comes out the same.
    for cut in range(len(stream) + 1):
        out = renamer.feed(stream[:cut]) + renamer.feed(stream[cut:]) + renamer.close()
        assert out == (
            b'data: {"model": "served", "x": 1}\n\n'
            b'data:{"model": "served"}\r\r'
            b'event: ping\ndata: not json with "model"\n\n'
            b'data: ["model"]\n\n'
            b'data: {"model": "served"}'
        ), cut


def test_other_routes_pass_through_with_their_query_and_body(tmp_path: Path) -> None:
    requests: list[bytes] = []
    port, thread = _raw_upstream(
        [b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"], requests
    )
    for base in _proxy(tmp_path, port, "--request-model", "", key="k1"):
        reply = httpx.put(
            f"{base}/v1/other/thing?a=1&b=%2F",
            content=b"not json",
            headers={"Authorization": "Bearer k1", "Content-Type": "text/plain"},
            trust_env=False,
        )
    thread.join(5)
    assert (reply.status_code, reply.text) == (200, "ok")
    [request] = requests
    assert request.startswith(b"PUT /v1/other/thing?a=1&b=%2F HTTP/1.1\r\n")
    assert request.endswith(b"\r\n\r\nnot json")


def test_a_client_that_goes_away_closes_the_engines_stream(tmp_path: Path) -> None:
    """The engine must learn that nobody listens any more, so it frees its slot."""
    server = socket.create_server(("127.0.0.1", 0))
    closed = threading.Event()

    def endless() -> None:
        with server, server.accept()[0] as conn:
            while b"\r\n\r\n" not in conn.recv(65536):
                pass
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n")
            deadline = time.monotonic() + 20
            try:
                while time.monotonic() < deadline:
                    conn.sendall(b'data: {"model": "/models/dir", "choices": []}\n\n')
                    time.sleep(0.02)
            except OSError:
                closed.set()

    thread = threading.Thread(target=endless, daemon=True)
    thread.start()
    for base in _proxy(tmp_path, server.getsockname()[1], "--request-model", ""):
        with httpx.stream(
            "POST", f"{base}/v1/chat/completions", json={"stream": True}, trust_env=False
        ) as response:
            first = next(response.iter_lines())
        assert first == 'data: {"model": "served", "choices": []}'
        assert closed.wait(10)


def test_a_kept_alive_client_connection_serves_many_requests(proxied: str) -> None:
    import http.client

    host, port = proxied.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    sockets = []
    try:
        for _ in range(3):
            conn.request("GET", "/v1/models", headers={"Authorization": "Bearer k1"})
            response = conn.getresponse()
            assert json.loads(response.read())["data"][0]["id"] == "served"
            sockets.append(conn.sock)
        # http.client reconnects when a server closes: one socket means one connection.
        assert sockets[0] is not None and sockets == [sockets[0]] * 3
    finally:
        conn.close()
