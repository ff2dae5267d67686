"""Server processes: ports, starting in a process group, readiness, logs and clean stops.

A server runs in its own process group (its own session) so a stop can reach every process it
made (vLLM spawns an engine process). In the foreground it is also given a parent-death signal,
so a ``zoo`` that is killed outright (kill -9) takes its server with it: no orphans.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

from zoo.errors import ZooError


class ServerError(ZooError):
    """A server exited, never became ready, or could not be started."""


def port_in_use(host: str, port: int) -> bool:
    """Whether something already listens on (host, port), or the port cannot be bound."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def free_port(host: str = "127.0.0.1") -> int:
    """A port the OS says is free on ``host`` now (the server binds it moments later)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _die_with_parent(parent: int) -> Callable[[], None]:
    """A preexec hook: ask Linux to SIGTERM the child when zoo dies (PR_SET_PDEATHSIG)."""

    def hook() -> None:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, int(signal.SIGTERM), 0, 0, 0)
        # zoo may have died between fork and prctl: then nobody would ever signal us.
        if os.getppid() != parent:
            os._exit(1)

    return hook


def start(
    argv: Sequence[str],
    *,
    log_path: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    foreground: bool = True,
    process_group: int | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` with its output appended to ``log_path``.

    A new session (so a new process group) unless ``process_group`` names one to join (the
    proxy joins its engine's group, so one stop ends both).
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    full_env = dict(os.environ)
    full_env.update(env or {})
    full_env.setdefault("PYTHONUNBUFFERED", "1")
    preexec = _die_with_parent(os.getpid()) if foreground and sys.platform == "linux" else None
    with open(log_path, "ab") as log:
        try:
            return subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=full_env,
                cwd=str(cwd) if cwd else None,
                start_new_session=process_group is None,
                process_group=process_group,
                preexec_fn=preexec,
                close_fds=True,
            )
        except OSError as error:
            raise ServerError(f"could not start {argv[0]}: {error}") from error


def process_start_time(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (Linux), to tell a reused pid from ours."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Fields after the command name (which may hold spaces) start after the last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    return fields[19] if len(fields) > 19 else None


def pid_alive(pid: int, start_time: str | None = None) -> bool:
    """Whether ``pid`` runs (not a zombie) and, when known, is the process we started."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    stat_path = Path(f"/proc/{pid}/stat")
    if stat_path.exists():
        try:
            stat = stat_path.read_text()
        except OSError:
            return False
        state = stat[stat.rindex(")") + 2 :].split()[0]
        if state in ("Z", "X"):
            return False
        if start_time is not None and process_start_time(pid) != start_time:
            return False
    return True


def group_alive(pgid: int) -> bool:
    """Whether any non-zombie process is left in process group ``pgid``."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if not Path("/proc").is_dir():
        return True
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
            return True
    return False


def stop_group(
    pgid: int, *, grace: float = 10.0, reap: subprocess.Popen[bytes] | None = None
) -> None:
    """SIGTERM the whole group, wait up to ``grace`` seconds, then SIGKILL what is left."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if reap is not None:
            reap.poll()
        if not group_alive(pgid):
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and group_alive(pgid):
        if reap is not None:
            reap.poll()
        time.sleep(0.05)
    if reap is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            reap.wait(timeout=1)


def tail(path: Path, lines: int = 20) -> list[str]:
    """The last ``lines`` lines of a log file (reads only its end)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 64 * 1024))
            data = handle.read()
    except OSError:
        return []
    text = data.decode("utf-8", errors="replace").replace("\r", "\n")
    return [line for line in text.splitlines() if line.strip()][-lines:]


def follow(
    path: Path, keep_going: Callable[[], bool], *, from_start: bool = True, interval: float = 0.1
) -> Iterator[bytes]:
    """Yield chunks appended to ``path`` while ``keep_going()``, then what is left."""
    with open(path, "rb") as handle:
        if not from_start:
            handle.seek(0, os.SEEK_END)
        while True:
            chunk = handle.read(65536)
            if chunk:
                yield chunk
                continue
            if not keep_going():
                rest = handle.read()
                if rest:
                    yield rest
                return
            time.sleep(interval)


class NotReady(Exception):
    """The server does not serve yet (internal to ``wait_ready``)."""


def wait_ready(
    base_url: str,
    *,
    health_path: str | None,
    model: str | None,
    api_key: str | None,
    alive: Callable[[], bool],
    timeout: float,
    log_path: Path,
    what: str,
) -> float:
    """Wait until the server answers its health path and then ONE tiny completion.

    Health alone is not enough (vLLM answers /health before its engine can serve). Raises
    ServerError with the log's last lines when the process exits or ``timeout`` passes.
    Returns the seconds it took.
    """
    started = time.monotonic()
    deadline = started + timeout
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    healthy = health_path is None
    last_problem = "no answer yet"
    while True:
        if not alive():
            raise ServerError(_with_log(f"{what} exited before it was ready", log_path))
        if time.monotonic() > deadline:
            raise ServerError(
                _with_log(f"{what} was not ready after {timeout:.0f} s ({last_problem})", log_path)
            )
        try:
            if not healthy:
                status = http_status(base_url, "GET", health_path or "/health", headers, 5.0)
                if status != 200:
                    raise NotReady(f"{health_path} answered {status}")
                healthy = True
            _tiny_completion(base_url, headers, model, max(1.0, deadline - time.monotonic()))
            return time.monotonic() - started
        except (OSError, http.client.HTTPException, NotReady) as problem:
            last_problem = str(problem) or type(problem).__name__
        time.sleep(0.1 if not healthy else 0.25)


def http_status(
    base_url: str,
    method: str,
    path: str,
    headers: Mapping[str, str],
    timeout: float,
    body: object = None,
) -> int:
    """One request to a local server; its status code. Connection problems raise OSError.

    The standard library's client, not httpx: readiness is on every launch's path, and
    importing httpx costs ~0.2 s of a launch that is ready in about a second.
    """
    import json
    from urllib.parse import urlsplit

    url = urlsplit(base_url)
    connection = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=timeout)
    try:
        payload = None if body is None else json.dumps(body).encode()
        sent = dict(headers)
        if payload is not None:
            sent["Content-Type"] = "application/json"
        connection.request(method, url.path.rstrip("/") + path, body=payload, headers=sent)
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def _tiny_completion(
    base_url: str, headers: Mapping[str, str], model: str | None, timeout: float
) -> None:
    """One real one-token completion: chat first, plain completion for models without chat."""
    extra = {"model": model} if model else {}
    attempts = (
        (
            "/v1/chat/completions",
            {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1, **extra},
        ),
        ("/v1/completions", {"prompt": "Hi", "max_tokens": 1, **extra}),
    )
    answers = []
    for path, body in attempts:
        status = http_status(base_url, "POST", path, headers, min(timeout, 300.0), body)
        if status == 200:
            return
        answers.append(f"{path} answered {status}")
    raise NotReady("; ".join(answers))


def _with_log(message: str, log_path: Path, lines: int = 15) -> str:
    last = tail(log_path, lines)
    if not last:
        return f"{message}; its log {log_path} is empty"
    body = "\n".join("    " + line for line in last)
    return f"{message}; last lines of {log_path}:\n{body}"
