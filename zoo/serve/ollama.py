"""Ollama's API for the clients that speak only Ollama, translated to the OpenAI upstream.

``/api/chat`` and ``/api/generate`` become ``/v1/chat/completions`` or ``/v1/completions``
(``suffix`` renders the family's FIM template, ``raw`` or a model without chat sends the
prompt as it is), always streamed from upstream and answered as Ollama's NDJSON lines (or one
object with ``"stream": false``). ``/api/tags``, ``/api/ps``, ``/api/show`` and
``/api/version`` describe what the gateway serves. Errors are Ollama's ``{"error": "..."}``.

The routes reach the gateway only through ``GatewayLike``; everything they send upstream is
a plain OpenAI body (transformers serve answers 422 to fields outside the OpenAI schema), plus
``keep_alive``, which the gateway takes out before forwarding.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

import anyio
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from zoo import kinds
from zoo.errors import NotFoundError, ZooError
from zoo.serve.errors import GatewayError
from zoo.serve.fim import Fim, SentinelCutter, SseDecoder, fim_request

if TYPE_CHECKING:
    from starlette.requests import Request

    from zoo.catalog.model import FimTemplate

NDJSON = "application/x-ndjson"
# What /api/ps says for a model kept forever (keep_alive < 0): Ollama shows a far-off date too.
FOREVER = datetime(2318, 1, 1, tzinfo=UTC)

# Ollama options with an OpenAI field of the same meaning. The others (top_k, min_p,
# repeat_penalty, mirostat...) have none that every engine takes, and load options (num_ctx,
# num_gpu...) are the gateway config's business: they are not sent.
_SAME_OPTIONS = ("temperature", "top_p", "seed", "presence_penalty", "frequency_penalty")

# zoo abilities -> Ollama capabilities (what clients test before offering a feature).
# Abilities are a language model's; "embedding" comes from the family's kind.
_CAPABILITIES = {
    "generate": "completion",
    "chat": "completion",
    "tools": "tools",
    "fim": "insert",
    "vision": "vision",
    "reasoning": "thinking",
    "hybrid": "thinking",
}

# The Ollama route for a model of each kind, named when a request comes to an Ollama route
# of another kind (a reranker has none: its error names /v1/rerank).
_ROUTE_FOR_KIND = {kinds.LLM: "/api/chat", kinds.EMBEDDING: "/api/embed"}


class GatewayLike(Protocol):
    """What the Ollama routes need from the gateway.

    A model is described by a mapping with any of these keys (missing ones are left out of
    the answers): ``id`` or ``name``, ``family``, ``format``, ``quantization``, ``parameters``
    (billions), ``size`` (bytes on disk), ``status`` ("loaded", ...) or ``loaded`` (bool),
    ``memory_bytes``, ``gpu_memory_bytes``, ``expires_at`` (Unix seconds; None while loaded:
    kept forever), ``context_length``, ``abilities``, ``modified_at`` (Unix seconds),
    ``license``, ``template`` (the chat template), and for ``show``: ``fim`` (a ``Fim`` or a
    catalog ``FimTemplate``; None: no fill-in-the-middle), ``stop``, ``stop_token_ids``.
    """

    @property
    def version(self) -> str: ...

    def list_models(self) -> Sequence[Mapping[str, Any]]:
        """Every model the gateway serves."""
        ...

    def show(self, name: str) -> Mapping[str, Any]:
        """The model ``name`` names (raises ModelNotFound)."""
        ...

    async def complete(
        self, name: str, body: dict[str, Any], path: str
    ) -> tuple[int, Mapping[str, str], AsyncIterator[bytes]]:
        """Forward the OpenAI ``body`` to ``path`` of the model ``name`` names: the status,
        headers and body bytes (SSE when ``stream``). Closing the iterator ends the request
        upstream and releases the model."""
        ...

    async def embed(self, name: str, body: dict[str, Any]) -> tuple[int, Any, float]:
        """Send the OpenAI embeddings ``body`` to the model ``name`` names (float vectors,
        cut to ``dimensions`` where asked): the status, the parsed answer (an OpenAI error
        object on failure) and the seconds spent waiting for the model to load."""
        ...

    async def load(self, name: str, keep_alive: Any) -> None:
        """Load ``name`` (a request with nothing to generate: Ollama's preload)."""
        ...

    async def unload(self, name: str) -> bool:
        """Unload ``name`` once idle (Ollama's ``keep_alive: 0`` with nothing to generate)."""
        ...


class OllamaError(Exception):
    """An error answered as Ollama answers it: ``{"error": message}`` with ``status``."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def ollama_routes(gateway: GatewayLike) -> list[Route]:
    """The Ollama routes, served by ``gateway``."""

    async def version(request: Request) -> Response:
        return JSONResponse({"version": gateway.version})

    async def tags(request: Request) -> Response:
        return JSONResponse({"models": [tag_entry(m) for m in gateway.list_models()]})

    async def ps(request: Request) -> Response:
        return JSONResponse({"models": [ps_entry(m) for m in gateway.list_models() if _loaded(m)]})

    async def show(request: Request) -> Response:
        body = await _read(request)
        name = _model_name(body)
        return JSONResponse(show_entry(gateway.show(name)))

    async def chat(request: Request) -> Response:
        body = await _read(request)
        return await _generate(gateway, body, chat=True)

    async def generate(request: Request) -> Response:
        body = await _read(request)
        return await _generate(gateway, body, chat=False)

    async def embed(request: Request) -> Response:
        body = await _read(request)
        return await _embed(gateway, body, legacy=False)

    async def embeddings(request: Request) -> Response:
        body = await _read(request)
        return await _embed(gateway, body, legacy=True)

    def answering(
        handler: Callable[[Request], Awaitable[Response]],
    ) -> Callable[[Request], Awaitable[Response]]:
        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except OllamaError as error:
                return _error(error.message, error.status)
            except GatewayError as error:
                return _error(error.message, error.status)
            except ZooError as error:
                return _error(str(error), 404 if isinstance(error, NotFoundError) else 400)

        return route

    return [
        Route("/api/version", answering(version), methods=["GET"]),
        Route("/api/tags", answering(tags), methods=["GET"]),
        Route("/api/ps", answering(ps), methods=["GET"]),
        Route("/api/show", answering(show), methods=["POST"]),
        Route("/api/chat", answering(chat), methods=["POST"]),
        Route("/api/generate", answering(generate), methods=["POST"]),
        Route("/api/embed", answering(embed), methods=["POST"]),
        Route("/api/embeddings", answering(embeddings), methods=["POST"]),
    ]


def _error(message: str, status: int) -> Response:
    return JSONResponse({"error": message}, status_code=status)


async def _read(request: Request) -> dict[str, Any]:
    from zoo.serve.body import read_body

    raw = await read_body(request)  # a 413 (GatewayError) past it, unread
    try:
        body = json.loads(raw or b"{}")
    except (ValueError, RecursionError) as error:
        raise OllamaError(f"the request body is not JSON: {error}") from error
    if not isinstance(body, dict):
        raise OllamaError("the request body must be a JSON object")
    return body


def _model_name(body: Mapping[str, Any]) -> str:
    # Older clients send "name"; ":latest" is the tag Ollama clients add to a bare name.
    name = body.get("model") or body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise OllamaError("model is required")
    return name.removesuffix(":latest")


# ---- describing models -------------------------------------------------------------------


def _timestamp(seconds: float | None) -> str:
    moment = datetime.now(UTC) if seconds is None else datetime.fromtimestamp(seconds, UTC)
    return moment.isoformat().replace("+00:00", "Z")


def _name(model: Mapping[str, Any]) -> str:
    return str(model.get("id") or model.get("name") or "")


def _loaded(model: Mapping[str, Any]) -> bool:
    return bool(model.get("loaded")) or model.get("status") == "loaded"


def _parameter_size(billions: Any) -> str:
    if not isinstance(billions, int | float) or billions <= 0:
        return ""
    return f"{billions:.1f}B" if billions >= 1 else f"{billions * 1000:.0f}M"


def details(model: Mapping[str, Any]) -> dict[str, Any]:
    """Ollama's ``details`` of a model."""
    family = str(model.get("family") or "")
    fmt = model.get("format")
    return {
        "parent_model": "",
        "format": "gguf" if fmt == "ggufv2" else str(fmt or ""),
        "family": family,
        "families": [family] if family else [],
        "parameter_size": _parameter_size(model.get("parameters")),
        "quantization_level": str(model.get("quantization") or ""),
    }


def _digest(model: Mapping[str, Any]) -> str:
    # Ollama's digest names the model's blob; zoo has no single blob, so the digest names what
    # the model is (stable across restarts, different for a different quantization).
    keys = ("family", "format", "quantization", "parameters")
    text = "\0".join([_name(model), *(str(model.get(k)) for k in keys)])
    return hashlib.sha256(text.encode()).hexdigest()


def tag_entry(model: Mapping[str, Any]) -> dict[str, Any]:
    """One model of ``/api/tags``."""
    name = _name(model)
    return {
        "name": name,
        "model": name,
        "modified_at": _timestamp(model.get("modified_at")),
        "size": int(model.get("size") or 0),
        "digest": _digest(model),
        "details": details(model),
        # Not Ollama's: zoo's model kind ("llm", "embedding", "rerank"), as on /v1/models.
        "kind": str(model.get("kind") or "llm"),
    }


def ps_entry(model: Mapping[str, Any]) -> dict[str, Any]:
    """One loaded model of ``/api/ps``."""
    name = _name(model)
    expires = model.get("expires_at")
    memory = int(model.get("memory_bytes") or model.get("size") or 0)
    entry: dict[str, Any] = {
        "name": name,
        "model": name,
        "size": memory,
        "digest": _digest(model),
        "details": details(model),
        "expires_at": (
            _timestamp(expires)
            if expires is not None
            else FOREVER.isoformat().replace("+00:00", "Z")
        ),
        "size_vram": int(model.get("gpu_memory_bytes") or 0),
    }
    if model.get("context_length"):
        entry["context_length"] = int(model["context_length"])
    return entry


def capabilities(model: Mapping[str, Any]) -> list[str]:
    """Ollama's capability names for the model's abilities (and "embedding" for an
    embedding model, as Ollama shows its own: from its kind, abilities have none)."""
    out = [_CAPABILITIES[a] for a in model.get("abilities") or () if a in _CAPABILITIES]
    if model.get("kind") == "embedding":
        out.append("embedding")
    if model.get("fim") is not None:
        out.append("insert")
    return list(dict.fromkeys(out))


def show_entry(model: Mapping[str, Any]) -> dict[str, Any]:
    """``/api/show``: clients read ``capabilities`` and ``model_info``'s context length."""
    family = str(model.get("family") or "")
    info: dict[str, Any] = {"general.architecture": family, "general.basename": family}
    if isinstance(model.get("parameters"), int | float):
        info["general.parameter_count"] = int(model["parameters"] * 1e9)
    if model.get("context_length"):
        info[f"{family}.context_length"] = int(model["context_length"])
    return {
        "license": str(model.get("license") or ""),
        "modelfile": f"# served by zoo\nFROM {_name(model)}\n",
        "parameters": "",
        "template": str(model.get("template") or ""),
        "details": details(model),
        "model_info": info,
        "capabilities": capabilities(model),
        "modified_at": _timestamp(model.get("modified_at")),
    }


# ---- requests ----------------------------------------------------------------------------


def _is_zero(keep_alive: Any) -> bool:
    """Whether ``keep_alive`` says "unload now" (0, "0", "0s", "0m"...)."""
    if isinstance(keep_alive, bool):
        return False
    if isinstance(keep_alive, int | float):
        return keep_alive == 0
    return isinstance(keep_alive, str) and bool(
        re.fullmatch(r"\s*[+-]?0+(\.0*)?\s*(ns|us|µs|ms|s|m|h)?\s*", keep_alive)
    )


def sampling(body: Mapping[str, Any]) -> dict[str, Any]:
    """The OpenAI sampling fields for an Ollama body's ``options`` (and ``format``)."""
    options = body.get("options") or {}
    if not isinstance(options, dict):
        raise OllamaError("options must be an object")
    out = {k: options[k] for k in _SAME_OPTIONS if options.get(k) is not None}
    predict = options.get("num_predict")
    if predict is not None:
        if type(predict) is not int:
            raise OllamaError("options.num_predict must be an integer")
        # Ollama's -1 (no limit) and -2 (fill the context) are the engine's own default.
        if predict > 0:
            out["max_tokens"] = predict
    stop = options.get("stop")
    if stop is not None:
        if isinstance(stop, str):
            stop = [stop]
        if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
            raise OllamaError("options.stop must be a list of strings")
        out["stop"] = stop
    fmt = body.get("format")
    if fmt == "json":
        out["response_format"] = {"type": "json_object"}
    elif isinstance(fmt, dict):
        out["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "response", "schema": fmt},
        }
    elif fmt not in (None, ""):
        raise OllamaError('format must be "json" or a JSON schema')
    think = body.get("think")
    if isinstance(think, str) and think:
        out["reasoning_effort"] = think
    return out


_IMAGE_TYPES = (("iVBOR", "image/png"), ("/9j/", "image/jpeg"), ("R0lG", "image/gif"))


def _image_url(data: Any) -> dict[str, Any]:
    if not isinstance(data, str):
        raise OllamaError("images must be base64 strings")
    mime = next((m for p, m in _IMAGE_TYPES if data.startswith(p)), None)
    if mime is None:
        mime = "image/webp" if data.startswith("UklG") else "image/png"
    return {"type": "image_url", "image_url": {"url": f"data:{mime};base64,{data}"}}


def _content(text: str, images: Any) -> str | list[dict[str, Any]]:
    if not images:
        return text
    if not isinstance(images, list):
        raise OllamaError("images must be a list of base64 strings")
    parts: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    return parts + [_image_url(i) for i in images]


def openai_messages(messages: Any) -> list[dict[str, Any]]:
    """Ollama chat messages as OpenAI ones (images as data URLs, tool calls with ids)."""
    if not isinstance(messages, list):
        raise OllamaError("messages must be a list")
    out: list[dict[str, Any]] = []
    # Ollama's tool results name the tool, OpenAI's name the call: each result takes the id
    # of the earliest unanswered call of that tool (or of any tool).
    pending: list[tuple[str, str]] = []
    for number, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise OllamaError(f"message {number + 1} needs a role")
        text = message.get("content") or ""
        if not isinstance(text, str):
            raise OllamaError(f"message {number + 1}: content must be a string")
        item: dict[str, Any] = {
            "role": message["role"],
            "content": _content(text, message.get("images")),
        }
        calls = message.get("tool_calls")
        if calls:
            item["tool_calls"] = []
            for call in calls:
                function = call.get("function") if isinstance(call, dict) else None
                if not isinstance(function, dict) or not isinstance(function.get("name"), str):
                    raise OllamaError(f"message {number + 1}: a tool call needs a function name")
                call_id = str(call.get("id") or f"call_{len(out)}_{len(item['tool_calls'])}")
                arguments = function.get("arguments") or {}
                item["tool_calls"].append(
                    {
                        "id": call_id,
                        "type": "function",
                        "function": {
                            "name": function["name"],
                            "arguments": (
                                arguments if isinstance(arguments, str) else json.dumps(arguments)
                            ),
                        },
                    }
                )
                pending.append((function["name"], call_id))
        if message["role"] == "tool":
            tool = message.get("tool_name")
            match = next((p for p in pending if p[0] == tool), pending[0] if pending else None)
            if match is not None:
                pending.remove(match)
            item["tool_call_id"] = str(
                message.get("tool_call_id") or (match[1] if match else f"call_{len(out)}")
            )
        out.append(item)
    return out


@dataclass
class _Plan:
    """What one Ollama request becomes upstream."""

    path: str
    body: dict[str, Any]
    cutter: SentinelCutter | None = None


def _fim_of(model: Mapping[str, Any]) -> Fim | None:
    fim: Fim | FimTemplate | None = model.get("fim")
    if fim is None or isinstance(fim, Fim):
        return fim
    return Fim(fim, tuple(model.get("stop") or ()), tuple(model.get("stop_token_ids") or ()))


def plan_request(gateway: GatewayLike, body: Mapping[str, Any], *, chat: bool) -> _Plan:
    """The upstream path and OpenAI body for an Ollama ``/api/chat`` or ``/api/generate``."""
    name = _model_name(body)
    openai: dict[str, Any] = {"model": name, **sampling(body)}
    openai["stream"] = True
    openai["stream_options"] = {"include_usage": True}
    if "keep_alive" in body:
        openai["keep_alive"] = body["keep_alive"]
    if chat:
        openai["messages"] = openai_messages(body.get("messages"))
        if body.get("tools"):
            openai["tools"] = body["tools"]
        return _Plan("/v1/chat/completions", openai)
    prompt = body.get("prompt") or ""
    suffix = body.get("suffix") or ""
    system = body.get("system") or ""
    if not all(isinstance(t, str) for t in (prompt, suffix, system)):
        raise OllamaError("prompt, suffix and system must be strings")
    model = gateway.show(name)
    if suffix:
        fim = _fim_of(model)
        if fim is None:
            raise OllamaError(f"{name} does not support insert (it has no FIM template)")
        upstream = fim_request({**openai, "prompt": prompt, "suffix": suffix}, fim)
        return _Plan("/v1/completions", upstream, SentinelCutter(fim))
    if body.get("raw") or "chat" not in (model.get("abilities") or ()):
        # Raw prompts, and models without a chat template, take the text as it is.
        openai["prompt"] = prompt if body.get("raw") or not system else f"{system}\n\n{prompt}"
        return _Plan("/v1/completions", openai)
    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": _content(prompt, body.get("images"))})
    openai["messages"] = messages
    return _Plan("/v1/chat/completions", openai)


# ---- answers -----------------------------------------------------------------------------


class _UpstreamError(Exception):
    pass


_DONE_REASONS = {"tool_calls": "stop", "function_call": "stop", "content_filter": "stop"}


@dataclass
class _Turn:
    """One answer being translated: OpenAI chunks in, Ollama lines out."""

    model: str
    chat: bool
    cutter: SentinelCutter | None
    started: int = field(default_factory=time.monotonic_ns)
    first: int | None = None
    content: list[str] = field(default_factory=list)
    thinking: list[str] = field(default_factory=list)
    tools: dict[int, dict[str, str]] = field(default_factory=dict)
    finish: str | None = None
    usage: dict[str, Any] | None = None

    @property
    def cut(self) -> bool:
        return self.cutter is not None and self.cutter.done

    def _line(self, text: str, thinking: str = "") -> dict[str, Any]:
        line: dict[str, Any] = {"model": self.model, "created_at": _timestamp(None)}
        if self.chat:
            message: dict[str, Any] = {"role": "assistant", "content": text}
            if thinking:
                message["thinking"] = thinking
            line["message"] = message
        else:
            line["response"] = text
            if thinking:
                line["thinking"] = thinking
        line["done"] = False
        return line

    def absorb(self, data: str) -> list[dict[str, Any]]:
        """The lines one SSE event's data makes (none for usage-only or unknown events)."""
        if data.strip() == "[DONE]":
            return []
        try:
            event = json.loads(data)
        except (ValueError, RecursionError):
            return []
        if not isinstance(event, dict):
            return []
        if event.get("error"):
            error = event["error"]
            raise _UpstreamError(
                str(error.get("message") or error) if isinstance(error, dict) else str(error)
            )
        if isinstance(event.get("usage"), dict):
            self.usage = event["usage"]
        choices = event.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            return []
        choice = choices[0]
        delta = choice.get("delta")
        if not isinstance(delta, dict):
            delta = {}
        text = choice.get("text") if "text" in choice else delta.get("content")
        reasoning = delta.get("reasoning_content") or delta.get("reasoning") or ""
        for call in delta.get("tool_calls") or ():
            self._tool_delta(call)
        if choice.get("finish_reason"):
            self.finish = str(choice["finish_reason"])
        text = text if isinstance(text, str) else ""
        if self.cutter is not None:
            text = self.cutter.feed(text)
            if self.cutter.done:
                self.finish = "stop"
            elif self.finish:
                text += self.cutter.flush()
        return self._pieces(text, reasoning if isinstance(reasoning, str) else "")

    def _pieces(self, text: str, reasoning: str) -> list[dict[str, Any]]:
        if not (text or reasoning):
            return []
        if self.first is None:
            self.first = time.monotonic_ns()
        self.content.append(text)
        self.thinking.append(reasoning)
        return [self._line(text, reasoning)]

    def _tool_delta(self, call: Any) -> None:
        if not isinstance(call, dict):
            return
        index = call.get("index", len(self.tools))
        slot = self.tools.setdefault(index if isinstance(index, int) else 0, {})
        function = call.get("function") or {}
        if call.get("id"):
            slot["id"] = str(call["id"])
        if function.get("name"):
            slot["name"] = slot.get("name", "") + str(function["name"])
        if function.get("arguments"):
            slot["arguments"] = slot.get("arguments", "") + str(function["arguments"])

    def end(self) -> list[dict[str, Any]]:
        """Lines left when the upstream ends: held-back text, then the tool calls."""
        lines: list[dict[str, Any]] = []
        if self.cutter is not None:
            lines += self._pieces(self.cutter.flush(), "")
        if self.tools:
            line = self._line("")
            line["message"]["tool_calls"] = self.tool_calls()
            lines.append(line)
        return lines

    def tool_calls(self) -> list[dict[str, Any]]:
        calls = []
        for _, slot in sorted(self.tools.items()):
            raw = slot.get("arguments") or "{}"
            try:
                arguments = json.loads(raw)
            except (ValueError, RecursionError) as error:
                raise _UpstreamError(
                    f"the model called {slot.get('name')} with arguments that are not JSON: "
                    f"{raw[:200]}"
                ) from error
            calls.append({"function": {"name": slot.get("name", ""), "arguments": arguments}})
        return calls

    def done(self) -> dict[str, Any]:
        """The final line: why it stopped, durations in nanoseconds, token counts."""
        now = time.monotonic_ns()
        first = self.first or now
        line = self._line("")
        line["done"] = True
        reason = self.finish or "stop"
        line["done_reason"] = _DONE_REASONS.get(reason, reason)
        line["total_duration"] = now - self.started
        line["prompt_eval_duration"] = first - self.started
        line["eval_duration"] = now - first
        usage = self.usage or {}
        if isinstance(usage.get("prompt_tokens"), int):
            line["prompt_eval_count"] = usage["prompt_tokens"]
        if isinstance(usage.get("completion_tokens"), int):
            line["eval_count"] = usage["completion_tokens"]
        return line

    def whole(self) -> dict[str, Any]:
        """The one answer of a request with ``"stream": false``."""
        line = self.done()
        text = "".join(self.content)
        thinking = "".join(self.thinking)
        if self.chat:
            line["message"]["content"] = text
            if thinking:
                line["message"]["thinking"] = thinking
            if self.tools:
                line["message"]["tool_calls"] = self.tool_calls()
        else:
            line["response"] = text
            if thinking:
                line["thinking"] = thinking
        return line


def _ndjson(line: Mapping[str, Any]) -> bytes:
    return json.dumps(line, ensure_ascii=False).encode() + b"\n"


async def _close(chunks: AsyncIterator[bytes]) -> None:
    close = getattr(chunks, "aclose", None)
    if close is not None:
        # Shielded: where a client that went away cancels this task (servers older than ASGI
        # spec 2.4), the upstream request must still be closed: the engine frees its slot and
        # the gateway its lease.
        with anyio.CancelScope(shield=True):
            await close()


async def _events(turn: _Turn, chunks: AsyncIterator[bytes]) -> AsyncIterator[dict[str, Any]]:
    """The Ollama lines of an upstream SSE stream, without the final one."""
    decoder = SseDecoder()
    async for chunk in chunks:
        for data in decoder.feed(chunk):
            for line in turn.absorb(data):
                yield line
            if turn.cut:
                return
    for data in decoder.close():
        for line in turn.absorb(data):
            yield line
    for line in turn.end():
        yield line


async def _error_text(chunks: AsyncIterator[bytes]) -> str:
    raw = b"".join([c async for c in chunks])
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        return raw.decode(errors="replace").strip() or "the model's server failed"
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return str(error.get("message") or error)
    return str(error or body)


def check_kind(gateway: GatewayLike, name: str, kind_name: str, asked: str) -> None:
    """A 400 when the Ollama route ``asked`` (for models of ``kind_name``) is not for the
    model's kind, naming the Ollama route to use; before anything loads (Ollama itself
    refuses to generate with an embedding model before loading it)."""
    model = gateway.show(name)
    have = str(model.get("kind") or kinds.LLM)
    path = kinds.KINDS[kind_name].main_route
    message = kinds.wrong_route(
        _name(model) or name, have, path, asked=asked, instead=_ROUTE_FOR_KIND
    )
    if message is not None:
        raise OllamaError(message)


async def _generate(gateway: GatewayLike, body: dict[str, Any], *, chat: bool) -> Response:
    name = _model_name(body)
    check_kind(gateway, name, kinds.LLM, "/api/chat" if chat else "/api/generate")
    empty = not body.get("messages") if chat else not (body.get("prompt") or body.get("suffix"))
    if empty:
        # Nothing to generate: Ollama loads the model (or unloads it with keep_alive 0).
        if _is_zero(body.get("keep_alive")):
            await gateway.unload(name)
            reason = "unload"
        else:
            await gateway.load(name, body.get("keep_alive"))
            reason = "load"
        answer = _Turn(name, chat, None).done()
        answer["done_reason"] = reason
        for key in ("total_duration", "prompt_eval_duration", "eval_duration"):
            answer.pop(key)
        return JSONResponse(answer)
    plan = plan_request(gateway, body, chat=chat)
    turn = _Turn(name, chat, plan.cutter)
    status, _, chunks = await gateway.complete(name, plan.body, plan.path)
    if status >= 400:
        try:
            message = await _error_text(chunks)
        finally:
            await _close(chunks)
        return _error(message, status)
    if body.get("stream", True) is False:
        try:
            async for _ in _events(turn, chunks):
                pass
            return JSONResponse(turn.whole())
        except _UpstreamError as error:
            return _error(str(error), 502)
        except Exception as error:  # the upstream connection broke (httpx errors and the like)
            return _error(f"the model's server stopped answering: {error}", 502)
        finally:
            await _close(chunks)
    return StreamingResponse(_stream(turn, chunks), media_type=NDJSON)


async def _stream(turn: _Turn, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    try:
        async for line in _events(turn, chunks):
            yield _ndjson(line)
        yield _ndjson(turn.done())
    except _UpstreamError as error:
        # Mid-stream, the status is sent: Ollama reports the error as a line of its own.
        yield _ndjson({"error": str(error)})
    except Exception as error:  # the upstream connection broke (httpx errors and the like)
        yield _ndjson({"error": f"the model's server stopped answering: {error}"})
    finally:
        await _close(chunks)


# ---- embeddings --------------------------------------------------------------------------


async def _embed(gateway: GatewayLike, body: dict[str, Any], *, legacy: bool) -> Response:
    """``/api/embed`` (``input``: a string or a list; answers ``embeddings``) or the older
    ``/api/embeddings`` (``prompt``; answers one ``embedding``), through the model's
    ``/v1/embeddings``. Nothing to embed loads the model, as Ollama does."""
    name = _model_name(body)
    started = time.monotonic_ns()
    # Before the preload below: an empty request must not load (and evict for) a chat model.
    check_kind(gateway, name, kinds.EMBEDDING, "/api/embeddings" if legacy else "/api/embed")
    texts = body.get("prompt") if legacy else body.get("input")
    if legacy and texts is not None and not isinstance(texts, str):
        raise OllamaError("prompt must be a string")
    if texts in (None, "", []):
        await gateway.load(name, body.get("keep_alive"))
        return JSONResponse({"embedding": []} if legacy else {"model": name, "embeddings": []})
    if body.get("truncate") is not None and not isinstance(body["truncate"], bool):
        raise OllamaError("truncate must be true or false")
    openai: dict[str, Any] = {"model": name, "input": texts}
    if not legacy and body.get("dimensions") is not None:
        openai["dimensions"] = body["dimensions"]
    if "keep_alive" in body:
        openai["keep_alive"] = body["keep_alive"]
    status, answer, load_seconds = await gateway.embed(name, openai)
    items = answer.get("data") if isinstance(answer, dict) else None
    if status >= 400 or not isinstance(items, list):
        return _error(_message(answer), status if status >= 400 else 502)
    vectors = [
        item.get("embedding")
        for item in sorted(items, key=lambda i: i.get("index", 0) if isinstance(i, dict) else 0)
        if isinstance(item, dict)
    ]
    if legacy:
        return JSONResponse({"embedding": vectors[0] if vectors else []})
    usage = answer.get("usage") or {}
    line: dict[str, Any] = {
        "model": name,
        "embeddings": vectors,
        "total_duration": time.monotonic_ns() - started,
        "load_duration": int(load_seconds * 1e9),
    }
    if isinstance(usage, dict) and isinstance(usage.get("prompt_tokens"), int):
        line["prompt_eval_count"] = usage["prompt_tokens"]
    return JSONResponse(line)


def _message(answer: Any) -> str:
    """The message of an OpenAI-style error answer (or the whole answer, as text)."""
    error = answer.get("error") if isinstance(answer, dict) else None
    if isinstance(error, dict):
        return str(error.get("message") or error)
    if error:
        return str(error)
    return str(answer or "the model's server failed")
