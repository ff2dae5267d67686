"""A real HTTP server on loopback that answers as OpenAI-compatible engines do (for the
chat tests): ``GET /v1/models`` lists ``models``, ``POST /v1/chat/completions`` streams the
scripted ``reply`` (or answers ``status`` with an error document), every request recorded."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def event(delta: dict[str, str], finish: str | None = None) -> bytes:
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
        self.models = ["smol"]
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                body = json.dumps({"data": [{"id": m} for m in outer.models]}).encode()
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
