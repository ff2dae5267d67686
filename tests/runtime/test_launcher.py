"""start_instance against a real server process: records, ports, proxy, faults, stops."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from runtime_helpers import FakeEngine, make_plan, start

from zoo.engine import LaunchContext, ServerCommand
from zoo.errors import UsageError
from zoo.hubs.base import FetchResult
from zoo.plan import LaunchOptions
from zoo.runtime import launcher, process, state
from zoo.runtime.invocation import ModelFiles, invocation
from zoo.runtime.process import ServerError


def _start(engine: FakeEngine, fetched: FetchResult, **options: Any) -> launcher.Running:
    return start(engine, fetched, **options)


def _chat(
    base: str, key: str | None = None, model: str = "tiny-model", stream: bool = False
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": stream}
    return httpx.post(
        f"{base}/chat/completions", json=body, headers=headers, timeout=10, trust_env=False
    )


def test_detached_instance_is_recorded_running_and_stops_clean(fetched: FetchResult) -> None:
    engine = FakeEngine()
    running = _start(engine, fetched)
    inst = running.instance
    assert [i.id for i in state.list_instances()] == [inst.id]
    assert state.list_instances()[0].status == "running"
    assert inst.served_name == "tiny-model" and inst.proxy_pid is None
    # The engine got the family name and the folder of the fetched files.
    assert engine.contexts[-1].served_name == "tiny-model"
    assert engine.contexts[-1].model_path == str(fetched.root)
    assert _chat(inst.endpoint).status_code == 200
    launcher.stop(state.find(inst.id)[0], reap=running.server)
    assert state.list_instances() == []
    assert not process.pid_alive(inst.pid)


def test_ps_shows_a_killed_server_as_dead(fetched: FetchResult) -> None:
    running = _start(FakeEngine(), fetched)
    os.kill(running.instance.pid, signal.SIGKILL)
    assert running.server is not None
    running.server.wait()
    [inst] = state.list_instances()
    assert inst.status == "dead"
    launcher.stop(inst)
    assert state.list_instances() == []


def test_a_port_in_use_is_refused_before_starting(fetched: FetchResult) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(UsageError, match=f"port {port} on 127.0.0.1 is already in use"):
            _start(FakeEngine(), fetched, port=port)


def test_a_chosen_free_port_is_used(fetched: FetchResult) -> None:
    port = process.free_port()
    running = _start(FakeEngine(), fetched, port=port)
    try:
        assert running.instance.port == port
        assert _chat(f"http://127.0.0.1:{port}/v1").status_code == 200
    finally:
        launcher.stop(running.instance, reap=running.server)


def test_engine_that_exits_fails_launch_with_log_and_leaves_nothing(fetched: FetchResult) -> None:
    with pytest.raises(ServerError, match="cannot load model weights") as caught:
        _start(FakeEngine("exit"), fetched)
    assert caught.value.exit_code != 0
    assert state.list_instances() == []


@pytest.mark.parametrize("what", ["engine", "proxy"])
def test_a_sigterm_just_after_a_process_starts_leaves_nothing(
    fetched: FetchResult, monkeypatch: pytest.MonkeyPatch, what: str
) -> None:
    """The SIGTERM arrives the moment process.start returns, before Startup owns the engine
    (or records the proxy): it is held until they are owned, then everything is stopped."""
    real_start = process.start
    started: list[subprocess.Popen[bytes]] = []

    def start_then_sigterm(argv: list[str], **options: Any) -> subprocess.Popen[bytes]:
        popen = real_start(argv, **options)
        started.append(popen)
        if (what == "proxy") == ("zoo.serve.single" in argv):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.1)  # the handler runs here: an undeferred one raises in this sleep
        return popen

    monkeypatch.setattr(process, "start", start_then_sigterm)
    engine = FakeEngine(api_key_enforced=False)  # with a key: zoo's proxy in front
    try:
        with pytest.raises(KeyboardInterrupt):
            _start(engine, fetched, api_key="k-1")
        assert len(started) == (2 if what == "proxy" else 1)
        for popen in started:
            assert popen.wait(timeout=15) is not None
        assert state.list_instances() == []
    finally:
        for popen in started:
            if process.group_alive(popen.pid):
                process.stop_group(popen.pid, grace=1, reap=popen)


def test_never_ready_engine_is_stopped_after_the_timeout(fetched: FetchResult) -> None:
    started = time.monotonic()
    with pytest.raises(ServerError, match="not ready after"):
        _start(FakeEngine("unhealthy"), fetched, ready_timeout=1.0)
    assert time.monotonic() - started < 15
    assert state.list_instances() == []


def test_proxy_gives_a_keyless_engine_a_key_and_the_served_name(fetched: FetchResult) -> None:
    # Like transformers serve: no key check, and it wants the model folder in requests.
    engine = FakeEngine(request_model=str(fetched.root), api_key_enforced=False)
    running = _start(engine, fetched, api_key="sekret", served_name="my-model")
    inst = running.instance
    try:
        assert inst.proxy_pid is not None and inst.engine_port != inst.port
        # The engine itself got no key and listens on loopback only.
        assert engine.contexts[-1].api_key is None and engine.contexts[-1].host == "127.0.0.1"
        assert _chat(inst.endpoint, model="my-model").status_code == 401
        assert _chat(inst.endpoint, key="wrong", model="my-model").status_code == 401
        answer = _chat(inst.endpoint, key="sekret", model="my-model")
        assert answer.status_code == 200
        seen = answer.json()["choices"][0]["message"]["content"]
        assert f'"model": "{fetched.root}"' in seen  # rewritten for the engine
        assert answer.json()["model"] == "my-model"  # and back for the client
        models = httpx.get(
            f"{inst.endpoint}/models", trust_env=False, headers={"Authorization": "Bearer sekret"}
        ).json()
        assert [m["id"] for m in models["data"]] == ["my-model"]
    finally:
        launcher.stop(inst, reap=running.server)
    assert not process.pid_alive(inst.proxy_pid)


def test_engine_with_its_own_key_check_gets_no_proxy(fetched: FetchResult) -> None:
    engine = FakeEngine()
    running = _start(engine, fetched, api_key="k")
    try:
        assert running.instance.proxy_pid is None
        assert engine.contexts[-1].api_key == "k"
        assert running.instance.api_key is True
    finally:
        launcher.stop(running.instance, reap=running.server)


class KeyInArgvEngine(FakeEngine):
    """Says it checks the key, and puts it on its command line (where `ps` shows it)."""

    def server_command(self, ctx: LaunchContext) -> ServerCommand:
        command = super().server_command(ctx)
        key = ("--api-key", ctx.api_key) if ctx.api_key else ()
        return replace(command, argv=(*command.argv, *key))


def _cmdline(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")


def _environ(pid: int) -> dict[str, str]:
    pairs = Path(f"/proc/{pid}/environ").read_bytes().decode().split("\0")
    return dict(pair.split("=", 1) for pair in pairs if "=" in pair)


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="reads /proc")
def test_an_engine_that_puts_the_key_in_its_argv_never_gets_it(fetched: FetchResult) -> None:
    engine = KeyInArgvEngine()
    running = _start(engine, fetched, api_key="sekret-9")
    inst = running.instance
    try:
        # Run without the key, behind zoo's proxy, which checks it instead.
        assert engine.contexts[-1].api_key is None and inst.proxy_pid is not None
        assert not any("sekret-9" in arg for arg in _cmdline(inst.pid))
        assert _chat(inst.endpoint).status_code == 401
        assert _chat(inst.endpoint, key="sekret-9").status_code == 200
    finally:
        launcher.stop(inst, reap=running.server)


def test_an_engine_gets_the_key_only_if_it_checks_it(fetched: FetchResult) -> None:
    plan = make_plan(options=LaunchOptions(api_key="k-7"))
    files = ModelFiles(str(fetched.root))
    for engine, given, proxied in (
        (FakeEngine(), "k-7", False),
        (FakeEngine(api_key_enforced=False), None, True),  # zoo's proxy checks it instead
    ):
        call = invocation(plan, engine, files, port=8000)
        assert call.proxied is proxied and call.engine_api_key == given
        # The command that starts is the one built with what the engine is given.
        assert engine.contexts[-1].api_key == given


def test_the_key_is_in_no_repr(fetched: FetchResult) -> None:
    """A traceback, a debug print or a log of these objects never shows the key."""

    class KeyInEnvEngine(FakeEngine):
        def server_command(self, ctx: LaunchContext) -> ServerCommand:
            return replace(super().server_command(ctx), env={"FAKE_KEY": ctx.api_key or ""})

    plan = make_plan(options=LaunchOptions(api_key="sekret-3"))
    call = invocation(plan, KeyInEnvEngine(), ModelFiles(str(fetched.root)), port=8000)
    assert call.engine_api_key == "sekret-3" and call.command.env["FAKE_KEY"] == "sekret-3"
    for shown in (call, call.context, call.command, plan):
        assert "sekret-3" not in repr(shown)


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="reads /proc")
def test_the_server_gets_exactly_the_invocations_argv_and_env(fetched: FetchResult) -> None:
    """The argv and environment the dry run shows (from invocation) are what the process
    has, the key hidden in what is shown and present only in the environment."""

    class KeyInEnvEngine(FakeEngine):
        def server_command(self, ctx: LaunchContext) -> ServerCommand:
            command = super().server_command(ctx)
            return replace(command, env={"FAKE_KEY": ctx.api_key or ""})

    engine = KeyInEnvEngine()
    running = _start(engine, fetched, api_key="k-42")
    inst = running.instance
    try:
        call = running.invocation
        assert call is not None and not call.proxied
        assert _cmdline(inst.pid)[: len(call.command.argv)] == list(call.shown_argv())
        environ = _environ(inst.pid)
        shown = dict(call.shown_env())
        assert shown["FAKE_KEY"] == "***" and environ["FAKE_KEY"] == "k-42"
        assert shown["HF_HUB_OFFLINE"] == "1"
        assert {k: v for k, v in environ.items() if k in shown and k != "FAKE_KEY"} == {
            k: v for k, v in shown.items() if k != "FAKE_KEY"
        }
    finally:
        launcher.stop(inst, reap=running.server)


def test_banner_has_endpoint_model_and_a_curl(fetched: FetchResult) -> None:
    running = _start(FakeEngine(), fetched, api_key="k")
    try:
        text = launcher.banner(running)
    finally:
        launcher.stop(running.instance, reap=running.server)
    assert f"endpoint: http://127.0.0.1:{running.instance.port}/v1" in text
    assert "model:    tiny-model" in text
    assert "curl http://127.0.0.1:" in text and "$ZOO_API_KEY" in text
    assert "k'" not in text  # the key itself is never printed


def test_extra_args_and_options_reach_the_engine(fetched: FetchResult) -> None:
    engine = FakeEngine()
    running = _start(
        engine, fetched, context_length=512, dtype="float32", extra_args=("--n_gpu_layers", "20")
    )
    launcher.stop(running.instance, reap=running.server)
    assert "extra args ['--n_gpu_layers', '20']" in Path(running.instance.log_path).read_text()
    ctx = engine.contexts[-1]
    assert (ctx.context_length, ctx.dtype, ctx.extra_args) == (
        512,
        "float32",
        ("--n_gpu_layers", "20"),
    )


def test_logs_and_state_are_private_to_the_user(fetched: FetchResult) -> None:
    running = _start(FakeEngine(), fetched)
    launcher.stop(running.instance, reap=running.server)
    log = Path(running.instance.log_path)
    assert log.stat().st_mode & 0o077 == 0
    assert log.parent.stat().st_mode & 0o077 == 0
    assert state.db_path().parent.stat().st_mode & 0o077 == 0


def test_stop_leaves_a_reused_pid_alone(fetched: FetchResult) -> None:
    """A record whose pid now belongs to another process (pid reuse) must not kill it."""
    import dataclasses
    import subprocess

    running = _start(FakeEngine(), fetched)
    launcher.stop(running.instance, reap=running.server)
    bystander = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True
    )
    try:
        stale = dataclasses.replace(
            running.instance, id="stale", pid=bystander.pid, pgid=bystander.pid, pid_start="1"
        )
        state.add(stale)
        [listed] = state.list_instances()
        assert listed.status == "dead"  # not the process we started
        launcher.stop(listed)
        assert bystander.poll() is None and state.list_instances() == []
    finally:
        bystander.kill()
        bystander.wait()


def test_serving_beyond_loopback_without_a_key_warns(fetched: FetchResult) -> None:
    for host, warned in (("0.0.0.0", True), ("127.0.0.1", False)):
        said: list[str] = []
        running = start(FakeEngine(), fetched, host=host, say=said.append)
        launcher.stop(running.instance, reap=running.server)
        assert any("without --api-key" in line for line in said) is warned


# --- serve_foreground: a foreground instance never outlives it ---


def _foreground(fetched: FetchResult) -> launcher.Running:
    running = _start(FakeEngine(), fetched, detach=False)
    assert running.server is not None and state.list_instances() != []
    return running


def test_a_foreground_instance_stops_on_sigterm(fetched: FetchResult) -> None:
    running = _foreground(fetched)
    said: list[str] = []
    timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGTERM))
    timer.start()
    try:
        stopped = launcher.serve_foreground(running, out=said.append, announce=True)
    finally:
        timer.cancel()
    assert stopped.status == "stopped" and said[-1] == "Stopped."
    assert "is ready after" in said[0]  # the banner, printed by serve_foreground
    assert running.server is not None and running.server.returncode is not None
    assert state.list_instances() == []


def test_a_foreground_instance_whose_stdout_is_closed_is_stopped(fetched: FetchResult) -> None:
    running = _foreground(fetched)

    def closed(line: str) -> None:
        raise BrokenPipeError(32, "Broken pipe")

    with pytest.raises(BrokenPipeError):
        launcher.serve_foreground(running, out=closed, announce=True)
    assert running.server is not None and running.server.returncode is not None
    assert state.list_instances() == []


def test_a_foreground_server_that_exits_is_an_error_and_forgotten(fetched: FetchResult) -> None:
    running = _foreground(fetched)
    assert running.server is not None
    timer = threading.Timer(0.3, running.server.kill)
    timer.start()
    with pytest.raises(ServerError, match="exited with status"):
        launcher.serve_foreground(running, out=lambda line: None)
    assert state.list_instances() == []
