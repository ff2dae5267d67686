"""Stopping instances for real: only groups zoo started are signalled; zoo stop/logs/ps as a
user types them (real processes, real instances.db, the real command line)."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from runtime_helpers import FAKE_ENGINE, instance_record

from zoo.cli.app import main
from zoo.runtime import control, process, state

SLEEP = "import time; time.sleep(600)"

Spawn = Callable[..., subprocess.Popen[bytes]]


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Spawn]:
    """Start real processes in their own groups (as zoo starts servers); all ended after."""
    started: list[subprocess.Popen[bytes]] = []

    def start(*argv: str, log: Path | None = None) -> subprocess.Popen[bytes]:
        proc = process.start(
            [sys.executable, *(argv or ("-c", SLEEP))],
            log_path=log or tmp_path / f"p{len(started)}.log",
            foreground=False,
        )
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if process.group_alive(proc.pid):
            process.stop_group(proc.pid, grace=1, reap=proc)
        proc.poll()


def record(proc: subprocess.Popen[bytes], **changes: object) -> state.Instance:
    return state.add(record_unsaved(proc, **changes))


def record_unsaved(proc: subprocess.Popen[bytes], **changes: object) -> state.Instance:
    return instance_record(proc, **changes)


def wait_gone(proc: subprocess.Popen[bytes], timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return True
        time.sleep(0.02)
    return False


def zoo(*args: str) -> tuple[int, str]:
    """The real entry point in this process (errors printed as the CLI prints them)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            main(list(args))
            code = 0
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else int(exit_.code is not None)
    return code, out.getvalue()


# --- control.stop_instance: whose groups get signalled ---


def test_a_proxy_pid_now_used_by_another_program_is_left_alone(spawn: Spawn) -> None:
    """The proxy's pid got reused: the recorded start time differs, so no signal reaches it.

    (Before proxy start times were recorded, this bystander's whole group got SIGTERM.)
    """
    engine = spawn()
    bystander = spawn()
    instance = record(engine, proxy_pid=bystander.pid, proxy_pid_start="1")
    report = control.stop_instance(instance, grace=2, reap=engine)
    assert bystander.poll() is None
    assert wait_gone(engine)
    assert report.stopped == ("engine",)
    assert f"pid {bystander.pid} now belongs to another program" in report.left_alone[0]
    assert state.list_instances() == []


def test_the_proxy_zoo_started_is_stopped_with_the_engine(spawn: Spawn) -> None:
    engine, proxy = spawn(), spawn()
    instance = record(
        engine, proxy_pid=proxy.pid, proxy_pid_start=process.process_start_time(proxy.pid)
    )
    report = control.stop_instance(instance, grace=2, reap=engine, reap_proxy=proxy)
    assert report.stopped == ("proxy", "engine") and report.left_alone == ()
    assert proxy.returncode is not None and engine.returncode is not None


def test_a_record_from_an_older_zoo_stops_a_proxy_only_if_its_argv_is_zoos(spawn: Spawn) -> None:
    """No start time recorded: the process's argv must be zoo's proxy on the record's port."""
    engine = spawn()
    stranger = spawn()  # `python -c sleep`: not zoo's proxy
    looks_like_proxy = spawn("-c", SLEEP, "zoo.runtime.proxy", "--port", "8000")
    other_port = spawn("-c", SLEEP, "zoo.runtime.proxy", "--port", "8001")
    for proxy, expect_stopped in ((stranger, False), (other_port, False), (looks_like_proxy, True)):
        instance = record(engine, proxy_pid=proxy.pid, proxy_pid_start=None)
        # The engine is already gone for the later rounds: only the proxy is in question.
        report = control.stop_instance(instance, grace=2, reap=engine, reap_proxy=proxy)
        assert ("proxy" in report.stopped) is expect_stopped
        assert wait_gone(proxy, 2) is expect_stopped


def test_an_engine_pid_now_used_by_another_program_is_left_alone(spawn: Spawn) -> None:
    bystander = spawn()
    instance = record(bystander, pid_start="1")
    report = control.stop_instance(instance, grace=2)
    assert bystander.poll() is None
    assert report.stopped == () and report.left_alone
    assert state.list_instances() == []


def test_children_outliving_the_engine_are_still_stopped(spawn: Spawn, tmp_path: Path) -> None:
    """A dead leader cannot have its pid reused while its group lives: the group is ours."""
    log = tmp_path / "child.log"
    engine = spawn(str(FAKE_ENGINE), "--port", str(process.free_port()), "--mode", "child", log=log)
    deadline = time.monotonic() + 10
    while "child pid" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    child = int(log.read_text().split("child pid ")[1].split()[0])
    instance = record(engine)
    os.kill(engine.pid, signal.SIGKILL)
    engine.wait()
    assert process.pid_alive(child)
    report = control.stop_instance(instance, grace=2)
    assert report.stopped == ("engine",)
    assert not process.pid_alive(child)


