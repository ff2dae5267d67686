"""Fill-in-the-middle the same way on every engine: the catalog's template, a plain prompt.

No engine does FIM for every model: llama.cpp's ``/infill`` does not know Seed-Coder's tokens,
llama.cpp and vLLM reject ``suffix`` on ``/v1/completions``, transformers serve appends it to
the output, mlx_lm ignores it (notes/gateway.md §3). All four turn special-token text inside
a ``prompt`` into the real tokens, so the gateway renders the family's ``FimTemplate`` into a
plain prompt, sends the sentinels as ``stop`` strings (and their ids where the engine needs
them: vLLM drops special tokens from its output text, so stop strings made of them never
match), and cuts the output at the first sentinel as a safety net.

Nothing here does I/O of its own: ``fim_request`` builds the upstream body, ``SentinelCutter``
cuts a stream, ``cut_sse``/``cut_completion`` apply it to OpenAI completion responses.
``SseDecoder`` is the one server-sent-events parser of the gateway's translating routes.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from zoo.serve.errors import InvalidRequest

if TYPE_CHECKING:
    from zoo.catalog.model import Family, FimTemplate

# Completions a FIM request gets when it names no max_tokens: an editor's infill is a few
# lines, and a model that never emits a sentinel would otherwise run to the context's end.
DEFAULT_MAX_TOKENS = 256

# The fields a FIM body has that an OpenAI /v1/completions body must not carry upstream.
_FIM_ONLY_FIELDS = ("suffix", "prefix")


@dataclass(frozen=True)
class Fim:
    """A family's FIM template with the end strings and token ids that stop an infill.

    ``stop`` are the family's own stop strings (end tokens); ``stop_token_ids`` go upstream as
    ``stop_token_ids``, so build a ``Fim`` without them for an engine that refuses unknown
    fields (transformers serve answers 422 to any field outside its schema).
    """

    template: FimTemplate
    stop: tuple[str, ...] = ()
    stop_token_ids: tuple[int, ...] = ()

    @classmethod
    def from_family(cls, family: Family, *, token_ids: bool = True) -> Fim | None:
        """The family's FIM settings, or None when the catalog gives it no template."""
        if family.fim is None:
            return None
        return cls(family.fim, family.stop, family.stop_token_ids if token_ids else ())

    @property
    def sentinels(self) -> tuple[str, ...]:
        """Every string that ends an infill: the template's three tokens, then end tokens."""
        t = self.template
        return tuple(dict.fromkeys(s for s in (t.prefix, t.suffix, t.middle, *self.stop) if s))


def _fim(template: FimTemplate | Fim) -> Fim:
    return template if isinstance(template, Fim) else Fim(template)


def fim_prompt(template: FimTemplate | Fim, prefix: str, suffix: str) -> str:
    """The exact prompt text the engine receives, in the template's order.

    No BOS: every engine adds it itself when the tokenizer asks for one, so text here would
    double it.
    """
    return _fim(template).template.render(prefix, suffix)


def fim_stops(template: FimTemplate | Fim) -> list[str]:
    """The stop strings of an infill: every sentinel and end token the template names."""
    return list(_fim(template).sentinels)


def _first_sentinel(text: str, sentinels: Iterable[str]) -> int:
    """The index where the earliest sentinel starts in ``text``, or -1."""
    found = [i for i in (text.find(s) for s in sentinels) if i >= 0]
    return min(found) if found else -1


def cut_at_sentinel(text: str, template: FimTemplate | Fim) -> str:
    """``text`` up to (not including) the first sentinel in it."""
    at = _first_sentinel(text, _fim(template).sentinels)
    return text if at < 0 else text[:at]


def _client_stops(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(s, str) for s in value):
        return list(value)
    raise InvalidRequest("'stop' must be a string or a list of strings")


def _text_field(body: Mapping[str, Any], *names: str) -> str:
    for name in names:
        value = body.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            raise InvalidRequest(f"'{name}' must be a string for fill-in-the-middle")
        return value
    return ""


