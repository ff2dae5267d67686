"""Model kinds: what a family's model does, and which HTTP routes serve it.

A family is a language model (``llm``), an embedding model or a reranker. The kind decides
which engines can serve it (``Capabilities.kinds``), which routes a server answers for it,
and how zoo checks that a freshly started server really serves (one tiny request of the
kind's own). This module is the one place those rules live: the gateway, the launch path's
readiness check, the docs and the CLI read them from here.

New kinds (image generation, speech to text, text to speech, video) fit the same shape: a
name, the routes, a probe, and a facts block in the spec format named after the kind.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

LLM = "llm"
EMBEDDING = "embedding"
RERANK = "rerank"

# What a language model can do, the schema's abilities (spec.schema.json,
# properties.abilities.items.enum), restated so that listings need neither the schema file nor
# jsonschema; a test keeps them equal.
ABILITIES = ("generate", "chat", "reasoning", "tools", "vision", "fim", "audio", "omni", "hybrid")


@dataclass(frozen=True)
class Kind:
    """One model kind: its name in specs, how people call it, its routes and its probe.

    ``routes`` are the OpenAI-style paths a server of this kind answers (the first is the
    main one, named in errors that point a client at the right route). ``probe`` is one tiny
    request (path, JSON body without ``model``) that only a ready server of this kind answers
    with 200; ``fallback_probes`` are tried when it is refused (a base LLM has no chat route).
    """

    name: str
    title: str  # "embedding model": reads after "a"/"an"
    plural: str
    routes: tuple[str, ...]
    probe: tuple[str, Mapping[str, Any]]
    # A first request users can paste (the launch banner's curl, the docs), without ``model``.
    example: Mapping[str, Any]
    fallback_probes: tuple[tuple[str, Mapping[str, Any]], ...] = ()
    # The family key holding this kind's own facts (``embedding: {dimensions: ...}``): only a
    # family of this kind may carry it. None for a kind without such a block.
    facts_block: str | None = None

    @property
    def main_route(self) -> str:
        return self.routes[0]

    @property
    def article(self) -> str:
        return "an" if self.title[:1] in "aeiou" else "a"


KINDS: Mapping[str, Kind] = {
    LLM: Kind(
        name=LLM,
        title="language model",
        plural="language models",
        routes=("/v1/chat/completions", "/v1/completions"),
        probe=(
            "/v1/chat/completions",
            {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1},
        ),
        example={"messages": [{"role": "user", "content": "Hello!"}]},
        fallback_probes=(("/v1/completions", {"prompt": "Hi", "max_tokens": 1}),),
    ),
    EMBEDDING: Kind(
        name=EMBEDDING,
        title="embedding model",
        plural="embedding models",
        routes=("/v1/embeddings",),
        probe=("/v1/embeddings", {"input": "Hi"}),
        example={"input": ["A cat sat on the mat.", "Stock markets fell today."]},
        facts_block=EMBEDDING,
    ),
    RERANK: Kind(
        name=RERANK,
        title="reranker",
        plural="rerankers",
        # /v1/rerank is the path vLLM, llama.cpp, Jina and Xinference clients use; /rerank
        # and Cohere's /v2/rerank take the same body.
        routes=("/v1/rerank", "/rerank", "/v2/rerank"),
        probe=("/v1/rerank", {"query": "Hi", "documents": ["Hi"]}),
        example={
            "query": "What do pandas eat?",
            "documents": ["Pandas eat bamboo.", "Paris is the capital of France."],
        },
        facts_block=RERANK,
    ),
}

KIND_NAMES: tuple[str, ...] = tuple(KINDS)


def kind(name: str) -> Kind:
    """The Kind called ``name``; KeyError for a name the spec schema would have refused."""
    return KINDS[name]


def kind_of_route(path: str) -> Kind | None:
    """The kind whose routes include ``path`` (``/v1/embeddings`` -> embedding), or None."""
    return next((k for k in KINDS.values() if path in k.routes), None)


def wrong_route(
    model: str,
    model_kind: str,
    path: str,
    *,
    asked: str | None = None,
    instead: Mapping[str, str] | None = None,
) -> str | None:
    """The one-line error for asking ``path`` of a ``model_kind`` model, None when it fits.

    ``model 'bge-m3' is an embedding model: send it to /v1/embeddings, not /v1/chat/completions``

    ``asked`` is the path the client used when it is not ``path`` itself (``/v1/fim``, an
    Ollama route); ``instead`` maps a kind to the route to name for it in the client's own API
    (Ollama's ``/api/embed``), the kind's main route otherwise.
    """
    wanted = kind_of_route(path)
    have = KINDS.get(model_kind)
    if wanted is None or have is None or wanted.name == have.name:
        return None
    route = (instead or {}).get(have.name, have.main_route)
    return (
        f"model {model!r} is {have.article} {have.title}: send it to {route}, not {asked or path}"
    )
