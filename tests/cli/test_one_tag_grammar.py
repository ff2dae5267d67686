"""One tag grammar: the command line (``model_request``, behind launch, download, rm, run,
engines --model) and the gateway (``resolve_name``, behind ``zoo serve``) read every tag of a
real catalog family as the same builds, and refuse the same tags with the same words."""

from __future__ import annotations

import pytest

from zoo.catalog.catalog import Catalog
from zoo.catalog.model import Family
from zoo.cli.completion import model_completions
from zoo.cli.options import model_request
from zoo.errors import UsageError, ZooError
from zoo.reference import matching_builds
from zoo.registry import catalog_with_plugins
from zoo.serve.names import resolve_name

# Readings each side once got wrong, or got differently: units, a leading dot, '-' inside a
# quantization, MoE sizes, case, spelling with '-' for '_', ambiguity (4b, 4bit), and tags
# that name nothing or are malformed.
TAGS = {
    "qwen3": [
        "latest",
        "8b",
        "8B",
        "600m",
        ".6b",
        "0.6b",
        "0.0006t",
        "600000k",
        "30b",
        "30b-a3b",
        "30B-A3B-Q4_K_M",
        "235b-a22b-q2_k",
        "q4_k_m",
        "Q4-K-M",
        "bf16",
        "4b",
        "4bit",
        "8b-4bit",
        "ud-iq1_m",
        "8b-UD-IQ1_M",
        "int4",
        "8b-int8",
        "fp8",
        "none",
        "9b",
        "8b-a3b",
        "30b-a4b",
        "q9_k",
        "8b-q9_k",
        "235b-q4_k_m",
        "4-bit",
        "8",
        "\u0668b",
        "8b-",
        "-q4_0",
        "8b--q4_0",
        "",
    ],
    "seed-oss": [
        "36b",
        "36b-q4_k_m",
        "Q4_K_M",
        "ud-q4_k_xl",
        "36b-UD-Q4_K_XL",
        "Int8",
        "4bit",
        "none",
        "70b",
        "36b-q9",
        "0.036t",
    ],
}


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return catalog_with_plugins()


Reading = tuple[str, frozenset[tuple[int, str]]] | tuple[str, str, str | None]


def _error(error: ZooError) -> Reading:
    return (type(error).__name__, error.args[0], error.hint)


def cli_reading(family: Family, tag: str) -> Reading:
    try:
        request = model_request(f"{family.name}:{tag}", None, None, None, None, None, None)
    except ZooError as error:
        return _error(error)
    assert request.model == family.name
    builds = matching_builds(family, size=request.size, quantization=request.quantization)
    return ("builds", frozenset(builds))


def gateway_reading(catalog: Catalog, family: Family, tag: str) -> Reading:
    try:
        entry = resolve_name(f"{family.name}:{tag}", {}, catalog, discovered=True)
    except ZooError as error:
        return _error(error)
    assert entry.family == family.name
    builds = matching_builds(
        family, format=entry.format, size=entry.size, quantization=entry.quantization
    )
    return ("builds", frozenset(builds))


def _offered(name: str) -> list[str]:
    # What completion offers is what users type most: every size and quantization tag, and
    # the size-quantization tags of one size.
    sizes = model_completions(f"{name}:")
    some_size = sizes[0].partition(":")[2]
    combined = model_completions(f"{name}:{some_size}-")
    offered = [c.partition(":")[2] for c in (*sizes, *combined)]
    assert len(offered) > 10, name
    return offered


@pytest.mark.parametrize("name", sorted(TAGS))
def test_the_cli_and_the_gateway_read_every_tag_alike(catalog: Catalog, name: str) -> None:
    family = catalog.get(name)
    offered = _offered(name)
    read = refused = 0
    for tag in [*TAGS[name], *offered]:
        cli = cli_reading(family, tag)
        assert cli == gateway_reading(catalog, family, tag), tag
        if cli[0] == "builds":
            read += 1
            assert cli[1], tag  # a tag that reads names at least one build
        else:
            refused += 1
            assert tag not in offered, f"completion offers {tag!r}, which is refused: {cli}"
    # Both kinds are in the list, so agreement is not agreement to refuse everything.
    assert read > 10 and refused >= 2, (read, refused)


@pytest.mark.parametrize(
    ("name", "tag", "size", "quantization"),
    [
        ("qwen3", ".6b", 0.6, None),
        ("qwen3", "600m", 0.6, None),
        ("qwen3", "30b-a3b-q4_k_m", 30.0, "Q4_K_M"),
        ("qwen3", "8b-ud-iq1_m", 8.0, "UD-IQ1_M"),
        ("seed-oss", "36b-UD-Q4_K_XL", 36.0, "UD-Q4_K_XL"),
        ("seed-oss", "q4-k-m", None, "Q4_K_M"),
    ],
)
def test_what_the_cli_reads(
    catalog: Catalog, name: str, tag: str, size: float | None, quantization: str | None
) -> None:
    # The common reading is the right one, not only the same one.
    request = model_request(f"{name}:{tag}", None, None, None, None, None, None)
    assert (request.model, request.size, request.quantization) == (name, size, quantization)


def test_an_unknown_tag_is_one_message_on_both_sides(catalog: Catalog) -> None:
    family = catalog.get("seed-oss")
    expected = ("UsageError", "seed-oss has no quantization q9 for size 36b")
    assert cli_reading(family, "36b-q9")[:2] == expected
    assert gateway_reading(catalog, family, "36b-q9")[:2] == expected
    with pytest.raises(UsageError) as raised:
        model_request("seed-oss:70b", None, None, None, None, None, None)
    assert str(raised.value.hint).startswith("sizes: 36b; quantizations: ")
    assert "ud-q4_k_xl" in str(raised.value.hint)