def fim_request(
    body: Mapping[str, Any],
    template: FimTemplate | Fim,
    *,
    stop: Iterable[str] = (),
    stop_token_ids: Iterable[int] = (),
    default_max_tokens: int = DEFAULT_MAX_TOKENS,
) -> dict[str, Any]:
    """The upstream ``/v1/completions`` body for a FIM request.

    ``body`` is an OpenAI completions body with ``prompt`` (the prefix) and ``suffix``, or a
    ``/v1/fim`` body naming the prefix ``prefix`` (or ``prompt``). Every other field passes
    through. The result has the rendered prompt and no ``suffix`` (engines reject or misuse
    it); its ``stop`` is the client's strings, then the template's sentinels and end tokens
    (``stop`` adds more), without repeats: more than the OpenAI API's 4, which llama.cpp,
    vLLM, transformers and mlx_lm all take. ``stop_token_ids`` (the client's, the ``Fim``'s,
    these) is set only when there are some: only vLLM needs them, and transformers serve
    refuses fields it does not know. ``max_tokens`` defaults to ``default_max_tokens``.
    """
    fim = _fim(template)
    prefix = _text_field(body, "prefix", "prompt")
    suffix = _text_field(body, "suffix")
    out = {k: v for k, v in body.items() if k not in _FIM_ONLY_FIELDS}
    out["prompt"] = fim_prompt(fim, prefix, suffix)
    stops = [*_client_stops(body.get("stop")), *fim.sentinels, *stop]
    out["stop"] = list(dict.fromkeys(s for s in stops if s))
    ids = body.get("stop_token_ids")
    if ids is not None and not (isinstance(ids, list) and all(type(i) is int for i in ids)):
        raise InvalidRequest("'stop_token_ids' must be a list of integers")
    all_ids = list(dict.fromkeys([*(ids or []), *fim.stop_token_ids, *stop_token_ids]))
    if all_ids:
        out["stop_token_ids"] = all_ids
    else:
        out.pop("stop_token_ids", None)
    if out.get("max_tokens") is None:
        out["max_tokens"] = default_max_tokens
    return out


class SentinelCutter:
    """Cuts a stream of text pieces at the first sentinel, even one split across pieces.

    ``feed`` returns the text that is safe to pass on: it holds back the longest tail that
    could still grow into a sentinel. Once a sentinel is seen ``done`` is true and the rest of
    the stream is dropped (the caller may close the upstream). ``flush`` at the end of the
    stream returns what was held back. The concatenated output always equals
    ``cut_at_sentinel`` of the whole text.
    """

    def __init__(self, template: FimTemplate | Fim) -> None:
        self._sentinels = _fim(template).sentinels
        self._held = ""
        self.done = False

    def _partial_tail(self, text: str) -> int:
        """The length of the longest tail of ``text`` that is a proper start of a sentinel."""
        longest = 0
        for s in self._sentinels:
            for k in range(min(len(s) - 1, len(text)), longest, -1):
                if text.endswith(s[:k]):
                    longest = k
                    break
        return longest

    def feed(self, piece: str) -> str:
        if self.done:
            return ""
        text = self._held + piece
        at = _first_sentinel(text, self._sentinels)
        if at >= 0:
            self.done = True
            self._held = ""
            return text[:at]
        keep = self._partial_tail(text)
        self._held = text[len(text) - keep :]
        return text[: len(text) - keep]

    def flush(self) -> str:
        held, self._held = self._held, ""
        return "" if self.done else held


class SseDecoder:
    """Server-sent events from byte chunks split anywhere (mid-line, mid-UTF-8 character).

    ``feed`` returns the ``data`` of every event completed so far (its ``data:`` lines joined
    by newlines); comments and other fields are dropped.
    """

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buffer = ""
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> list[str]:
        self._buffer += self._decoder.decode(chunk)
        events: list[str] = []
        while True:
            cut = min((i for i in (self._buffer.find(c) for c in "\r\n") if i >= 0), default=-1)
            if cut < 0:
                return events
            # A CR at the very end may be half of a CRLF that the next chunk completes.
            if self._buffer[cut] == "\r" and cut == len(self._buffer) - 1:
                return events
            line = self._buffer[:cut]
            step = 2 if self._buffer.startswith("\r\n", cut) else 1
            self._buffer = self._buffer[cut + step :]
            if not line:
                if self._data:
                    events.append("\n".join(self._data))
                    self._data = []
            elif line.startswith("data:"):
                value = line[5:]
                self._data.append(value[1:] if value.startswith(" ") else value)

    def close(self) -> list[str]:
        """Events left when the stream ends without a final blank line."""
        return self.feed(b"\n\n")


