"""A small reverse proxy zoo puts in front of engines that lack an API key or a served name.

``transformers serve`` and ``mlx_lm.server`` check no key and want the model directory (or no
model) in requests. The proxy listens on the public address, refuses requests without the
key (401; ``/health`` stays open for probes), rewrites the request's ``model`` to what the
engine wants, answers ``GET /v1/models`` with the served name, and renames ``model`` back to
the served name in JSON answers and in every event of a stream (SSE), so a client never sees
the engine's model directory. Everything else passes through byte for byte.

Stdlib only: a thread per connection with blocking sockets. A stream costs one recv and one
send per chunk, plus one small JSON parse per event when the engine's name must be replaced
(about 12 us, next to nothing against a token's time).
It runs as its own process (``python -m zoo.runtime.proxy``) recorded with the instance, so
stopping the instance stops both; the key comes in the environment, never in argv.
"""

from __future__ import annotations

import argparse
import contextlib
import hmac
import io
import json
import os
import signal
import socket
import socketserver
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

API_KEY_ENV = "ZOO_PROXY_API_KEY"
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "content-length",
    "host",
}
MAX_HEAD = 64 * 1024
MAX_BODY = 64 * 1024 * 1024
# A stream line longer than this is passed on unrenamed rather than buffered without bound.
MAX_EVENT_LINE = 4 * 1024 * 1024


@dataclass(frozen=True)
class ProxyConfig:
    """What the proxy does. ``request_model``: None passes the model through, "" removes it."""

    upstream_host: str
    upstream_port: int
    served_name: str
    api_key: str | None = None
    request_model: str | None = None


class BadRequest(Exception):
    pass


def _read_head(rfile: BinaryIO) -> tuple[str, list[tuple[str, str]]] | None:
    """The start line and headers; None when the peer closed before sending anything."""
    first = rfile.readline(MAX_HEAD + 1)
    if not first:
        return None
    lines = [first]
    total = len(first)
    while True:
        line = rfile.readline(MAX_HEAD + 1)
        total += len(line)
        if total > MAX_HEAD:
            raise BadRequest("header too large")
        if line in (b"\r\n", b"\n", b""):
            break
        lines.append(line)
    headers = []
    for raw in lines[1:]:
        name, sep, value = raw.decode("latin-1").partition(":")
        if not sep:
            raise BadRequest("malformed header")
        headers.append((name.strip(), value.strip()))
    return lines[0].decode("latin-1").rstrip("\r\n"), headers


def _header(headers: list[tuple[str, str]], name: str) -> str | None:
    name = name.lower()
    return next((v for k, v in headers if k.lower() == name), None)


