"""Model references (``qwen3:8b``, ``seed-oss:36b-q4_k_m``) and ``--size 36B``, parsed, checked
against the real catalog and used by the commands."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zoo import quantization as quant
from zoo.catalog.model import Family
from zoo.cli.app import main
from zoo.cli.options import model_request
from zoo.errors import UsageError
from zoo.reference import (
    Reference,
    Size,
    Tag,
    billions,
    build_tag,
    check_tag,
    family_tags,
    merge_flags,
    parse_parameters,
    parse_reference,
    parse_size,
    read_reference,
    read_tag,
    size_label,
    spec_tag,
)
from zoo.registry import catalog_with_plugins


@pytest.fixture(scope="module")
def families() -> dict[str, Family]:
    catalog = catalog_with_plugins()
    return {name: catalog.get(name) for name in catalog.families}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("qwen3", Reference("qwen3")),
        ("qwen3:8b", Reference("qwen3", 8.0, tag="8b")),
        ("qwen3:8B", Reference("qwen3", 8.0, tag="8B")),
        ("seed-oss:36b-q4_k_m", Reference("seed-oss", 36.0, None, "q4_k_m", "36b-q4_k_m")),
        ("qwen3:q4_k_m", Reference("qwen3", quantization="q4_k_m", tag="q4_k_m")),
        ("smollm2-135m-instruct:latest", Reference("smollm2-135m-instruct")),
        ("qwen3:30b-a3b", Reference("qwen3", 30.0, 3.0, tag="30b-a3b")),
        ("qwen3:30b-a3b-q4_k_m", Reference("qwen3", 30.0, 3.0, "q4_k_m", "30b-a3b-q4_k_m")),
        ("x:135m", Reference("x", 0.135, tag="135m")),
        ("x:0.5b", Reference("x", 0.5, tag="0.5b")),
        # A quantization that starts with a digit is not a size: a size word has its unit.
        ("x:4bit", Reference("x", quantization="4bit", tag="4bit")),
        ("x:8b-ud-q4_k_xl", Reference("x", 8.0, None, "ud-q4_k_xl", "8b-ud-q4_k_xl")),
    ],
)
def test_parse_reference(text: str, expected: Reference) -> None:
    assert parse_reference(text) == expected


@pytest.mark.parametrize(
    ("text", "total", "active"),
    [
        ("36B", 36.0, None),
        ("36b", 36.0, None),
        ("36", 36.0, None),
        ("0.5B", 0.5, None),
        ("30B-A3B", 30.0, 3.0),
        ("235b-a22b", 235.0, 22.0),
        ("135M", 0.135, None),
        (" 8B ", 8.0, None),
        (".5b", 0.5, None),
        ("1T", 1000.0, None),
        ("500000k", 0.5, None),
    ],
)
def test_parse_size(text: str, total: float, active: float | None) -> None:
    assert parse_size(text) == Size(total, active)


@pytest.mark.parametrize(
    "text", ["", "B", "36x", "-8b", "8b-3b", "8b-a3b-x", "0", "a3b", "\u0668b", "1234567b"]
)
def test_bad_sizes_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError, match="is not a size"):
        parse_size(text)


@pytest.mark.parametrize("text", [":8b", "  :q4_0", ""])
def test_a_reference_needs_a_name(text: str) -> None:
    with pytest.raises(UsageError, match="names no model"):
        parse_reference(text)


# An empty tag too: the gateway refuses "qwen3:" as a probe, and the command line reads tags
# as the gateway does (it once took "qwen3:" for "qwen3").
@pytest.mark.parametrize(
    "text", ["qwen3:8b-", "qwen3:8b:q4_0", "qwen3:-q4_0", "qwen3:8b--q4", "qwen3:", "qwen3: "]
)
def test_a_malformed_tag_is_a_usage_error(text: str) -> None:
    with pytest.raises(UsageError, match="is not a model reference"):
        parse_reference(text)


_numbers = st.decimals(min_value="0.1", max_value="2000", places=1, allow_nan=False)


@given(
    number=_numbers,
    unit=st.sampled_from("bBmM"),
    quantization=st.sampled_from(["q4_k_m", "Q8_0", "ud-q4_k_xl", "4bit", "none", "iq4_xs", "fp8"]),
)
def test_a_size_and_quantization_tag_round_trips(
    number: object, unit: str, quantization: str
) -> None:
    text = f"{number}{unit}"
    reference = parse_reference(f"fam:{text}-{quantization}")
    assert reference.quantization == quantization
    assert reference.size == parse_size(text).total
    billions = float(str(number)) / (1000 if unit in "mM" else 1)
    assert reference.size == pytest.approx(billions)


@given(quantization=st.from_regex(r"[a-z][a-z0-9_]{0,8}(-[a-z0-9_]{1,6})?", fullmatch=True))
def test_a_tag_without_a_size_word_is_a_quantization(quantization: str) -> None:
    # Letters first: never read as a size ("q4", "int4", "ud-iq1_m").
    reference = parse_reference(f"fam:{quantization}")
    assert reference.size is None
    assert reference.quantization == quantization


def test_size_words_share_one_grammar() -> None:
    # A tag's size needs its unit; --size and `zoo list --size` take a bare number too.
    assert parse_parameters("8") is None and billions("8") == 8.0
    assert parse_parameters("135m") == (0.135, None) and billions("135M") == 0.135
    assert parse_parameters("30b-a3b") == (30.0, 3.0) and billions("30b-a3b") is None
    # 135/1000 is the float nearest 0.135, as the catalog's size is; 135 * 1e-3 is not.
    assert parse_size("135m").total == 0.135 == billions("135m")


def test_every_catalog_tag_reads_back_to_its_spec(families: dict[str, Family]) -> None:
    """Property over the whole catalog: the tags zoo lists for a family are references that
    read back to exactly that spec's size (and active size), and the plain reading (no family,
    as ``parse_reference`` gives it) means the same build as the family's reading."""
    checked = 0
    for family in families.values():
        for spec in family.specs:
            tag = spec_tag(spec)
            typed = parse_reference(f"{family.name}:{tag}")
            reference = read_reference(typed, family)
            assert reference.size == spec.size, (family.name, tag)
            assert reference.active == spec.activated_size, (family.name, tag)
            assert check_tag(typed, family) == reference, (family.name, tag)
            for q in spec.quantizations:
                if not q:
                    continue
                both = parse_reference(f"{family.name}:{tag}-{q.lower()}")
                read = read_reference(both, family)
                # Spelled as the family's first spec of that size does (bf16 or BF16).
                assert read.quantization and quant.same(read.quantization, q), (family.name, q)
                assert read.size == spec.size, (family.name, q)
                assert check_tag(both, family) == read, (family.name, q)
                checked += 1
    assert checked > 1000


