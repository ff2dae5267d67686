"""Server processes for real: readiness, faults with log lines, stops that reach the group."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from runtime_helpers import FAKE_ENGINE

from zoo.runtime import process
from zoo.runtime.process import ServerError


def _start(tmp_path: Path, mode: str, port: int, foreground: bool = False):
    log = tmp_path / "server.log"
    proc = process.start(
        [sys.executable, str(FAKE_ENGINE), "--port", str(port), "--mode", mode],
        log_path=log,
        foreground=foreground,
    )
    return proc, log


def test_free_port_is_bindable_and_port_in_use_sees_a_listener() -> None:
    port = process.free_port()
    assert not process.port_in_use("127.0.0.1", port)
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
        sock.listen()
        assert process.port_in_use("127.0.0.1", port)


def test_ready_means_a_completion_succeeded(tmp_path: Path) -> None:
    port = process.free_port()
    proc, log = _start(tmp_path, "late", port)
    try:
        took = process.wait_ready(
            f"http://127.0.0.1:{port}",
            health_path="/health",
            model="m",
            api_key=None,
            alive=lambda: proc.poll() is None,
            timeout=20,
            log_path=log,
            what="fake",
        )
        # /health answered at once; the completion only after 1.5 s: readiness waited for it.
        assert took >= 1.0
    finally:
        process.stop_group(proc.pid, reap=proc)


def test_engine_that_exits_is_reported_with_its_last_log_lines(tmp_path: Path) -> None:
    port = process.free_port()
    proc, log = _start(tmp_path, "exit", port)
    with pytest.raises(ServerError) as caught:
        process.wait_ready(
            f"http://127.0.0.1:{port}",
            health_path="/health",
            model=None,
            api_key=None,
            alive=lambda: proc.poll() is None,
            timeout=20,
            log_path=log,
            what="the fake server",
        )
    message = str(caught.value)
    assert "exited before it was ready" in message
    assert "fatal: cannot load model weights" in message


def test_engine_that_never_becomes_ready_times_out_with_log(tmp_path: Path) -> None:
    port = process.free_port()
    proc, log = _start(tmp_path, "unhealthy", port)
    try:
        with pytest.raises(ServerError) as caught:
            process.wait_ready(
                f"http://127.0.0.1:{port}",
                health_path="/health",
                model=None,
                api_key=None,
                alive=lambda: proc.poll() is None,
                timeout=1.5,
                log_path=log,
                what="the fake server",
            )
        assert "not ready after 2 s" in str(caught.value) or "not ready after" in str(caught.value)
        assert "/health answered 503" in str(caught.value)
        assert "listening on" in str(caught.value)
    finally:
        process.stop_group(proc.pid, reap=proc)


def test_stop_reaches_the_servers_children(tmp_path: Path) -> None:
    port = process.free_port()
    proc, log = _start(tmp_path, "child", port)
    deadline = time.monotonic() + 10
    while "child pid" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    child = int(log.read_text().split("child pid ")[1].split()[0])
    assert process.pid_alive(child)
    process.stop_group(proc.pid, reap=proc)
    assert not process.pid_alive(proc.pid)
    assert not process.pid_alive(child)
    assert not process.group_alive(proc.pid)


def test_server_that_ignores_sigterm_is_killed(tmp_path: Path) -> None:
    script = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"
    proc = process.start(
        [sys.executable, "-c", script], log_path=tmp_path / "l.log", foreground=False
    )
    time.sleep(0.3)
    started = time.monotonic()
    process.stop_group(proc.pid, grace=0.5, reap=proc)
    assert proc.returncode == -signal.SIGKILL
    assert time.monotonic() - started < 5


@pytest.mark.skipif(sys.platform != "linux", reason="parent-death signal is Linux's")
def test_foreground_server_dies_with_a_killed_zoo(tmp_path: Path) -> None:
    """kill -9 of the zoo process leaves no orphan: the server got a parent-death signal."""
    port = process.free_port()
    parent = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from zoo.runtime import process
        proc = process.start([sys.executable, {str(FAKE_ENGINE)!r}, "--port", "{port}"],
                             log_path=Path({str(tmp_path / "fg.log")!r}), foreground=True)
        print(proc.pid, flush=True)
        time.sleep(600)
    """)
    zoo = subprocess.Popen([sys.executable, "-c", parent], stdout=subprocess.PIPE, text=True)
    assert zoo.stdout is not None
    server_pid = int(zoo.stdout.readline())
    assert process.pid_alive(server_pid)
    os.kill(zoo.pid, signal.SIGKILL)
    zoo.wait()
    deadline = time.monotonic() + 10
    while process.pid_alive(server_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not process.pid_alive(server_pid)


def test_tail_returns_the_last_lines(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_text("".join(f"line {i}\n" for i in range(100)))
    assert process.tail(log, 3) == ["line 97", "line 98", "line 99"]
    assert process.tail(tmp_path / "missing.log") == []
