"""Fill-in-the-middle through the gateway: the exact prompt an engine receives, stop strings,
and output cut at the first sentinel however the stream is split."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zoo.catalog.catalog import builtin_catalog_dir, load_catalog
from zoo.catalog.model import Family, FimTemplate
from zoo.serve.errors import InvalidRequest
from zoo.serve.fim import (
    DEFAULT_MAX_TOKENS,
    Fim,
    SentinelCutter,
    SseDecoder,
    cut_at_sentinel,
    cut_completion,
    cut_sse,
    fim_prompt,
    fim_request,
    fim_stops,
)

# Qwen2.5-Coder's FIM tokens (prefix-suffix-middle) and its end tokens with their ids
# (tokenizer_config.json: <|endoftext|> 151643, <|fim_pad|> 151662, <|file_sep|> 151664).
QWEN_CODER = Fim(
    FimTemplate("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"),
    stop=("<|endoftext|>", "<|fim_pad|>", "<|file_sep|>"),
    stop_token_ids=(151643, 151662, 151664),
)

PREFIX = "def add(a, b):\n    "
SUFFIX = "\n\nprint(add(1, 2))\n"


def seed_coder() -> Family:
    path = builtin_catalog_dir() / "seed-coder-8b-base.yaml"
    catalog = load_catalog([path], use_cache=False)
    assert not catalog.problems
    return catalog.get("seed-coder-8b-base")


def test_seed_coder_prompt_is_suffix_prefix_middle_from_the_catalog() -> None:
    family = seed_coder()
    fim = Fim.from_family(family)
    assert fim is not None
    body = {"model": "seed-coder", "prompt": PREFIX, "suffix": SUFFIX, "temperature": 0}

    upstream = fim_request(body, fim)

    # The exact text the engine gets: suffix first, no BOS (the engine adds its own).
    assert upstream["prompt"] == (
        "<[fim-suffix]>" + SUFFIX + "<[fim-prefix]>" + PREFIX + "<[fim-middle]>"
    )
    assert "suffix" not in upstream
    assert upstream["stop"] == ["<[fim-prefix]>", "<[fim-suffix]>", "<[fim-middle]>"]
    assert upstream["max_tokens"] == DEFAULT_MAX_TOKENS
    assert upstream["model"] == "seed-coder"
    assert upstream["temperature"] == 0
    # The catalog gives Seed-Coder no stop token ids: none are sent (transformers serve
    # refuses fields it does not know).
    assert "stop_token_ids" not in upstream
    # The caller's body is left as it was.
    assert body["suffix"] == SUFFIX


def test_qwen_coder_prompt_is_prefix_suffix_middle_with_its_stops_and_ids() -> None:
    body = {
        "model": "qwen2.5-coder",
        "prefix": PREFIX,
        "suffix": SUFFIX,
        "stop": ["\n\n", "<|endoftext|>"],
        "max_tokens": 40,
        "stream": True,
    }

    upstream = fim_request(body, QWEN_CODER)

    assert upstream["prompt"] == (
        "<|fim_prefix|>" + PREFIX + "<|fim_suffix|>" + SUFFIX + "<|fim_middle|>"
    )
    assert "prefix" not in upstream
    assert "suffix" not in upstream
    # The client's stops first, then every sentinel and end token, each once (more than the
    # OpenAI API's four: engines take any list).
    assert upstream["stop"] == [
        "\n\n",
        "<|endoftext|>",
        "<|fim_prefix|>",
        "<|fim_suffix|>",
        "<|fim_middle|>",
        "<|fim_pad|>",
        "<|file_sep|>",
    ]
    assert upstream["stop_token_ids"] == [151643, 151662, 151664]
    assert upstream["max_tokens"] == 40
    assert upstream["stream"] is True


def test_fim_request_takes_extra_stop_token_ids_from_the_caller() -> None:
    upstream = fim_request(
        {"prompt": "a", "suffix": "b", "stop": "END", "stop_token_ids": [7]},
        seed_coder().fim or FimTemplate("x", "y", "z"),
        stop_token_ids=[2, 7],
    )
    assert upstream["stop"][0] == "END"
    assert upstream["stop_token_ids"] == [7, 2]


def test_fim_prompt_and_stops_for_a_bare_template() -> None:
    template = FimTemplate("<PRE>", "<SUF>", "<MID>", order=("suffix", "prefix", "middle"))
    assert fim_prompt(template, "p", "s") == "<SUF>s<PRE>p<MID>"
    assert fim_stops(template) == ["<PRE>", "<SUF>", "<MID>"]
    assert fim_stops(QWEN_CODER)[-1] == "<|file_sep|>"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"prompt": ["a", "b"], "suffix": "c"}, "'prompt' must be a string"),
        ({"prompt": "a", "suffix": 3}, "'suffix' must be a string"),
        ({"prompt": "a", "suffix": "b", "stop": [1]}, "'stop' must be a string or a list"),
        ({"prompt": "a", "suffix": "b", "stop_token_ids": "1"}, "'stop_token_ids' must be"),
    ],
)
def test_bad_fim_bodies_are_one_clear_error(body: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        fim_request(body, QWEN_CODER)


def test_cut_at_sentinel_cuts_at_the_earliest_one() -> None:
    assert cut_at_sentinel("x = 1<|file_sep|>y<|fim_prefix|>", QWEN_CODER) == "x = 1"
    assert cut_at_sentinel("no sentinel here", QWEN_CODER) == "no sentinel here"
    # A sentinel that is not the template's (another family's) is text like any other.
    assert cut_at_sentinel("a<[fim-prefix]>b", QWEN_CODER) == "a<[fim-prefix]>b"


def test_cutter_holds_back_a_sentinel_split_across_pieces() -> None:
    cutter = SentinelCutter(QWEN_CODER)
    assert cutter.feed("return a + b<|fim") == "return a + b"
    assert not cutter.done
    assert cutter.feed("_pad|>garbage") == ""
    assert cutter.done
    assert cutter.feed("more") == ""
    assert cutter.flush() == ""


def test_cutter_releases_a_false_alarm() -> None:
    cutter = SentinelCutter(QWEN_CODER)
    assert cutter.feed("if a <|") == "if a "
    assert cutter.feed("x") == "<|x"
    assert cutter.feed("<|end") == ""
    assert cutter.flush() == "<|end"


SENTINELS = QWEN_CODER.sentinels
# Text made of sentinel pieces and characters they start with, so partial matches abound.
_pieces = st.sampled_from(
    [*SENTINELS, *(s[:k] for s in SENTINELS for k in range(1, len(s))), "a", "\n", "é", " "]
)
texts = st.lists(_pieces, max_size=30).map("".join)


@st.composite
def chunked(draw: st.DrawFn) -> tuple[str, list[str]]:
    text = draw(texts)
    cuts = sorted(draw(st.lists(st.integers(0, len(text)), max_size=12)))
    bounds = [0, *cuts, len(text)]
    return text, [text[a:b] for a, b in itertools.pairwise(bounds)]


@settings(max_examples=400, deadline=None)
@given(chunked())
def test_cutter_output_equals_cutting_the_whole_text(case: tuple[str, list[str]]) -> None:
    text, chunks = case
    cutter = SentinelCutter(QWEN_CODER)
    out: list[str] = []
    fed = ""
    longest = max(len(s) for s in SENTINELS)
    for chunk in chunks:
        out.append(cutter.feed(chunk))
        fed += chunk
        # It passes text on as soon as no sentinel can start in it: it never holds back
        # more than a sentinel's length (an editor sees the completion as it streams).
        assert len(cut_at_sentinel(fed, QWEN_CODER)) - len("".join(out)) < longest
    out.append(cutter.flush())
    assert "".join(out) == cut_at_sentinel(text, QWEN_CODER)
    assert cutter.done == (cut_at_sentinel(text, QWEN_CODER) != text)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\r\n"), max_size=12),
        max_size=6,
    ),
    st.sampled_from(["\n", "\r\n", "\r"]),
    st.lists(st.integers(0, 400), max_size=10),
)
def test_sse_decoder_reads_events_split_anywhere(
    payloads: list[str], newline: str, cuts: list[int]
) -> None:
    raw = "".join(f"data: {p}{newline}: a comment{newline}{newline}" for p in payloads).encode()
    bounds = [0, *sorted(c for c in cuts if c < len(raw)), len(raw)]
    decoder = SseDecoder()
    events: list[str] = []
    for a, b in itertools.pairwise(bounds):
        events += decoder.feed(raw[a:b])
    events += decoder.close()
    assert events == payloads


def test_sse_decoder_joins_multi_line_data() -> None:
    assert SseDecoder().feed(b"event: x\ndata: a\ndata:b\n\n") == ["a\nb"]


def sse_chunk(text: str, finish: str | None = None) -> bytes:
    event = {"object": "text_completion", "choices": [{"index": 0, "text": text}]}
    event["choices"][0]["finish_reason"] = finish  # type: ignore[index]
    return b"data: " + json.dumps(event).encode() + b"\n\n"


class Upstream:
    """Canned SSE chunks; records how far it was read and whether it was closed."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks
        self.read = 0
        self.closed = False

    def __aiter__(self) -> Upstream:
        return self

    async def __anext__(self) -> bytes:
        if self.read == len(self.chunks):
            raise StopAsyncIteration
        self.read += 1
        return self.chunks[self.read - 1]

    async def aclose(self) -> None:
        self.closed = True


