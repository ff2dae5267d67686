"""Forward one request to a loaded model's engine and pass the answer back as it comes.

One shared ``httpx.AsyncClient`` (a client per request would close mid-stream); the body goes
upstream with ``model`` set to the name the engine serves, and comes back with ``model`` set
to the name the client asked for: in a JSON answer, and in every ``data:`` line of a stream,
which is otherwise passed through byte for byte as the engine sends it (no buffering).
A client that goes away closes the upstream request, so the engine frees its slot.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from zoo.serve.errors import LoadFailed
from zoo.serve.types import Upstream

# Headers that describe one hop, not the message (RFC 9110 §7.6.1), plus those httpx sets.
_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "content-encoding",
    "host",
}


# A stream line longer than this is passed on unrenamed rather than buffered without bound.
MAX_EVENT_LINE = 4 * 1024 * 1024


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
        except (ValueError, RecursionError):
            return line
        if not isinstance(data, dict) or data.get("model", self.served_name) == self.served_name:
            return line
        data["model"] = self.served_name
        return b"data: " + json.dumps(data, ensure_ascii=False).encode() + ending


@dataclass
class Answer:
    """An upstream answer: status, headers to pass on, and its body as it arrives."""

    status: int
    headers: dict[str, str]
    body: AsyncIterator[bytes]
    streaming: bool
    close: Any  # an async callable closing the upstream response
    # A whole JSON answer as parsed (renamed): read once, not again by whoever reshapes it.
    parsed: Any = None


# An engine may close a kept-alive connection just as the next request goes out on it
# (llama.cpp's server does so now and then after a streamed answer, without a
# "Connection: close" header): httpx then says the server disconnected without a response.
# The request is sent again; the closed connection has left the pool, so it goes out on
# another one. Should the engine have died instead, the next try fails to connect.
STALE_CONNECTION_RETRIES = 2


async def send_streaming(client: httpx.AsyncClient, request: httpx.Request) -> httpx.Response:
    """``client.send(request, stream=True)``, once more for each stale connection it meets."""
    for _ in range(STALE_CONNECTION_RETRIES):
        try:
            return await client.send(request, stream=True)
        except httpx.RemoteProtocolError:
            continue
    return await client.send(request, stream=True)


class Forwarder:
    """Sends requests to engines; one per gateway (it owns the connection pool)."""

    def __init__(self) -> None:
        # No read timeout: a long generation streams for minutes; connecting must be quick.
        self.client = httpx.AsyncClient(
            timeout=httpx.Timeout(connect=10.0, read=None, write=60.0, pool=None),
            # Idle engine connections are dropped before the engines' own 5 s idle timeout,
            # so a request never goes out on a connection the engine is closing.
            limits=httpx.Limits(
                max_connections=None, max_keepalive_connections=64, keepalive_expiry=2.0
            ),
            trust_env=False,
        )

    async def aclose(self) -> None:
        await self.client.aclose()

    async def send(
        self,
        upstream: Upstream,
        path: str,
        body: dict[str, Any],
        client_model: str,
        on_usage: Usage | None = None,
    ) -> Answer:
        """POST ``body`` to ``path`` on ``upstream``; the answer names ``client_model``.
        ``on_usage(prompt_tokens, completion_tokens)`` is called once the answer is complete
        (from the engine's usage report; for a stream without one, its events count)."""
        payload = dict(body)
        if upstream.request_model:
            payload["model"] = upstream.request_model
        else:
            payload.pop("model", None)
        headers = {"content-type": "application/json", "accept-encoding": "identity"}
        if upstream.api_key:
            headers["authorization"] = f"Bearer {upstream.api_key}"
        request = self.client.build_request(
            "POST", upstream.base_url + path, content=json.dumps(payload), headers=headers
        )
        try:
            response = await send_streaming(self.client, request)
        except httpx.HTTPError as error:
            raise LoadFailed(f"the engine behind {client_model} did not answer: {error}") from error
        kept = {k: v for k, v in response.headers.items() if k.lower() not in _HOP}
        streaming = response.headers.get("content-type", "").startswith("text/event-stream")
        if streaming:
            kept["x-accel-buffering"] = "no"  # tell any proxy in front not to buffer
            return Answer(
                response.status_code,
                kept,
                _renamed_stream(response, client_model, on_usage),
                True,
                response.aclose,
            )
        data = await response.aread()
        await response.aclose()
        parsed = _parsed(data)
        if on_usage is not None and response.status_code == 200:
            on_usage(*_usage_in(parsed))
        if isinstance(parsed, dict) and "model" in parsed and parsed["model"] != client_model:
            parsed["model"] = client_model
            data = json.dumps(parsed, ensure_ascii=False).encode()
        return Answer(response.status_code, kept, _once(data), False, _noop, parsed)


async def _renamed_stream(
    response: httpx.Response, client_model: str, on_usage: Usage | None = None
) -> AsyncIterator[bytes]:
    """The engine's events, renamed; an answer cut short by the engine (it died, or closed the
    connection before ``[DONE]``) ends with an error event, so the client knows it is cut.
    transformers serve ends a complete stream with a ``finish_reason`` event and no ``[DONE]``:
    a stream that said why it finished and closed cleanly is complete."""
    renamer = EventRenamer(client_model)
    tail = b""
    finished = broken = False
    counter = _StreamUsage()
    try:
        try:
            async for chunk in response.aiter_raw():
                out = renamer.feed(chunk)
                if out:
                    tail = (tail + out)[-64:]
                    finished = finished or _FINISHED.search(out) is not None
                    if on_usage is not None:
                        counter.feed(out)
                    yield out
        except httpx.HTTPError:
            broken = True  # reported below: the engine went away mid-answer
        rest = renamer.close()
        if rest:
            tail = (tail + rest)[-64:]
            finished = finished or _FINISHED.search(rest) is not None
            yield rest
        if response.status_code == 200 and (broken or not finished) and b"[DONE]" not in tail:
            yield _CUT_SHORT
    finally:
        await response.aclose()
        if on_usage is not None and response.status_code == 200:
            on_usage(*counter.totals())


Usage = Callable[[int, int], None]


class _StreamUsage:
    """Token counts of a stream: its usage event where the engine sends one, else one
    completion token per content event (engines stream a token per event)."""

    def __init__(self) -> None:
        self.events = 0
        self.reported: tuple[int, int] | None = None

    def feed(self, data: bytes) -> None:
        for line in data.split(b"\n"):
            if not line.startswith(b"data: {"):
                continue
            if b'"usage"' in line:
                found = _usage_of(line[6:])
                if any(found):
                    self.reported = found
                    continue
            self.events += 1

    def totals(self) -> tuple[int, int]:
        return self.reported or (0, self.events)


def _parsed(data: bytes) -> Any:
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        return None


def _usage_of(data: bytes) -> tuple[int, int]:
    return _usage_in(_parsed(data))


def _usage_in(answer: Any) -> tuple[int, int]:
    """(prompt, completion) tokens of an answer's usage. A rerank's usage has only
    ``total_tokens`` (every token is read, none generated): those count as prompt tokens."""
    try:
        usage = answer.get("usage") or {}
        completion = int(usage.get("completion_tokens") or 0)
        prompt = usage.get("prompt_tokens")
        if prompt is None:
            prompt = max(0, int(usage.get("total_tokens") or 0) - completion)
        return int(prompt or 0), completion
    except (ValueError, AttributeError, TypeError, RecursionError):
        return 0, 0


# A choice's non-null finish_reason ("stop", "length"...): the engine says the answer is whole.
_FINISHED = re.compile(rb'"finish_reason":\s*"')
# An OpenAI-style error event: the official clients raise it as an APIError.
_CUT_SHORT = (
    b'data: {"error": {"message": "the engine stopped in the middle of the answer", '
    b'"type": "server_error", "code": "engine_stopped", "param": null}}\n\n'
)


def _renamed_json(data: bytes, client_model: str) -> bytes:
    try:
        parsed = json.loads(data)
    except (ValueError, RecursionError):
        return data
    if isinstance(parsed, dict) and "model" in parsed and parsed["model"] != client_model:
        parsed["model"] = client_model
        return json.dumps(parsed, ensure_ascii=False).encode()
    return data


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def _noop() -> None:
    return None
