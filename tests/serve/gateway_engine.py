"""An OpenAI-style engine server for gateway tests: a real process that answers what it got.

Every answer's text is the JSON of what the request carried (model, prompt or messages, stop,
suffix, Authorization), so tests see exactly what the gateway sent upstream. Streams send
``--chunks`` events ``--delay`` seconds apart (long enough to test eviction waits, client
disconnects and uncut streams). ``--mode crash-after`` exits in the middle of a stream.
``--events FILE`` appends one JSON line per request event there: ``start``, ``done``, and
``gone`` when the gateway closed the connection before the answer was sent (the client left).
``--kind embedding`` serves ``/v1/embeddings`` instead (deterministic unit vectors of
``--dims`` floats from each text's hash, always floats at full length, as an engine that
ignores ``dimensions`` and ``encoding_format`` would); ``--kind rerank`` serves ``/v1/rerank``
(a document's score is the share of the query's words it has; results in document order,
documents included). Both answer ``seen``: the request's fields, for tests to check.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
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
    parser.add_argument("--kind", default="llm", help="llm, embedding or rerank")
    parser.add_argument("--dims", type=int, default=8, help="an embedding's length")
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
            if args.kind != "llm" or self.path in ("/v1/embeddings", "/v1/rerank"):
                self._pooling(request)
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

        def _pooling(self, request: dict[str, object]) -> None:
            route = {"embedding": "/v1/embeddings", "rerank": "/v1/rerank"}.get(args.kind)
            if self.path != route:
                message = f"this server serves {route or 'chat'}, not {self.path}"
                self._json(404, {"error": {"message": message}})
                return
            event("start", request)
            if self._hung_up_within(args.delay):
                event("gone", request)
                self.close_connection = True
                return
            event("done", request)
            seen = {"fields": sorted(request), "model": request.get("model"), "pid": os.getpid()}
            if args.kind == "embedding":
                raw = request.get("input")
                texts = [raw] if isinstance(raw, str) or _ids(raw) else raw
                assert isinstance(texts, list)
                data = [
                    {"object": "embedding", "index": i, "embedding": vector(t, args.dims)}
                    for i, t in enumerate(texts)
                ]
                words = sum(len(str(t).split()) for t in texts)
                usage = {"prompt_tokens": words, "total_tokens": words}
                body = {"object": "list", "data": data, "model": args.name, "usage": usage}
            else:
                query = set(str(request.get("query")).lower().split())
                documents = request.get("documents")
                assert isinstance(documents, list)
                docs = [str(d) for d in documents]
                results = [
                    {
                        "index": i,
                        "relevance_score": len(query & set(d.lower().split())) / len(query),
                        "document": {"text": d},
                    }
                    for i, d in enumerate(docs)
                ]
                words = len(query) + sum(len(d.split()) for d in docs)
                body = {"id": "r", "model": args.name, "results": results}
                body["usage"] = {"total_tokens": words}
            self._json(200, {**body, "seen": seen})

    ThreadingHTTPServer((args.host, args.port), Handler).serve_forever()


def _ids(value: object) -> bool:
    """A list of token ids (one text), not a list of texts."""
    return isinstance(value, list) and bool(value) and all(type(i) is int for i in value)


def vector(text: object, dims: int) -> list[float]:
    """A deterministic unit vector for ``text`` (tests compute the same one)."""
    digest = hashlib.sha256(json.dumps(text).encode()).digest()
    values = [(digest[i % len(digest)] - 127.5) / 127.5 + i * 1e-3 for i in range(dims)]
    norm = math.sqrt(sum(v * v for v in values))
    return [v / norm for v in values]


if __name__ == "__main__":
    main()
