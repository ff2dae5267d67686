"""Embeddings and rerank through the gateway: bodies checked before any model starts, answers
made the same whatever the engine behind them does.

Engines differ on what the OpenAI and Jina/Cohere shapes promise: llama.cpp ignores
``dimensions``, vLLM refuses it for a model its config does not mark as Matryoshka (even at
full length), engines differ on ``encoding_format`` and on whether rerank results come sorted,
cut to ``top_n`` or with their documents. So the gateway asks every engine for the plain
thing (float vectors at full length; every document scored) and does the rest itself:
Matryoshka truncation and renormalization, base64 (float32 little-endian, what the official
``openai`` client decodes), sorting by score, ``top_n`` and ``return_documents``. That costs
one JSON parse, which renaming ``model`` in the answer already did.
"""

from __future__ import annotations

import base64
import contextlib
import json
import math
import re
import sys
import time
from array import array
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from zoo import kinds
from zoo.serve.errors import InvalidRequest, WrongRoute

if TYPE_CHECKING:
    from zoo.catalog.model import EmbeddingFacts, Family
    from zoo.serve.gateway import Gateway
    from zoo.serve.types import ModelEntry

# OpenAI's own limit on inputs per embeddings request; Cohere's on documents per rerank.
MAX_INPUTS = 2048
MAX_DOCUMENTS = 1000


def check_kind(entry: ModelEntry, family: Family, path: str) -> None:
    """A 400 naming the right route when ``path`` is not for the family's kind."""
    message = kinds.wrong_route(entry.name, family.kind, path)
    if message is not None:
        raise WrongRoute(message)


# ---- embeddings ----------------------------------------------------------------------------


@dataclass(frozen=True)
class EmbeddingsPlan:
    """What goes upstream, and what the gateway does to the answer."""

    upstream: dict[str, Any]
    base64: bool
    dimensions: int | None  # cut vectors to this length (None: as the engine made them)
    normalize: bool  # make cut vectors length 1 again


def plan_embeddings(body: Mapping[str, Any], family: Family) -> EmbeddingsPlan:
    """The checked embeddings request: a 400 for a body no engine should be sent."""
    return plan_vectors(body, family.name, family.embedding)


def plan_vectors(
    body: Mapping[str, Any], name: str, facts: EmbeddingFacts | None
) -> EmbeddingsPlan:
    """``plan_embeddings`` from the facts alone (zoo's one-model proxy has no catalog)."""
    check_input(body.get("input"))
    encoding = body.get("encoding_format")
    if encoding not in (None, "float", "base64"):
        raise InvalidRequest('`encoding_format` must be "float" or "base64"')
    wanted = body.get("dimensions")
    if wanted is not None:
        if type(wanted) is not int:
            raise InvalidRequest("`dimensions` must be a whole number")
        if wanted < 1:
            raise InvalidRequest("`dimensions` must be at least 1")
        if facts is not None:
            if not facts.supports_dimensions(wanted):
                sizes = sorted({facts.dimensions, *facts.matryoshka_dimensions})
                allowed = (
                    str(sizes[0]) if len(sizes) == 1 else "one of " + ", ".join(map(str, sizes))
                )
                raise InvalidRequest(
                    f"{name} makes {facts.dimensions}-dimensional vectors: "
                    f"`dimensions` may be {allowed}, not {wanted}"
                )
            if wanted == facts.dimensions:
                wanted = None  # full length: nothing to cut
    upstream = {k: v for k, v in body.items() if k not in ("encoding_format", "dimensions")}
    normalize = facts is None or facts.normalized is not False
    return EmbeddingsPlan(upstream, encoding == "base64", wanted, normalize)


def check_input(value: Any) -> None:
    """``input`` as OpenAI takes it: a string, a list of strings, a list of token ids, or a
    list of such lists; never empty."""
    if value is None:
        raise InvalidRequest("`input` is required: a string or a list of strings")
    if isinstance(value, str):
        if not value:
            raise InvalidRequest("`input` is empty")
        return
    if not isinstance(value, list):
        raise InvalidRequest("`input` must be a string or a list of strings")
    if not value:
        raise InvalidRequest("`input` is an empty list: send at least one text")
    if _token_ids(value):
        return  # one text as token ids
    if len(value) > MAX_INPUTS:
        raise InvalidRequest(f"`input` has {len(value)} items: at most {MAX_INPUTS} per request")
    strings = isinstance(value[0], str)
    for number, item in enumerate(value):
        if strings and isinstance(item, str):
            if not item:
                raise InvalidRequest(f"`input[{number}]` is empty")
        elif not strings and isinstance(item, list) and item and _token_ids(item):
            continue
        else:
            what = "strings" if strings else "lists of token ids"
            raise InvalidRequest(
                f"`input[{number}]` is {_type_name(item)}: `input` takes {what} (all alike)"
            )


