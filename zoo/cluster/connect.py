"""Connecting this process to a Ray cluster, with zoo's own timeout and one-line errors.

``ray.init`` with an unreachable or stale address waits for minutes (it retries the GCS), and
its failures are tracebacks about gRPC: here the connection is made in a thread that zoo waits
on for a bounded time, and what went wrong becomes one line that says what to do. The cluster
is reached with Ray's token authentication when the cluster has it on (the token comes from
``$RAY_AUTH_TOKEN``, ``$RAY_AUTH_TOKEN_PATH`` or ``~/.ray/auth_token``, as Ray reads it).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from zoo.errors import ZooError

NAMESPACE = "zoo"
CONNECT_TIMEOUT_S = 20.0
INSTALL_HINT = "install the extra on this machine and every node: pip install 'zoo-launcher[ray]'"

_lock = threading.Lock()
# The address this process joined (Ray allows one cluster per process).
_joined: list[str] = []


class ClusterError(ZooError):
    """The Ray cluster cannot be used: not installed, unreachable, refused, or it failed."""


def ray_module() -> Any:
    """The ``ray`` package, or a ClusterError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise ClusterError("Ray is not installed here", hint=INSTALL_HINT) from None
    return ray


def connect(address: str, *, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Join the cluster at ``address`` as a driver in zoo's namespace (once per process)."""
    with _lock:
        if _joined:
            if _joined[0] != address:
                raise ClusterError(f"this process is connected to the cluster at {_joined[0]}")
            return
        # Nothing phones home, and Ray's own log lines stay out of zoo's output.
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        check_token()
        ray = ray_module()
        outcome: dict[str, BaseException | None] = {}

        def join() -> None:
            try:
                import logging

                ray.init(
                    address=address,
                    namespace=NAMESPACE,
                    logging_level=logging.ERROR,
                    log_to_driver=False,
                )
                outcome["error"] = None
            except BaseException as error:  # reported in the caller's thread
                outcome["error"] = error

        thread = threading.Thread(target=join, name="zoo-ray-connect", daemon=True)
        thread.start()
        thread.join(timeout)
        if "error" not in outcome:
            raise ClusterError(
                f"the Ray cluster at {address} did not answer within {timeout:.0f} s",
                # Ray answers a missing or wrong token by not answering: both are named.
                hint="check the address (the head's HOST:PORT), that the head is running, and "
                "that RAY_AUTH_TOKEN is the cluster's token",
            )
        error = outcome["error"]
        if error is not None:
            raise _translated(error, address) from None
        _joined.append(address)
        _quiet_driver(ray)


def _quiet_driver(ray: Any) -> None:
    """Keep Ray's cluster messages ("(raylet) The node ... has been marked dead", a task's
    retries) off this process's stdout and stderr: they would break ``--json`` output and
    repeat, in Ray's words, what zoo reports itself in one line. ``log_to_driver=False``
    silences workers' output but not these: Ray prints them from a thread of its own through
    the module flag its debugger uses to pause worker logs, which is switched off here (a Ray
    without the flag just prints them)."""
    worker = getattr(getattr(ray, "_private", None), "worker", None)
    if worker is not None and hasattr(worker, "_worker_logs_enabled"):
        worker._worker_logs_enabled = False


def check_token(environ: Mapping[str, str] | None = None) -> None:
    """Refuse a Ray token that cannot be sent (a control character or a space inside it):
    Ray would abort the whole process in gRPC, with no message of zoo's."""
    env = os.environ if environ is None else environ
    token, where = env.get("RAY_AUTH_TOKEN"), "$RAY_AUTH_TOKEN"
    if token is None:
        named = env.get("RAY_AUTH_TOKEN_PATH")
        path = Path(named).expanduser() if named else Path.home() / ".ray" / "auth_token"
        where = str(path)
        try:
            token = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return  # none there: Ray says so if the cluster wants one
    for index, char in enumerate(token.strip()):
        if char.isspace() or not char.isprintable():
            raise ClusterError(
                f"the Ray token in {where} has {_named(char)} at character {index + 1}",
                hint="a token is one word: set it again without it",
            )


def _named(char: str) -> str:
    return "a newline" if char in "\r\n" else f"the character {char!r}"


def _translated(error: BaseException, address: str) -> ClusterError:
    kind = type(error).__name__
    text = str(error).strip().splitlines()[0] if str(error).strip() else kind
    if "Authentication" in kind or "authentication" in text.lower() or "token" in text.lower():
        return ClusterError(
            f"the Ray cluster at {address} refused this connection: {text}",
            hint="set RAY_AUTH_TOKEN (or RAY_AUTH_TOKEN_PATH) to the cluster's token",
        )
    return ClusterError(
        f"cannot connect to the Ray cluster at {address}: {kind}: {text}",
        # Ray answers a wrong token like an unreachable head: both are named.
        hint="check the address, and RAY_AUTH_TOKEN if the cluster uses token authentication",
    )
