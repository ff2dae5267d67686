"""An OpenAI-style engine server for gateway tests: a real process that answers what it got.

Every answer's text is the JSON of what the request carried (model, prompt or messages, stop,
suffix, Authorization), so tests see exactly what the gateway sent upstream. Streams send
``--chunks`` events ``--delay`` seconds apart (long enough to test eviction waits, client
disconnects and uncut streams). ``--mode crash-after`` exits in the middle of a stream.
``--events FILE`` appends one JSON line per request event there: ``start``, ``done``, and
``gone`` when the gateway closed the connection before the answer was sent (the client left).
"""

from __future__ import annotations

import argparse
import json
import os
import select
import socket
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--name", default="gw")
    parser.add_argument("--mode", default="ok")
    parser.add_argument("--chunks", type=int, default=3)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--reply", default=None, help="answer this text instead of the echo")
    parser.add_argument("--events", default=None, help="append request events to this file")
    args, rest = parser.parse_known_args()
    key = os.environ.get("GW_API_KEY") or None

    def event(kind: str, request: dict[str, object]) -> None:
        if args.events:
            line = {"event": kind, "stream": bool(request.get("stream")), "pid": os.getpid()}
            with open(args.events, "a") as out:
                out.write(json.dumps(line) + "\n")

    print(f"gateway engine up: {args.name} {rest}", flush=True)
    if args.mode == "exit":
        print("fatal: cannot load the model", flush=True)
        sys.exit(3)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt: str, *a: object) -> None:
            print("request:", fmt % a, flush=True)

        def _json(self, code: int, body: object) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _hung_up_within(self, seconds: float) -> bool:
            """Wait ``seconds`` (generating), watching for the gateway closing the connection."""
            deadline = time.monotonic() + seconds
            while (left := deadline - time.monotonic()) > 0:
                readable, _, _ = select.select([self.connection], [], [], min(left, 0.05))
                if readable:
                    try:
                        if self.connection.recv(1, socket.MSG_PEEK) == b"":
                            return True
                    except OSError:
                        return True
                    time.sleep(min(left, 0.05))  # a pipelined request: not a hang-up
            return False

        def do_GET(self) -> None:
            if self.path == "/health":
                self._json(200, {"status": "ok"})
            elif self.path == "/v1/models":
                self._json(200, {"object": "list", "data": [{"id": args.name}]})
            else:
                self._json(404, {"error": "not found"})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            request = json.loads(self.rfile.read(length) or b"{}")
            if key and self.headers.get("Authorization") != f"Bearer {key}":
                self._json(401, {"error": {"message": "bad key"}})
                return
            seen = {
                "path": self.path,
                "model": request.get("model", "<none>"),
                "prompt": request.get("prompt"),
                "messages": request.get("messages"),
                "stop": request.get("stop"),
                "stop_token_ids": request.get("stop_token_ids"),
                "suffix": request.get("suffix", "<none>"),
                "keep_alive": request.get("keep_alive", "<none>"),
                "pid": os.getpid(),
            }
            # "<" escaped: the echo must survive the gateway cutting FIM output at sentinels.
            text = args.reply or json.dumps(seen).replace("<", "\\u003c")
            chat = self.path.endswith("/chat/completions")
            event("start", request)
            if request.get("stream"):
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.end_headers()
                step = max(1, len(text) // args.chunks + 1)
                pieces = [text[i : i + step] for i in range(0, len(text), step)]
                try:
                    for index, piece in enumerate(pieces):
                        if args.mode == "crash-after" and index == 1:
                            os._exit(4)
                        choice = (
                            {"index": 0, "delta": {"content": piece}}
                            if chat
                            else {"index": 0, "text": piece}
                        )
                        chunk = {"model": args.name, "object": "chunk", "choices": [choice]}
                        self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                        self.wfile.flush()
                        time.sleep(args.delay)
                    self.wfile.write(b"data: [DONE]\n\n")
                    self.wfile.flush()
                except OSError:  # BrokenPipe, ConnectionReset: the gateway hung up
                    event("gone", request)
                    self.close_connection = True
                    return
                event("done", request)
                self.close_connection = True
                return
            if self._hung_up_within(args.delay):
                event("gone", request)
                self.close_connection = True
                return
            event("done", request)
            choice = (
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": text},
                }
                if chat
                else {"index": 0, "finish_reason": "stop", "text": text}
            )
            self._json(
                200,
                {
                    "id": "x",
                    "object": "chat.completion" if chat else "text_completion",
                    "model": args.name,
                    "choices": [choice],
                    "usage": {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8},
                },
            )

    ThreadingHTTPServer((args.host, args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
