"""A small reverse proxy zoo puts in front of engines that lack an API key or a served name.

``transformers serve`` and ``mlx_lm.server`` check no key and want the model directory (or no
model) in requests. The proxy listens on the public address, refuses requests without the
key (401; ``/health`` stays open for probes), rewrites the request's ``model`` to what the
engine wants, answers ``GET /v1/models`` with the served name, rewrites ``model`` in plain
JSON answers back to the served name, and passes streams (SSE) through byte for byte.

Stdlib only (asyncio) and a plain byte pipe for streams, so it adds next to nothing to tokens/s.
It runs as its own process (``python -m zoo.runtime.proxy``) recorded with the instance, so
stopping the instance stops both; the key comes in the environment, never in argv.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hmac
import json
import os
import signal
import sys
import time
from dataclasses import dataclass

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


async def _read_head(reader: asyncio.StreamReader) -> tuple[str, list[tuple[str, str]]]:
    try:
        raw = await reader.readuntil(b"\r\n\r\n")
    except asyncio.LimitOverrunError as error:
        raise BadRequest("header too large") from error
    lines = raw.decode("latin-1").split("\r\n")
    headers = []
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise BadRequest("malformed header")
        headers.append((name.strip(), value.strip()))
    return lines[0], headers


def _header(headers: list[tuple[str, str]], name: str) -> str | None:
    name = name.lower()
    return next((v for k, v in headers if k.lower() == name), None)


async def _read_body(reader: asyncio.StreamReader, headers: list[tuple[str, str]]) -> bytes:
    if (_header(headers, "transfer-encoding") or "").lower() == "chunked":
        parts: list[bytes] = []
        total = 0
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                # Trailers (rare) end with an empty line.
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass
                return b"".join(parts)
            total += size
            if total > MAX_BODY:
                raise BadRequest("body too large")
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
    length = int(_header(headers, "content-length") or 0)
    if length > MAX_BODY:
        raise BadRequest("body too large")
    return await reader.readexactly(length) if length else b""


def _response(status: str, body: dict[str, object]) -> bytes:
    payload = json.dumps(body).encode()
    return (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n"
    ).encode() + payload


def _error(status: str, message: str, kind: str) -> bytes:
    return _response(status, {"error": {"message": message, "type": kind, "code": None}})


class Proxy:
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

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._handle(reader, writer)
        except (BadRequest, ValueError, asyncio.IncompleteReadError) as error:
            with contextlib.suppress(Exception):
                writer.write(_error("400 Bad Request", str(error), "invalid_request_error"))
                await writer.drain()
        except (ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()
                await writer.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request_line, headers = await _read_head(reader)
        method, target, _version = request_line.split(" ", 2)
        path = target.split("?", 1)[0]
        if path != "/health" and not self.authorized(headers):
            writer.write(
                _error(
                    "401 Unauthorized",
                    "a valid API key is required (Authorization: Bearer KEY)",
                    "authentication_error",
                )
            )
            await writer.drain()
            return
        body = await _read_body(reader, headers)
        if method == "GET" and path.rstrip("/") == "/v1/models":
            writer.write(
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
            await writer.drain()
            return
        streaming = False
        if body and "json" in (_header(headers, "content-type") or "json"):
            body, streaming = self._rewrite_request(body)
        await self._forward(method, target, headers, body, streaming, writer)

    def _rewrite_request(self, body: bytes) -> tuple[bytes, bool]:
        try:
            data = json.loads(body)
        except ValueError:
            return body, False
        if not isinstance(data, dict):
            return body, False
        streaming = bool(data.get("stream"))
        wanted = self.config.request_model
        if wanted is None or "model" not in data:
            return body, streaming
        if wanted == "":
            del data["model"]
        else:
            data["model"] = wanted
        return json.dumps(data).encode(), streaming

    async def _forward(
        self,
        method: str,
        target: str,
        headers: list[tuple[str, str]],
        body: bytes,
        streaming: bool,
        writer: asyncio.StreamWriter,
    ) -> None:
        cfg = self.config
        try:
            up_reader, up_writer = await asyncio.open_connection(
                cfg.upstream_host, cfg.upstream_port, limit=MAX_HEAD
            )
        except OSError:
            writer.write(_error("502 Bad Gateway", "the engine is not answering", "server_error"))
            await writer.drain()
            return
        try:
            head = [f"{method} {target} HTTP/1.1", f"Host: {cfg.upstream_host}:{cfg.upstream_port}"]
            head += [f"{k}: {v}" for k, v in headers if k.lower() not in HOP_BY_HOP]
            head += [f"Content-Length: {len(body)}", "Connection: close", "", ""]
            up_writer.write("\r\n".join(head).encode("latin-1") + body)
            await up_writer.drain()
            status_line, resp_headers = await _read_head(up_reader)
            kept = [
                (k, v) for k, v in resp_headers if k.lower() not in ("connection", "keep-alive")
            ]
            if (
                not streaming
                and cfg.request_model is not None
                and "json" in (_header(resp_headers, "content-type") or "")
            ):
                payload = self._rewrite_response(await _read_body(up_reader, resp_headers))
                kept = [
                    (k, v)
                    for k, v in kept
                    if k.lower() not in ("content-length", "transfer-encoding")
                ]
                kept.append(("Content-Length", str(len(payload))))
                writer.write(self._head(status_line, kept) + payload)
                await writer.drain()
                return
            writer.write(self._head(status_line, kept))
            # Streams and everything else: a plain byte pipe until the engine closes.
            while True:
                chunk = await up_reader.read(65536)
                if not chunk:
                    break
                writer.write(chunk)
                await writer.drain()
        finally:
            up_writer.close()

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


async def serve(
    config: ProxyConfig, host: str, port: int, ready: asyncio.Event | None = None
) -> None:
    proxy = Proxy(config)
    server = await asyncio.start_server(
        proxy.handle, host, port, limit=MAX_HEAD, reuse_address=True
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    async with server:
        print(
            f"zoo proxy listening on {host}:{port} -> "
            f"{config.upstream_host}:{config.upstream_port}",
            flush=True,
        )
        if ready is not None:
            ready.set()
        await stop.wait()


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
        asyncio.run(serve(config, args.host, args.port))
    except OSError as error:
        print(f"zoo proxy: cannot listen on {args.host}:{args.port}: {error}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
