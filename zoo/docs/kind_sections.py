"""What a family page says that depends on the model's kind: its facts and how to call it.

An embedding model's page gives its vector facts (dimensions, Matryoshka sizes, pooling,
prompts) and an ``openai`` client example; a reranker's page its type and a ``curl`` of the
rerank route. Routes and request bodies come from ``zoo.kinds`` (the same ones the launch
banner, the gateway and readiness use), so a page never states a route of its own.
Language-model pages keep their own sections (chat template, stop strings) in
``zoo.docs.family_page``; nothing here appears on them.
"""

from __future__ import annotations

import json

from zoo import kinds
from zoo.catalog.model import Family
from zoo.docs import rst

# The port the examples use: ``zoo launch NAME --port 8080`` starts the server there.
DOCS_PORT = 8080
DOCS_HOST = "127.0.0.1"
# A search query for embedding examples of models that want a query prompt.
DOCS_QUERY = "Where did the cat sit?"

RERANK_TYPE_WORDS = {
    "cross-encoder": "cross-encoder (scores each query and document pair together)",
    "llm": "LLM-based (a language model judges each document's relevance)",
    "llm-layerwise": "LLM-based, layerwise (relevance read at several layers of a language model)",
}


# The footnote a page's unverified facts point to (``zoo.docs.family_page`` writes it once).
UNVERIFIED_NOTE = "unverified"
# Family-level facts an embedding or reranker spec may mark in ``extra.unverified``, and the
# rows of ``kind_fields`` that show them.
_UNVERIFIED_ROWS = {
    "embedding.dimensions": ("Dimensions",),
    "embedding.matryoshka_dimensions": ("Matryoshka dimensions",),
    "embedding.pooling": ("Pooling",),
    "embedding.normalized": ("Normalized",),
    "embedding.prompts": ("Query prompt", "Document prompt"),
    "rerank.type": ("Reranker type",),
}


def unverified_family_facts(family: Family) -> tuple[str, ...]:
    """The family-level facts a spec marks unverified (``extra.unverified``: "size",
    "embedding.pooling", ...), written from the card and not yet checked."""
    marked = family.extra.get("unverified")
    return tuple(str(m) for m in marked) if isinstance(marked, list) else ()


def kind_label(kind: str) -> str:
    return f"kind-{kind}"


def kind_title(kind: str) -> str:
    """``embedding model`` for ``embedding``; an unknown kind is shown as it is named."""
    known = kinds.KINDS.get(kind)
    return known.title if known else kind


def kind_plural(kind: str) -> str:
    known = kinds.KINDS.get(kind)
    return known.plural if known else f"{kind} models"


def base_url() -> str:
    return f"http://{DOCS_HOST}:{DOCS_PORT}/v1"


def _quoted(text: str) -> str:
    # Prompts end in a space that matters; a JSON string shows it (and any other whitespace).
    return rst.literal(json.dumps(text, ensure_ascii=False))


def kind_fields(family: Family) -> list[tuple[str, str]]:
    """The facts of ``family``'s kind, as field-list rows (empty ones are left out later)."""
    rows: list[tuple[str, str]] = [
        ("Kind", rst.ref(kind_title(family.kind), kind_label(family.kind)))
    ]
    embedding = family.embedding
    if embedding is not None:
        # Unknown (None) is left out rather than guessed.
        normalized: dict[bool | None, str] = {
            True: "yes (length 1: a dot product is the cosine)",
            False: "no",
        }
        rows += [
            ("Dimensions", f"{embedding.dimensions:,}" + _upstream(family, "dimensions")),
            (
                "Matryoshka dimensions",
                ", ".join(f"{d:,}" for d in embedding.matryoshka_dimensions),
            ),
            ("Pooling", rst.text(embedding.pooling or "")),
            ("Normalized", normalized.get(embedding.normalized, "")),
            ("Query prompt", _quoted(embedding.query_prefix) if embedding.query_prefix else ""),
            (
                "Document prompt",
                _quoted(embedding.document_prefix) if embedding.document_prefix else "",
            ),
        ]
    if family.rerank is not None:
        rows.append(
            (
                "Reranker type",
                rst.text(RERANK_TYPE_WORDS.get(family.rerank.type, family.rerank.type))
                + _upstream(family, "type"),
            )
        )
    marked = {
        row for fact in unverified_family_facts(family) for row in _UNVERIFIED_ROWS.get(fact, ())
    }
    note = rst.footnote_ref(UNVERIFIED_NOTE)
    return [(name, value + note if value and name in marked else value) for name, value in rows]