def test_an_instance_whose_processes_are_all_gone_is_just_forgotten(spawn: Spawn) -> None:
    engine = spawn()
    instance = record(engine)
    engine.kill()
    engine.wait()
    report = control.stop_instance(instance)
    assert report.stopped == () and report.left_alone == ()
    assert state.list_instances() == []


# --- zoo ps / stop: starting and orphaned instances ---


def test_ps_shows_an_orphaned_starting_instance_and_stop_ends_it(spawn: Spawn) -> None:
    engine = spawn()
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone_start = process.process_start_time(gone.pid)
    gone.wait()
    orphan = record(engine, phase="starting", owner_pid=gone.pid, owner_start=gone_start)
    waiting = record(spawn(), model="other-model", phase="starting")

    code, out = zoo("ps")
    assert code == 0
    lines = {line.split()[0]: line.split()[-1] for line in out.splitlines()[1:3]}
    assert lines == {orphan.id: "orphaned", waiting.id: "starting"}
    assert "orphaned: still starting, but the zoo that started it is gone" in out

    code, out = zoo("stop", orphan.id)
    assert code == 0
    assert f"Stopped {orphan.id} (tiny-model) (its zoo had gone while it was starting)." in out
    assert wait_gone(engine)
    assert [i.id for i in state.list_instances()] == [waiting.id]


def test_ps_explains_failed_and_dead(spawn: Spawn) -> None:
    failed_engine, dead_engine = spawn(), spawn()
    record(failed_engine, phase="starting")
    record(dead_engine, model="other-model")
    for proc in (failed_engine, dead_engine):
        proc.kill()
        proc.wait()
    code, out = zoo("ps")
    assert code == 0
    assert "failed: exited before it was ready" in out
    assert "dead: was ready, then exited" in out


# --- zoo stop as a user types it ---


def test_stop_needs_a_name_or_all_and_an_empty_name_is_a_usage_error(spawn: Spawn) -> None:
    engine = spawn()
    record(engine)
    for args in (("stop",), ("stop", ""), ("stop", " "), ("stop", "tiny-model", "--all")):
        code, out = zoo(*args)
        assert code == 2, (args, out)
    assert engine.poll() is None and len(state.list_instances()) == 1


def test_a_name_several_instances_share_lists_them_and_stops_none(spawn: Spawn) -> None:
    first, second = spawn(), spawn()
    a = record(first)
    b = record(second)
    code, out = zoo("stop", "tiny-model")
    assert code == 2
    assert "'tiny-model' names 2 instances" in out and a.id in out and b.id in out
    assert first.poll() is None and second.poll() is None

    code, out = zoo("stop", a.id, "no-such-instance")
    assert code == 1 and "no instance 'no-such-instance'" in out
    assert first.poll() is None  # every name is checked before anything is stopped

    code, out = zoo("stop", a.id, b.id[:6])
    assert code == 0
    assert f"Stopped {a.id}" in out and f"Stopped {b.id}" in out
    assert wait_gone(first) and wait_gone(second)


def test_stop_by_model_name_and_all(spawn: Spawn) -> None:
    one, two, three = spawn(), spawn(), spawn()
    named = record(one, model="model-a", served_name="model-a")
    record(two, model="model-b", served_name="served-b")
    record(three, model="model-c", served_name="model-c")
    code, out = zoo("stop", "model-a")
    assert code == 0 and f"Stopped {named.id} (model-a)." in out
    code, out = zoo("stop", "served-b")  # the served name works too
    assert code == 0 and "(model-b)" in out
    code, out = zoo("stop", "--all")
    assert code == 0 and "(model-c)" in out
    assert all(wait_gone(p) for p in (one, two, three))
    assert zoo("stop", "--all") == (0, "No instances to stop.\n")


def test_stop_of_a_reused_pid_forgets_the_record_and_says_so(spawn: Spawn) -> None:
    bystander = spawn()
    instance = record(bystander, pid_start="1")
    code, out = zoo("stop", instance.id)
    assert code == 0
    assert f"Forgot {instance.id}" in out and "now belongs to another program" in out
    assert bystander.poll() is None


# --- zoo logs ---


def _logged_instance(spawn: Spawn, tmp_path: Path) -> tuple[state.Instance, Path]:
    log = tmp_path / "engine.log"
    log.write_text("".join(f"line {i}\n" for i in range(10)))
    engine = spawn()
    return record(engine, log_path=str(log)), log


