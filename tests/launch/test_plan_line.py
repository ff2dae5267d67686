"""`zoo launch` says its plan in one line on stderr before it downloads anything, and an engine
environment that cannot be built shows pip's steps, not pip's output, and names pip's log.

Real components: SmolLM2's GGUF from a local hub server through huggingface_hub, a real venv
and a real pip that fails (no index, an empty wheel folder) on llama.cpp's requirement.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from launch_helpers import SMOLLM2_NAME, SMOLLM2_REPO, SMOLLM2_REVISION, zoo

from zoo.testing.hubserver import HubServer

pytestmark = pytest.mark.slow
LAUNCH = ("launch", "smollm2-135m-instruct", "--hub", "huggingface", "--engine", "llamacpp")
PLAN_LINE = re.compile(
    r"^zoo: smollm2-135m-instruct Q4_1 on llama\.cpp \(cpu\): (?P<download>.+), "
    r"needs (?P<memory>\d+\.\d GiB), (?P<speed>~[\d.]+ tok/s)$"
)


def test_the_plan_line_comes_before_the_download_and_pip_fails_into_its_log(
    hub_server: HubServer,
    smollm2_gguf: Path,
    offline_pip: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ZOO_ENVS_DIR", str(tmp_path / "envs"))  # nothing built: pip must run
    hub_server.add_repo(
        SMOLLM2_REPO, {SMOLLM2_NAME: smollm2_gguf.read_bytes()}, commit=SMOLLM2_REVISION
    )
    done = zoo(*LAUNCH)
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stderr.splitlines()
    # First, one line: model, quantization, engine, what it downloads to where, memory, speed.
    plan = PLAN_LINE.match(lines[0])
    assert plan is not None, lines[0]
    size = smollm2_gguf.stat().st_size
    cache = "~/hf/hub"  # HF_HOME is $HOME/hf in the hub server's environment
    assert plan["download"] == f"download {size / 1e6:.1f} MB to {cache}"
    assert (Path(os.environ["HOME"]) / "hf" / "hub").is_dir()  # where it really went
    # Then the download (one line per file without a terminal), then the environment.
    started = next(i for i, line in enumerate(lines) if line.startswith("downloading "))
    assert started > 0 and SMOLLM2_NAME in lines[started]
    assert any(r.startswith("GET ") and r.endswith(SMOLLM2_NAME) for r in hub_server.requests)
    # pip's own lines are not on the terminal; its steps and the failure are, in one line.
    assert not any(line.startswith(("Looking in links", "ERROR: Could not find")) for line in lines)
    assert "\x1b" not in done.stderr and "\r" not in done.stderr  # no terminal: plain lines
    error = lines[-1]
    assert error.startswith("zoo: error: could not install llamacpp's requirements (exit 1): ")
    assert "ERROR: No matching distribution found for xllamacpp" in error
    log = Path(error.rsplit("pip's full output: ", 1)[1].rstrip(")"))
    assert log == tmp_path / "envs" / "llamacpp" / "zoo-build.log"
    assert "No matching distribution found for xllamacpp" in log.read_text()
    assert "pip install --progress-bar off xllamacpp" in log.read_text()

    # Again: the files are in the cache now, and the line says so without a request.
    hub_server.requests.clear()
    again = zoo(*LAUNCH)
    plan = PLAN_LINE.match(again.stderr.splitlines()[0])
    assert plan is not None and plan["download"] == "cached", again.stderr
    assert not any(r.endswith(SMOLLM2_NAME) for r in hub_server.requests)


def test_the_plan_line_says_size_unknown_when_no_hub_can_tell(
    hub_server: HubServer, offline_pip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Qwen3-0.6B's GGUF repository is not on the hub server: no listing, no size. The line
    # still comes first, then the download fails.
    monkeypatch.setenv("ZOO_ENVS_DIR", str(tmp_path / "envs"))
    done = zoo(
        "launch",
        "qwen3",
        "--size",
        "0.6",
        "-q",
        "Q4_K_M",
        "--hub",
        "huggingface",
        "--engine",
        "llamacpp",
    )
    assert done.returncode != 0
    first = done.stderr.splitlines()[0]
    assert first.startswith(
        "zoo: qwen3 Q4_K_M on llama.cpp (cpu): download to ~/hf/hub (size unknown)"
    )
