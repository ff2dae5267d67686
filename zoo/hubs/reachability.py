"""Is a hub reachable? A short connect timeout, and a verdict remembered for a few minutes.

Automatic hub choice asks this before downloading, so an unreachable hub (a firewall, a
blocked country) costs one short timeout every few minutes instead of a long one per command.
Verdicts live in ``<zoo cache>/hub-reachability.json``, keyed by hub name and endpoint.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass

from zoo.hubs.base import Hub
from zoo.paths import cache_dir

TTL_SECONDS = 300.0
CONNECT_TIMEOUT = 2.0


@dataclass(frozen=True)
class Verdict:
    reachable: bool
    remembered: bool  # True when it came from the cache, not a fresh probe
    age: float = 0.0


def _store() -> dict[str, dict[str, float]]:
    try:
        data = json.loads((cache_dir() / "hub-reachability.json").read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _key(hub: Hub) -> str:
    return f"{hub.name} {hub.endpoint()}"


def remember(hub: Hub, reachable: bool) -> None:
    """Record a verdict (also used when a download finds the hub unreachable)."""
    store = _store()
    store[_key(hub)] = {"reachable": float(reachable), "at": time.time()}
    path = cache_dir() / "hub-reachability.json"
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(store))
        os.replace(tmp, path)
    except OSError:
        # A full or read-only zoo cache only costs a probe next time; never a failed command.
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def check(hub: Hub, ttl: float = TTL_SECONDS) -> Verdict:
    """The hub's reachability: remembered if fresh, else probed with a short timeout."""
    saved = _store().get(_key(hub))
    now = time.time()
    if saved is not None and 0 <= now - saved.get("at", 0) < ttl:
        return Verdict(bool(saved.get("reachable")), True, now - saved["at"])
    try:
        ok = hub.reachable(timeout=CONNECT_TIMEOUT)
    except Exception:
        ok = False
    remember(hub, ok)
    return Verdict(ok, False)
