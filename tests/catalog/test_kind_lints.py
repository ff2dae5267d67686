"""Model kinds in spec files: what fits each kind (lints E313/E314), the schema's one-liners for
bad kind facts, and resolution offering a family only to engines that serve its kind."""

from __future__ import annotations

import pytest
from catalog_helpers import HEADER, check, family_text

from zoo.catalog.catalog import Catalog
from zoo.catalog.model import EmbeddingFacts, Family, RerankFacts
from zoo.engine import Capabilities, Engine, LaunchContext, ServerCommand
from zoo.errors import UsageError
from zoo.host import BUILTIN_PROFILES
from zoo.resolve import Request, resolve

# A valid embedding family with every embedding fact; tests edit it line by line.
EMBEDDING = (
    HEADER
    + """\
name: tiny-embed
description: A tiny embedding model for tests.
context_length: 512
languages: [en]
kind: embedding
embedding:
  dimensions: 384
  matryoshka_dimensions: [256, 128]
  pooling: mean
  normalized: true
  prompts:
    query: "query: "
    document: "passage: "
specs:
  - format: pytorch
    size: 0.02
    quantizations: [none]
    sources:
      huggingface:
        model_id: org/tiny-embed
"""
)

RERANK = (
    HEADER
    + """\
name: tiny-rerank
description: A tiny cross-encoder for tests.
context_length: 512
languages: [en]
kind: rerank
rerank:
  type: cross-encoder
specs:
  - format: pytorch
    size: 0.02
    quantizations: [none]
    sources:
      huggingface:
        model_id: org/tiny-rerank
"""
)

EMBEDDING_BLOCK = EMBEDDING[EMBEDDING.index("embedding:\n") : EMBEDDING.index("specs:")]

# Each LLM-only field as a spec file writes it (a block of lines after `kind:`).
LLM_ONLY = {
    "chat_template": "chat_template: '{{ messages }}'\n",
    "stop": "stop: ['</s>']\n",
    "stop_token_ids": "stop_token_ids: [2]\n",
    "abilities": "abilities: [chat]\n",
    "fim": "fim:\n  prefix: a\n  suffix: b\n  middle: c\n  order: [prefix, suffix, middle]\n",
    "reasoning": "reasoning:\n  start_tag: <think>\n  end_tag: </think>\n",
    "tool_parser": "tool_parser: hermes\n",
}


def where(text: str, needle: str, after: str = "") -> tuple[int, int]:
    """1-based (line, column) of the first ``needle`` in ``text`` (after ``after``)."""
    start = text.index(after) + len(after) if after else 0
    offset = text.index(needle, start)
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def problems(text: str) -> list[tuple[str, int, int, str]]:
    return [(p.code, p.line, p.column, p.message) for p in check(text).problems]


def test_a_valid_embedding_family_passes_clean_and_keeps_its_facts() -> None:
    result = check(EMBEDDING)
    assert result.problems == []
    family = result.family()
    assert family.kind == "embedding" and family.abilities == ()
    assert family.embedding == EmbeddingFacts(
        dimensions=384,
        matryoshka_dimensions=(256, 128),
        pooling="mean",
        normalized=True,
        query_prefix="query: ",
        document_prefix="passage: ",
    )
    assert family.embedding.supports_dimensions(128)
    assert not family.embedding.supports_dimensions(200)


def test_a_valid_reranker_passes_clean() -> None:
    result = check(RERANK)
    assert result.problems == []
    family = result.family()
    assert (family.kind, family.rerank, family.embedding) == (
        "rerank",
        RerankFacts("cross-encoder"),
        None,
    )
    # Its facts block is optional: a plain cross-encoder needs none.
    bare = RERANK.replace("rerank:\n  type: cross-encoder\n", "")
    assert check(bare).problems == []


@pytest.mark.parametrize("field", list(LLM_ONLY))
def test_llm_only_fields_on_an_embedding_model(field: str) -> None:
    text = EMBEDDING.replace("kind: embedding\n", "kind: embedding\n" + LLM_ONLY[field])
    line, column = where(text, f"{field}:")
    # Only E313, at the field's key: no knock-on warning (fim without the fim ability).
    assert problems(text) == [
        ("E313", line, column, f"{field} is for language models, not an embedding model")
    ]


def test_llm_only_fields_on_a_reranker() -> None:
    text = RERANK.replace("kind: rerank\n", "kind: rerank\n" + LLM_ONLY["chat_template"])
    line, column = where(text, "chat_template:")
    assert problems(text) == [
        ("E313", line, column, "chat_template is for language models, not a reranker")
    ]


def test_embedding_facts_on_a_language_model() -> None:
    text = family_text("chatty", extra=EMBEDDING_BLOCK)
    line, column = where(text, "embedding:")
    assert problems(text) == [
        (
            "E313",
            line,
            column,
            "embedding facts on a language model: set 'kind: embedding' or remove them",
        )
    ]