def _token_ids(value: list[Any]) -> bool:
    return all(type(i) is int and i >= 0 for i in value)


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an empty list" if not value else "a list"
    return "an object"


def finish_embeddings(data: Any, plan: EmbeddingsPlan) -> Any:
    """The engine's answer as the client asked for it (cut, renormalized, base64)."""
    items = data.get("data") if isinstance(data, dict) else None
    if not isinstance(items, list):
        return data
    for item in items:
        if not isinstance(item, dict) or "embedding" not in item:
            continue
        vector = item["embedding"]
        if plan.dimensions is None and isinstance(vector, list) and not plan.base64:
            continue  # as the engine sent it: the common case costs nothing
        values = _floats(vector)
        if plan.dimensions is not None:
            if len(values) < plan.dimensions:
                raise InvalidRequest(
                    f"the model made {len(values)}-dimensional vectors: "
                    f"`dimensions` {plan.dimensions} is more"
                )
            values = values[: plan.dimensions]
            if plan.normalize:
                values = _unit(values)
        item["embedding"] = _base64(values) if plan.base64 else values
        item["object"] = item.get("object", "embedding")
    return data


def _floats(vector: Any) -> list[float]:
    if isinstance(vector, str):  # an engine that answered base64 all the same
        packed = array("f")
        packed.frombytes(base64.b64decode(vector))
        if sys.byteorder == "big":
            packed.byteswap()
        return packed.tolist()
    if isinstance(vector, list):
        return [float(v) for v in vector]
    raise InvalidRequest("the engine answered an embedding that is not a list of numbers")


def _unit(values: list[float]) -> list[float]:
    norm = math.sqrt(math.fsum(v * v for v in values))
    return values if norm == 0 else [v / norm for v in values]


def _base64(values: list[float]) -> str:
    packed = array("f", values)
    if sys.byteorder == "big":
        packed.byteswap()  # OpenAI's base64 is little-endian float32
    return base64.b64encode(packed.tobytes()).decode("ascii")


# llama.cpp's answer (a 500) to an input longer than its physical batch: "input (300 tokens) is
# too large to process. increase the physical batch size (current batch size: 256)".
_TOO_LARGE = re.compile(r"input \((\d+) tokens\) is too large to process")


def too_long(data: Any, name: str, limit: int | None) -> str | None:
    """The one-line 400 for an engine's "input too large" error, naming the model's limit
    (None when ``data`` is some other answer): the engine's own names its batch size."""
    error = data.get("error") if isinstance(data, dict) else None
    message = error.get("message") if isinstance(error, dict) else error
    found = _TOO_LARGE.search(message) if isinstance(message, str) else None
    if found is None:
        return None
    most = f"at most {limit} tokens" if limit else "fewer tokens"
    return f"an input has {found.group(1)} tokens: {name} takes {most} per input"


# ---- rerank --------------------------------------------------------------------------------


@dataclass(frozen=True)
class RerankPlan:
    upstream: dict[str, Any]
    texts: tuple[str, ...]
    top_n: int | None
    return_documents: bool


