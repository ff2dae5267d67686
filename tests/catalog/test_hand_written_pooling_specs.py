"""The hand-written embedding and rerank families: the facts their model cards state.

These families are the embedding models people use most that Xinference's registry lacks.
The tests pin what the cards say (vector sizes, Matryoshka cuts, the prompts a model was
trained with, the kind) so an edit that drops a prompt or mistypes a dimension fails here,
and check that none of them shadows a family the Xinference import writes (hand-written
files win over imported ones of the same name).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from zoo.catalog.catalog import load_catalog
from zoo.catalog.model import Family

ROOT = Path(__file__).resolve().parents[2]
SPECS = ROOT / "specs"
# The repository keeps copies of Xinference's registries for the importer tests.
XINFERENCE = ROOT / "tests" / "importers" / "data"
RETRIEVAL_QUERY = "Represent this sentence for searching relevant passages: "

# name -> (dimensions, Matryoshka sizes, pooling, query prompt, document prompt)
EMBEDDING_FACTS: dict[str, tuple[int, tuple[int, ...], str, str | None, str | None]] = {
    "nomic-embed-text-v1.5": (
        768,
        (512, 256, 128, 64),
        "mean",
        "search_query: ",
        "search_document: ",
    ),
    "mxbai-embed-large-v1": (1024, (), "cls", RETRIEVAL_QUERY, None),
    "snowflake-arctic-embed-xs": (384, (), "cls", RETRIEVAL_QUERY, None),
    "snowflake-arctic-embed-s": (384, (), "cls", RETRIEVAL_QUERY, None),
    "snowflake-arctic-embed-m": (768, (), "cls", RETRIEVAL_QUERY, None),
    "snowflake-arctic-embed-l": (1024, (), "cls", RETRIEVAL_QUERY, None),
    "snowflake-arctic-embed-m-v2.0": (768, (256,), "cls", "query: ", None),
    "snowflake-arctic-embed-l-v2.0": (1024, (256,), "cls", "query: ", None),
    "embeddinggemma-300m": (
        768,
        (512, 256, 128),
        "mean",
        "task: search result | query: ",
        "title: none | text: ",
    ),
}
RERANKERS = {"jina-reranker-v1-tiny-en": 8192, "ms-marco-minilm-l6-v2": 512}
# Families whose pytorch build needs the repository's own modelling code.
REMOTE_CODE = {"nomic-embed-text-v1.5", "snowflake-arctic-embed-m-v2.0", "jina-reranker-v1-tiny-en"}
ALL = sorted([*EMBEDDING_FACTS, *RERANKERS])


@pytest.fixture(scope="module")
def families() -> dict[str, Family]:
    catalog = load_catalog([SPECS / f"{name}.yaml" for name in ALL], use_cache=False)
    assert [str(p) for p in catalog.problems] == []
    return dict(catalog.families)


def test_every_file_defines_its_family_with_its_kind(families: dict[str, Family]) -> None:
    assert sorted(families) == ALL
    for name in EMBEDDING_FACTS:
        assert families[name].kind == "embedding", name
        assert families[name].rerank is None and families[name].abilities == ()
    for name in RERANKERS:
        assert families[name].kind == "rerank" and families[name].embedding is None, name
        rerank = families[name].rerank
        assert rerank is not None and rerank.type == "cross-encoder", name


@pytest.mark.parametrize("name", sorted(EMBEDDING_FACTS))
def test_embedding_facts_are_the_cards(families: dict[str, Family], name: str) -> None:
    dimensions, cuts, pooling, query, document = EMBEDDING_FACTS[name]
    facts = families[name].embedding
    assert facts is not None
    assert (facts.dimensions, facts.matryoshka_dimensions, facts.pooling) == (
        dimensions,
        cuts,
        pooling,
    )
    assert (facts.query_prefix, facts.document_prefix) == (query, document)
    # Every Matryoshka cut is shorter than the full vector, largest first, and is accepted as a
    # request's dimensions; a length the model was not trained for is not.
    assert list(cuts) == sorted(cuts, reverse=True) and all(c < dimensions for c in cuts)
    assert facts.supports_dimensions(dimensions)
    assert all(facts.supports_dimensions(c) for c in cuts)
    assert not facts.supports_dimensions(dimensions - 1)


@pytest.mark.parametrize("name", sorted(EMBEDDING_FACTS))
def test_prompts_end_where_the_text_begins(families: dict[str, Family], name: str) -> None:
    """A prefix is pasted before the text: each ends in a space, as the cards write them."""
    facts = families[name].embedding
    assert facts is not None and facts.query_prefix is not None, "the card requires a query prompt"
    for prefix in (facts.query_prefix, facts.document_prefix):
        if prefix is not None:
            assert prefix.endswith(" ") and prefix.strip(), (name, prefix)


def test_the_description_states_every_prompt_and_the_remote_code(
    families: dict[str, Family],
) -> None:
    for name in EMBEDDING_FACTS:
        facts = families[name].embedding
        assert facts is not None and facts.query_prefix is not None
        words = " ".join(families[name].description.split())
        assert facts.query_prefix.strip() in words, name
    for name in ALL:
        assert ("trust_remote_code" in families[name].description) == (name in REMOTE_CODE), name


def test_rerankers_read_what_their_cards_say(families: dict[str, Family]) -> None:
    for name, tokens in RERANKERS.items():
        assert families[name].context_length == tokens


def test_every_gguf_build_is_marked_unverified_where_it_was_not_checked(
    families: dict[str, Family],
) -> None:
    """Hubs are out of reach here: GGUF file names and lists without a pinned revision are
    written from best knowledge and must say so, so nobody mistakes them for checked facts."""
    gguf = 0
    for name in ALL:
        for spec in families[name].specs:
            for source in spec.sources:
                if spec.format == "ggufv2":
                    gguf += 1
                    assert source.file and "{quantization}" in source.file, name
                    if source.revision is None:
                        assert {"file", "quantizations"} <= set(source.unverified), name
                else:
                    assert spec.quantizations == ("none",), name
    assert gguf >= 9


def test_sizes_are_the_cards_parameter_counts(families: dict[str, Family]) -> None:
    sizes = {name: {s.size for s in families[name].specs} for name in ALL}
    assert sizes["nomic-embed-text-v1.5"] == {0.137}
    assert sizes["mxbai-embed-large-v1"] == sizes["snowflake-arctic-embed-l"] == {0.335}
    assert sizes["embeddinggemma-300m"] == {0.308}
    assert sizes["ms-marco-minilm-l6-v2"] == {0.0227}


def test_no_family_shadows_one_the_xinference_import_writes() -> None:
    """The importer skips a family a hand-written file already defines: a name taken from its
    registry here would silently replace the imported family."""
    imported: set[str] = set()
    for registry in ("embedding_model_spec.json", "rerank_model_spec.json", "llm_family.json"):
        path = XINFERENCE / registry
        imported |= {str(e["model_name"]).lower() for e in json.loads(path.read_text("utf-8"))}
    assert imported, "the registries list families"
    assert not set(ALL) & imported
    assert "all-minilm-l6-v2" not in ALL  # another file owns it