def _read_body(rfile: BinaryIO, headers: list[tuple[str, str]]) -> bytes:
    if (_header(headers, "transfer-encoding") or "").lower() == "chunked":
        parts: list[bytes] = []
        total = 0
        while True:
            size = int(rfile.readline(1024).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                # Trailers (rare) end with an empty line.
                while rfile.readline(MAX_HEAD) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(parts)
            total += size
            if total > MAX_BODY:
                raise BadRequest("body too large")
            parts.append(_read_exactly(rfile, size))
            rfile.readline(16)
    length = int(_header(headers, "content-length") or 0)
    if length > MAX_BODY:
        raise BadRequest("body too large")
    return _read_exactly(rfile, length) if length else b""


def _body_pieces(rfile: io.BufferedReader, headers: list[tuple[str, str]]) -> Iterator[bytes]:
    """A response body piece by piece as the engine sends it (chunked, sized or until close).

    A body that ends early simply ends: the status line has gone out already, so the client
    sees a short stream, which is the truth.
    """
    if (_header(headers, "transfer-encoding") or "").lower() == "chunked":
        while True:
            size = int(rfile.readline(1024).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                return
            piece = rfile.read(size)
            if piece:
                yield piece
            if len(piece) != size:
                return
            rfile.readline(16)
    length = _header(headers, "content-length")
    remaining = int(length) if length is not None else None
    while remaining is None or remaining > 0:
        piece = rfile.read1(65536 if remaining is None else min(65536, remaining))
        if not piece:
            return
        if remaining is not None:
            remaining -= len(piece)
        yield piece


def _read_response_body(rfile: io.BufferedReader, headers: list[tuple[str, str]]) -> bytes:
    """A whole response body; unlike a request's, one without a length runs until close."""
    parts: list[bytes] = []
    total = 0
    for piece in _body_pieces(rfile, headers):
        total += len(piece)
        if total > MAX_BODY:
            raise BadRequest("the engine's answer is too large")
        parts.append(piece)
    return b"".join(parts)


class EventRenamer:
    """Renames ``model`` in the JSON ``data:`` lines of a server-sent event stream.

    Fed the stream in whatever pieces the engine sends, it gives back every complete line so
    far (renamed where it carries a top-level ``model``) and keeps a partial last line for the
    next piece; all other bytes, line endings included, stay exactly as they were.
    """

    def __init__(self, served_name: str) -> None:
        self.served_name = served_name
        self._pending = b""

    def feed(self, data: bytes) -> bytes:
        lines = (self._pending + data).splitlines(keepends=True)
        self._pending = b""
        if lines and not lines[-1].endswith((b"\n", b"\r")):
            self._pending = lines.pop()
            if len(self._pending) > MAX_EVENT_LINE:
                lines.append(self._pending)
                self._pending = b""
        return b"".join(self._rename(line) for line in lines)

    def close(self) -> bytes:
        """What is left when the stream ends (a last line without its line ending)."""
        rest, self._pending = self._pending, b""
        return self._rename(rest) if rest else b""

    def _rename(self, line: bytes) -> bytes:
        if not line.startswith(b"data:") or b'"model"' not in line:
            return line
        body = line[5:].rstrip(b"\r\n")
        ending = line[5 + len(body) :]
        try:
            data = json.loads(body)
        except ValueError:
            return line
        if not isinstance(data, dict) or data.get("model", self.served_name) == self.served_name:
            return line
        data["model"] = self.served_name
        return b"data: " + json.dumps(data, ensure_ascii=False).encode() + ending


def _read_exactly(rfile: BinaryIO, size: int) -> bytes:
    data = rfile.read(size)
    if len(data) != size:
        raise BadRequest("the body ended early")
    return data


def _response(status: str, body: dict[str, object]) -> bytes:
    payload = json.dumps(body).encode()
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n"
    ).encode() + payload


def _error(status: str, message: str, kind: str) -> bytes:
    return _response(status, {"error": {"message": message, "type": kind, "code": None}})


class Proxy:
    """Handles one client connection at a time per thread, with blocking sockets: a streamed
    token then costs one recv and one send, far less CPU than an asyncio stream round."""

    def __init__(self, config: ProxyConfig) -> None:
        self.config = config
        self.created = int(time.time())

    def authorized(self, headers: list[tuple[str, str]]) -> bool:
        if not self.config.api_key:
            return True
        given = _header(headers, "authorization") or ""
        scheme, _, token = given.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            token.strip().encode(), self.config.api_key.encode()
        )

    def handle(self, client: socket.socket) -> None:
        rfile = client.makefile("rb")
        try:
            self._handle(client, rfile)
        except (BadRequest, ValueError) as error:
            with contextlib.suppress(OSError):
                client.sendall(_error("400 Bad Request", str(error), "invalid_request_error"))
        except OSError:
            pass
        finally:
            rfile.close()
            with contextlib.suppress(OSError):
                client.shutdown(socket.SHUT_RDWR)
            client.close()

    def _handle(self, client: socket.socket, rfile: BinaryIO) -> None:
        head = _read_head(rfile)
        if head is None:
            return
        request_line, headers = head
        method, target, _version = request_line.split(" ", 2)
        path = target.split("?", 1)[0]
        if path != "/health" and not self.authorized(headers):
            client.sendall(
                _error(
                    "401 Unauthorized",
                    "a valid API key is required (Authorization: Bearer KEY)",
                    "authentication_error",
                )
            )
            return
        body = _read_body(rfile, headers)
        if method == "GET" and path.rstrip("/") == "/v1/models":
            client.sendall(
                _response(
                    "200 OK",
                    {
                        "object": "list",
                        "data": [
                            {
                                "id": self.config.served_name,
                                "object": "model",
                                "created": self.created,
                                "owned_by": "zoo",
                            }
                        ],
                    },
                )
            )
            return
        if body and "json" in (_header(headers, "content-type") or "json"):
            body = self._rewrite_request(body)
        self._forward(method, target, headers, body, client)

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

    def _forward(
        self,
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        body: bytes,
        client: socket.socket,
    ) -> None:
        cfg = self.config
        try:
            upstream = socket.create_connection((cfg.upstream_host, cfg.upstream_port), timeout=30)
        except OSError:
            client.sendall(_error("502 Bad Gateway", "the engine is not answering", "server_error"))
            return
        upstream.settimeout(None)  # generation can pause for long; the engine decides
        upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        up_rfile = upstream.makefile("rb")
        try:
            head = [f"{method} {target} HTTP/1.1", f"Host: {cfg.upstream_host}:{cfg.upstream_port}"]
            head += [f"{k}: {v}" for k, v in headers if k.lower() not in HOP_BY_HOP]
            head += [f"Content-Length: {len(body)}", "Connection: close", "", ""]
            upstream.sendall("\r\n".join(head).encode("latin-1") + body)
            answer = _read_head(up_rfile)
            if answer is None:
                client.sendall(
                    _error("502 Bad Gateway", "the engine closed the connection", "server_error")
                )
                return
            status_line, resp_headers = answer
            kept = [
                (k, v) for k, v in resp_headers if k.lower() not in ("connection", "keep-alive")
            ]
            # With request_model None the engine was asked for the served name and answers with
            # it itself: nothing to rename, so the answer passes through untouched.
            content_type = (_header(resp_headers, "content-type") or "").lower()
            if cfg.request_model is not None and _has_body(method, status_line):
                if "text/event-stream" in content_type:
                    self._stream_renamed(status_line, kept, up_rfile, resp_headers, client)
                    return
                if "json" in content_type:
                    payload = self._rewrite_response(_read_response_body(up_rfile, resp_headers))
                    kept = _without_framing(kept)
                    kept.append(("Content-Length", str(len(payload))))
                    client.sendall(self._head(status_line, kept) + payload)
                    return
            client.sendall(self._head(status_line, kept))
            # Everything else: a plain byte pipe until the engine closes.
            while True:
                chunk = up_rfile.read1(65536)
                if not chunk:
                    break
                client.sendall(chunk)
        finally:
            up_rfile.close()
            upstream.close()

    def _stream_renamed(
        self,
        status_line: str,
        kept: list[tuple[str, str]],
        up_rfile: io.BufferedReader,
        resp_headers: list[tuple[str, str]],
        client: socket.socket,
    ) -> None:
        """Pass an event stream on piece by piece, renamed; re-chunked since lengths change."""
        headers = [*_without_framing(kept), ("Transfer-Encoding", "chunked")]
        client.sendall(self._head(status_line, headers))
        renamer = EventRenamer(self.config.served_name)
        for piece in _body_pieces(up_rfile, resp_headers):
            out = renamer.feed(piece)
            if out:
                client.sendall(b"%x\r\n%s\r\n" % (len(out), out))
        rest = renamer.close()
        last = b"%x\r\n%s\r\n" % (len(rest), rest) if rest else b""
        client.sendall(last + b"0\r\n\r\n")

    @staticmethod
    def _head(status_line: str, headers: list[tuple[str, str]]) -> bytes:
        lines = [status_line, *(f"{k}: {v}" for k, v in headers), "Connection: close", "", ""]
        return "\r\n".join(lines).encode("latin-1")

    def _rewrite_response(self, payload: bytes) -> bytes:
        try:
            data = json.loads(payload)
        except ValueError:
            return payload
        if isinstance(data, dict) and "model" in data:
            data["model"] = self.config.served_name
            return json.dumps(data).encode()
        return payload