def plan_rerank(body: Mapping[str, Any]) -> RerankPlan:
    """The checked rerank request; documents go upstream as plain strings (``{"text"}``
    objects, Cohere's and Jina's other form, are unwrapped), every one scored."""
    query = body.get("query")
    if not isinstance(query, str) or not query:
        raise InvalidRequest("`query` is required: a non-empty string")
    documents = body.get("documents")
    if not isinstance(documents, list):
        raise InvalidRequest("`documents` is required: a list of strings")
    if not documents:
        raise InvalidRequest("`documents` is an empty list: send at least one document")
    if len(documents) > MAX_DOCUMENTS:
        raise InvalidRequest(
            f"`documents` has {len(documents)} items: at most {MAX_DOCUMENTS} per request"
        )
    texts: list[str] = []
    for number, item in enumerate(documents):
        text = item.get("text") if isinstance(item, dict) else item
        if not isinstance(text, str):
            raise InvalidRequest(
                f"`documents[{number}]` is {_type_name(item)}: "
                'documents are strings or {"text": ...} objects'
            )
        texts.append(text)
    top_n = body.get("top_n")
    if top_n is not None and (type(top_n) is not int or top_n < 1):
        raise InvalidRequest("`top_n` must be a whole number of at least 1")
    returned = body.get("return_documents", True)
    if type(returned) is not bool:
        raise InvalidRequest("`return_documents` must be true or false")
    upstream = {k: v for k, v in body.items() if k not in ("top_n", "return_documents")}
    upstream["documents"] = texts
    return RerankPlan(upstream, tuple(texts), top_n, returned)


def finish_rerank(data: Any, plan: RerankPlan) -> Any:
    """Results sorted by score (highest first), cut to ``top_n``, with or without their
    documents as asked."""
    results = data.get("results") if isinstance(data, dict) else None
    if not isinstance(results, list):
        return data
    kept = [r for r in results if isinstance(r, dict)]
    kept.sort(key=_score_order)
    if plan.top_n is not None:
        kept = kept[: plan.top_n]
    for result in kept:
        index = result.get("index")
        if plan.return_documents and type(index) is int and 0 <= index < len(plan.texts):
            result["document"] = {"text": plan.texts[index]}
        else:
            result.pop("document", None)
    data["results"] = kept
    return data


def _score_order(result: Mapping[str, Any]) -> tuple[float, int]:
    score = result.get("relevance_score")
    index = result.get("index")
    value = float(score) if isinstance(score, int | float) else -math.inf
    return -value, index if type(index) is int else 0


# ---- through the gateway -------------------------------------------------------------------


@dataclass
class Pooled:
    """An engine's embeddings or rerank answer, made uniform: ``raw`` as the client gets it."""

    status: int
    headers: dict[str, str]
    media_type: str
    raw: bytes
    load_seconds: float
    seconds: float
    _data: Any = None

    def json(self) -> Any:
        """The answer parsed (None when it is not JSON)."""
        if self._data is None:
            with contextlib.suppress(ValueError, RecursionError):
                self._data = json.loads(self.raw)
        return self._data


async def forward(
    gateway: Gateway, name: str, body: dict[str, Any], kind_name: str, *, route: str
) -> Pooled:
    """Check ``body`` for a model of ``kind_name`` (no model starts for a bad one), send it to
    the model's engine on the kind's main route, and finish its answer."""
    entry = gateway.entry(name)
    family = gateway.catalog.get(entry.family)
    path = kinds.KINDS[kind_name].main_route
    check_kind(entry, family, path)
    plan: EmbeddingsPlan | RerankPlan
    plan = plan_rerank(body) if kind_name == kinds.RERANK else plan_embeddings(body, family)
    started = time.monotonic()
    timings: dict[str, float] = {}
    _, answer, stack = await gateway.complete(
        name, dict(plan.upstream), path, route=route, timings=timings
    )
    try:
        raw = b"".join([chunk async for chunk in answer.body])
    finally:
        await stack.aclose()
    headers = {k: v for k, v in answer.headers.items() if k.lower() != "content-type"}
    media_type = answer.headers.get("content-type", "application/json")
    pooled = Pooled(
        answer.status, headers, media_type, raw, timings.get("lease", 0.0), 0.0, answer.parsed
    )
    # Float vectors at full length pass as the engine sent them (the benchmarked case).
    as_sent = isinstance(plan, EmbeddingsPlan) and plan.dimensions is None and not plan.base64
    data = None if as_sent or answer.status != 200 else pooled.json()
    if data is not None:
        if isinstance(plan, RerankPlan):
            data = finish_rerank(data, plan)
        else:
            data = finish_embeddings(data, plan)
        pooled.raw = json.dumps(data, ensure_ascii=False).encode()
        pooled.media_type = "application/json"
        pooled._data = data
    pooled.seconds = time.monotonic() - started
    return pooled
