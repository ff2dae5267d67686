"""The quantization registry: every (format, quantization) zoo ships means something real.

Lint, memory estimates and ranking share one registry (``zoo.quantization``). These tests walk
the shipped catalog and the Xinference registry the importer reads, check that no pair falls
back to a default, and pin the estimates against published file sizes.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zoo import quantization as quant
from zoo.catalog import quantizations as vocabulary
from zoo.catalog.catalog import Catalog
from zoo.catalog.model import FORMATS, Family, Source, Spec
from zoo.catalog.validate import check_text
from zoo.memory import GIB, UNKNOWABLE_BYTES, estimate

XINFERENCE = Path(__file__).parents[1] / "importers" / "data" / "llm_family.json"
QUANTIZED_KINDS = {
    "block",
    "k-quant",
    "i-quant",
    "ternary",
    "int",
    "affine",
    "nf4",
    "fp8",
    "fp4",
    "mixed",
}


def shipped_pairs(catalog: Catalog) -> Iterator[tuple[str, str, str]]:
    """(family, format, quantization) for every name a spec, source or split table uses."""
    for family in catalog:
        for spec in family.specs:
            names = set(spec.quantizations)
            for source in spec.sources:
                names.update(source.quantizations)
                if source.split is not None:
                    names.update(source.split.parts)
            for name in sorted(names):
                yield family.name, spec.format, name


def test_the_registry_covers_every_format_a_spec_can_have() -> None:
    assert set(quant.FORMATS) == set(FORMATS) == set(vocabulary.GRAMMARS)


def test_no_shipped_quantization_falls_back_to_a_default(catalog: Catalog) -> None:
    pairs = list(shipped_pairs(catalog))
    assert len({(f, q) for _, f, q in pairs}) > 150  # the walk really walked the catalog
    missing = sorted({(f, q, fam) for fam, f, q in pairs if quant.lookup(q, f) is None})
    assert missing == []
    # ...and the total ``info`` answers from the registry for every one of them.
    assert all(quant.info(q, fmt=f).known for _, f, q in pairs)


def test_shipped_figures_are_sane(catalog: Catalog) -> None:
    wrong = []
    for family, fmt, name in shipped_pairs(catalog):
        q = quant.lookup(name, fmt)
        assert q is not None
        if q.kind == "float":
            ok = q.bits in (16.0, 32.0) and q.rank == 16 and q.core in ("bf16", "f16", "f32")
        elif q.kind == "native":
            ok = q.bits == 16 and q.rank == 16
        elif q.kind == "hybrid":
            ok = q.rank < q.bits < 16 and q.core in ("bf16", "f16")
        else:
            # Scales and higher-precision tensors cost bits, never save them, and never
            # double a quantization.
            ok = q.kind in QUANTIZED_KINDS and 1 <= q.rank <= 8.5 and q.rank <= q.bits
            ok = ok and q.bits <= q.rank + 1.75
        if not ok:
            wrong.append((family, fmt, name, q))
    assert wrong == []


def _hardware() -> list[dict[str, bool]]:
    return [{"bf16": b, "gpu": g} for b in (True, False) for g in (True, False)]


def test_the_pairs_issue_11_found_get_real_figures() -> None:
    int4 = quant.lookup("Int4", "gptq")
    w4a16 = quant.lookup("Int4-W4A16", "gptq")
    assert int4 is not None and w4a16 is not None
    assert 4.0 < w4a16.bits < 5.0 and w4a16.bits == int4.bits  # was 16
    mxfp4_moe = quant.lookup("MXFP4_MOE", "ggufv2")
    assert mxfp4_moe is not None and 4.25 <= mxfp4_moe.bits <= 4.6 and mxfp4_moe.rank == 4
    for hw in _hardware():
        awq = quant.precision_score("AWQ", fmt="awq", **hw)
        assert awq == quant.precision_score("Int4", fmt="awq", **hw)  # was ranked like BF16
        if hw["bf16"]:  # (BF16 without hardware support ranks low on purpose)
            assert awq < quant.precision_score("bf16", fmt="pytorch", **hw)
        assert awq < quant.precision_score("Int8", fmt="awq", **hw)
    mix = quant.lookup("Int4-Int8Mix", "gptq")
    int8 = quant.lookup("Int8", "gptq")
    assert mix is not None and int8 is not None
    assert int4.bits < mix.bits < int8.bits and int4.rank < mix.rank < int8.rank
    assert quant.bits_per_weight("8bit-MXFP8", fmt="mlx") < 9
    assert quant.bits_per_weight("mxfp8", fmt="mlx") < 9


def test_the_format_changes_the_answer() -> None:
    # "none" is the checkpoint's 16-bit weights in pytorch, FP8 in an fp8 repository.
    assert quant.bits_per_weight("none", fmt="pytorch") == 16
    assert quant.bits_per_weight("none", fmt="fp8") == pytest.approx(8.4)
    gpu = {"bf16": True, "gpu": True}
    assert quant.precision_score("none", fmt="fp8", **gpu) == 8
    assert quant.precision_score("none", fmt="pytorch", **gpu) == 17
    # MLX's affine 4-bit (scale and bias per 64) is not GPTQ's 4-bit (16-bit embeddings).
    assert quant.bits_per_weight("4bit", fmt="mlx") == 4.5
    assert quant.bits_per_weight("4bit", fmt="gptq") == 4.6
    # Without a format the first format that knows the name answers; an unknown format too.
    assert quant.info("none") == quant.info("none", fmt="pytorch")
    assert quant.info("Q4_K_M", fmt="no-such-format") == quant.lookup("Q4_K_M", "ggufv2")


def test_only_names_no_format_knows_are_guessed() -> None:
    guess = quant.info("q9_weird")
    assert not guess.known and guess.kind == "unknown" and guess.bits == 9.5
    assert not quant.info("mystery").known and quant.info("mystery").bits == 16
    assert quant.info("ud-q4_k_m").known and quant.info(" Q8_0 ").known  # what users type


def test_lint_accepts_every_shipped_name(catalog: Catalog) -> None:
    assert [p for p in shipped_pairs(catalog) if not vocabulary.is_known(p[1], p[2])] == []


@pytest.mark.parametrize(
    ("fmt", "name"),
    [
        ("ggufv2", "Q4_K_Z"),
        ("ggufv2", "IQ5_XS"),
        ("ggufv2", "Q7_K_XXS"),  # the first grammar's building blocks allowed it
        ("ggufv2", "Q3_1"),
        ("ggufv2", "none"),  # a GGUF file whose quantization nobody knows
        ("ggufv2", "bf16_bf16"),
        ("ggufv2", "UD-UD-Q4_K_M"),
        ("ggufv2", "Q4-K-M"),
        ("ggufv2", "Q4_K_M "),
        ("ggufv2", "Q4_K_M\n"),
        ("gptq", "Int5"),
        ("gptq", "Int8-Int8Mix"),
        ("awq", "Int3"),
        ("mlx", "7bit"),
        ("mlx", "4bit-MXFP8"),
        ("fp8", "Int4"),
        ("pytorch", "Q4_K_M"),
    ],
)
def test_lint_rejects_what_the_registry_does_not_know(fmt: str, name: str) -> None:
    assert quant.lookup(name, fmt) is None
    assert not vocabulary.is_known(fmt, name)
    assert re.fullmatch(vocabulary.GRAMMARS[fmt], name, re.IGNORECASE) is None


def test_an_unknown_name_is_a_lint_error_with_a_real_suggestion() -> None:
    text = (
        "# yaml-language-server: $schema=../zoo/catalog/spec.schema.json\n"
        "name: tiny\ndescription: Tiny.\ncontext_length: 2048\nlanguages: [en]\n"
        "abilities: [chat]\nspecs:\n  - format: ggufv2\n    size: 1\n"
        "    quantizations: [Q4_K_M, Q7_K_M]\n    sources:\n      huggingface:\n"
        "        model_id: org/tiny-GGUF\n        file: tiny-{quantization}.gguf\n"
    )
    problems = [p for p in check_text(text, "spec.yaml").problems if p.code == "E300"]
    assert len(problems) == 1 and problems[0].severity == "error"
    assert "'Q7_K_M' is not a ggufv2 quantization (did you mean" in problems[0].message


_TOKENS = [
    "Q",
    "IQ",
    "TQ",
    "UD-",
    "i1-",
    "bf16_",
    "F16_",
    "BF16",
    "1",
    "2",
    "4",
    "6",
    "8",
    "_0",
    "_1",
    "_K",
    "_M",
    "_S",
    "_L",
    "_XL",
    "_XS",
    "_XXS",
    "_NL",
    "Int",
    "bit",
    "bits",
    "-bit",
    "-W4A16",
    "-Int8Mix",
    "-Lite",
    "none",
    "fp8",
    "mxfp4",
    "MXFP4_MOE",
    "AWQ",
    "-",
]


@given(st.lists(st.sampled_from(_TOKENS), min_size=1, max_size=5).map("".join))
def test_the_grammar_lint_shows_agrees_with_the_registry(name: str) -> None:
    for fmt in quant.FORMATS:
        matched = re.fullmatch(vocabulary.GRAMMARS[fmt], name, re.IGNORECASE) is not None
        assert matched == (quant.lookup(name, fmt) is not None), (fmt, name)


def test_every_registry_name_matches_its_grammar_and_examples_are_real() -> None:
    for fmt in quant.FORMATS:
        for q in quant.entries(fmt):
            for name in q.names:
                assert re.fullmatch(vocabulary.GRAMMARS[fmt], name, re.IGNORECASE), (fmt, name)
        for example in vocabulary.EXAMPLES[fmt]:
            assert quant.lookup(example, fmt) is not None, (fmt, example)


def test_every_xinference_name_is_known_but_gguf_none() -> None:
    """The importer's source: every name it can bring in validates and has figures."""
    unknown = set()
    for family in json.loads(XINFERENCE.read_text(encoding="utf-8")):
        for spec in family["model_specs"]:
            fmt = spec["model_format"]
            sources = (spec.get("model_src") or {}).values()
            for name in {q for s in sources for q in s.get("quantizations") or ()}:
                if quant.lookup(name, fmt) is None:
                    unknown.add((fmt, name))
    # Xinference lists "none" for GGUF repositories it has no file name for; the importer does
    # not offer those sources, and a GGUF of unknown quantization has no size to estimate.
    assert unknown == {("ggufv2", "none")}


