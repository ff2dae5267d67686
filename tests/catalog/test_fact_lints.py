"""Fact lints (zoo/catalog/lint_facts.py): each rule flags the original imported entry at the
value that is wrong, and is silent on the corrected entry and on tricky but right names.

The spec blocks are copied from the Xinference import as it was before the corrections
(specs/<family>.yaml at the import commit), cut down to the spec that is wrong.
"""

from __future__ import annotations

import pytest
from catalog_helpers import HEADER, check

from zoo.catalog import lint_facts
from zoo.catalog.problems import CODES, Problem

FACT_CODES = {"E315", "W301", "W308", "W309", "W310", "W311", "W312", "W313"}


def family(name: str, specs: str, *, top: str = "") -> str:
    return (
        HEADER
        + f"""\
name: {name}
description: Family {name}.
context_length: 32768
languages: [en]
abilities: [chat]
{top}specs:
{specs}"""
    )


def at(text: str, needle: str, nth: int = 0) -> tuple[int, int]:
    """1-based line and column of the ``nth`` occurrence of ``needle`` in ``text``."""
    start = -1
    for _ in range(nth + 1):
        start = text.index(needle, start + 1)
    line = text.count("\n", 0, start) + 1
    return line, start - (text.rfind("\n", 0, start) + 1) + 1


def value_at(text: str, key: str) -> tuple[int, int]:
    """Where the value after ``key: `` starts."""
    line, column = at(text, f"{key}: ")
    return line, column + len(key) + 2


def facts(text: str) -> list[Problem]:
    result = check(text)
    # Everything else about these small documents is valid: only fact lints may speak.
    assert all(p.code in FACT_CODES for p in result.problems), result.problems
    return [p for p in result.problems if p.code in FACT_CODES]


def where(problems: list[Problem], code: str) -> list[tuple[int, int]]:
    return [(p.line, p.column) for p in problems if p.code == code]


# qwen2-moe-instruct as imported: 14 (the active size) filed as the size, no activated_size.
QWEN2_MOE = """\
  - format: pytorch
    size: 14
    quantizations: ["none"]
    sources:
      huggingface:
        model_id: Qwen/Qwen2-57B-A14B-Instruct
      modelscope:
        model_id: qwen/Qwen2-57B-A14B-Instruct
"""
QWEN2_MOE_FIXED = QWEN2_MOE.replace("size: 14\n", "size: 57\n    activated_size: 14\n")


def test_size_in_the_repository_id_against_the_spec_size() -> None:
    text = family("qwen2-moe-instruct", QWEN2_MOE)
    problems = facts(text)
    # One report per place: both hubs' ids are wrong, each on its own line.
    assert where(problems, "W308") == [
        at(text, "Qwen/Qwen2-57B-A14B-Instruct"),
        at(text, "qwen/Qwen2-57B-A14B-Instruct"),
    ]
    message = next(p.message for p in problems if p.code == "W308")
    assert "'Qwen2-57B-A14B-Instruct' says 57B" in message and "size is 14" in message
    assert facts(family("qwen2-moe-instruct", QWEN2_MOE_FIXED)) == []


def test_missing_activated_size_is_reported_once_at_the_spec() -> None:
    text = family("qwen2-moe-instruct", QWEN2_MOE)
    problems = facts(text)
    assert where(problems, "W309") == [at(text, "size: 14")]
    assert "14B active" in next(p.message for p in problems if p.code == "W309")


# qwen3-vl-instruct's MLX 30B-A3B spec as imported: activated_size copied from the size.
QWEN3_VL_MLX = """\
  - format: mlx
    size: 30
    activated_size: 30
    quantizations: [3bit]
    sources:
      huggingface:
        model_id: mlx-community/Qwen3-VL-30B-A3B-Instruct-3bit
"""


def test_activated_size_against_the_id_and_against_the_size() -> None:
    text = family("qwen3-vl-instruct", QWEN3_VL_MLX)
    problems = facts(text)
    assert where(problems, "W309") == [value_at(text, "activated_size")]
    assert "disagrees with 'Qwen3-VL-30B-A3B-Instruct-3bit' (3B active)" in problems[-1].message
    assert where(problems, "W301") == [value_at(text, "activated_size")]
    fixed = QWEN3_VL_MLX.replace("activated_size: 30", "activated_size: 3")
    assert facts(family("qwen3-vl-instruct", fixed)) == []