def test_embedding_facts_on_a_reranker() -> None:
    text = RERANK.replace("kind: rerank\n", "kind: rerank\n" + EMBEDDING_BLOCK)
    line, column = where(text, "embedding:")
    assert problems(text) == [
        (
            "E313",
            line,
            column,
            "embedding facts on a reranker: set 'kind: embedding' or remove them",
        )
    ]


def test_rerank_facts_on_an_embedding_model() -> None:
    text = EMBEDDING.replace("kind: embedding\n", "kind: embedding\nrerank:\n  type: llm\n")
    line, column = where(text, "rerank:")
    assert problems(text) == [
        (
            "E313",
            line,
            column,
            "rerank facts on an embedding model: set 'kind: rerank' or remove them",
        )
    ]


@pytest.mark.parametrize("family", [EMBEDDING, RERANK])
def test_a_draft_model_on_an_embedding_model_or_reranker(family: str) -> None:
    # Speculative decoding drafts tokens: a model that generates none has no use for one.
    text = family.replace(
        "        model_id: org/tiny-",
        "        draft:\n          model_id: org/d\n        model_id: org/tiny-",
    )
    line, column = where(text, "draft:")
    words = "an embedding model" if family is EMBEDDING else "a reranker"
    assert problems(text) == [
        (
            "E313",
            line,
            column,
            f"draft (a speculative decoding model) is for language models, not {words}",
        )
    ]
    # A language model may have one.
    chatty = family_text("chatty").replace(
        "        model_id: ", "        draft:\n          model_id: org/d\n        model_id: ", 1
    )
    assert "draft:" in chatty and problems(chatty) == []


def test_the_kind_rules_come_from_zoo_kinds(monkeypatch: pytest.MonkeyPatch) -> None:
    """A kind added in zoo.kinds (its title, its facts block) reaches the lints unedited."""
    from zoo import kinds

    image = kinds.Kind(
        name="image",
        title="image generator",
        plural="image generators",
        routes=("/v1/images/generations",),
        probe=("/v1/images/generations", {"prompt": "Hi"}),
        example={"prompt": "A cat"},
        facts_block="image",
    )
    monkeypatch.setattr(kinds, "KINDS", {**kinds.KINDS, "image": image})
    assert [kinds.KINDS[k].facts_block for k in ("llm", "embedding", "rerank")] == [
        None,
        "embedding",
        "rerank",
    ]
    text = EMBEDDING.replace("kind: embedding\n", "kind: embedding\nimage:\n  size: 512\n")
    line, column = where(text, "image:")
    assert (
        "E313",
        line,
        column,
        "image facts on an embedding model: set 'kind: image' or remove them",
    ) in problems(text)
    text = EMBEDDING.replace("kind: embedding\n", "kind: image\n")
    line, column = where(text, "embedding:")
    assert (
        "E313",
        line,
        column,
        "embedding facts on an image generator: set 'kind: embedding' or remove them",
    ) in problems(text)


def test_a_language_model_without_abilities() -> None:
    text = family_text("quiet").replace("abilities: [chat]\n", "")
    # At the family itself (its first key), since there is no field to point at.
    assert problems(text) == [
        ("E313", 2, 1, "a language model needs abilities (e.g. [chat]); or set its kind")
    ]
    # `kind: llm` spelled out is the same family.
    spelled = text.replace("languages: [en]\n", "languages: [en]\nkind: llm\n")
    assert [p[:3] for p in problems(spelled)] == [("E313", 2, 1)]


def test_an_embedding_model_without_its_embedding_block() -> None:
    text = EMBEDDING.replace(EMBEDDING_BLOCK, "")
    assert problems(text) == [("E313", 2, 1, "an embedding model needs embedding.dimensions")]


def test_matryoshka_sizes_must_be_smaller_than_the_dimensions() -> None:
    text = EMBEDDING.replace("[256, 128]", "[256, 384, 512]")
    at_384 = where(text, "384", after="matryoshka_dimensions:")
    at_512 = where(text, "512]")
    assert problems(text) == [
        (
            "E314",
            *at_384,
            "Matryoshka dimension 384 is not smaller than the model's 384 dimensions",
        ),
        (
            "E314",
            *at_512,
            "Matryoshka dimension 512 is not smaller than the model's 384 dimensions",
        ),
    ]


