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
import dataclasses
import json
import math
import re
import sys
import time
from array import array
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from zoo import kinds
from zoo.serve.errors import BadEngineAnswer, InvalidRequest, WrongRoute

if TYPE_CHECKING:
    from zoo.catalog.model import EmbeddingFacts, Family
    from zoo.serve.gateway import Gateway
    from zoo.serve.types import ModelEntry

# OpenAI's own limit on inputs per embeddings request; Cohere's on documents per rerank.
MAX_INPUTS = 2048
MAX_DOCUMENTS = 1000


def check_kind(entry: ModelEntry, family: Family, path: str, *, asked: str | None = None) -> None:
    """A 400 naming the right route when ``path`` is not for the family's kind (``asked``:
    the client's path, named in the message, when it is not ``path``)."""
    message = kinds.wrong_route(entry.name, family.kind, path, asked=asked)
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
    _check_ids(value, "`input`")
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
            if isinstance(item, list):
                _check_ids(item, f"`input[{number}]`")
            what = "strings" if strings else "lists of token ids"
            raise InvalidRequest(
                f"`input[{number}]` is {_type_name(item)}: `input` takes {what} (all alike)"
            )


def _token_ids(value: list[Any]) -> bool:
    return all(type(i) is int and i >= 0 for i in value)


def _check_ids(value: list[Any], where: str) -> None:
    """A 400 naming a negative id in what is otherwise a list of token ids."""
    if not value or not all(type(i) is int for i in value):
        return
    found = next(((n, i) for n, i in enumerate(value) if i < 0), None)
    if found is None:
        return  # good ids (where strings were expected: the caller says so)
    number, bad = found
    raise InvalidRequest(
        f"{where[:-1]}[{number}]` is {bad}: token ids are whole numbers of at least 0"
    )


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
    """The engine's (200) answer as the client asked for it (cut, renormalized, base64),
    every vector checked: one that is not a list of finite numbers (a multi-vector model's
    lists, a null, NaN, broken base64) is a 502 saying so, never a 500 or invalid JSON."""
    items = data.get("data") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise BadEngineAnswer("the engine answered no `data` list of embeddings")
    for number, item in enumerate(items):
        if not isinstance(item, dict) or "embedding" not in item:
            raise BadEngineAnswer(f"the engine answered `data[{number}]` without an `embedding`")
        vector = item["embedding"]
        values = _floats(vector, f"`data[{number}].embedding`")
        if plan.dimensions is None and isinstance(vector, list) and not plan.base64:
            continue  # checked, and passed on as the engine sent it
        if plan.dimensions is not None:
            if len(values) < plan.dimensions:
                # The spec promised this size (plan_embeddings checked it): the spec's or
                # the engine's fault, not the client's.
                raise BadEngineAnswer(
                    f"the engine answered a {len(values)}-dimensional vector, too short for "
                    f"`dimensions` {plan.dimensions}: the spec's embedding sizes do not match "
                    "the model"
                )
            values = values[: plan.dimensions]
            if plan.normalize:
                values = _unit(values)
        item["embedding"] = _base64(values) if plan.base64 else values
        item["object"] = item.get("object", "embedding")
    return data


def _floats(vector: Any, where: str = "an embedding") -> list[float]:
    """The vector's values; a 502 when it is not one vector of finite numbers."""
    if isinstance(vector, str):  # an engine that answered base64 all the same
        try:
            raw = base64.b64decode(vector, validate=True)
        except ValueError as error:  # binascii.Error: bad characters or padding
            raise BadEngineAnswer(
                f"the engine answered {where} as text that is not base64"
            ) from error
        if len(raw) % 4:
            raise BadEngineAnswer(
                f"the engine answered {where} as {len(raw)} bytes of base64: not float32 values"
            )
        packed = array("f")
        packed.frombytes(raw)
        if sys.byteorder == "big":
            packed.byteswap()
        values = packed.tolist()
    elif isinstance(vector, list):
        # Checked in C where it can be (map, set, sum): every answer passes through here.
        types = set(map(type, vector))
        if not types <= {float, int}:
            number, value = next(
                (n, v) for n, v in enumerate(vector) if type(v) not in (float, int)
            )
            why = " (a multi-vector model?)" if isinstance(value, list) else ""
            raise BadEngineAnswer(
                f"the engine answered {where} with {_type_name(value)} at [{number}]{why}: "
                "an embedding is one list of numbers"
            )
        values = vector
        if int in types:
            try:
                values = [float(v) for v in vector]
            except OverflowError as error:  # a whole number past float's range
                raise BadEngineAnswer(
                    f"the engine answered {where} with a number out of range"
                ) from error
    else:
        raise BadEngineAnswer(
            f"the engine answered {where} as {_type_name(vector)}: not a list of numbers"
        )
    if not values:
        raise BadEngineAnswer(f"the engine answered {where} empty")
    # A NaN or infinity makes the sum one; a finite sum says none is there.
    if not math.isfinite(sum(values)) and not all(map(math.isfinite, values)):
        raise BadEngineAnswer(f"the engine answered {where} with NaN or infinite values")
    return values


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