def _sse(obj: Mapping[str, Any]) -> bytes:
    return b"data: " + json.dumps(obj, ensure_ascii=False).encode() + b"\n\n"


def cut_completion(body: dict[str, Any], template: FimTemplate | Fim) -> dict[str, Any]:
    """A non-streamed completions response with each choice's text cut at the first sentinel.

    A choice that was cut ended on a sentinel, so its ``finish_reason`` becomes ``stop``.
    """
    choices = body.get("choices")
    if not isinstance(choices, list):
        return body
    for choice in choices:
        if isinstance(choice, dict) and isinstance(choice.get("text"), str):
            cut = cut_at_sentinel(choice["text"], template)
            if cut != choice["text"]:
                choice["text"] = cut
                choice["finish_reason"] = "stop"
    return body


async def cut_sse(
    chunks: AsyncIterator[bytes], template: FimTemplate | Fim, *, choices: int = 1
) -> AsyncIterator[bytes]:
    """An OpenAI completions SSE stream with each choice's text cut at its first sentinel.

    Events with text are re-serialised (their text changes); the others (usage, errors,
    comments dropped) pass as they came. Once all ``choices`` (the request's ``n``) have
    reached a sentinel, the last text goes out with ``finish_reason: "stop"``, then
    ``[DONE]``, and the upstream is closed: the engine frees its slot instead of generating
    what would be dropped. Text held back as a possible sentinel start goes out when its
    choice finishes or the stream ends.
    """
    cutters: dict[int, SentinelCutter] = {}
    decoder = SseDecoder()
    try:
        async for chunk in chunks:
            for data in decoder.feed(chunk):
                out = _cut_event(data, cutters, template)
                if out:
                    yield out
                if sum(c.done for c in cutters.values()) >= choices:
                    yield b"data: [DONE]\n\n"
                    return
        for data in decoder.close():
            out = _cut_event(data, cutters, template)
            if out:
                yield out
        if rest := _flush(cutters):
            yield rest
    finally:
        close = getattr(chunks, "aclose", None)
        if close is not None:
            await close()


def _flush(cutters: dict[int, SentinelCutter]) -> bytes:
    """Held-back text of every choice, as chunks of their own."""
    return b"".join(_sse(_text_chunk(i, t)) for i, c in cutters.items() if (t := c.flush()))


def _cut_event(data: str, cutters: dict[int, SentinelCutter], template: FimTemplate | Fim) -> bytes:
    """The bytes that replace one SSE event (b"" drops it)."""
    if data.strip() == "[DONE]":
        return _flush(cutters) + b"data: [DONE]\n\n"
    try:
        event = json.loads(data)
    except (ValueError, RecursionError):
        event = None
    choices = event.get("choices") if isinstance(event, dict) else None
    if not isinstance(choices, list) or not choices:
        return f"data: {data}\n\n".encode()
    for choice in choices:
        if not isinstance(choice, dict) or not isinstance(choice.get("text"), str):
            continue
        index = choice.get("index", 0)
        cutter = cutters.setdefault(
            index if isinstance(index, int) else 0, SentinelCutter(template)
        )
        if cutter.done:
            # Past its sentinel: nothing more of this choice reaches the client.
            choice["text"] = ""
            choice["finish_reason"] = None
            continue
        text = cutter.feed(choice["text"])
        if cutter.done:
            choice["finish_reason"] = "stop"
        elif choice.get("finish_reason") is not None:
            text += cutter.flush()
        choice["text"] = text
    return _sse(event)


def _text_chunk(index: int, text: str) -> dict[str, Any]:
    return {"object": "text_completion", "choices": [{"index": index, "text": text}]}
