"""Spec texts and small helpers shared by the catalog tests."""

from __future__ import annotations

from pathlib import Path

from zoo.catalog.problems import Problem
from zoo.catalog.validate import FileResult, check_text

HEADER = "# yaml-language-server: $schema=../zoo/catalog/spec.schema.json\n"

# A valid family touching most fields; tests edit it line by line, so keep lines stable.
VALID = (
    HEADER
    + """\
name: tiny-coder
description: A tiny code model for tests.
context_length: 4096
languages: [en]
abilities: [generate, fim]
fim:
  prefix: "<pre>"
  suffix: "<suf>"
  middle: "<mid>"
  order: [suffix, prefix, middle]
specs:
  - format: ggufv2
    size: 1.5
    quantizations: [Q4_K_M, Q8_0, BF16]
    sources:
      huggingface:
        model_id: org/tiny-coder-GGUF
        file: tiny-coder-{quantization}.gguf
        split:
          file: "{quantization}/tiny-coder-{quantization}-{part}.gguf"
          parts:
            BF16: [00001-of-00002, 00002-of-00002]
  - format: gptq
    size: 1.5
    quantizations: [Int4, Int8]
    sources:
      huggingface:
        model_id: org/tiny-coder-GPTQ-{quantization}
"""
)


def family_text(name: str, *, extra: str = "") -> str:
    """A minimal valid spec file for family ``name``."""
    return (
        HEADER
        + f"""\
name: {name}
description: Family {name}.
context_length: 2048
languages: [en]
abilities: [chat]
specs:
  - format: pytorch
    size: 1
    quantizations: [none]
    sources:
      huggingface:
        model_id: org/{name}
{extra}"""
    )


def check(text: str) -> FileResult:
    return check_text(text, "spec.yaml")


def codes(result: FileResult) -> list[str]:
    return [p.code for p in result.problems]


def only(result: FileResult, code: str) -> Problem:
    found = [p for p in result.problems if p.code == code]
    assert len(found) == 1, result.problems
    return found[0]


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path
