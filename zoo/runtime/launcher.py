"""Start a planned engine server: its process, readiness, the proxy, the instance record.

``start_instance(plan, engine, files)`` is what ``zoo.launch`` calls once the files are
downloaded and the environment is built: the command comes from ``zoo.runtime.invocation``
(the same function the dry run uses), so what runs is what the plan printed. Foreground
streams the engine's log and stops it cleanly on Ctrl-C or SIGTERM; detached instances
return once the server answered a real completion. This module looks up no plugin and
imports no hub: it is given the engine and the files.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from zoo import kinds
from zoo.errors import UsageError
from zoo.runtime import control, process, state
from zoo.runtime.invocation import Invocation, ModelFiles, invocation
from zoo.runtime.process import ServerError

if TYPE_CHECKING:
    from zoo.catalog.model import Family
    from zoo.engine import Engine
    from zoo.plan import Plan

Say = Callable[[str], None]
DEFAULT_READY_TIMEOUT = 900.0


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@dataclass
class Running:
    """A started, ready instance and (in this process) its server and proxy processes."""

    instance: state.Instance
    server: subprocess.Popen[bytes] | None
    proxy: subprocess.Popen[bytes] | None
    ready_s: float
    api_key: str | None = field(repr=False)
    # Foreground: the thread copying the log to the terminal since the start, kept running
    # into serve_foreground so no line falls between the two.
    log_echo: _LogEcho | None = None
    invocation: Invocation | None = None
    # Watchdogs tying the server to this process (``tied``): closed after it is stopped.
    guards: tuple[process.Guard, ...] = ()

    @property
    def endpoint(self) -> str:
        return self.instance.endpoint


def check_port(host: str, port: int | None) -> None:
    """Refuse a port that is taken, before anything is downloaded or started."""
    if port and process.port_in_use(host, port):
        raise UsageError(
            f"port {port} on {host} is already in use",
            hint="choose another with --port, or leave --port out for a free one",
        )


def start_instance(
    plan: Plan,
    engine: Engine,
    files: ModelFiles,
    *,
    say: Say = _stderr,
    echo_log: bool = False,
    tied: bool = False,
    pooling: bool = True,
) -> Running:
    """Start the plan's engine server on ``files`` and wait until it is ready.

    Records the instance; on any failure everything started is stopped again and a
    ServerError carries the last lines of the log. ``tied=True`` (``zoo serve``'s models): the
    server lives only as long as this process, kill -9 included (``Running.guards`` are closed
    once it is stopped). ``pooling=False``: no proxy only to shape embeddings and rerank
    answers (``zoo serve`` does that itself; ``zoo.runtime.invocation``).
    """
    options = plan.options
    detach = options.detach
    public_host = options.host
    check_port(public_host, options.port)
    if not options.api_key and not process.is_loopback(public_host):
        say(
            f"warning: serving on {public_host} without --api-key: anyone who can reach "
            "this machine can use the model"
        )
    public_port = options.port or process.free_port(public_host)
    # The private port is taken only if a proxy stands in front (the invocation decides).
    private_port = process.free_port("127.0.0.1")
    call = invocation(
        plan, engine, files, port=public_port, engine_port=private_port, pooling=pooling
    )
    command = call.command
    api_key = call.api_key
    env = dict(call.env)
    if call.runner is not None:
        from zoo.runtime.envs import runner_path

        runner_path(engine)  # links the plugin into the folder the invocation put on the path
    instance_id = state.new_id()
    log_path = state.new_log(instance_id)
    follower = _LogEcho(log_path) if echo_log else None
    say(f"Starting {engine.name}: {' '.join(call.shown_argv())}")

    def waiting(elapsed: float, line: str | None) -> None:
        say(
            f"waiting for {engine.name} ({process.seconds_text(elapsed)}): "
            f"{line or 'no output yet'}"
        )

    started = time.monotonic()
    proxy: subprocess.Popen[bytes] | None = None
    try:
        # A SIGTERM while starting cleans up like Ctrl-C: nothing is left half-started. From
        # a process's start until Startup owns it, interrupts wait (no window to leak it).
        with _sigterm_interrupts(), contextlib.ExitStack() as owned:
            with control.interrupts_deferred():
                server = process.start(
                    command.argv, log_path=log_path, env=env, foreground=not detach
                )
                record = state.Instance(
                    id=instance_id,
                    model=plan.family.name,
                    kind=plan.family.kind,
                    engine=engine.name,
                    quantization=plan.quantization,
                    format=plan.spec.format,
                    size=plan.spec.size,
                    served_name=call.context.served_name,
                    host=public_host,
                    port=public_port,
                    pid=server.pid,
                    pid_start=process.process_start_time(server.pid),
                    pgid=server.pid,
                    proxy_pid=None,
                    engine_port=call.engine_port if call.proxied else None,
                    log_path=str(log_path),
                    started_at=time.time(),
                    detached=detach,
                    api_key=bool(api_key),
                )
                startup = owned.enter_context(
                    control.Startup(record, server, detach=detach or tied, tied=tied)
                )
            process.wait_ready(
                f"http://{process.url_host(call.context.host)}:{call.engine_port}",
                health_path=command.health_path,
                model=call.request_model or None,
                api_key=call.engine_api_key,
                alive=lambda: server.poll() is None,
                timeout=options.ready_timeout or DEFAULT_READY_TIMEOUT,
                log_path=log_path,
                what=f"the {engine.name} server",
                on_wait=waiting,
                kind=plan.family.kind,
            )
            if call.proxied:
                with control.interrupts_deferred():
                    proxy = _start_proxy(call.proxy_argv, api_key, log_path, detach)
                    startup.add_proxy(proxy)
                _wait_proxy(public_host, public_port, api_key, proxy, log_path)
            ready_s = time.monotonic() - started
            instance = startup.ready(started_at=time.time() - ready_s)
    except BaseException:
        if follower:
            follower.stop()
        raise
    return Running(
        instance=replace(instance, status="running"),
        server=server,
        proxy=proxy,
        ready_s=ready_s,
        api_key=api_key,
        log_echo=follower,
        invocation=call,
        guards=startup.guards if tied else (),
    )


def _start_proxy(
    argv: tuple[str, ...], api_key: str | None, log_path: Path, detach: bool
) -> subprocess.Popen[bytes]:
    # The gateway's proxy in its one-model form (zoo.serve.single): one proxy in the codebase,
    # run as the invocation built it (the dry run shows the same argv).
    env = {"ZOO_PROXY_API_KEY": api_key or ""}
    # Its own session too (a process cannot join a group in another session); stop() ends both.
    return process.start(list(argv), log_path=log_path, env=env, foreground=not detach)


def _wait_proxy(
    host: str, port: int, api_key: str | None, proxy: subprocess.Popen[bytes], log_path: Path
) -> None:
    import http.client

    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proxy.poll() is not None:
            raise ServerError(process.with_log("zoo's proxy exited", log_path))
        try:
            url = f"http://{process.url_host(host)}:{port}"
            if process.http_status(url, "GET", "/v1/models", headers, 2.0) == 200:
                return
        except (OSError, http.client.HTTPException):
            pass
        time.sleep(0.02)
    raise ServerError(process.with_log("zoo's proxy did not answer", log_path))


def stop(
    instance: state.Instance,
    *,
    grace: float = 10.0,
    reap: subprocess.Popen[bytes] | None = None,
    reap_proxy: subprocess.Popen[bytes] | None = None,
) -> None:
    """Stop an instance's process group (the engine and its children), its proxy, forget it.

    A group whose leader's pid now belongs to another process (pid reuse) is not ours: left
    alone (``zoo.runtime.control.stop_instance``).
    """
    control.stop_instance(instance, grace=grace, reap=reap, reap_proxy=reap_proxy)


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt here (main thread only), so clean-up code runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class _LogEcho:
    """Copies a log file to the terminal as it grows (foreground mode)."""

    def __init__(self, path: Path, *, from_start: bool = True) -> None:
        self._running = True
        self._thread = threading.Thread(target=self._run, args=(path, from_start), daemon=True)
        self._thread.start()

    def _run(self, path: Path, from_start: bool) -> None:
        out = sys.stderr.buffer if hasattr(sys.stderr, "buffer") else None
        for chunk in process.follow(path, lambda: self._running, from_start=from_start):
            if out is not None:
                out.write(chunk)
                out.flush()
            else:
                sys.stderr.write(chunk.decode(errors="replace"))

    def stop(self) -> None:
        self._running = False
        self._thread.join(timeout=2)


def banner(running: Running) -> str:
    """What a user needs to call the endpoint: URL, model name, and a curl they can paste."""
    inst = running.instance
    heading = (
        f"{inst.model} ({inst.engine}, {inst.format} {inst.quantization}) is ready "
        f"after {running.ready_s:.1f} s  [instance {inst.id}]"
    )
    family = running.invocation.context.family if running.invocation else None
    return "\n".join([heading, *_endpoint_lines(inst, family)])


def running_banner(inst: state.Instance, family: Family | None = None) -> str:
    """What ``zoo launch`` prints for a model that is already running, instead of starting it
    again: the same endpoint lines as a fresh start, and how to get a second one."""
    heading = (
        f"{inst.model} is already running ({inst.engine}, {inst.format} {inst.quantization})  "
        f"[instance {inst.id}]"
    )
    hint = f"  (--new starts another instance; `zoo stop {inst.id}` stops this one)"
    return "\n".join([heading, *_endpoint_lines(inst, family), hint])


# The question the banner's curl asks a language model.
TRY_QUESTION = "What is the capital of France?"


def try_body(inst: state.Instance, family: Family | None) -> dict[str, object]:
    """The request the banner's curl sends: the kind's example, and for a language model whose
    spec has generation defaults, a question asked with them (the system prompt and sampling
    the card recommends), so the first thing a user pastes gets a sensible answer."""
    model_kind = kinds.KINDS.get(inst.kind, kinds.KINDS[kinds.LLM])
    defaults = family.generation if family is not None and inst.kind == kinds.LLM else None
    if defaults is None:
        return {"model": inst.served_name, **model_kind.example}
    messages = [{"role": "user", "content": TRY_QUESTION}]
    if defaults.system_prompt:
        messages.insert(0, {"role": "system", "content": defaults.system_prompt})
    return {"model": inst.served_name, "messages": messages, **defaults.options()}


def _endpoint_lines(inst: state.Instance, family: Family | None = None) -> list[str]:
    import shlex

    auth = ' -H "Authorization: Bearer $ZOO_API_KEY"' if inst.api_key else ""
    host = process.url_host(inst.host)
    model_kind = kinds.KINDS.get(inst.kind, kinds.KINDS[kinds.LLM])
    body = json.dumps(try_body(inst, family), ensure_ascii=False)
    return [
        f"  endpoint: http://{host}:{inst.port}/v1",
        f"  model:    {inst.served_name}",
        (
            f"  try:      curl http://{host}:{inst.port}{model_kind.main_route}"
            f" -H 'Content-Type: application/json'{auth} -d {shlex.quote(body)}"
        ),
    ]


def serve_foreground(
    running: Running, *, out: Callable[[str], None] = print, announce: bool = False
) -> state.Instance:
    """Print the banner (``announce``), then stream the log until the server exits or the user
    stops it (Ctrl-C, SIGTERM). However it ends (a closed stdout included), the server and its
    proxy are stopped and forgotten: a foreground instance never outlives this call."""
    server = running.server
    assert server is not None
    log_path = Path(running.instance.log_path)
    echo = running.log_echo or _LogEcho(log_path, from_start=False)
    try:
        with _sigterm_interrupts():
            if announce:
                out(banner(running))
            while server.poll() is None:
                time.sleep(0.2)
    except KeyboardInterrupt:
        with contextlib.suppress(OSError):  # a closed stdout must not keep the server running
            out(f"Stopping {running.instance.model} ...")
        _end(running, echo)
        out("Stopped.")
        return replace(running.instance, status="stopped")
    except BaseException:
        _end(running, echo)
        raise
    _end(running, echo, grace=2)
    raise ServerError(
        process.with_log(
            f"the {running.instance.engine} server exited with status {server.returncode}",
            log_path,
        )
    )


def _end(running: Running, echo: _LogEcho, grace: float = 10.0) -> None:
    echo.stop()
    stop(running.instance, grace=grace, reap=running.server, reap_proxy=running.proxy)