def _has_body(method: str, status_line: str) -> bool:
    """Answers to HEAD, 1xx, 204 and 304 carry no body, whatever their headers say."""
    status = status_line.split(" ", 2)[1] if status_line.count(" ") else ""
    return method != "HEAD" and not status.startswith("1") and status not in ("204", "304")


def _without_framing(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(k, v) for k, v in headers if k.lower() not in ("content-length", "transfer-encoding")]


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], proxy: Proxy) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.proxy = proxy
        super().__init__(address, _Handler)


class _Handler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        sock = self.request
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.proxy.handle(sock)  # type: ignore[attr-defined]


def serve(config: ProxyConfig, host: str, port: int) -> None:
    """Serve until SIGTERM or SIGINT."""
    server = _Server((host, port), Proxy(config))

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    print(
        f"zoo proxy listening on {host}:{port} -> {config.upstream_host}:{config.upstream_port}",
        flush=True,
    )
    try:
        server.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m zoo.runtime.proxy")
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
    args = parser.parse_args(argv)
    config = ProxyConfig(
        upstream_host=args.upstream_host,
        upstream_port=args.upstream_port,
        served_name=args.served_name,
        api_key=os.environ.get(API_KEY_ENV) or None,
        request_model=args.request_model,
    )
    try:
        serve(config, args.host, args.port)
    except OSError as error:
        print(f"zoo proxy: cannot listen on {args.host}:{args.port}: {error}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
