"""Stopping instances: signal only the process groups zoo started, then forget the record.

A pid in ``instances.db`` may belong to another program by the time ``zoo stop`` runs (the
server exited and the kernel handed its pid out again). So a group is signalled only while its
leader is still the process zoo started: the same pid with the same kernel start time, both
recorded when it was started. A leader that is gone while its group lives on (an engine's
child outliving it) is still safe to signal: Linux never hands out a pid that is in use as a
process group id, so that group can only be the one zoo made.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from zoo.errors import ZooError
from zoo.runtime import process, state
from zoo.runtime.process import ServerError
from zoo.runtime.state import Instance


@dataclass(frozen=True)
class StopReport:
    """What ``stop_instance`` did: groups it stopped, and groups it left alone (and why)."""

    instance: Instance
    stopped: tuple[str, ...] = ()  # "proxy", "engine"
    left_alone: tuple[str, ...] = ()  # one sentence each


def _is_proxy(instance: Instance) -> Callable[[list[str]], bool]:
    """For records without the proxy's start time (older zoo): its argv says it is ours."""

    def check(argv: list[str]) -> bool:
        port = str(instance.port)
        return "zoo.runtime.proxy" in argv and any(
            a == port and b == "--port" for b, a in itertools.pairwise(argv)
        )

    return check


def leader_is_ours(
    pid: int, start_time: str | None, *, legacy: Callable[[list[str]], bool] | None = None
) -> bool:
    """Whether ``pid`` is still the process zoo started (or gone, so no one else's).

    With a recorded start time that decides; without one (a record from an older zoo),
    ``legacy`` judges the process's argv where Linux shows it; otherwise it cannot be told
    and, as before start times were recorded, counts as ours.
    """
    if not process.pid_alive(pid):
        return True  # gone or a zombie: its pid is not someone else's while its group lives
    if start_time is not None:
        return process.process_start_time(pid) == start_time
    if legacy is not None and Path("/proc").is_dir():
        argv = process.process_cmdline(pid)
        return argv is not None and legacy(argv)
    return True


def _stop_group(
    what: str,
    pgid: int,
    leader: int,
    start_time: str | None,
    *,
    grace: float,
    reap: subprocess.Popen[bytes] | None,
    legacy: Callable[[list[str]], bool] | None = None,
) -> str:
    """ "stopped", "gone", or a sentence saying why the group was left alone."""
    if pgid <= 1 or leader <= 1:
        # Never a server zoo started (a damaged or hand-made record): group 0 is zoo's own
        # (the user's shell job), 1 is init's, and negative ids signal every process.
        return (
            f"the {what}'s recorded process {leader} (group {pgid}) cannot be one zoo "
            "started; it was left alone"
        )
    if reap is not None:
        reap.poll()  # a child of this process that exited is reaped, not signalled
    if not process.group_alive(pgid):
        return "gone"
    ours = leader_is_ours(leader, start_time, legacy=legacy)
    if ours and pgid != leader:
        # The group is not led by the recorded process: only its membership vouches for it.
        try:
            ours = process.pid_alive(leader, start_time) and os.getpgid(leader) == pgid
        except OSError:
            ours = False
    if not ours:
        return (
            f"the {what}'s pid {leader} now belongs to another program; its process group "
            "was left alone"
        )
    process.stop_group(pgid, grace=grace, reap=reap)
    if process.group_alive(pgid):
        raise ServerError(
            f"could not stop the {what} (process group {pgid}): it is still running",
            hint="it may belong to another user; stop it with `kill` as that user",
        )
    return "stopped"


def stop_instance(
    instance: Instance,
    *,
    grace: float = 10.0,
    reap: subprocess.Popen[bytes] | None = None,
    reap_proxy: subprocess.Popen[bytes] | None = None,
) -> StopReport:
    """Stop an instance's proxy group, then its engine group, each only if zoo started its
    leader; then forget the instance. ``reap``/``reap_proxy``: the Popen objects when this
    process started them (so their exit is collected, not left as zombies).

    Works for any phase: a "starting" or "orphaned" instance is stopped the same way. Raises
    ServerError (and keeps the record) when a group survives SIGKILL.
    """
    stopped: list[str] = []
    left: list[str] = []
    problems: list[ServerError] = []
    groups = []
    if instance.proxy_pid is not None:
        groups.append(
            ("proxy", instance.proxy_pid, instance.proxy_pid, instance.proxy_pid_start, reap_proxy)
        )
    groups.append(("engine", instance.pgid, instance.pid, instance.pid_start, reap))
    for what, pgid, leader, start_time, popen in groups:
        legacy = _is_proxy(instance) if what == "proxy" else None
        try:
            outcome = _stop_group(
                what, pgid, leader, start_time, grace=grace, reap=popen, legacy=legacy
            )
        except ServerError as problem:
            problems.append(problem)
            continue
        if outcome == "stopped":
            stopped.append(what)
        elif outcome != "gone":
            left.append(outcome)
    if problems:
        raise problems[0]
    state.remove(instance.id)
    return StopReport(instance=instance, stopped=tuple(stopped), left_alone=tuple(left))


