"""Server processes: ports, starting in a process group, readiness, logs and clean stops.

A server runs in its own process group (its own session) so a stop can reach every process it
made (vLLM spawns an engine process). In the foreground it is also given a parent-death signal,
so a ``zoo`` that is killed outright (kill -9) takes its server with it: no orphans.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

from zoo.errors import UsageError, ZooError


class ServerError(ZooError):
    """A server exited, never became ready, or could not be started."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` is this machine only (127.0.0.0/8, ::1, localhost)."""
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def url_host(host: str) -> str:
    """``host`` as a client on this machine writes it in a URL (a wildcard: loopback)."""
    if host in ("0.0.0.0", "::", ""):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


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


def check_bind_host(host: str) -> None:
    """Refuse a ``--host`` this machine cannot listen on, before anything is downloaded.

    It must resolve (getaddrinfo) and one of its addresses must be bindable here (port 0),
    so a typo or another machine's address fails now, in one line, not as a server that
    never becomes ready.
    """
    hint = "use an address of this machine: 127.0.0.1 (this machine only) or 0.0.0.0 (all)"
    if not host.strip() or host != host.strip():
        raise UsageError(f"--host {host!r} is not an address", hint=hint)
    try:
        found = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise UsageError(f"--host {host!r} does not resolve: {reason}", hint=hint) from error
    problems = []
    for family, kind, proto, _, address in found:
        try:
            with socket.socket(family, kind, proto) as sock:
                sock.bind((address[0], 0, *address[2:]))
            return
        except OSError as error:
            problems.append(f"{address[0]}: {error.strerror or error}")
    raise UsageError(
        f"--host {host!r} is not an address of this machine ({'; '.join(problems)})", hint=hint
    )


# HTTP header values and engines' own checks take printable ASCII; llama.cpp splits
# --api-key at commas (several keys), so a comma would make each part a valid key.
_KEY_MAX = 1024


def check_api_key(key: str) -> None:
    """Refuse an API key that an engine would reject or that would break the header.

    The message says what is wrong and where, never the key itself (keys stay out of logs).
    """
    hint = "use letters, digits and punctuation such as - _ . ~ + / = (e.g. `openssl rand -hex 24`)"
    if not key:
        raise UsageError("the API key is empty", hint=hint)
    if len(key) > _KEY_MAX:
        raise UsageError(
            f"the API key is {len(key)} characters long; at most {_KEY_MAX}", hint=hint
        )
    if key != key.strip():
        where, char = ("starts", key[0]) if key[0].isspace() else ("ends", key[-1])
        what = "a newline" if char in "\r\n" else "whitespace"
        raise UsageError(f"the API key {where} with {what} (a copy-paste slip?)", hint=hint)
    for position, char in enumerate(key, 1):
        if char.isspace():
            what = "a newline" if char in "\r\n" else "whitespace"
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            what = f"a control character (U+{ord(char):04X})"
        elif ord(char) > 0x7E:
            what = "a non-ASCII character"
        elif char == ",":
            what = "a comma (llama.cpp reads a comma as the end of one key and start of another)"
        else:
            continue
        raise UsageError(f"the API key has {what} at character {position}", hint=hint)


def _die_with_parent(parent: int) -> Callable[[], None]:
    """A preexec hook: ask Linux to SIGTERM the child when zoo dies (PR_SET_PDEATHSIG).

    libc is loaded here, before the fork: between fork and exec the child may not import (a
    thread of zoo's, such as the log echo, can hold the import lock at fork time and nobody
    would release it in the child), so the hook only calls what is already bound.
    """
    import ctypes

    prctl = ctypes.CDLL(None, use_errno=True).prctl
    pr_set_pdeathsig = 1
    sigterm = int(signal.SIGTERM)

    def hook() -> None:
        prctl(pr_set_pdeathsig, sigterm, 0, 0, 0)
        # zoo may have died between fork and prctl: then nobody would ever signal us.
        if os.getppid() != parent:
            os._exit(1)

    return hook


