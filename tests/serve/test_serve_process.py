"""The real ``zoo serve`` process: it records itself for ``zoo serve status|reload|stop`` and
forgets the record when it stops (uvicorn re-raises SIGTERM after its shutdown, so a
``finally`` after ``server.run()`` never ran and the record outlived the gateway)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from zoo.serve.server import record_path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _zoo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "zoo", *args], capture_output=True, text=True, timeout=60
    )


def test_sigterm_stops_the_gateway_and_removes_its_record(tmp_path: Path) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text("models: {}\n")
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "zoo", "serve", "--config", str(config), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", trust_env=False).is_success:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr
            time.sleep(0.1)
        assert record_path().is_file()
        status = _zoo("serve", "status")
        assert f"(pid {proc.pid}) on http://127.0.0.1:{port}/v1" in status.stdout, status
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not record_path().exists()
    assert "no zoo serve is running" in _zoo("serve", "status").stderr
