"""Made-up but realistic families, for the render benchmark and scale tests.

Each family mixes the shapes real specs have (per-quantization repositories, GGUF files with
split parts, pinned revisions, MoE sizes, FIM), so rendering 1,000 of them exercises every
branch of the page renderer. One in ten is an embedding model (Matryoshka sizes, prompts with
markup-like text) and one in ten a reranker, as in the real catalog's mix of kinds.
"""

from __future__ import annotations

import dataclasses

from zoo.catalog.model import (
    EmbeddingFacts,
    Family,
    FimTemplate,
    RerankFacts,
    Source,
    Spec,
    SplitFiles,
)

_GGUF = ("BF16", "Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q4_0", "IQ4_XS", "Q3_K_M", "Q2_K")
_ABILITIES = ("chat", "tools", "reasoning", "vision", "generate", "fim", "hybrid")


def family(index: int) -> Family:
    name = f"synthetic-{index:04d}"
    title = f"Synthetic-{index}"
    size = float(1 + index % 70) if index % 3 else 0.5 + (index % 7) * 0.25
    revision = f"{index:040x}"
    pytorch = Spec(
        format="pytorch",
        size=size,
        quantizations=("none",),
        sources=(
            Source("huggingface", f"org{index % 9}/{title}-Instruct", ("none",), revision),
            Source("modelscope", f"org{index % 9}/{title}-Instruct", ("none",)),
        ),
        activated_size=size / 8 if index % 5 == 0 else None,
    )
    gptq = Spec(
        format="gptq",
        size=size,
        quantizations=("Int8", "Int4"),
        sources=(Source("huggingface", f"quant/{title}-GPTQ-{{quantization}}", ("Int8", "Int4")),),
    )
    gguf = Spec(
        format="ggufv2",
        size=size,
        quantizations=_GGUF,
        sources=(
            Source(
                "huggingface",
                f"gguf/{title}-GGUF",
                _GGUF,
                file=f"{title}-{{quantization}}.gguf",
                split=SplitFiles(
                    f"{{quantization}}/{title}-{{quantization}}-{{part}}.gguf",
                    {"BF16": ("00001-of-00002", "00002-of-00002")},
                ),
            ),
        ),
    )
    abilities = tuple(dict.fromkeys(_ABILITIES[(index + k) % len(_ABILITIES)] for k in range(3)))
    made = Family(
        name=name,
        description=(
            f"{title} is a made-up model family number {index}, used to measure how fast zoo "
            "renders documentation. It has *markup-like* text [1]_ and `backticks` to escape."
        ),
        context_length=4096 * (1 + index % 32),
        languages=("en", "zh") if index % 2 else ("en",),
        abilities=abilities,
        specs=(pytorch, gptq, gguf),
        architectures=("LlamaForCausalLM",),
        license="apache-2.0",
        fim=FimTemplate("<PRE>", "<SUF>", "<MID>") if "fim" in abilities else None,
    )
    if index % 10 == 7:
        return dataclasses.replace(
            made,
            kind="embedding",
            abilities=(),
            fim=None,
            embedding=EmbeddingFacts(
                dimensions=1024,
                matryoshka_dimensions=(512, 256),
                pooling="cls",
                normalized=index % 20 == 7,
                query_prefix="query `*x*`: ",
                document_prefix="passage | ",
            ),
        )
    if index % 10 == 9:
        return dataclasses.replace(
            made, kind="rerank", abilities=(), fim=None, rerank=RerankFacts("cross-encoder")
        )
    return made


def families(count: int) -> list[Family]:
    return [family(i) for i in range(count)]