def run_cut(upstream: Upstream, fim: Fim = QWEN_CODER) -> list[dict[str, object] | str]:
    async def collect() -> bytes:
        stream: AsyncIterator[bytes] = cut_sse(upstream, fim)
        return b"".join([chunk async for chunk in stream])

    raw = asyncio.run(collect())
    events = list(SseDecoder().feed(raw))
    return [e if e == "[DONE]" else json.loads(e) for e in events]


def texts_of(events: list[dict[str, object] | str]) -> str:
    return "".join(
        c["text"]  # type: ignore[index]
        for e in events
        if isinstance(e, dict)
        for c in e.get("choices") or []  # type: ignore[attr-defined]
    )


def test_cut_sse_stops_at_a_sentinel_split_across_events_and_closes_the_upstream() -> None:
    upstream = Upstream(
        [
            sse_chunk("return a"),
            # One network chunk may hold part of an event: the decoder waits for the rest.
            sse_chunk(" + b<|fi")[:20],
            sse_chunk(" + b<|fi")[20:],
            sse_chunk("le_sep|>import os"),
            sse_chunk("never read"),
            b"data: [DONE]\n\n",
        ]
    )
    events = run_cut(upstream)

    assert texts_of(events) == "return a + b"
    assert events[-1] == "[DONE]"
    last = events[-2]
    assert isinstance(last, dict)
    assert last["choices"][0]["finish_reason"] == "stop"  # type: ignore[index]
    # The engine stops generating: what follows the sentinel is never read.
    assert upstream.read == 4
    assert upstream.closed


