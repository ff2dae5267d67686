"""The Parrot server: an OpenAI-compatible chat server in the standard library.

Started by zoo as ``python -m zoo_parrot.server --model PATH --host H --port P ...`` in the
engine's environment. It answers ``GET /health``, ``GET /v1/models`` and
``POST /v1/chat/completions`` (whole answers and ``"stream": true``).
"""

from __future__ import annotations

import argparse
import json
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def main() -> None:
    parser = argparse.ArgumentParser(prog="zoo_parrot.server")
    parser.add_argument("--model", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--served-name", required=True)
    parser.add_argument("--ctx-size", type=int, default=2048)
    args = parser.parse_args()
    with open(args.model, "rb") as weights:  # a real server loads the model here
        if weights.read(4) != b"GGUF":
            parser.error(f"{args.model} is not a GGUF file")
    name = args.served_name
    print(f"parrot: serving {args.model} as {name} on {args.host}:{args.port}", flush=True)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *values: object) -> None:
            print(format % values, flush=True)  # zoo keeps the server's output as its log

        def send_json(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path == "/health":
                self.send_json(200, {"status": "ok"})
            elif self.path == "/v1/models":
                self.send_json(200, {"object": "list", "data": [{"id": name, "object": "model"}]})
            else:
                self.send_json(404, {"error": {"message": f"no route {self.path}"}})

        def do_POST(self) -> None:
            if self.path != "/v1/chat/completions":
                self.send_json(404, {"error": {"message": f"no route {self.path}"}})
                return
            length = int(self.headers.get("Content-Length") or 0)
            request = json.loads(self.rfile.read(length) or b"{}")
            prompt = str((request.get("messages") or [{}])[-1].get("content", ""))
            # The "model": repeat the prompt, at most max_tokens words of it.
            words = prompt.split()[: int(request.get("max_tokens") or 256)] or ["..."]
            text = " ".join(words)
            created = int(time.time())
            if request.get("stream"):
                self.stream(text, created)
                return
            self.send_json(
                200,
                {
                    "id": "chatcmpl-parrot",
                    "object": "chat.completion",
                    "created": created,
                    "model": name,
                    "choices": [
                        {
                            "index": 0,
                            "finish_reason": "stop",
                            "message": {"role": "assistant", "content": text},
                        }
                    ],
                    "usage": {
                        "prompt_tokens": len(prompt.split()),
                        "completion_tokens": len(words),
                        "total_tokens": len(prompt.split()) + len(words),
                    },
                },
            )

        def stream(self, text: str, created: int) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            pieces = [{"role": "assistant", "content": text}, {}]
            for index, delta in enumerate(pieces):
                chunk = {
                    "id": "chatcmpl-parrot",
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": name,
                    "choices": [
                        {
                            "index": 0,
                            "delta": delta,
                            "finish_reason": "stop" if index == len(pieces) - 1 else None,
                        }
                    ],
                }
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
            self.close_connection = True

    ThreadingHTTPServer((args.host, args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
