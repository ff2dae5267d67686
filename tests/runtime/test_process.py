"""Server processes for real: readiness, faults with log lines, stops that reach the group."""

from __future__ import annotations

import os
import re
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
        assert re.search(r"not ready after [12]\.\d s", str(caught.value))
        assert "/health answered 503" in str(caught.value)
        # The log's last lines come along (the fake engine logs each probe it answered).
        assert f"last lines of {log}" in str(caught.value)
        assert 'request: "GET /health HTTP/1.1" 503' in str(caught.value)
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


def test_tail_of_zero_lines_is_nothing(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_text("a\nb\n")
    assert process.tail(log, 0) == []
    assert process.tail(log, -3) == []


def test_follow_watching_the_path_reports_a_deleted_log(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_text("first\n")
    chunks = process.follow(log, lambda: True, interval=0.01, watch_path=True)
    assert next(chunks) == b"first\n"
    log.unlink()
    with pytest.raises(process.LogGone, match="was deleted while it was followed"):
        next(chunks)


def test_follow_without_watching_reads_a_deleted_log_to_its_end(tmp_path: Path) -> None:
    """zoo's own foreground echo keeps reading the open file whatever happens to its name."""
    log = tmp_path / "x.log"
    log.write_text("first\n")
    rounds = iter(range(3))
    chunks = process.follow(log, lambda: next(rounds, None) is not None, interval=0.01)
    assert next(chunks) == b"first\n"
    log.unlink()
    assert list(chunks) == []


def test_follow_of_a_missing_log_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(process.LogGone, match="cannot read the log"):
        next(process.follow(tmp_path / "none.log", lambda: True))


def test_waiting_shows_progress_and_the_timeout_says_how_long_and_what_to_do(
    tmp_path: Path,
) -> None:
    port = process.free_port()
    proc, log = _start(tmp_path, "unhealthy", port)
    seen: list[tuple[float, str | None]] = []
    try:
        with pytest.raises(ServerError) as caught:
            process.wait_ready(
                f"http://127.0.0.1:{port}",
                health_path="/health",
                model=None,
                api_key=None,
                alive=lambda: proc.poll() is None,
                timeout=2.0,
                log_path=log,
                what="the fake server",
                on_wait=lambda elapsed, line: seen.append((elapsed, line)),
                wait_every=0.4,
            )
    finally:
        process.stop_group(proc.pid, reap=proc)
    message = str(caught.value)
    assert "not ready after 2." in message
    assert "--ready-timeout" in message
    assert "/health answered 503" in message and 'request: "GET /health' in message
    assert len(seen) >= 2
    assert [round(e, 1) for e, _ in seen] == sorted(round(e, 1) for e, _ in seen)
    assert seen[0][0] >= 0.4
    # The log's last line at the time: the fake engine logs each probe as a request.
    assert seen[-1][1] is not None and ("request:" in seen[-1][1] or "listening" in seen[-1][1])


def test_progress_stops_once_ready(tmp_path: Path) -> None:
    port = process.free_port()
    proc, log = _start(tmp_path, "ok", port)
    seen: list[float] = []
    try:
        process.wait_ready(
            f"http://127.0.0.1:{port}",
            health_path="/health",
            model="m",
            api_key=None,
            alive=lambda: proc.poll() is None,
            timeout=20,
            log_path=log,
            what="fake",
            on_wait=lambda elapsed, _line: seen.append(elapsed),
            wait_every=0.2,
        )
        count = len(seen)
        time.sleep(0.6)
        assert len(seen) == count
    finally:
        process.stop_group(proc.pid, reap=proc)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "0.0.0.0"])
