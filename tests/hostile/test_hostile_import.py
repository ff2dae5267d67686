"""Hostile registries given to ``zoo import``: nothing is written outside ``--out``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hostile_helpers import assert_one_error_line, zoo


def _family(name: str) -> dict[str, object]:
    return {
        "version": 2,
        "context_length": 2048,
        "model_name": name,
        "model_lang": ["en"],
        "model_ability": ["generate"],
        "model_description": "d",
        "architectures": ["LlamaForCausalLM"],
        "model_specs": [
            {
                "model_format": "pytorch",
                "model_size_in_billions": 1,
                "model_src": {"huggingface": {"quantizations": ["none"], "model_id": "a/b"}},
            }
        ],
    }


@pytest.mark.parametrize("kind", ["absolute", "relative"])
def test_a_model_name_that_is_a_path_writes_nothing_outside_out(tmp_path: Path, kind: str) -> None:
    # Was: model_name "/somewhere/x" wrote /somewhere/x.yaml, "../x" wrote beside --out.
    victim = tmp_path / "victim"
    victim.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    name = str(victim / "pwned") if kind == "absolute" else "../victim/pwned"
    source = tmp_path / "llm_family.json"
    source.write_text(json.dumps([_family("ok-one"), _family(name)]))
    result = zoo("import", "xinference", str(source), "--out", str(out), "--commit", "abc")
    assert_one_error_line(result, "family 2: model_name", "is not a family name")
    assert list(victim.iterdir()) == []