def _upstream(family: Family, key: str) -> str:
    """Where an imported fact was corrected, what Xinference's registry says (its pages show
    that figure; zoo keeps it in ``extra.xinference`` for a lossless export)."""
    upstream = family.extra.get("xinference")
    if not isinstance(upstream, dict) or key not in upstream:
        return ""
    value = upstream[key]
    shown = f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)
    return f" (Xinference's registry: {rst.text(shown)})"


def openai_example(family: Family) -> str:
    """Python that embeds with the official ``openai`` client, prompts and Matryoshka included."""
    facts = family.embedding
    texts = list(kinds.KINDS[kinds.EMBEDDING].example["input"])
    document = facts.document_prefix if facts else None
    query = facts.query_prefix if facts else None
    dimensions = facts.dimensions if facts else None
    lines = [
        "import os",
        "",
        "from openai import OpenAI",
        "",
        "client = OpenAI(",
        f'    base_url="{base_url()}", api_key=os.environ.get("ZOO_API_KEY", "none")',
        ")",
        f"texts = {json.dumps(texts, ensure_ascii=False)}",
    ]
    inputs = (
        f"[{json.dumps(document, ensure_ascii=False)} + t for t in texts]" if document else "texts"
    )
    lines += [
        "result = client.embeddings.create(",
        f"    model={json.dumps(family.name)},",
        f"    input={inputs},",
        ")",
        "print(len(result.data), len(result.data[0].embedding))"
        + (f"  # {len(texts)} {dimensions}" if dimensions else ""),
    ]
    if query or (facts and facts.matryoshka_dimensions):
        lines += [
            "query = client.embeddings.create(",
            f"    model={json.dumps(family.name)},",
            f"    input=[{json.dumps((query or '') + DOCS_QUERY, ensure_ascii=False)}],",
        ]
        shown = dimensions
        if facts and facts.matryoshka_dimensions:
            # The largest Matryoshka cut: a shorter length the model was trained for.
            shown = facts.matryoshka_dimensions[0]
            lines.append(f"    dimensions={shown},")
        lines += [")", f"print(len(query.data[0].embedding))  # {shown}"]
    return "\n".join(lines)


def rerank_body(family: Family) -> dict[str, object]:
    return {"model": family.name, **kinds.KINDS[kinds.RERANK].example}


def rerank_curl(family: Family) -> str:
    route = kinds.KINDS[kinds.RERANK].main_route
    body = json.dumps(rerank_body(family), ensure_ascii=False)
    return (
        f"curl http://{DOCS_HOST}:{DOCS_PORT}{route} \\\n"
        "  -H 'Content-Type: application/json' \\\n"
        f"  -d '{body}'"
    )


def usage_section(family: Family, served: bool) -> str:
    """How to start the model and call it: ``zoo launch`` then the kind's own request.

    ``served`` says whether an installed engine serves this kind (else the page says zoo
    picks one once such an engine is installed).
    """
    kind = kinds.KINDS.get(family.kind)
    if kind is None or kind.name == kinds.LLM:
        return ""
    launch = f"zoo launch {family.name} --port {DOCS_PORT}"
    start = (
        "Start it; zoo picks the build, quantization and engine that fit this machine (the "
        "specifications below pin each choice):\n"
        if served
        else f"Start it (zoo picks an engine once one that serves {kind.plural} is installed):\n"
    )
    parts = [rst.heading("Usage", "-"), start, rst.code_block(launch, "shell")]
    prompts = family.embedding is not None and (
        family.embedding.query_prefix or family.embedding.document_prefix
    )
    if kind.name == kinds.EMBEDDING:
        parts.append(
            f"Then ask {rst.literal(kind.main_route)} with the official ``openai`` client "
            "(``pip install openai``)"
            + (
                ": the model expects its prompts before each text, as the example sends them"
                if prompts
                else ""
            )
            + ":\n"
        )
        parts.append(rst.code_block(openai_example(family), "python"))
    elif kind.name == kinds.RERANK:
        parts.append(
            f"Then rank documents against a query on {rst.literal(kind.main_route)}; the answer "
            "lists each document's index and relevance score, best first (``top_n`` keeps "
            "the best few, ``return_documents`` adds their text):\n"
        )
        parts.append(rst.code_block(rerank_curl(family), "shell"))
    return "\n".join(parts)