def test_cut_sse_passes_held_text_and_usage_at_the_end() -> None:
    usage = {"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 2}}
    upstream = Upstream(
        [
            sse_chunk("x <|"),
            sse_chunk("", finish="length"),
            b"data: " + json.dumps(usage).encode() + b"\n\n",
            b"data: [DONE]\n\n",
        ]
    )
    events = run_cut(upstream)

    assert texts_of(events) == "x <|"
    assert {"choices": [], "usage": usage["usage"]} in events
    assert events[-1] == "[DONE]"
    assert upstream.closed


def test_cut_sse_without_done_still_flushes() -> None:
    events = run_cut(Upstream([sse_chunk("tail <|fim")]))
    assert texts_of(events) == "tail <|fim"


def test_cut_completion_cuts_each_choice() -> None:
    body = {
        "choices": [
            {"index": 0, "text": "a<|fim_middle|>b", "finish_reason": "length"},
            {"index": 1, "text": "clean", "finish_reason": "length"},
        ]
    }
    out = cut_completion(body, QWEN_CODER)
    assert out["choices"][0] == {"index": 0, "text": "a", "finish_reason": "stop"}
    assert out["choices"][1]["finish_reason"] == "length"


def test_family_without_template_has_no_fim() -> None:
    family = seed_coder()
    from dataclasses import replace

    assert Fim.from_family(replace(family, fim=None)) is None
    with_ids = replace(family, stop=("<[end▁of▁sentence]>",), stop_token_ids=(2,))
    fim = Fim.from_family(with_ids)
    assert fim is not None
    assert fim.stop_token_ids == (2,)
    assert fim.sentinels[-1] == "<[end▁of▁sentence]>"
    no_ids = Fim.from_family(with_ids, token_ids=False)
    assert no_ids is not None
    assert no_ids.stop_token_ids == ()
