"""Every problem code, pinned to the exact line and column it points at.

Each case edits the valid spec in catalog_helpers.VALID (line numbers refer to that text).
"""

from __future__ import annotations

import pytest
from catalog_helpers import HEADER, VALID, check, codes, family_text

from zoo.catalog.problems import CODES


def edit(old: str, new: str, text: str = VALID) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


CASES = [
    # code, spec text, line, column, words in the message
    # libyaml notices the unclosed list where the next key starts.
    ("E101", edit("languages: [en]", "languages: [en"), 6, 10, "flow sequence"),
    (
        "E102",
        edit("context_length: 4096", "context_length: 4096\ncontext_length: 8192"),
        5,
        1,
        "duplicate key 'context_length' (first defined on line 4)",
    ),
    ("E104", edit("languages: [en]", "languages: !!python/name:os.system [en]"), 5, 12, "tag"),
    (
        "E200",
        edit("context_length: 4096", "context_length: big"),
        4,
        17,
        "context_length must be an integer, not a string",
    ),
    (
        "E200",
        edit("description: A tiny code model for tests.\n", ""),
        2,
        1,
        "missing required field 'description'",
    ),
    (
        "E201",
        edit(
            "    size: 1.5\n    quantizations: [Q4_K_M", "    size: 1.5\n    quantisations: [Q4_K_M"
        ),
        15,
        5,
        "unknown key 'quantisations' in specs[0] (did you mean 'quantizations'?)",
    ),
    (
        "E202",
        edit("context_length: 4096", "context_length: 0"),
        4,
        17,
        "context_length must be greater than 0, not 0",
    ),
    (
        "E202",
        edit("  - format: gptq\n    size: 1.5", "  - format: gptq\n    size: -2"),
        25,
        11,
        "specs[1].size must be greater than 0",
    ),
    (
        "E203",
        edit("  - format: gptq", "  - format: gtpq"),
        24,
        13,
        "'gtpq' is not allowed (did you mean 'gptq'?)",
    ),
    ("E204", edit("name: tiny-coder", "name: Tiny Coder"), 2, 7, "lowercase"),
    (
        "E300",
        edit("[Q4_K_M, Q8_0, BF16]", "[Q4_K_M, Q4_K_Z, BF16]"),
        15,
        29,
        "'Q4_K_Z' is not a ggufv2 quantization",
    ),
    (
        "E301",
        edit("org/tiny-coder-GPTQ-{quantization}", "org/tiny-coder-GPTQ"),
        29,
        19,
        "one repository for 2 quantizations (Int4, Int8)",
    ),
    (
        "E301",
        edit("tiny-coder-{quantization}.gguf", "tiny-coder.gguf"),
        19,
        15,
        "Q4_K_M, Q8_0 would all be the same file",
    ),
    (
        "E302",
        edit("            BF16: [", "            BF17: ["),
        23,
        13,
        "split parts for 'BF17', which is not a ggufv2 quantization",
    ),
    (
        "E303",
        edit(
            "        model_id: org/tiny-coder-GPTQ-{quantization}",
            "        model_id: org/tiny-coder-GPTQ-{quantization}\n        file: x.gguf",
        ),
        30,
        9,
        "'file' is for GGUF files, but this spec's format is gptq",
    ),
    (
        "E304",
        edit("org/tiny-coder-GGUF", "org/tiny/coder-GGUF"),
        18,
        19,
        "'org/tiny/coder-GGUF' is not a valid huggingface repository id",
    ),
    ("E304", edit("org/tiny-coder-GGUF", "-org/tiny-coder-GGUF"), 18, 19, "must be 1-96 letters"),
    (
        "E305",
        edit("tiny-coder-{quantization}.gguf", "../../etc/{quantization}.gguf"),
        19,
        15,
        "has '..'",
    ),
    (
        "E305",
        edit("tiny-coder-{quantization}.gguf", "/abs/{quantization}.gguf"),
        19,
        15,
        "absolute path",
    ),
    (
        "E305",
        edit("tiny-coder-{quantization}.gguf", "'dir\\\\{quantization}.gguf'"),
        19,
        15,
        "backslash",
    ),
    ("E305", edit("tiny-coder-{quantization}.gguf", '"a\\0{quantization}.gguf"'), 19, 15, "NUL"),
    (
        "E307",
        edit("        file: tiny-coder-{quantization}.gguf\n", ""),
        17,
        7,
        "no 'file' template for Q4_K_M, Q8_0",
    ),
    ("E308", edit("-{part}.gguf", ".gguf"), 21, 17, "no {part}"),
    ("E309", edit("    quantizations: [Int4, Int8]\n", ""), 24, 5, "no quantizations"),
    (
        "E311",
        edit("tiny-coder-{quantization}.gguf", "tiny-coder-{quant}.gguf"),
        19,
        15,
        "unknown placeholder {quant}",
    ),
    (
        "E312",
        edit(
            "        file: tiny-coder-{quantization}.gguf",
            "        file: tiny-coder-{quantization}.gguf\n        revision: main/../../x",
        ),
        20,
        19,
        "revision 'main/../../x' contains '..'",
    ),
    (
        "W300",
        edit(
            "        model_id: org/tiny-coder-GPTQ-{quantization}",
            "        model_id: org/tiny-coder-GPTQ-{quantization}\n        quantizations: [Int4]",
        ),
        26,
        27,
        "no source provides quantization 'Int8'",
    ),
    (
        "W301",
        edit(
            "    size: 1.5\n    quantizations: [Q4_K_M",
            "    size: 1.5\n    activated_size: 3\n    quantizations: [Q4_K_M",
        ),
        15,
        21,
        "activated size 3 is not smaller than the size 1.5",
    ),
    (
        "W302",
        edit(
            "        file: tiny-coder-{quantization}.gguf",
            "        file: tiny-coder-{quantization}.gguf\n        unverified: [revision]",
        ),
        20,
        22,
        "'unverified' names 'revision'",
    ),
    ("W303", VALID.replace(HEADER, ""), 1, 1, "yaml-language-server"),
    (
        "W304",
        edit("abilities: [generate, fim]", "abilities: [generate, fim]\nfim: null").replace(
            'fim: null\nfim:\n  prefix: "<pre>"\n  suffix: "<suf>"\n  middle: "<mid>"\n'
            "  order: [suffix, prefix, middle]\n",
            "",
        ),
        6,
        12,
        "needs a fim template",
    ),
    (
        "W305",
        edit("abilities: [generate, fim]", "abilities: [generate]"),
        7,
        1,
        "without the 'fim' ability",
    ),
    (
        "W306",
        edit(
            "        model_id: org/tiny-coder-GPTQ-{quantization}",
            "        model_id: org/tiny-coder-GPTQ-{quantization}\n"
            "        quantizations: [Int4, Int3]",
        ),
        30,
        31,
        "huggingface lists 'Int3', which the spec's quantizations do not",
    ),
    (
        "W307",
        edit("            BF16: [", "            Q6_K: ["),
        23,
        13,
        "split parts for 'Q6_K', which this source does not list",
    ),
]


