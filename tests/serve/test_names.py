"""A request's model name -> the entry served, against the real catalog: config names and
aliases, Ollama tag forms, bare families, and the errors for names and tags that name nothing."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zoo.catalog.catalog import Catalog, builtin_catalog_dir, load_catalog
from zoo.catalog.model import format_size
from zoo.errors import NotFoundError, UsageError, ZooError
from zoo.reference import parse_parameters, read_tag
from zoo.serve.names import resolve_name
from zoo.serve.types import ModelEntry

SMOL = ModelEntry(
    name="smol",
    family="smollm2-135m-instruct",
    aliases=("tiny", "smollm2:135m"),
    engine="llamacpp",
    quantization="Q4_1",
    keep_alive=600.0,
    pinned=True,
    preload=True,
    download=True,
)
CODER = ModelEntry(name="coder", family="seed-oss", format="ggufv2", size=36.0, download=True)
QWEN = ModelEntry(name="qwen", family="qwen3", engine="vllm", concurrency=2, download=True)
ENTRIES = {e.name: e for e in (SMOL, CODER, QWEN)}


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    catalog = load_catalog([builtin_catalog_dir()], use_cache=False)
    assert {"seed-oss", "smollm2-135m-instruct", "qwen3"} <= set(catalog.families)
    return catalog


@pytest.mark.parametrize(
    "text",
    [
        "smol",
        "tiny",
        "smollm2:135m",
        " smol ",
        "SMOL",
        "Tiny",
        "smol:latest",
        "smol:q4_1",
        "smol:Q4-1",
        "smol:135m",
        "smol:0.135b",
        "smol:135m-q4_1",
        "tiny:latest",
        # A family that an entry serves is that entry (not a second copy of the model).
        "smollm2-135m-instruct",
        "smollm2-135m-instruct:latest",
        "smollm2-135m-instruct:0.135b-Q4_1",
    ],
)
def test_names_aliases_and_tags_of_an_entry_give_the_entry(catalog: Catalog, text: str) -> None:
    assert resolve_name(text, ENTRIES, catalog, discovered=False) is SMOL


def test_a_tag_narrows_an_entry_into_a_canonically_named_build(catalog: Catalog) -> None:
    narrowed = resolve_name("coder:q4_k_m", ENTRIES, catalog, discovered=False)
    assert narrowed.name == "coder:Q4_K_M"
    assert (narrowed.family, narrowed.format, narrowed.size, narrowed.quantization) == (
        "seed-oss",
        "ggufv2",
        36.0,
        "Q4_K_M",
    )
    # Another build: not the config's download, pins or preloads; its launch options stay.
    assert (narrowed.download, narrowed.pinned, narrowed.preload, narrowed.aliases) == (
        False,
        False,
        False,
        (),
    )
    # Every spelling of that build is the same name, so the scheduler loads it once.
    for text in ("coder:Q4_K_M", "seed-oss:36b-q4_k_m", "SEED-OSS:36B-Q4-K-M", "coder:36b-q4_k_m"):
        assert resolve_name(text, ENTRIES, catalog, discovered=False) == narrowed, text
    # An entry of a family with many sizes, asked for one size.
    qwen8 = resolve_name("qwen3:8b", ENTRIES, catalog, discovered=False)
    assert qwen8 == ModelEntry("qwen:8b", "qwen3", engine="vllm", size=8.0, concurrency=2)
    assert resolve_name("qwen:8B", ENTRIES, catalog) == qwen8


def test_a_tag_that_contradicts_its_entry_is_a_usage_error(catalog: Catalog) -> None:
    with pytest.raises(
        UsageError, match=r"'coder' serves seed-oss ggufv2 36b; 'int4' is another build"
    ) as caught:
        resolve_name("coder:int4", ENTRIES, catalog)
    assert caught.value.hint == "ask for seed-oss:int4"
    # ... while the family itself has that build, so the family name finds it.
    assert resolve_name("seed-oss:int4", ENTRIES, catalog).quantization == "Int4"


@pytest.mark.parametrize(
    ("text", "name", "size", "quantization"),
    [
        ("seed-oss", "seed-oss", None, None),
        ("seed-oss:latest", "seed-oss", None, None),
        # seed-oss has one size: a tag that names it adds nothing, so it is not in the name.
        ("seed-oss:36b", "seed-oss", None, None),
        ("seed-oss:36b-q4_k_m", "seed-oss:Q4_K_M", None, "Q4_K_M"),
        ("seed-oss:36B-Q4_K_M", "seed-oss:Q4_K_M", None, "Q4_K_M"),
        ("seed-oss:Q4-K-M", "seed-oss:Q4_K_M", None, "Q4_K_M"),
        ("seed-oss:ud-q4_k_xl", "seed-oss:UD-Q4_K_XL", None, "UD-Q4_K_XL"),
        ("seed-oss:36b-UD-Q4_K_XL", "seed-oss:UD-Q4_K_XL", None, "UD-Q4_K_XL"),
        ("Seed-OSS:int8", "seed-oss:Int8", None, "Int8"),
        # smollm2-135m-instruct has one build: every tag of it is the family.
        ("smollm2-135m-instruct:135m", "smollm2-135m-instruct", None, None),
        ("smollm2-135m-instruct:0.135b-q4_1", "smollm2-135m-instruct", None, None),
        ("qwen3:0.6b", "qwen3:0.6b", 0.6, None),
        ("qwen3:600m", "qwen3:0.6b", 0.6, None),
        ("qwen3:1.7b-q8_0", "qwen3:1.7b-Q8_0", 1.7, "Q8_0"),
        # Ollama's "30b" and "30b-a3b" are one model: the name says both.
        ("qwen3:30b", "qwen3:30b-a3b", 30.0, None),
        ("qwen3:30b-a3b", "qwen3:30b-a3b", 30.0, None),
        ("qwen3:30b-a3b-q4_k_m", "qwen3:30b-a3b-Q4_K_M", 30.0, "Q4_K_M"),
        ("qwen3:235b-a22b-q2_k", "qwen3:235b-a22b-Q2_K", 235.0, "Q2_K"),
        ("qwen3:4bit", "qwen3:4bit", None, "4bit"),
        ("qwen3:8b-4bit", "qwen3:8b-4bit", 8.0, "4bit"),
    ],
)
def test_catalog_families_and_tags_outside_the_config(
    catalog: Catalog, text: str, name: str, size: float | None, quantization: str | None
) -> None:
    family = name.split(":", maxsplit=1)[0]
    entry = resolve_name(text, {}, catalog, discovered=True)
    assert entry == ModelEntry(name=name, family=family, size=size, quantization=quantization)
    # The canonical name resolves to itself.
    assert resolve_name(entry.name, {}, catalog).name == name


def test_every_build_of_the_seed_families_is_reachable_by_tag(catalog: Catalog) -> None:
    for family_name in ("seed-oss", "smollm2-135m-instruct", "qwen3"):
        family = catalog.get(family_name)
        for spec in family.specs:
            for quantization in spec.quantizations:
                text = f"{family_name}:{format_size(spec.size)}b-{quantization.lower()}"
                entry = resolve_name(text, {}, catalog)
                assert entry.family == family_name
                assert entry.size in (None, spec.size), text
                assert (entry.quantization or quantization).upper() == quantization.upper(), text
                # What the entry leaves open, the family has only one of.
                if entry.size is None:
                    assert {s.size for s in family.specs} == {spec.size}, text


def test_ambiguous_tags_take_the_first_spec(catalog: Catalog) -> None:
    qwen3 = catalog.get("qwen3")
    # "4b" is a size; "4bit" an MLX quantization; a GGUF "BF16" and an MLX "bf16" are one name.
    assert read_tag(qwen3, "4b").size == 4.0
    assert read_tag(qwen3, "bf16").quantization == next(
        q for s in qwen3.specs for q in s.quantizations if q.upper() == "BF16"
    )
    # A format narrows what a tag can mean.
    assert read_tag(qwen3, "bf16", format="ggufv2").quantization == "BF16"


def test_outside_the_config_without_discovery_is_not_found(catalog: Catalog) -> None:
    with pytest.raises(NotFoundError, match="'qwen3:235b' is not served") as caught:
        resolve_name("qwen3:235b", {"smol": SMOL}, catalog, discovered=False)
    assert "none of its builds of qwen3" in str(caught.value)
    with pytest.raises(NotFoundError) as caught:
        resolve_name("seed-os", {"smol": SMOL}, catalog, discovered=False)
    # Only what is served is suggested.
    assert caught.value.hint == "see /v1/models"


@pytest.mark.parametrize(
    ("text", "suggestion"),
    [
        ("smoll", "smol"),
        ("tinyy", "tiny"),
        ("seed-os", "seed-oss"),
        ("seed-os:36b", "seed-oss"),
        ("qwen4:8b", "qwen3"),
        ("smollm2-135m-instuct", "smollm2-135m-instruct"),
    ],
)
def test_unknown_names_offer_a_match(catalog: Catalog, text: str, suggestion: str) -> None:
    with pytest.raises(NotFoundError, match=f"unknown model {text!r}") as caught:
        resolve_name(text, ENTRIES, catalog)
    assert caught.value.hint is not None
    assert suggestion in caught.value.hint.removeprefix("did you mean ").rstrip("?").split(", ")


@pytest.mark.parametrize(
    ("text", "words"),
    [
        # The words the command line uses (zoo.reference): the part of the tag that is missing.
        ("seed-oss:8b", "seed-oss has no size 8b"),
        ("seed-oss:36b-q9", "seed-oss has no quantization q9 for size 36b"),
        ("qwen3:q4_k_z", "qwen3 has no quantization q4_k_z"),
        ("qwen3:8b-a3b", "qwen3 has no size 8b-a3b"),
        ("qwen3:30b-a4b", "qwen3 has no size 30b-a4b"),
        ("qwen3:235b-q4_k_m", "qwen3 has no quantization q4_k_m for size 235b"),
        ("smol:q8_0", "smollm2-135m-instruct has no quantization q8_0"),
    ],
)
def test_invalid_tags_name_what_the_family_has(catalog: Catalog, text: str, words: str) -> None:
    with pytest.raises(UsageError) as caught:
        resolve_name(text, ENTRIES, catalog)
    assert caught.value.args[0] == words
    assert caught.value.hint is not None
    assert "sizes:" in caught.value.hint
    assert "quantizations:" in caught.value.hint


def test_the_tag_error_lists_the_family_sizes_and_quantizations(catalog: Catalog) -> None:
    with pytest.raises(UsageError) as caught:
        resolve_name("seed-oss:70b", {}, catalog)
    hint = caught.value.hint or ""
    # Tags as they are typed and completed (zoo.reference.family_tags): lower case, and a
    # mixture of experts by its full tag.
    assert "sizes: 36b;" in hint
    assert "q4_k_m" in hint.split("quantizations: ")[1].split(", ")
    assert "int4" in hint.split("quantizations: ")[1].split(", ")
    with pytest.raises(UsageError) as caught:
        resolve_name("qwen3:9b", {}, catalog)
    assert "sizes: 0.6b, 1.7b, 4b, 8b, 14b, 30b-a3b, 32b, 235b-a22b;" in str(caught.value)


def test_empty_huge_and_strange_names(catalog: Catalog) -> None:
    with pytest.raises(UsageError, match="names no model"):
        resolve_name("  ", ENTRIES, catalog)
    with pytest.raises(NotFoundError) as caught:
        resolve_name("x" * 100_000, ENTRIES, catalog)
    assert len(str(caught.value)) < 200
    with pytest.raises(NotFoundError, match=r"\\n"):
        resolve_name("smol\nX-Injected: 1", ENTRIES, catalog)


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("8b", (8.0, None)),
        ("0.135b", (0.135, None)),
        ("135m", (0.135, None)),
        ("135M", (0.135, None)),
        ("1t", (1000.0, None)),
        ("30b-a3b", (30.0, 3.0)),
        (".5b", (0.5, None)),
        ("8", None),
        ("b", None),
        ("8bb", None),
        ("q4_k_m", None),
        ("٨b", None),  # digits are ASCII digits
    ],
)
def test_parameter_counts(text: str, parsed: tuple[float, float | None] | None) -> None:
    result = parse_parameters(text)
    if parsed is None:
        assert result is None
    else:
        assert result == pytest.approx(parsed)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.text(max_size=60),
        st.builds(
            lambda base, tag: f"{base}:{tag}",
            st.sampled_from(["qwen3", "seed-oss", "smol", "tiny", "smollm2-135m-instruct", "x"]),
            st.text(alphabet="0123456789.abkmtq_-KMBQUDIXSL", max_size=16),
        ),
    ),
    st.booleans(),
)
def test_any_name_resolves_or_is_a_zoo_error(catalog: Catalog, text: str, discovered: bool) -> None:
    found = _resolve_or_error(text, discovered, catalog)
    if isinstance(found, ZooError):
        assert isinstance(found, NotFoundError | UsageError)
        assert "\n" not in str(found)
        return
    assert found.family in catalog.families
    # The name it is given resolves to it again: spellings never multiply models.
    assert resolve_name(found.name, ENTRIES, catalog, discovered=discovered) == found


def _resolve_or_error(text: str, discovered: bool, catalog: Catalog) -> ModelEntry | ZooError:
    try:
        return resolve_name(text, ENTRIES, catalog, discovered=discovered)
    except ZooError as error:
        return error
