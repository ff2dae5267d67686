"""A minimal OpenAI-compatible server: answers chat completions by echoing the last message."""

from __future__ import annotations

import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main() -> None:
    model_path, host, port, served_name = sys.argv[1:5]
    with open(model_path, "rb") as handle:  # a real engine would load the weights here
        magic = handle.read(4)
    api_key = os.environ.get("ECHO_API_KEY", "")

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def _send(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path == "/health":
                self._send(200, {"status": "ok"})
            elif self.path == "/v1/models":
                self._send(200, {"object": "list", "data": [{"id": served_name}]})
            else:
                self._send(404, {"error": "not found"})

        def do_POST(self) -> None:
            if api_key and self.headers.get("Authorization") != f"Bearer {api_key}":
                self._send(401, {"error": "invalid api key"})
                return
            length = int(self.headers.get("Content-Length") or 0)
            request = json.loads(self.rfile.read(length) or b"{}")
            text = request.get("messages", [{}])[-1].get("content", "")
            self._send(
                200,
                {
                    "object": "chat.completion",
                    "model": served_name,
                    "choices": [
                        {
                            "index": 0,
                            "finish_reason": "stop",
                            "message": {
                                "role": "assistant",
                                "content": f"echo({magic.decode(errors='replace')}): {text}",
                            },
                        }
                    ],
                },
            )

    ThreadingHTTPServer((host, int(port)), Handler).serve_forever()


if __name__ == "__main__":
    main()