@pytest.mark.parametrize(
    ("code", "text", "line", "column", "words"),
    CASES,
    ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)],
)
def test_each_code_points_at_the_right_place(
    code: str, text: str, line: int, column: int, words: str
) -> None:
    result = check(text)
    found = [p for p in result.problems if p.code == code]
    assert found, f"expected {code}, got {result.problems}"
    problem = found[0]
    assert (problem.line, problem.column) == (line, column), problem
    assert words in problem.message
    assert str(problem).startswith(f"spec.yaml:{line}:{column}: ")
    severity = "error" if code.startswith("E") else "warning"
    assert f": {severity}[{code}]: " in str(problem)
    # Errors drop the family; warnings keep it.
    assert result.ok is (not any(p.is_error for p in result.problems))
    if code.startswith("W"):
        assert result.ok, result.problems


def test_every_code_is_tested_and_documented() -> None:
    # See the other test files (E313 and E314, the kind lints: test_kind_lints.py; the fact
    # lints: test_fact_lints.py).
    tested = {case[0] for case in CASES} | {"E100", "E103", "E306", "E313", "E314"}
    tested |= {"E315", "W308", "W309", "W310", "W311", "W312", "W313"}
    tested |= {c for c in CODES if c.startswith("E4")}  # zoo catalog check: test_catalog_check.py
    assert tested == set(CODES)


def test_the_valid_spec_has_no_problems() -> None:
    assert check(VALID).problems == []


def test_a_wrong_type_deep_inside_points_at_the_value() -> None:
    text = family_text("x").replace("size: 1\n", 'size: "1_5"\n')
    problem = check(text).problems[0]
    assert (problem.code, problem.line, problem.column) == ("E200", 9, 11)
    assert "specs[0].size must be a number, not a string" in problem.message


def test_several_unknown_keys_are_each_reported_at_their_key() -> None:
    text = family_text("x") + "licence: mit\nhomepgae: https://example.org\n"
    result = check(text)
    assert codes(result) == ["E201", "E201"]
    assert [(p.line, p.column) for p in result.problems] == [(14, 1), (15, 1)]
    assert "did you mean 'license'?" in result.problems[0].message
    assert "did you mean 'homepage'?" in result.problems[1].message