# deepseek-r1-distill-llama's GGUF specs as imported: 1.5 for the 8B repository, and the
# 70B spec's file template naming the Qwen-7B distill.
DISTILL_8B = """\
  - format: ggufv2
    size: 1.5
    quantizations: [Q2_K, Q4_K_M]
    sources:
      huggingface:
        model_id: unsloth/DeepSeek-R1-Distill-Llama-8B-GGUF
        file: DeepSeek-R1-Distill-Llama-8B-{quantization}.gguf
"""
DISTILL_70B = """\
  - format: ggufv2
    size: 70
    quantizations: [Q2_K, Q4_K_M, F16]
    sources:
      huggingface:
        model_id: unsloth/DeepSeek-R1-Distill-Llama-70B-GGUF
        file: DeepSeek-R1-Distill-Qwen-7B-{quantization}.gguf
        split:
          file: Llama-70B-{quantization}/DeepSeek-R1-Distill-Llama-70B-{quantization}-{part}.gguf
          parts:
            F16: [00001-of-00003, 00002-of-00003, 00003-of-00003]
"""
PYTORCH_8B = """\
  - format: pytorch
    size: 8
    quantizations: ["none"]
    sources:
      huggingface:
        model_id: deepseek-ai/DeepSeek-R1-Distill-Llama-8B
"""


def test_size_in_the_repository_and_the_file_template() -> None:
    text = family("deepseek-r1-distill-llama", PYTORCH_8B + DISTILL_8B)
    problems = facts(text)
    assert where(problems, "W308") == [
        at(text, "unsloth/DeepSeek-R1-Distill-Llama-8B-GGUF"),
        at(text, "DeepSeek-R1-Distill-Llama-8B-{quantization}.gguf"),
    ]
    # Filled in for a quantization, so the message shows a real file name.
    assert "'DeepSeek-R1-Distill-Llama-8B-Q2_K.gguf' says 8B" in problems[-1].message
    fixed = PYTORCH_8B + DISTILL_8B.replace("size: 1.5", "size: 8")
    assert facts(family("deepseek-r1-distill-llama", fixed)) == []


def test_a_file_naming_another_series_than_the_family() -> None:
    text = family("deepseek-r1-distill-llama", PYTORCH_8B + DISTILL_70B)
    problems = facts(text)
    file = at(text, "DeepSeek-R1-Distill-Qwen-7B-{quantization}.gguf")
    assert where(problems, "W310") == [file]
    assert "names 'qwen'" in next(p.message for p in problems if p.code == "W310")
    assert where(problems, "W308") == [file]  # and its size is the 7B's
    fixed = DISTILL_70B.replace("Distill-Qwen-7B-", "Distill-Llama-70B-")
    assert facts(family("deepseek-r1-distill-llama", PYTORCH_8B + fixed)) == []


def test_a_repository_naming_another_series_than_the_rest_of_the_family() -> None:
    # An id does not vouch for itself: its own spec's ids are not the family's vocabulary.
    wrong = PYTORCH_8B.replace("deepseek-ai/DeepSeek-R1-Distill-Llama-8B", "org/Mistral-8B")
    text = family("deepseek-r1-distill-llama", DISTILL_8B.replace("1.5", "8") + wrong)
    assert where(facts(text), "W310") == [at(text, "org/Mistral-8B")]


def test_opt_millions_when_no_billions_label() -> None:
    spec = """\
  - format: pytorch
    size: 1
    quantizations: ["none"]
    sources:
      huggingface:
        model_id: facebook/opt-125m
"""
    text = family("opt", spec)
    problems = facts(text)
    assert where(problems, "W308") == [at(text, "facebook/opt-125m")]
    assert "says 0.125B" in problems[0].message
    assert facts(family("opt", spec.replace("size: 1\n", "size: 0.125\n"))) == []


# hy-mt2-1.8b as imported: the FP8 repository filed as pytorch with quantization fp8.
HY_MT2_FP8 = """\
  - format: pytorch
    size: 1.8
    quantizations: [fp8]
    sources:
      huggingface:
        model_id: tencent/Hy-MT2-1.8B-FP8
"""


def test_a_format_word_in_the_id_under_another_format() -> None:
    text = family("hy-mt2-1.8b", HY_MT2_FP8)
    assert where(facts(text), "W311") == [at(text, "tencent/Hy-MT2-1.8B-FP8")]
    fixed = HY_MT2_FP8.replace("format: pytorch", "format: fp8").replace("[fp8]", "[FP8]")
    assert facts(family("hy-mt2-1.8b", fixed)) == []