def test_the_first_reading_the_family_has_wins(families: dict[str, Family]) -> None:
    qwen3 = families["qwen3"]
    # "4b" is a size, "4bit" a quantization (MLX), "8b-4bit" both.
    assert read_tag(qwen3, "4b").size == 4.0 and read_tag(qwen3, "4b").quantization is None
    assert read_tag(qwen3, "4bit").quantization == "4bit"
    assert (read_tag(qwen3, "8b-4bit").size, read_tag(qwen3, "8b-4bit").quantization) == (
        8.0,
        "4bit",
    )
    # A quantization with a '-' of its own, after a size or alone.
    assert read_tag(qwen3, "8b-ud-iq1_m").quantization == "UD-IQ1_M"
    assert read_tag(qwen3, "UD-IQ1-M").quantization == "UD-IQ1_M"
    # "30b" is the MoE model's total: the tag does not say the active size, nor does the reading.
    assert (read_tag(qwen3, "30b").size, read_tag(qwen3, "30b").activated) == (30.0, None)
    assert read_tag(qwen3, "latest") == read_tag(qwen3, " LATEST ") == Tag()


def test_size_labels_read_as_ollama_writes_them() -> None:
    assert [size_label(s) for s in (8.0, 0.5, 0.135, 0.36, 1.5, 235.0)] == [
        "8b",
        "0.5b",
        "135m",
        "360m",
        "1.5b",
        "235b",
    ]


def test_family_tags_include_moe_sizes(families: dict[str, Family]) -> None:
    sizes, quantizations = family_tags(families["qwen3"])
    assert "8b" in sizes and "30b-a3b" in sizes and "235b-a22b" in sizes
    assert "q4_k_m" in quantizations


def test_check_tag_spells_the_quantization_as_the_catalog(families: dict[str, Family]) -> None:
    reference = check_tag(parse_reference("Seed-OSS:36B-q4_k_m"), families["seed-oss"])
    assert (reference.name, reference.size, reference.quantization) == ("seed-oss", 36.0, "Q4_K_M")