# Sends a JSON body to a path of the engine: (status, the answer parsed or None).
EnginePost = Callable[[str, dict[str, Any]], Awaitable[tuple[int, Any]]]


async def cut_inputs(post: EnginePost, value: Any, limit: int) -> list[list[int]] | None:
    """An embeddings ``input`` as token ids cut to ``limit`` each, as a Hugging Face tokenizer
    (sentence-transformers' max_seq_length) cuts: the special tokens around the text are
    kept, the text's last tokens go. For an engine that refuses an over-long input although
    the spec says ``truncate: true`` (llama.cpp: its 500 "input too large"); the ids come from
    the engine's own POST /tokenize, and its /v1/embeddings takes them as they are. Token-id
    inputs are cut as given. None when the engine cannot tokenize (the refusal stands)."""
    items = [value] if isinstance(value, str) or _token_ids_of(value) else value
    cut: list[list[int]] = []
    for item in items:
        if not isinstance(item, str):
            cut.append(list(item[:limit]))
            continue
        full = await _tokenize(post, item, special=True)
        if full is not None and len(full) > limit:
            plain = await _tokenize(post, item, special=False)
            full = None if plain is None else cut_tokens(full, plain, limit)
        if full is None:
            return None
        cut.append(full)
    return cut


def cut_tokens(full: list[int], plain: list[int], limit: int) -> list[int]:
    """``full`` (the text's tokens with the special ones) cut to ``limit``, keeping the special
    tokens before and after ``plain`` (the text's own tokens) as truncation does."""
    for start in range(len(full) - len(plain) + 1):
        if full[start : start + len(plain)] == plain:
            head, tail = full[:start], full[start + len(plain) :]
            keep = max(limit - len(head) - len(tail), 0)
            return (head + plain[:keep] + tail)[:limit]
    return full[:limit]  # the specials merged into the text's tokens: a plain cut


# llama.cpp's rerank pair is [BOS] query [EOS] [SEP] document [EOS]: at most this many tokens
# besides the texts' own (a BERT cross-encoder's tokenizer adds 3).
PAIR_SPECIALS = 4


async def cut_documents(
    post: EnginePost, query: str, documents: Sequence[str], limit: int
) -> list[str] | None:
    """Rerank documents cut so each (query, document) pair fits ``limit``, for an engine that
    refuses an over-long pair although the spec says ``truncate: true`` (llama.cpp): the
    document's last tokens go, as a cross-encoder's tokenizer cuts the longer text, through
    the engine's /tokenize and /detokenize. None when the query leaves no room or the engine
    cannot tokenize (the refusal stands)."""
    asked = await _tokenize(post, query, special=False)
    room = limit - len(asked) - PAIR_SPECIALS if asked is not None else 0
    if room <= 0:
        return None
    cut: list[str] = []
    for document in documents:
        ids = await _tokenize(post, document, special=False)
        if ids is None:
            return None
        if len(ids) <= room:
            cut.append(document)
            continue
        status, data = await post("/detokenize", {"tokens": ids[:room]})
        text = data.get("content") if status == 200 and isinstance(data, dict) else None
        if not isinstance(text, str) or not text:
            return None
        cut.append(text)
    return cut


def _token_ids_of(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(t, int) for t in value)