def start(
    argv: Sequence[str],
    *,
    log_path: Path,
    env: Mapping[str, str] | None = None,
    foreground: bool = True,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` with its output appended to ``log_path``, in a new session (so a new
    process group that a stop reaches whole); ``foreground`` adds the parent-death signal.

    The proxy gets a session of its own too: a process cannot join a group in another
    session, so ``zoo.runtime.control.stop_instance`` stops the two groups one by one.
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
                start_new_session=True,
                # Nothing else replaces PR_SET_PDEATHSIG; the hook imports nothing (see above).
                preexec_fn=preexec,  # noqa: PLW1509
                close_fds=True,
            )
        except OSError as error:
            raise ServerError(f"could not start {argv[0]}: {error}") from error


# The watchdog ``guard`` starts: it waits on a pipe only zoo can write to. One byte ("the
# server is ready, leave it") and it exits; end of file (zoo exited or was killed first) and
# it stops the server's group, unless the group's leader is no longer the process zoo started.
_WATCHDOG = """
import os, signal, sys, time
pgid, start = int(sys.argv[1]), sys.argv[2]
if os.read(0, 1) == b"k":
    sys.exit(0)
def start_time():
    try:
        stat = open(f"/proc/{pgid}/stat").read()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2 :].split()[19]
now = start_time()
if start != "-" and now is not None and now != start:
    sys.exit(0)
for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
    try:
        os.killpg(pgid, sig)
    except OSError:
        sys.exit(0)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except OSError:
            sys.exit(0)
        time.sleep(0.05)
"""


class Guard:
    """Stops a detached server if zoo dies before the server is ready (see ``guard``)."""

    def __init__(self, watchdog: subprocess.Popen[bytes], write_fd: int) -> None:
        self._watchdog = watchdog
        self._fd: int | None = write_fd

    def keep(self) -> None:
        """The server is ready: it outlives zoo from now on."""
        self._end(b"k")

    def close(self) -> None:
        """Done without ``keep``: the watchdog stops the server if it still runs. Call it after
        zoo's own clean-up stopped the server (``with guard(...)`` around that clean-up)."""
        self._end(b"")

    def _end(self, word: bytes) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        with contextlib.suppress(OSError):
            if word:
                os.write(fd, word)
        os.close(fd)
        if word:
            # Kept: the watchdog leaves by itself once it reads the byte (buffered in the pipe
            # even if it has not started yet); waiting for that (an interpreter's exit, ~15 ms)
            # only delayed every detached launch's return. Reaped here if already gone, else
            # by subprocess's clean-up of dropped children (or with this process).
            self._watchdog.poll()
            return
        with contextlib.suppress(subprocess.TimeoutExpired):
            # Not longer: a server this process has not reaped yet would keep it waiting.
            self._watchdog.wait(timeout=2)

    def __enter__(self) -> Guard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def guard(server: subprocess.Popen[bytes]) -> Guard:
    """Tie a detached server to this zoo process until it is ready.

    A foreground server has the parent-death signal; a detached one must outlive zoo, so it
    cannot. Between its start and readiness a small watchdog (its own session, standard
    library only) stops it if zoo exits first by any means, kill -9 included: no orphan is
    left starting forever. ``keep()`` once it is ready.
    """
    read_fd, write_fd = os.pipe()  # not inherited by other children (PEP 446)
    start = process_start_time(server.pid) or "-"
    try:
        watchdog = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", _WATCHDOG, str(server.pid), start],
            stdin=read_fd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            close_fds=True,
        )
    except OSError as error:
        os.close(write_fd)
        raise ServerError(f"could not start zoo's start-up watchdog: {error}") from error
    finally:
        os.close(read_fd)
    return Guard(watchdog, write_fd)


def process_start_time(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (Linux), to tell a reused pid from ours."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Fields after the command name (which may hold spaces) start after the last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    return fields[19] if len(fields) > 19 else None


def process_cmdline(pid: int) -> list[str] | None:
    """The argv of ``pid`` (Linux ``/proc``), or None when it cannot be read."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


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
    """SIGTERM the whole group, wait up to ``grace`` seconds, then SIGKILL what is left.

    ``reap``: the leader's Popen when this process started it; its exit status is collected
    (no zombie left) before this returns.
    """
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGTERM)
    if not _wait_group(pgid, grace, reap):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
        _wait_group(pgid, 5, reap)
    if reap is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            reap.wait(timeout=1)


def _wait_group(pgid: int, seconds: float, reap: subprocess.Popen[bytes] | None) -> bool:
    """Whether the group is gone within ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if reap is not None:
            reap.poll()
        if not group_alive(pgid):
            return True
        time.sleep(0.05)
    return False


def tail(path: Path, lines: int = 20, *, until: int | None = None) -> list[str]:
    """The last ``lines`` lines of a log file (reads only its end); none for ``lines <= 0``.

    ``until`` ends the file at that offset, so a follower started there (``follow(offset=)``)
    neither repeats nor skips a line written in between.
    """
    if lines <= 0:
        return []  # [-0:] would be every line
    try:
        with open(path, "rb") as handle:
            size = handle.seek(0, os.SEEK_END) if until is None else until
            handle.seek(max(0, size - 64 * 1024))
            data = handle.read(size - handle.tell())
    except OSError:
        return []
    text = data.decode("utf-8", errors="replace").replace("\r", "\n")
    return [line for line in text.splitlines() if line.strip()][-lines:]


class LogGone(ZooError):
    """The log being followed was deleted or replaced."""


def follow(
    path: Path,
    keep_going: Callable[[], bool],
    *,
    from_start: bool = True,
    offset: int | None = None,
    interval: float = 0.1,
    watch_path: bool = False,
) -> Iterator[bytes]:
    """Yield chunks appended to ``path`` while ``keep_going()``, then what is left.

    From the start, from the end (``from_start=False``) or from ``offset`` (where what was
    already shown ends).

    With ``watch_path``, raise LogGone once ``path`` no longer names the file being read
    (deleted or replaced): the server would go on writing into a file nobody can see, and a
    follower would wait forever for lines that never appear. Without it (zoo's own foreground
    echo), the open file is read to the end whatever happens to its name.
    """
    with contextlib.ExitStack() as stack:
        try:
            handle = stack.enter_context(open(path, "rb"))
        except OSError as error:
            raise LogGone(f"cannot read the log {path}: {error.strerror or error}") from error
        if offset is not None:
            handle.seek(offset)
        elif not from_start:
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
            if watch_path and not _same_file(path, handle.fileno()):
                raise LogGone(f"the log {path} was deleted while it was followed")
            time.sleep(interval)


def _same_file(path: Path, fd: int) -> bool:
    try:
        named = os.stat(path)
    except OSError:
        return False
    opened = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (opened.st_dev, opened.st_ino)


class NotReady(Exception):
    """The server does not serve yet (internal to ``wait_ready``)."""


WaitCallback = Callable[[float, "str | None"], None]


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
    on_wait: WaitCallback | None = None,
    wait_every: float = 5.0,
    kind: str = "llm",
) -> float:
    """Wait until the server answers its health path and then ONE tiny request of ``kind``
    (a one-token completion, one embedding, one rerank).

    Health alone is not enough (vLLM answers /health before its engine can serve). Raises
    ServerError with the log's last lines when the process exits or ``timeout`` passes.
    Returns the seconds it took.

    ``on_wait(elapsed_s, last_log_line)`` is called every ``wait_every`` seconds while it
    waits (the caller prints it; a first completion can block for minutes, so a timer thread
    calls it, not the probe loop).
    """
    # Here, not at the top: the engine already runs (this import overlaps its start), and a
    # dry run, which never waits, does not pay for http.client (ssl, email: ~10 ms).
    import http.client

    started = time.monotonic()
    deadline = started + timeout
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    healthy = health_path is None
    last_problem = "no answer yet"
    with _ticking(on_wait, wait_every, started, log_path):
        while True:
            if not alive():
                raise ServerError(with_log(f"{what} exited before it was ready", log_path))
            if time.monotonic() > deadline:
                waited = seconds_text(time.monotonic() - started)
                raise ServerError(
                    with_log(
                        f"{what} was not ready after {waited} ({last_problem}); if it only "
                        f"needs longer, wait longer with --ready-timeout SECONDS",
                        log_path,
                    )
                )
            try:
                if not healthy:
                    status = http_status(base_url, "GET", health_path or "/health", headers, 5.0)
                    if status != 200:
                        raise NotReady(f"{health_path} answered {status}")
                    healthy = True
                _tiny_request(base_url, headers, model, max(1.0, deadline - time.monotonic()), kind)
                return time.monotonic() - started
            except (OSError, http.client.HTTPException, NotReady) as problem:
                last_problem = str(problem) or type(problem).__name__
            time.sleep(_pause(time.monotonic() - started, healthy=healthy))


# Readiness is asked often at first, so an engine ready in a second or two (llama.cpp on a
# small model) is seen within 20 ms instead of up to 100 ms; then every 0.1 s. A server that
# is healthy but cannot complete yet (vLLM warming up) is asked every 0.25 s.
_FAST_POLL_S, _FAST_FOR_S, _POLL_S, _COMPLETION_POLL_S = 0.02, 3.0, 0.1, 0.25


def _pause(elapsed: float, *, healthy: bool) -> float:
    if healthy:
        return _COMPLETION_POLL_S
    return _FAST_POLL_S if elapsed < _FAST_FOR_S else _POLL_S


def seconds_text(seconds: float) -> str:
    """``1.5 s``, ``42 s``, ``15 min 3 s``: how long something took, for people."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 120:
        return f"{seconds:.0f} s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes} min {rest} s"


@contextlib.contextmanager
def _ticking(
    on_wait: WaitCallback | None, every: float, started: float, log_path: Path
) -> Iterator[None]:
    """Call ``on_wait`` every ``every`` seconds from a daemon thread until the block ends."""
    if on_wait is None:
        yield
        return
    import threading

    done = threading.Event()

    def tick() -> None:
        while not done.wait(every):
            last = tail(log_path, 1)
            try:
                on_wait(time.monotonic() - started, last[0] if last else None)
            except Exception:  # a display callback must not end readiness
                return

    thread = threading.Thread(target=tick, name="zoo-ready-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join(timeout=1)


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
    import http.client
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


def _tiny_request(
    base_url: str, headers: Mapping[str, str], model: str | None, timeout: float, kind: str
) -> None:
    """One real tiny request of the model's kind (``zoo.kinds``): a one-token chat (then a
    plain completion, for models without chat), one embedding, or one rerank of one document."""
    from zoo.kinds import KINDS

    spec = KINDS[kind]
    extra = {"model": model} if model else {}
    answers = []
    for path, body in (spec.probe, *spec.fallback_probes):
        sent = {**body, **extra}
        status = http_status(base_url, "POST", path, headers, min(timeout, 300.0), sent)
        if status == 200:
            return
        answers.append(f"{path} answered {status}")
    raise NotReady("; ".join(answers))


def with_log(message: str, log_path: Path, lines: int = 15) -> str:
    """``message`` followed by the last ``lines`` lines of the server's log (what went wrong)."""
    last = tail(log_path, lines)
    if not last:
        return f"{message}; its log {log_path} is empty"
    body = "\n".join("    " + line for line in last)
    return f"{message}; last lines of {log_path}:\n{body}"