def test_an_unknown_tag_says_which_tags_exist(families: dict[str, Family]) -> None:
    with pytest.raises(UsageError) as raised:
        check_tag(parse_reference("qwen3:9b"), families["qwen3"])
    assert str(raised.value).startswith("qwen3 has no size 9b")
    assert "30b-a3b" in str(raised.value.hint) and "q4_k_m" in str(raised.value.hint)
    with pytest.raises(UsageError, match="no size 30b-a2b"):
        check_tag(parse_reference("qwen3:30b-a2b"), families["qwen3"])
    with pytest.raises(UsageError, match="no quantization q9_k"):
        check_tag(parse_reference("qwen3:8b-q9_k"), families["qwen3"])


def test_flags_may_repeat_a_tag_but_not_contradict_it() -> None:
    tagged = parse_reference("qwen3:8b-q4_k_m")
    assert merge_flags(tagged, parse_size("8B"), "Q4_K_M").size == 8.0
    assert merge_flags(parse_reference("qwen3"), parse_size("30B-A3B"), None).active == 3.0
    with pytest.raises(UsageError, match=r"asks for 8b but --size says 4b"):
        merge_flags(tagged, parse_size("4"), None)
    with pytest.raises(UsageError, match=r"asks for q4_k_m but --quantization says Q8_0"):
        merge_flags(tagged, None, "Q8_0")
    with pytest.raises(UsageError, match="active"):
        merge_flags(parse_reference("qwen3:30b-a3b"), parse_size("30B-A5B"), None)


def test_model_request_takes_the_tag() -> None:
    request = model_request("seed-oss:36b-q4_k_m", None, None, None, None, None, None)
    assert (request.model, request.size, request.quantization) == ("seed-oss", 36.0, "Q4_K_M")
    moe = model_request("qwen3", None, None, "30B-A3B", None, None, None)
    assert (moe.model, moe.size) == ("qwen3", 30.0)
    small = model_request("smollm2-135m-instruct:latest", None, None, "135M", None, None, None)
    assert (small.model, small.size) == ("smollm2-135m-instruct", 0.135)


def test_model_request_refuses_a_contradiction() -> None:
    with pytest.raises(UsageError, match="asks for 8b but --size says 4b"):
        model_request("qwen3:8b", None, None, "4", None, None, None)


def _zoo(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as done:
        main(list(args))
    out, err = capsys.readouterr()
    return int(done.value.code or 0), out, err


def test_launch_dry_run_with_a_reference(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _zoo(capsys, "launch", "smollm2-135m-instruct:135m-q4_1", "--dry-run")
    assert code == 0
    assert "model:        smollm2-135m-instruct" in out
    assert "quantization: Q4_1" in out
    assert "0.135B" in out


def test_launch_with_a_contradiction_is_one_usage_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _zoo(capsys, "launch", "qwen3:8b", "--size", "4", "--dry-run")
    assert code == 2 and out == ""
    assert err == (
        "zoo: error: qwen3:8b asks for 8b but --size says 4b "
        "(give the size once: in the tag or with --size)\n"
    )


def test_an_unknown_tag_on_the_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _zoo(capsys, "download", "smollm2-135m-instruct:7b", "--dry-run")
    assert code == 2
    assert err.startswith("zoo: error: smollm2-135m-instruct has no size 7b (sizes: 135m;")
    assert err.count("\n") == 1


def test_size_option_accepts_units(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _zoo(capsys, "launch", "smollm2-135m-instruct", "--size", "135M", "--json")
    assert code == 0
    assert '"size": 0.135' in out
    code, _, err = _zoo(capsys, "launch", "smollm2-135m-instruct", "--size", "36x", "--dry-run")
    assert code == 2 and "--size '36x' is not a size" in err


def test_build_tags_name_exactly_their_build(families: dict[str, Family]) -> None:
    """The web UI loads a build by ``build_tag``: over the whole catalog, a tag given reads
    back to that build alone, and a build without one has an earlier twin the tag would name
    (same size and quantization in another format)."""
    from zoo.reference import matching_builds

    untagged = 0
    for family in families.values():
        for index, spec in enumerate(family.specs):
            for name in spec.quantizations:
                tag = build_tag(family, index, name)
                if tag is None:
                    untagged += 1
                    twins = matching_builds(
                        family,
                        size=spec.size,
                        activated=spec.activated_size,
                        quantization=name,
                    )
                    assert twins[0] != (index, name), (family.name, index, name)
                    continue
                wanted = read_tag(family, tag)
                found = matching_builds(
                    family,
                    size=wanted.size,
                    activated=wanted.activated,
                    quantization=wanted.quantization,
                )
                assert found[0] == (index, name), (family.name, tag)
    assert untagged < sum(len(s.quantizations) for f in families.values() for s in f.specs)