# --- memory estimates against published sizes ------------------------------------------------


def _spec(fmt: str, size: float, quantization: str) -> Spec:
    return Spec(fmt, size, (quantization,), (Source("huggingface", "o/m", (quantization,)),))


def _weights(fmt: str, size: float, quantization: str) -> int:
    return estimate(None, _spec(fmt, size, quantization), quantization, 0, 0).weights_bytes


@pytest.mark.parametrize(
    ("fmt", "size", "name", "published", "tolerance"),
    [
        # gpt-oss model card: gpt-oss-120b (116.83e9 weights, MoE in MXFP4) is 60.8 GiB.
        ("ggufv2", 116.83, "MXFP4", 60.8 * GIB, 0.03),
        # unsloth's DeepSeek-R1 GGUF (671e9 weights): Q4_K_M 404 GB, Q8_0 713 GB.
        ("ggufv2", 671, "Q4_K_M", 404e9, 0.03),
        ("ggufv2", 671, "Q8_0", 713e9, 0.01),
    ],
)
def test_estimates_match_published_sizes(
    fmt: str, size: float, name: str, published: float, tolerance: float
) -> None:
    assert _weights(fmt, size, name) == pytest.approx(published, rel=tolerance)


def test_gptq_errs_large_for_small_vocabularies_never_small() -> None:
    # TheBloke's Llama-2-70B-GPTQ 4bit-128g: 36.65 GB with Llama 2's 32k vocabulary; the 4.6-bit
    # figure is for today's 150k vocabularies, so it overestimates here, by less than a tenth.
    estimate_bytes = _weights("gptq", 68.98, "Int4")
    assert 36.65e9 < estimate_bytes < 36.65e9 * 1.1