def test_local_hosts_can_be_bound(host: str) -> None:
    process.check_bind_host(host)


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("no-such-host.invalid", "does not resolve"),
        ("192.0.2.1", "is not an address of this machine"),  # TEST-NET-1: never local
        ("", "is not an address"),
        (" 127.0.0.1", "is not an address"),
    ],
)
def test_hosts_that_are_not_this_machines_are_usage_errors(host: str, expected: str) -> None:
    from zoo.errors import UsageError

    with pytest.raises(UsageError, match=expected) as caught:
        process.check_bind_host(host)
    assert "\n" not in str(caught.value)
    assert "127.0.0.1" in str(caught.value)  # the hint names an address that works


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("", "is empty"),
        ("secret ", "ends with whitespace"),
        ("secret\n", "ends with a newline"),
        (" secret", "starts with whitespace"),
        ("sec\nret", "a newline at character 4"),
        ("sec ret", "whitespace at character 4"),
        ("sec\x00ret", "control character"),
        ("sec\x7fret", "control character"),
        ("sécret", "non-ASCII"),
        ("a,b", "comma"),
        ("k" * 2000, "at most"),
    ],
)
def test_api_keys_an_engine_would_reject_are_refused(key: str, expected: str) -> None:
    from zoo.errors import UsageError

    with pytest.raises(UsageError, match=expected) as caught:
        process.check_api_key(key)
    if key.strip():
        assert key.strip() not in str(caught.value)  # the key itself is never printed


@pytest.mark.parametrize("key", ["sk-abc123", "a" * 64, "A-Za-z0-9._~+/=:!"])
def test_ordinary_api_keys_pass(key: str) -> None:
    process.check_api_key(key)


def _detached_launch_script(tmp_path: Path, port: int, *, ready: bool) -> str:
    """A stand-in for `zoo launch --detach`: start, guard, (maybe) keep, print pid, wait."""
    return textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from zoo.runtime import process
        proc = process.start([sys.executable, {str(FAKE_ENGINE)!r}, "--port", "{port}"],
                             log_path=Path({str(tmp_path / "d.log")!r}), foreground=False)
        guard = process.guard(proc)
        if {ready!r}:
            guard.keep()
        print(proc.pid, flush=True)
        time.sleep(600)
    """)


def _run_and_kill(script: str) -> int:
    zoo = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert zoo.stdout is not None
    server_pid = int(zoo.stdout.readline())
    assert process.pid_alive(server_pid)
    os.kill(zoo.pid, signal.SIGKILL)
    zoo.wait()
    return server_pid


def _gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while process.pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not process.pid_alive(pid)


@pytest.mark.skipif(sys.platform != "linux", reason="uses /proc")
def test_a_detached_server_dies_with_a_zoo_killed_before_readiness(tmp_path: Path) -> None:
    server_pid = _run_and_kill(_detached_launch_script(tmp_path, process.free_port(), ready=False))
    assert _gone_within(server_pid, 15)


@pytest.mark.skipif(sys.platform != "linux", reason="uses /proc")
def test_a_detached_server_kept_after_readiness_outlives_zoo(tmp_path: Path) -> None:
    server_pid = _run_and_kill(_detached_launch_script(tmp_path, process.free_port(), ready=True))
    try:
        assert not _gone_within(server_pid, 1.0)
    finally:
        process.stop_group(server_pid, grace=2)
    assert not process.pid_alive(server_pid)


def test_the_guard_leaves_a_reused_pid_alone(tmp_path: Path) -> None:
    """The watchdog checks the leader's start time before it signals anything."""
    proc = process.start(
        [sys.executable, "-c", "import time; time.sleep(600)"],
        log_path=tmp_path / "g.log",
        foreground=False,
    )
    try:
        watchdog = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", process._WATCHDOG, str(proc.pid), "1"],
            stdin=subprocess.DEVNULL,  # end of file at once: "zoo is gone"
        )
        assert watchdog.wait(timeout=10) == 0
        assert proc.poll() is None
    finally:
        process.stop_group(proc.pid, grace=1, reap=proc)


def test_closing_the_guard_after_clean_up_returns_at_once(tmp_path: Path) -> None:
    proc = process.start(
        [sys.executable, "-c", "import time; time.sleep(600)"],
        log_path=tmp_path / "g.log",
        foreground=False,
    )
    with process.guard(proc):
        process.stop_group(proc.pid, grace=1, reap=proc)
        started = time.monotonic()
    assert time.monotonic() - started < 2.5