# (text replaced, its replacement, where the problem points: the text after that key, code,
# message)
BAD_FACTS = [
    (
        "kind: embedding",
        "kind: embeding",
        ("kind: ", "E203", "kind: 'embeding' is not allowed (did you mean 'embedding'?)"),
    ),
    (
        "kind: embedding",
        "kind: [embedding]",
        (
            "kind: ",
            "E203",
            "kind: ['embedding'] is not allowed (choose from llm, embedding, rerank)",
        ),
    ),
    (
        "dimensions: 384",
        "dimensions: 0",
        ("  dimensions: ", "E202", "embedding.dimensions must be greater than 0, not 0"),
    ),
    (
        "dimensions: 384",
        "dimensions: true",
        ("  dimensions: ", "E200", "embedding.dimensions must be an integer, not true/false"),
    ),
    (
        "pooling: mean",
        "pooling: median",
        (
            "pooling: ",
            "E203",
            "embedding.pooling: 'median' is not allowed (did you mean 'mean'?)",
        ),
    ),
    (
        "[256, 128]",
        "[0, 128]",
        (
            "matryoshka_dimensions: [",
            "E202",
            "embedding.matryoshka_dimensions[0] must be greater than 0, not 0",
        ),
    ),
    (
        "normalized: true",
        "normalized: yes please",
        ("normalized: ", "E200", "embedding.normalized must be true or false, not a string"),
    ),
]


@pytest.mark.parametrize(("old", "new", "expected"), BAD_FACTS)
def test_bad_kind_facts_are_one_positioned_line_each(
    old: str, new: str, expected: tuple[str, str, str]
) -> None:
    text = EMBEDDING.replace(old, new)
    after, code, message = expected
    start = text.index(after) + len(after)
    line, column = text.count("\n", 0, start) + 1, start - text.rfind("\n", 0, start)
    # One problem: the schema's, at the bad value; no lint guessing at a kind it cannot know
    # (no E313 for an unknown kind, no E314 against 0 dimensions).
    assert problems(text) == [(code, line, column, message)]
    [problem] = check(text).problems
    assert str(problem) == f"spec.yaml:{line}:{column}: error[{code}]: {message}"


def test_rerank_type_is_a_closed_list() -> None:
    text = RERANK.replace("type: cross-encoder", "type: colbert")
    line, column = where(text, "colbert")
    assert problems(text) == [
        (
            "E203",
            line,
            column,
            "rerank.type: 'colbert' is not allowed (choose from cross-encoder, llm, llm-layerwise)",
        )
    ]


def test_the_codes_are_documented() -> None:
    from zoo.catalog.problems import CODES

    assert "kind" in CODES["E313"] and "Matryoshka" in CODES["E314"]


# Resolution: an engine is offered only the kinds it declares.


class _Engine(Engine):
    def server_command(self, ctx: LaunchContext) -> ServerCommand:
        return ServerCommand(argv=(ctx.python, "-m", "test.server", ctx.family.kind))


def _engine(name: str, kinds: tuple[str, ...], priority: int = 0) -> Engine:
    engine = _Engine()
    engine.name = name
    engine.display_name = name.title()
    engine.capabilities = Capabilities(formats={"pytorch": ("*",)}, kinds=kinds)
    engine.priority = priority
    return engine


def _catalog(*texts: str) -> Catalog:
    families: dict[str, Family] = {}
    for text in texts:
        family = check(text).family()
        families[family.name] = family
    return Catalog(families=families)


HOST = BUILTIN_PROFILES["cpu-24g"]


def test_an_engine_that_serves_no_embeddings_is_never_chosen_for_one() -> None:
    catalog = _catalog(EMBEDDING)
    engines = {"chat": _engine("chat", ("llm",)), "talk": _engine("talk", ("llm",))}
    with pytest.raises(UsageError) as error:
        resolve(catalog, Request("tiny-embed"), engines, HOST)
    assert str(error.value) == (
        "tiny-embed cannot run: no installed engine serves embedding models in pytorch; "
        "nothing in this family runs here"
    )
    # Naming the engine does not force it (the kind is a hard limit); the line names it.
    with pytest.raises(UsageError) as error:
        resolve(catalog, Request("tiny-embed", engine="chat"), engines, HOST)
    assert str(error.value) == (
        "tiny-embed --engine chat cannot run: Chat does not serve embedding models "
        "(serves language models); nothing in this family runs here"
    )


def test_the_engine_that_serves_the_kind_is_planned() -> None:
    catalog = _catalog(EMBEDDING, RERANK, family_text("chatty"))
    # The chat engine would win every tie (higher priority) if kinds were ignored.
    engines = {
        "chat": _engine("chat", ("llm",), priority=10),
        "vectors": _engine("vectors", ("embedding",)),
        "scores": _engine("scores", ("rerank",)),
    }
    plan = resolve(catalog, Request("tiny-embed"), engines, HOST)
    assert plan.engine == "vectors" and plan.family.kind == "embedding"
    dropped = {c.engine: c.reason for c in plan.candidates if not c.kept}
    assert dropped == {
        "chat": "does not serve embedding models (serves language models)",
        "scores": "does not serve embedding models (serves rerankers)",
    }
    assert resolve(catalog, Request("tiny-rerank"), engines, HOST).engine == "scores"
    # And the reverse: a language model never goes to an embedding-only engine.
    assert resolve(catalog, Request("chatty"), engines, HOST).engine == "chat"
    with pytest.raises(UsageError, match="no installed engine runs pytorch"):
        resolve(catalog, Request("chatty"), {"vectors": engines["vectors"]}, HOST)