def test_mlx_community_under_another_format() -> None:
    spec = QWEN3_VL_MLX.replace("activated_size: 30", "activated_size: 3").replace(
        "format: mlx", "format: pytorch"
    )
    text = family("qwen3-vl-instruct", spec.replace("[3bit]", '["none"]'))
    assert where(facts(text), "W311") == [at(text, "mlx-community/")]


# ling-3.0-flash as imported: an int4 checkpoint filed as pytorch with quantization Int4.
LING_INT4 = """\
  - format: pytorch
    size: 124
    activated_size: 5.1
    quantizations: [Int4]
    sources:
      huggingface:
        model_id: inclusionAI/Ling-3.0-flash-int4
"""


def test_a_pytorch_quantization_that_names_a_stored_format() -> None:
    text = family("ling-3.0-flash", LING_INT4)
    assert where(facts(text), "W313") == [at(text, "Int4]")]
    # On the source's own list, the entry itself.
    own = LING_INT4.replace(
        "        model_id: inclusionAI/Ling-3.0-flash-int4\n",
        "        model_id: inclusionAI/Ling-3.0-flash-int4\n        quantizations: [Int4]\n",
    )
    text = family("ling-3.0-flash", own)
    assert where(facts(text), "W313") == [at(text, "Int4]", nth=1)]
    for name in ("none", "4-bit", "8-bit", "bf16", "fp16"):
        assert facts(family("ling-3.0-flash", LING_INT4.replace("Int4]", f'"{name}"]'))) == []


SPLIT = """\
  - format: ggufv2
    size: 57
    activated_size: 14
    quantizations: [q4_k_m, q8_0]
    sources:
      huggingface:
        model_id: Qwen/Qwen2-57B-A14B-Instruct-GGUF
        file: qwen2-57b-a14b-instruct-{quantization}.gguf
        split:
          file: qwen2-57b-a14b-instruct-{quantization}-{part}.gguf
          parts:
            q8_0: [00001-of-00002, 00002-of-00002]
"""


@pytest.mark.parametrize(
    ("parts", "words"),
    [
        ("[00002-of-00003, 00003-of-00003]", "2 parts listed, but their names say 3"),
        ("[00001-of-00002, 00002-of-00003]", "disagree on their count (of 2, of 3)"),
        ("[00001-of-00002, 00001-of-00002]", "2 parts listed, but their names say 2"),
        ("[00001-of-00002, 00002-of-00002, 00003-of-00002]", "3 parts listed"),
        ("[00001-of-00002, part2]", "'part2' is not named like the others"),
    ],
)
def test_split_part_names_that_do_not_add_up(parts: str, words: str) -> None:
    text = family("qwen2-moe-instruct", SPLIT.replace("[00001-of-00002, 00002-of-00002]", parts))
    result = check(text)
    found = [p for p in result.problems if p.code == "E315"]
    assert [(p.line, p.column) for p in found] == [at(text, parts)]
    assert words in found[0].message
    assert not result.ok  # an error: downloading these parts cannot work


def test_consistent_or_unnumbered_split_parts_pass() -> None:
    assert facts(family("qwen2-moe-instruct", SPLIT)) == []
    # qwen1.5-chat's parts are a repository's own scheme (a, b): nothing to count.
    other = SPLIT.replace("[00001-of-00002, 00002-of-00002]", "[a, b]")
    assert facts(family("qwen2-moe-instruct", other)) == []


# seed-oss's chat template as imported (the start of it): every newline flattened away.
SEED_OSS_FLAT = (
    "{# ------------- special token variables ------------- #}{%- set bos_token"
    "              = '<seed:bos>'               -%}{%- set eos_token              = "
    "'<seed:eos>'               -%}{{ bos_token }}{% for m in messages %}{{ m.content }}"
    "{% endfor %}"
)
PYTORCH_36B = """\
  - format: pytorch
    size: 36
    quantizations: ["none"]
    sources:
      huggingface:
        model_id: ByteDance-Seed/Seed-OSS-36B-Instruct
"""


def template_family(template: str) -> str:
    block = "".join(f"  {line}\n" for line in template.split("\n"))
    return family("seed-oss", PYTORCH_36B, top=f"chat_template: |-\n{block}")


