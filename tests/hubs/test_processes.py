"""Resume after kill -9, and two processes fetching the same model at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from zoo.testing.hubserver import GeneratedFile, HubServer

MB = 1024 * 1024
CHILD = Path(__file__).with_name("fetch_child.py")
REPO_ROOT = Path(__file__).resolve().parents[2]


def _start(hub: str, path: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.Popen(
        [sys.executable, str(CHILD), hub, "org/big-GGUF", path],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _partial_size(root: Path) -> int:
    sizes = [
        p.stat().st_size
        for p in root.rglob("*")
        if p.is_file() and (p.name.endswith(".zoo-partial") or ".incomplete" in p.name)
    ]
    return max(sizes, default=0)


@pytest.mark.parametrize("hub", ["huggingface", "modelscope"])
def test_kill_9_then_the_next_run_continues(hub_server: HubServer, hub: str) -> None:
    size = 8 * MB
    hub_server.add_repo("org/big-GGUF", {"big-Q4_0.gguf": GeneratedFile(size, 7)})
    slow = hub_server.fault("slow", "big-Q4_0.gguf", delay=0.01)  # ~6 MB/s
    cache = Path(os.environ["HF_HOME"] if hub == "huggingface" else os.environ["MODELSCOPE_CACHE"])
    child = _start(hub, "big-Q4_0.gguf")
    deadline = time.time() + 60
    while _partial_size(cache) < 3 * MB and time.time() < deadline and child.poll() is None:
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    kept = _partial_size(cache)
    assert kept >= 3 * MB, child.stderr.read() if child.stderr else ""
    hub_server.faults.remove(slow)
    hub_server.reset_counters()
    child = _start(hub, "big-Q4_0.gguf")
    out, err = child.communicate(timeout=120)
    assert child.returncode == 0, err
    assert Path(out.strip()).read_bytes() == GeneratedFile(size, 7).read(0, size)
    # Continued, not restarted: only the missing tail crossed the wire again.
    assert hub_server.bytes_sent["org/big-GGUF/big-Q4_0.gguf"] <= size - kept + MB


@pytest.mark.parametrize("hub", ["huggingface", "modelscope"])
def test_two_processes_one_download_both_succeed(hub_server: HubServer, hub: str) -> None:
    size = 4 * MB
    hub_server.add_repo("org/big-GGUF", {"big-Q4_0.gguf": GeneratedFile(size, 3)})
    hub_server.fault("slow", "big-Q4_0.gguf", delay=0.005)
    children = [_start(hub, "big-Q4_0.gguf") for _ in range(2)]
    outputs = [c.communicate(timeout=120) for c in children]
    assert [c.returncode for c in children] == [0, 0], [e for _, e in outputs]
    paths = {Path(out.strip()) for out, _ in outputs}
    assert len(paths) == 1
    assert hub_server.bytes_sent["org/big-GGUF/big-Q4_0.gguf"] == size