@contextlib.contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM back until the block ends, then raise KeyboardInterrupt.

    Between ``process.start`` returning and ``Startup`` owning the process (or ``add_proxy``
    recording a proxy) nobody would stop it: an interrupt there left a server running. Main
    thread only (elsewhere signals never arrive, and the block runs as it is).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []

    def hold(signum: int, frame: object) -> None:
        caught.append(signum)

    previous = {sig: signal.signal(sig, hold) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if caught:
        raise KeyboardInterrupt


class Startup:
    """A server between its start and readiness: recorded as "starting" at once, stopped and
    forgotten if anything fails before ``ready()`` (an error, Ctrl-C, a SIGTERM turned into
    KeyboardInterrupt), and, when detached, guarded against a zoo killed outright.

    Enter it right after ``process.start``, both inside ``interrupts_deferred`` (an
    ``ExitStack`` keeps the startup open after the deferral ends)::

        with contextlib.ExitStack() as stack:
            with control.interrupts_deferred():
                server = process.start(...)
                startup = stack.enter_context(control.Startup(record, server, detach=detach))
            process.wait_ready(...)
            with control.interrupts_deferred():
                proxy = ...start the proxy...
                startup.add_proxy(proxy)
            instance = startup.ready()
    """

    def __init__(
        self,
        instance: Instance,
        server: subprocess.Popen[bytes],
        *,
        detach: bool,
        tied: bool = False,
    ) -> None:
        self.instance = replace(instance, phase="starting")
        # Tied: the guards stay armed after readiness (the server dies with this process);
        # the caller closes ``guards`` once it stopped the server itself.
        self._tied = tied
        self.server = server
        self.proxy: subprocess.Popen[bytes] | None = None
        self._detach = detach
        self._guards: list[process.Guard] = []
        self._ready = False

    def __enter__(self) -> Startup:
        try:
            # Guard first: from here on a zoo killed outright takes a detached server along.
            if self._detach:
                self._guards.append(process.guard(self.server))
            self.instance = state.add(self.instance)
        except BaseException:
            self._clean_up(forget=False)
            raise
        return self

    def add_proxy(self, proxy: subprocess.Popen[bytes]) -> None:
        """Record the proxy as soon as it exists (and guard it too, when detached).

        It joins ``self.instance`` before anything here can fail, so a failing guard or
        database write still has the clean-up stop it.
        """
        self.proxy = proxy
        start_time = process.process_start_time(proxy.pid)
        self.instance = replace(self.instance, proxy_pid=proxy.pid, proxy_pid_start=start_time)
        if self._detach:
            self._guards.append(process.guard(proxy))
        state.update(self.instance.id, proxy_pid=proxy.pid, proxy_pid_start=start_time)

    def ready(self, **changes: Any) -> Instance:
        """The server answered: record it as running (with ``changes``), release the guards."""
        fields = {"phase": "running", **changes}
        if not state.update(self.instance.id, **fields):
            raise ServerError(
                f"instance {self.instance.id} was stopped (zoo stop) while it was starting"
            )
        if not self._tied:
            for guard in self._guards:
                guard.keep()
        self._ready = True
        self.instance = replace(self.instance, **fields, status="running")
        return self.instance

    @property
    def guards(self) -> tuple[process.Guard, ...]:
        return tuple(self._guards)

    def __exit__(self, *exc: object) -> None:
        if not self._ready:
            self._clean_up(forget=True)

    def _clean_up(self, *, forget: bool) -> None:
        try:
            if forget:
                with contextlib.suppress(ZooError):  # the error that brought us here matters more
                    stop_instance(self.instance, grace=5, reap=self.server, reap_proxy=self.proxy)
            else:
                for popen in (self.proxy, self.server):
                    if popen is not None:
                        process.stop_group(popen.pid, grace=5, reap=popen)
        finally:
            for guard in self._guards:
                guard.close()