def test_logs_lines(spawn: Spawn, tmp_path: Path) -> None:
    instance, _ = _logged_instance(spawn, tmp_path)
    assert zoo("logs", instance.id, "-n", "2") == (0, "line 8\nline 9\n")
    assert zoo("logs", instance.id, "-n", "0") == (0, "")
    code, out = zoo("logs", instance.id, "-n", "-1")
    assert code == 2 and "--lines -1" in out


def _follow(instance_id: str, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "zoo", "logs", instance_id, "-f", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _read_until(proc: subprocess.Popen[bytes], text: str, log: Path) -> list[str]:
    """Append ``text`` to the log until the follower prints it (it may not be reading yet)."""
    import select

    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    printed = b""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with open(log, "a") as handle:
            handle.write(text + "\n")
        while select.select([fd], [], [], 0.3)[0]:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            printed += chunk
        lines = printed.decode().splitlines()
        if text in lines:
            return lines
    raise AssertionError(f"the follower never printed {text!r}; it printed {printed!r}")


def test_logs_n_0_follow_prints_only_new_lines(spawn: Spawn, tmp_path: Path) -> None:
    instance, log = _logged_instance(spawn, tmp_path)
    follower = _follow(instance.id, "-n", "0")
    try:
        seen = _read_until(follower, "a new line", log)
        assert not any(line.startswith("line ") for line in seen)
    finally:
        follower.kill()
        follower.wait()


def test_a_log_deleted_under_logs_follow_is_one_line(spawn: Spawn, tmp_path: Path) -> None:
    instance, log = _logged_instance(spawn, tmp_path)
    follower = _follow(instance.id)
    _read_until(follower, "still here", log)
    log.unlink()
    _, err = follower.communicate(timeout=20)
    assert follower.returncode == 1
    assert err.decode() == f"zoo: error: the log {log} was deleted while it was followed\n"


def test_logs_of_a_missing_log_file_is_one_line(spawn: Spawn, tmp_path: Path) -> None:
    instance = record(spawn(), log_path=str(tmp_path / "gone.log"))
    for extra in ((), ("-f",)):
        done = subprocess.run(
            [sys.executable, "-m", "zoo", "logs", instance.id, *extra],
            capture_output=True,
            text=True,
        )
        assert done.returncode == 1
        assert done.stderr == (
            f"zoo: error: the log of {instance.id} (tiny-model) is gone: "
            f"{tmp_path / 'gone.log'} does not exist\n"
        )


# --- control.Startup: the record between start and readiness ---


def _fake_server(
    spawn: Spawn, tmp_path: Path, mode: str = "ok"
) -> tuple[subprocess.Popen[bytes], int]:
    port = process.free_port()
    log = tmp_path / "server.log"
    return spawn(str(FAKE_ENGINE), "--port", str(port), "--mode", mode, log=log), port


def _wait(port: int, server: subprocess.Popen[bytes], tmp_path: Path, timeout: float = 20) -> None:
    process.wait_ready(
        f"http://127.0.0.1:{port}",
        health_path="/health",
        model="m",
        api_key=None,
        alive=lambda: server.poll() is None,
        timeout=timeout,
        log_path=tmp_path / "server.log",
        what="the fake server",
    )


@pytest.mark.parametrize("detach", [False, True])
def test_a_startup_is_recorded_as_starting_then_running(
    spawn: Spawn, tmp_path: Path, detach: bool
) -> None:
    server, port = _fake_server(spawn, tmp_path, "late")
    with control.Startup(record_unsaved(server), server, detach=detach) as startup:
        assert [i.status for i in state.list_instances()] == ["starting"]
        _wait(port, server, tmp_path)
        proxy = spawn()
        startup.add_proxy(proxy)
        listed = state.get(startup.instance.id)
        assert listed is not None and listed.proxy_pid == proxy.pid and listed.status == "starting"
        instance = startup.ready(engine_port=1234)
    assert instance.status == "running" and instance.phase == "running"
    [listed] = state.list_instances()
    assert listed.status == "running" and listed.engine_port == 1234
    assert server.poll() is None and proxy.poll() is None  # ready: nothing stopped
    report = control.stop_instance(listed, grace=2, reap=server, reap_proxy=proxy)
    assert report.stopped == ("proxy", "engine")


@pytest.mark.parametrize("failure", [ValueError, KeyboardInterrupt])
def test_a_failed_startup_stops_everything_and_forgets_it(
    spawn: Spawn, tmp_path: Path, failure: type[BaseException]
) -> None:
    server, port = _fake_server(spawn, tmp_path)
    # The failure is raised last, inside the startup: what is checked is what Startup does then.
    with pytest.raises(failure), control.Startup(record_unsaved(server), server, detach=True) as s:  # noqa: PT012
        _wait(port, server, tmp_path)
        proxy = spawn()
        s.add_proxy(proxy)
        raise failure("the proxy never answered")
    assert server.returncode is not None and proxy.returncode is not None
    assert state.list_instances() == []


def test_a_server_never_ready_is_stopped_and_forgotten(spawn: Spawn, tmp_path: Path) -> None:
    server, port = _fake_server(spawn, tmp_path, "unhealthy")
    with (
        pytest.raises(process.ServerError, match="not ready"),
        control.Startup(record_unsaved(server), server, detach=False),
    ):
        _wait(port, server, tmp_path, timeout=1)
    assert server.returncode is not None and state.list_instances() == []


def test_a_startup_stopped_by_zoo_stop_says_so(spawn: Spawn, tmp_path: Path) -> None:
    server, _ = _fake_server(spawn, tmp_path)
    # zoo stop runs inside the startup; ready() is what must raise, after it.
    with (  # noqa: PT012
        pytest.raises(process.ServerError, match=r"was stopped \(zoo stop\) while it was starting"),
        control.Startup(record_unsaved(server), server, detach=False) as startup,
    ):
        code, out = zoo("stop", startup.instance.id)
        assert code == 0 and "while it was starting" in out
        startup.ready()
    assert server.returncode is not None


def test_a_detached_launch_killed_before_readiness_leaves_no_server(tmp_path: Path) -> None:
    """kill -9 of the zoo that waits: the guard stops the server; ps says it failed."""
    port = process.free_port()
    script = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from zoo.runtime import control, process, state
        server = process.start([sys.executable, {str(FAKE_ENGINE)!r}, "--port", "{port}",
                                "--mode", "unhealthy"],
                               log_path=Path({str(tmp_path / "s.log")!r}), foreground=False)
        record = state.Instance(id="killed01", model="m", engine="fake", quantization="none",
            format="pytorch", served_name="m", host="127.0.0.1", port={port}, pid=server.pid,
            pid_start=process.process_start_time(server.pid), pgid=server.pid,
            log_path={str(tmp_path / "s.log")!r}, started_at=time.time(), detached=True,
            api_key=False)
        with control.Startup(record, server, detach=True):
            print(server.pid, flush=True)
            time.sleep(600)
    """)
    launcher = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert launcher.stdout is not None
    server_pid = int(launcher.stdout.readline())
    assert [(i.id, i.status) for i in state.list_instances()] == [("killed01", "starting")]
    os.kill(launcher.pid, signal.SIGKILL)
    launcher.wait()
    deadline = time.monotonic() + 15
    while process.pid_alive(server_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not process.pid_alive(server_pid)
    assert [i.status for i in state.list_instances()] == ["failed"]
    code, out = zoo("stop", "killed01")
    assert code == 0 and "already exited before it was ready" in out
    assert state.list_instances() == []


def test_interrupts_wait_until_the_process_is_owned() -> None:
    """Ctrl-C or SIGTERM between a start and Startup owning the process is held back, then
    raised: the block (the start and the record) always completes first."""
    reached = []
    previous = signal.getsignal(signal.SIGTERM)
    for sig in (signal.SIGINT, signal.SIGTERM):
        with pytest.raises(KeyboardInterrupt), control.interrupts_deferred():  # noqa: PT012
            os.kill(os.getpid(), sig)
            time.sleep(0.05)  # the handler has run by now; a plain one would have raised
            reached.append(sig)
    assert reached == [signal.SIGINT, signal.SIGTERM]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert signal.getsignal(signal.SIGTERM) == previous
    with control.interrupts_deferred():
        pass  # nothing caught: nothing raised


def test_a_proxy_whose_guard_fails_is_stopped_with_the_server(
    spawn: Spawn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, _ = _fake_server(spawn, tmp_path)
    proxy = spawn()

    real_guard = process.guard

    def no_watchdog_for_the_proxy(popen: subprocess.Popen[bytes]) -> process.Guard:
        if popen is proxy:
            raise process.ServerError("could not start zoo's start-up watchdog")
        return real_guard(popen)

    monkeypatch.setattr(process, "guard", no_watchdog_for_the_proxy)
    with (
        pytest.raises(process.ServerError, match="watchdog"),
        control.Startup(record_unsaved(server), server, detach=True) as startup,
    ):
        startup.add_proxy(proxy)
    assert wait_gone(proxy) and wait_gone(server)
    assert state.list_instances() == []
