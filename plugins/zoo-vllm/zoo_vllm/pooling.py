"""vLLM's pooling runner: the ``vllm serve`` flags that serve an embedding model or a reranker.

vLLM 0.32 runs one model in one mode. ``--runner pooling`` with ``--convert embed`` serves
/v1/embeddings (a checkpoint that already pools, like BERT's ``BertModel``, stays as it is; a
decoder such as ``LlamaForCausalLM`` is adapted, pooling its last token by default);
``--convert classify`` serves a cross-encoder's scores on /v1/rerank, /rerank, /v2/rerank and
/score. The spec's embedding facts are passed as the pooler config, so vLLM pools and
normalizes as the catalog says even when the folder has no sentence-transformers files:
``pooling_type`` (vLLM knows MEAN, CLS and LAST, no max) and ``use_activation`` (for an
embedding, the L2 normalization; the old ``normalize`` key is refused by 0.32).

``dimensions`` in a request only works when vLLM thinks the model is a Matryoshka model
(``matryoshka_dimensions`` in its config, else 400 "does not support Matryoshka"): the
spec's sizes are handed over with ``--hf-overrides``, the full size included, so a request
for one of them is cut and re-normalized, and any other size is a 400.

Only the standard library and zoo's public catalog model: this runs in zoo's process.
"""

from __future__ import annotations

import json

from zoo.catalog.model import Family

EMBEDDING = "embedding"
RERANK = "rerank"
# The spec's pooling names -> vLLM's PoolerConfig.pooling_type (SequencePoolingType).
POOLING_TYPES = {"mean": "MEAN", "cls": "CLS", "last": "LAST"}
# Rerankers vLLM serves with a plain --convert classify: one score per (query, document).
# LLM-based rerankers (Qwen3-Reranker, bge-reranker-v2-gemma) need per-model overrides
# (which tokens' logits make the score, a prompt template), layer-wise ones a custom head.
RERANK_TYPES = ("cross-encoder",)


def pooling_problem(family: Family) -> str | None:
    """Why vLLM's pooling runner cannot serve ``family`` as its spec says, or None."""
    if family.kind == EMBEDDING and family.embedding is not None:
        pooling = family.embedding.pooling
        if pooling is not None and pooling not in POOLING_TYPES:
            known = ", ".join(POOLING_TYPES)
            return f"pools by {known}, not {pooling} (the model's pooling)"
    rerank = family.rerank if family.kind == RERANK else None
    if rerank is not None and rerank.type not in RERANK_TYPES:
        return (
            f"serves cross-encoder rerankers, not {rerank.type} ones "
            "(those need model-specific --hf-overrides)"
        )
    return None


def truncates(family: Family) -> bool:
    """The spec's ``truncate`` for the family's kind (True, the default, when it has none)."""
    facts = family.embedding if family.kind == EMBEDDING else family.rerank
    return facts is None or facts.truncate


def pooling_args(family: Family) -> list[str]:
    """The ``vllm serve`` flags for ``family``'s kind: none for a language model."""
    if family.kind == RERANK:
        return ["--runner", "pooling", "--convert", "classify"]
    if family.kind != EMBEDDING:
        return []
    args = ["--runner", "pooling", "--convert", "embed"]
    facts = family.embedding
    if facts is None:
        return args
    pooler: dict[str, object] = {}
    if facts.pooling in POOLING_TYPES:
        pooler["pooling_type"] = POOLING_TYPES[facts.pooling]
    if facts.normalized is not None:
        pooler["use_activation"] = facts.normalized
    if pooler:
        args += ["--pooler-config", json.dumps(pooler, sort_keys=True)]
    if facts.matryoshka_dimensions:
        sizes = sorted({*facts.matryoshka_dimensions, facts.dimensions})
        args += ["--hf-overrides", json.dumps({"matryoshka_dimensions": sizes})]
    return args