async def _tokenize(post: EnginePost, text: str, *, special: bool) -> list[int] | None:
    status, data = await post("/tokenize", {"content": text, "add_special": special})
    tokens = data.get("tokens") if status == 200 and isinstance(data, dict) else None
    if isinstance(tokens, list) and all(type(t) is int for t in tokens):
        return tokens
    return None


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
        if isinstance(item, dict) and not isinstance(text, str):
            raise InvalidRequest(
                f"`documents[{number}]` has no `text`: a document object needs one"
                if text is None
                else f"`documents[{number}].text` is {_type_name(text)}: it must be a string"
            )
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
    documents as asked. Each result is checked: an index that is not one of the documents'
    or a score that is not a finite number (NaN would make the order and the JSON invalid) is
    a 502 saying so."""
    results = data.get("results") if isinstance(data, dict) else None
    if not isinstance(results, list):
        raise BadEngineAnswer("the engine answered no `results` list")
    seen: set[int] = set()
    for number, result in enumerate(results):
        if not isinstance(result, dict):
            raise BadEngineAnswer(
                f"the engine answered `results[{number}]` as {_type_name(result)}"
            )
        index, score = result.get("index"), result.get("relevance_score")
        if type(index) is not int or not 0 <= index < len(plan.texts) or index in seen:
            why = "twice" if index in seen else f"not one of the {len(plan.texts)} documents'"
            raise BadEngineAnswer(
                f"the engine answered `results[{number}].index` {_shown(index)}: {why}"
            )
        if isinstance(score, bool) or not isinstance(score, float | int) or not _finite(score):
            raise BadEngineAnswer(
                f"the engine answered `results[{number}].relevance_score` {_shown(score)}: "
                "not a finite number"
            )
        seen.add(index)
    kept: list[dict[str, Any]] = list(results)
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
    # Checked by finish_rerank: a finite number and a document's index.
    return -float(result["relevance_score"]), result["index"]


def _finite(number: float) -> bool:
    try:
        return math.isfinite(number)
    except OverflowError:  # a whole number past float's range
        return False


def _shown(value: Any) -> str:
    """A value as a message shows it (short)."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


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
    gateway: Gateway,
    name: str,
    body: dict[str, Any],
    kind_name: str,
    *,
    route: str,
    asked: str | None = None,
) -> Pooled:
    """Check ``body`` for a model of ``kind_name`` (no model starts for a bad one), send it to
    the model's engine on the kind's main route, and finish its answer (a 502 for one that
    cannot be passed on). ``asked``: the client's path, named in a wrong-route error."""
    entry = gateway.entry(name)
    family = gateway.family(entry)
    path = kinds.KINDS[kind_name].main_route
    check_kind(entry, family, path, asked=asked)
    plan: EmbeddingsPlan | RerankPlan
    plan = plan_rerank(body) if kind_name == kinds.RERANK else plan_embeddings(body, family)
    started = time.monotonic()
    timings: dict[str, float] = {}
    pooled = await _send(gateway, name, plan.upstream, path, route, timings)
    if pooled.status != 200:
        # llama.cpp answers an over-long input with a 500 naming its batch size: cut the
        # input with the engine's own tokenizer and ask once more when the spec says
        # truncate, else one 400 naming the model's limit.
        message = too_long(pooled.json(), name, family.context_length)
        if message is None:
            pooled.seconds = time.monotonic() - started
            return pooled  # the engine's error, as it sent it
        facts = family.embedding if kind_name == kinds.EMBEDDING else family.rerank
        cut = None
        if facts is not None and facts.truncate:
            post = _engine_post(gateway, name, route)
            cut = await _cut_plan(post, plan, family.context_length)
        if cut is None:
            raise InvalidRequest(message)
        plan = cut
        pooled = await _send(gateway, name, plan.upstream, path, route, {})
        pooled.load_seconds = timings.get("lease", 0.0)
        if pooled.status != 200:
            message = too_long(pooled.json(), name, family.context_length)
            if message is not None:
                raise InvalidRequest(message)
            pooled.seconds = time.monotonic() - started
            return pooled
    # The forwarder parsed the answer already (to rename its model): checking it is cheap.
    data = pooled.json()
    if data is None:
        raise BadEngineAnswer(f"the engine answered {path} with something that is not JSON")
    if isinstance(plan, RerankPlan):
        data = finish_rerank(data, plan)
    else:
        data = finish_embeddings(data, plan)
    # Float vectors at full length pass as the engine sent them (the benchmarked case).
    as_sent = isinstance(plan, EmbeddingsPlan) and plan.dimensions is None and not plan.base64
    if not as_sent:
        pooled.raw = json.dumps(data, ensure_ascii=False).encode()
        pooled.media_type = "application/json"
        pooled._data = data
    pooled.seconds = time.monotonic() - started
    return pooled


async def _send(
    gateway: Gateway,
    name: str,
    body: Mapping[str, Any],
    path: str,
    route: str,
    timings: dict[str, float],
) -> Pooled:
    """``body`` to ``path`` on the model's engine, its whole answer read (the lease held
    only meanwhile)."""
    _, answer, stack = await gateway.complete(name, dict(body), path, route=route, timings=timings)
    try:
        raw = b"".join([chunk async for chunk in answer.body])
    finally:
        await stack.aclose()
    headers = {k: v for k, v in answer.headers.items() if k.lower() != "content-type"}
    media_type = answer.headers.get("content-type", "application/json")
    return Pooled(
        answer.status, headers, media_type, raw, timings.get("lease", 0.0), 0.0, answer.parsed
    )


def _engine_post(gateway: Gateway, name: str, route: str) -> EnginePost:
    """An EnginePost to the model's engine through the gateway (its /tokenize, /detokenize)."""

    async def post(path: str, body: dict[str, Any]) -> tuple[int, Any]:
        pooled = await _send(gateway, name, body, path, route, {})
        return pooled.status, pooled.json()

    return post


async def _cut_plan(
    post: EnginePost, plan: EmbeddingsPlan | RerankPlan, limit: int
) -> EmbeddingsPlan | RerankPlan | None:
    """``plan`` with its input (or documents) cut to ``limit`` by the engine's tokenizer; the
    client still gets its own documents back. None when it cannot be cut."""
    upstream = dict(plan.upstream)
    if isinstance(plan, RerankPlan):
        documents = await cut_documents(post, str(upstream["query"]), plan.texts, limit)
        if documents is None:
            return None
        upstream["documents"] = documents
    else:
        inputs = await cut_inputs(post, upstream["input"], limit)
        if inputs is None:
            return None
        upstream["input"] = inputs
    return dataclasses.replace(plan, upstream=upstream)