@pytest.mark.parametrize(
    ("template", "words"),
    [
        (SEED_OSS_FLAT, "a comment runs straight into code"),
        # glm-4.7 as imported: newline escapes outside the tags, printed as text.
        ("[gMASK]<sop>{%- if tools -%}<|system|># Tools\\nYou may call{%- endif -%}", "backslash"),
        # qwen2-audio-instruct as imported: newlines turned into spaces between tags.
        ("{% for m in messages %} {{ m.content }}<|im_end|>{% endfor %}", "spaces between tags"),
    ],
)
def test_a_flattened_chat_template(template: str, words: str) -> None:
    text = template_family(template)
    problems = facts(text)
    assert where(problems, "W312") == [at(text, "|-")]
    assert words in problems[0].message
    fixed = template.replace("#}{%-", "#}\n{%-").replace("\\n", "\n").replace("%} {{", "%}\n{{")
    assert facts(template_family(fixed)) == []


@pytest.mark.parametrize(
    "template",
    [
        # DeepSeek-R1's official template is one line, newlines written as '\n' in strings.
        "{% for m in messages %}{{'<｜User｜>' + m['content'] + '\\n'}}{% endfor %}",
        # MiniCPM's and Kimi's official templates have no newline at all.
        (
            "{% for message in messages %}{% if message['role'] == 'user' %}"
            "{{'<用户>' + message['content'].strip() + '<AI>'}}{% endif %}{% endfor %}"
        ),
        # Indentation trimmed by '-' markers does not reach the prompt.
        (
            "{%- for m in messages %}    {%- if m.role == 'user' %}{{ m.content }}{%- endif %}"
            "{%- endfor %}"
        ),
    ],
)
def test_official_one_line_templates_pass(template: str) -> None:
    assert lint_facts.flattened(template) is None
    assert facts(template_family(template)) == []


@pytest.mark.parametrize(
    ("name", "total", "active"),
    [
        ("Mixtral-8x7B-Instruct-v0.1", [], []),  # experts, no total written
        ("Qwen2.5-7B-Instruct-1M", [7.0], []),  # 1M is the context
        ("glm-4-9b-chat-1m", [9.0], []),
        ("SmolLM2-135M-Instruct", [0.135], []),
        ("SmolLM2-360m", [0.36], []),
        ("Qwen-1_8B-Chat", [1.8], []),  # underscore decimal
        ("qwen1_5-0_5b-chat-q2_k.gguf", [0.5], []),  # the version is not a size
        ("gpt-oss-20b", [20.0], []),
        ("Qwen3-30B-A3B-Instruct-2507", [30.0], [3.0]),
        ("qwen2-57b-a14b-instruct-q3_k_m.gguf", [57.0], [14.0]),
        ("Llama-4-Scout-17B-16E-Instruct", [], [17.0]),  # 17B active in 16 experts
        ("granite-3.1-1b-a400m-instruct", [1.0], [0.4]),
        ("Qwen2.5-32B-Instruct-MLX-4bit", [32.0], []),  # 4bit is no size
        ("Phi-3-mini-128k-instruct", [], []),
        ("Yi-1.5-9B-Chat-16K", [9.0], []),
    ],
)
def test_sizes_read_from_names(name: str, total: list[float], active: list[float]) -> None:
    assert lint_facts.sizes(name) == (total, active)


@pytest.mark.parametrize(
    ("name", "size", "model_id"),
    [
        ("mixtral-instruct-v0.1", 46.7, "mistralai/Mixtral-8x7B-Instruct-v0.1"),
        ("qwen2.5-instruct-1m", 7.6, "Qwen/Qwen2.5-7B-Instruct-1M"),  # a rounded label
        ("glm4-chat-1m", 9.4, "THUDM/glm-4-9b-chat-1m"),
        ("smollm2-135m-instruct", 0.135, "HuggingFaceTB/SmolLM2-135M-Instruct"),
        ("qwen-chat", 1.8, "Qwen/Qwen-1_8B-Chat"),
        ("gpt-oss", 21, "openai/gpt-oss-20b"),
    ],
)
def test_no_false_alarm_on_tricky_ids(name: str, size: float, model_id: str) -> None:
    spec = f"""\
  - format: pytorch
    size: {size}
    quantizations: ["none"]
    sources:
      huggingface:
        model_id: {model_id}
"""
    assert facts(family(name, spec)) == []


def test_every_fact_code_is_documented() -> None:
    assert set(CODES) >= FACT_CODES
