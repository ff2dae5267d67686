"""A small OpenAI-style HTTP server that behaves like an engine, for process-management tests.

It is a real server process (so starting, readiness, stopping, orphans and logs are tested for
real); the real engines are exercised end to end in tests/e2e. Modes (``--mode``):
``ok`` serves; ``exit`` prints a line and exits 3; ``unhealthy`` answers /health 503 forever;
``late`` answers /health at once but completions only after 1.5 s (like vLLM);
``child`` also starts a long-running child process (to test that stops reach the group).
It echoes what it received: the request's model and Authorization header.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STARTED = time.monotonic()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--mode", default="ok")
    parser.add_argument("--name", default="fake")
    args, passed_through = parser.parse_known_args()
    print(f"fake engine starting in mode {args.mode}; extra args {passed_through}", flush=True)
    if args.mode == "exit":
        print("fatal: cannot load model weights", flush=True)
        sys.exit(3)
    if args.mode == "child":
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        print(f"child pid {child.pid}", flush=True)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt: str, *a: object) -> None:
            print("request:", fmt % a, flush=True)

        def _send(self, code: int, body: object, ctype: str = "application/json") -> None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path == "/health":
                self._send(503 if args.mode == "unhealthy" else 200, {"status": "ok"})
            elif self.path == "/v1/models":
                self._send(200, {"object": "list", "data": [{"id": args.name}]})
            else:
                self._send(404, {"error": "not found"})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            request = json.loads(self.rfile.read(length) or b"{}")
            if args.mode == "late" and time.monotonic() - STARTED < 1.5:
                self._send(503, {"error": "loading"})
                return
            seen = {
                "model": request.get("model", "<none>"),
                "auth": self.headers.get("Authorization", "<none>"),
            }
            text = json.dumps(seen)
            if request.get("stream"):
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for piece in (text[: len(text) // 2], text[len(text) // 2 :]):
                    event = (
                        "data: "
                        + json.dumps(
                            {
                                "model": args.name,
                                "object": "chat.completion.chunk",
                                "choices": [{"index": 0, "delta": {"content": piece}}],
                            }
                        )
                        + "\n\n"
                    )
                    raw = event.encode()
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(raw), raw))
                    self.wfile.flush()
                done = b"data: [DONE]\n\n"
                self.wfile.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(done), done))
                return
            self._send(
                200,
                {
                    "id": "x",
                    "object": "chat.completion",
                    "model": args.name,
                    "choices": [
                        {
                            "index": 0,
                            "finish_reason": "stop",
                            "message": {"role": "assistant", "content": text},
                        }
                    ],
                },
            )

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"listening on {args.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
