"""Instance records in SQLite (``<state>/instances.db``), with liveness checked on every read.

A record says what was started (model, engine, quantization, endpoint) and which process group
to stop. ``status`` is never stored: it is computed from the processes each time, so a server
killed behind zoo's back reads as "dead", never "running".
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from zoo import paths
from zoo.errors import NotFoundError, UsageError
from zoo.runtime.process import pid_alive

SCHEMA = """
CREATE TABLE IF NOT EXISTS instances (
    id TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    engine TEXT NOT NULL,
    quantization TEXT NOT NULL,
    format TEXT NOT NULL,
    served_name TEXT NOT NULL,
    host TEXT NOT NULL,
    port INTEGER NOT NULL,
    pid INTEGER NOT NULL,
    pid_start TEXT,
    pgid INTEGER NOT NULL,
    proxy_pid INTEGER,
    engine_port INTEGER,
    log_path TEXT NOT NULL,
    started_at REAL NOT NULL,
    detached INTEGER NOT NULL,
    api_key INTEGER NOT NULL
)
"""


@dataclass(frozen=True)
class Instance:
    """One started server (and its proxy, when zoo put one in front)."""

    id: str
    model: str
    engine: str
    quantization: str
    format: str
    served_name: str
    host: str
    port: int
    pid: int
    pgid: int
    log_path: str
    started_at: float
    detached: bool
    api_key: bool  # whether the endpoint wants a key (the key itself is never stored)
    pid_start: str | None = None
    proxy_pid: int | None = None
    engine_port: int | None = None
    status: str = "unknown"

    @property
    def endpoint(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/v1"

    @property
    def uptime(self) -> float:
        return max(0.0, time.time() - self.started_at)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["endpoint"] = self.endpoint
        data["uptime_s"] = round(self.uptime, 1)
        return data


def db_path() -> Path:
    return paths.state_dir() / "instances.db"


def logs_dir() -> Path:
    return paths.state_dir() / "logs"


def private_dirs() -> None:
    """Create the state and log folders readable by this user only (logs hold prompts)."""
    for folder in (paths.state_dir(), logs_dir()):
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)


@contextlib.contextmanager
def _connect() -> Iterator[sqlite3.Connection]:
    path = db_path()
    private_dirs()
    conn = sqlite3.connect(path, timeout=10)
    try:
        conn.row_factory = sqlite3.Row
        conn.execute(SCHEMA)
        with conn:
            yield conn
    finally:
        conn.close()


def _alive(instance: Instance) -> str:
    if not pid_alive(instance.pid, instance.pid_start):
        return "dead"
    if instance.proxy_pid is not None and not pid_alive(instance.proxy_pid):
        return "dead"
    return "running"


def _from_row(row: sqlite3.Row) -> Instance:
    data = dict(row)
    data["detached"] = bool(data["detached"])
    data["api_key"] = bool(data["api_key"])
    instance = Instance(**data)
    return replace(instance, status=_alive(instance))


def add(instance: Instance) -> None:
    data = asdict(instance)
    data.pop("status")
    data["detached"] = int(instance.detached)
    data["api_key"] = int(instance.api_key)
    columns = ", ".join(data)
    marks = ", ".join(f":{k}" for k in data)
    with _connect() as conn:
        conn.execute(f"INSERT INTO instances ({columns}) VALUES ({marks})", data)


def remove(instance_id: str) -> None:
    with _connect() as conn:
        conn.execute("DELETE FROM instances WHERE id = ?", (instance_id,))


def list_instances() -> list[Instance]:
    """Every recorded instance, oldest first, each with its live status."""
    if not db_path().exists():
        return []
    with _connect() as conn:
        rows = conn.execute("SELECT * FROM instances ORDER BY started_at").fetchall()
    return [_from_row(row) for row in rows]


def find(ref: str) -> list[Instance]:
    """Instances an id, an id prefix, or a model/served name refers to."""
    instances = list_instances()
    exact = [i for i in instances if i.id == ref]
    if exact:
        return exact
    named = [i for i in instances if ref in (i.model, i.served_name)]
    if named:
        return named
    prefixed = [i for i in instances if i.id.startswith(ref)]
    if len(prefixed) > 1:
        raise UsageError(f"{ref!r} matches several instances: " + ", ".join(i.id for i in prefixed))
    if not prefixed:
        known = ", ".join(f"{i.id} ({i.model})" for i in instances) or "none are recorded"
        raise NotFoundError(f"no instance {ref!r}; instances: {known}")
    return prefixed


def new_id() -> str:
    import secrets

    return secrets.token_hex(4)