def test_shipped_moe_and_fp8_specs_are_estimated_from_their_own_format(catalog: Catalog) -> None:
    gemma = next(s for s in catalog.get("gemma-4").specs if "MXFP4_MOE" in s.quantizations)
    weights = estimate(None, gemma, "MXFP4_MOE", 0, 0).weights_bytes
    # 26e9 weights at 4.5 bits: 13.6 GiB (the 16-bit default made it 48.4 GiB).
    assert 12 * GIB < weights < 15 * GIB
    qwen = next(
        s
        for s in catalog.get("qwen3-instruct").specs
        if s.format == "fp8" and "none" in s.quantizations and s.size == 4
    )
    # Qwen3-4B-Instruct-2507-FP8 is FP8 as published: about 4 GB, not the 8 GB of BF16.
    assert 3.9e9 < estimate(None, qwen, "none", 0, 0).weights_bytes < 4.5e9


@pytest.mark.parametrize("size", [math.nan, math.inf, -math.inf, 1e308, -1.0])
def test_a_size_that_is_not_a_finite_number_never_crashes_and_never_fits(size: float) -> None:
    spec = _spec("ggufv2", size, "Q4_K_M")
    # A bool is not a byte count: the size decides the KV cache here too.
    family = Family(
        "f", "F.", 2048, ("en",), ("chat",), (spec,), extra={"kv_bytes_per_token": True}
    )
    for fam in (None, family):
        est = estimate(fam, spec, "Q4_K_M", 8192, 300 * 1024**2)
        assert est.total_bytes >= UNKNOWABLE_BYTES
        assert "GiB" in est.describe()
