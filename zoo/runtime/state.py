"""Instance records in SQLite (``<state>/instances.db``), with liveness checked on every read.

A record says what was started (model, engine, quantization, endpoint) and which processes to
stop. It is written as soon as the engine process exists (``phase`` "starting", with the pid
of the zoo that is waiting for it) and marked "running" once the server answered, so ``ps`` and
``stop`` see a server that never became ready, and one whose zoo was killed while waiting.

``status`` is never stored: it is computed from the processes each time, so a server killed
behind zoo's back reads as "dead", never "running" (see ``STATUSES``).

A damaged database is reported and left as it is (never overwritten: it names servers that may
still run); reads open it read-only, so ``zoo ps`` works on a read-only state folder. An older
database gains the newer columns on its next write; reads fill them in with their defaults.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from zoo import paths
from zoo.errors import NotFoundError, UsageError, ZooError
from zoo.runtime.process import pid_alive, process_start_time

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

# Columns added after the first schema. A database written by an older zoo gets them with
# ALTER TABLE on its next write (rows kept; old rows read as "running", like before).
ADDED_COLUMNS: dict[str, str] = {
    "proxy_pid_start": "TEXT",
    "phase": "TEXT NOT NULL DEFAULT 'running'",
    "owner_pid": "INTEGER",
    "owner_start": "TEXT",
    "kind": "TEXT NOT NULL DEFAULT 'llm'",
    "size": "REAL",
}

PHASES = ("starting", "running")

# What ``Instance.status`` can read, computed from the recorded phase and the live processes.
STATUSES = {
    "running": "ready and serving",
    "starting": "started, not ready yet; the zoo that started it is still waiting",
    "orphaned": "still starting, but the zoo that started it is gone: `zoo stop` ends it",
    "failed": "exited before it was ready",
    "dead": "was ready, then exited (or its proxy did)",
}


class StateError(ZooError):
    """zoo's instance database or state folder cannot be read or written."""


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
    proxy_pid_start: str | None = None
    # "starting" until the server answered a completion, then "running" (see ``update``).
    phase: str = "running"
    # The zoo process waiting for a "starting" instance (pid and kernel start time), so an
    # instance whose zoo is gone reads as "orphaned" rather than "starting" forever.
    owner_pid: int | None = None
    owner_start: str | None = None
    # The model's kind (``zoo.kinds``): which routes the endpoint answers.
    kind: str = "llm"
    # The spec's size in billions of parameters (None in records an older zoo wrote), so
    # `zoo launch qwen3:8b` can tell whether the running qwen3 is the 8B one.
    size: float | None = None
    status: str = "unknown"  # computed on read, never stored

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

    def describe(self) -> str:
        """A short line naming the instance, for lists of matches and messages."""
        return f"{self.id} ({self.model}, {self.status}, {self.endpoint})"


_STORED = tuple(f.name for f in fields(Instance) if f.name != "status")


def db_path() -> Path:
    return paths.state_dir() / "instances.db"


def logs_dir() -> Path:
    return paths.state_dir() / "logs"


def _unwritable(folder: Path, error: OSError) -> StateError:
    reason = error.strerror or str(error)
    if isinstance(error, (FileExistsError, NotADirectoryError)):
        blocker = next(
            (p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), None
        )
        if blocker is not None:
            reason = f"{blocker} is a file, not a folder"
    return StateError(
        f"cannot write zoo's state folder {folder}: {reason}",
        hint="make it writable, or point ZOO_STATE_DIR at a writable folder",
    )


def private_dirs() -> None:
    """Create the state and log folders readable by this user only (logs hold prompts).

    Raises StateError when they cannot be created or written (a read-only file system, a
    file in the way), before anything is started.
    """
    for folder in (paths.state_dir(), logs_dir()):
        try:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as error:
            raise _unwritable(folder, error) from error
        if not os.access(folder, os.W_OK | os.X_OK):
            raise _unwritable(folder, PermissionError(13, "not writable"))


def new_log(instance_id: str) -> Path:
    """Create an instance's (empty, private) log file; StateError if that is impossible."""
    private_dirs()
    path = logs_dir() / f"{instance_id}.log"
    try:
        path.touch(mode=0o600)
    except OSError as error:
        raise _unwritable(path.parent, error) from error
    return path


def _damaged(path: Path, problem: str) -> StateError:
    return StateError(
        f"zoo's instance database {path} is damaged ({problem}); it was left as it is",
        hint=f"move it aside to start afresh: mv {path} {path}.broken "
        "(servers it recorded keep running: stop those by hand)",
    )


def _translate(error: sqlite3.Error, path: Path, *, write: bool) -> StateError:
    """One line a user can act on, from SQLite's error code."""
    code = getattr(error, "sqlite_errorname", "") or ""
    if code.startswith(("SQLITE_NOTADB", "SQLITE_CORRUPT")):
        return _damaged(path, str(error))
    if code.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_PERM", "SQLITE_AUTH")):
        return StateError(
            f"cannot {'write' if write else 'read'} zoo's instance database {path}: {error}",
            hint="make it and its folder writable, or point ZOO_STATE_DIR at a writable folder",
        )
    if code.startswith("SQLITE_FULL"):
        return StateError(f"cannot write zoo's instance database {path}: the disk is full")
    if code.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return StateError(
            f"zoo's instance database {path} is locked by another zoo command",
            hint="try again in a moment",
        )
    return StateError(f"zoo's instance database {path}: {error}")


def _check_file(path: Path) -> None:
    if path.is_dir() or (path.exists() and not path.is_file()):
        raise _damaged(path, "it is not a regular file")


def _migrate(conn: sqlite3.Connection) -> None:
    """Create the table, or add the columns an older zoo did not have (rows kept)."""
    conn.execute("BEGIN IMMEDIATE")  # one writer checks and alters: two zoos cannot race here
    conn.execute(SCHEMA)
    have = {row[1] for row in conn.execute("PRAGMA table_info(instances)")}
    for column, kind in ADDED_COLUMNS.items():
        if column not in have:
            conn.execute(f"ALTER TABLE instances ADD COLUMN {column} {kind}")
    conn.commit()


@contextlib.contextmanager
def _connect(*, write: bool) -> Iterator[sqlite3.Connection]:
    path = db_path()
    if write:
        private_dirs()
    _check_file(path)
    try:
        if write:
            conn = sqlite3.connect(path, timeout=10)
        else:
            # Read-only: ps and logs work on a read-only state folder, and a read never
            # creates or changes the file.
            from urllib.parse import quote

            conn = sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True, timeout=10)
    except sqlite3.Error as error:
        raise _translate(error, path, write=write) from error
    try:
        conn.row_factory = sqlite3.Row
        if write:
            _migrate(conn)
        with conn:
            yield conn
    except sqlite3.Error as error:
        raise _translate(error, path, write=write) from error
    finally:
        conn.close()


def _status(instance: Instance) -> str:
    engine = pid_alive(instance.pid, instance.pid_start)
    if instance.phase == "starting":
        owner = instance.owner_pid is None or pid_alive(instance.owner_pid, instance.owner_start)
        if not engine:
            return "failed"
        return "starting" if owner else "orphaned"
    if not engine:
        return "dead"
    if instance.proxy_pid is not None and not pid_alive(
        instance.proxy_pid, instance.proxy_pid_start
    ):
        return "dead"
    return "running"


# Column kinds, checked on read: SQLite stores any value in any column, and a hand-edited or
# damaged row ("abc" as a pid, 2**62) would otherwise crash every command deep in os.kill.
_INT_COLUMNS = ("port", "pid", "pgid", "proxy_pid", "engine_port", "owner_pid")
_NUMBER_COLUMNS = ("started_at", "detached", "api_key", "size")
_NULLABLE = (
    "pid_start",
    "proxy_pid",
    "engine_port",
    "proxy_pid_start",
    "owner_pid",
    "owner_start",
    "phase",
    "kind",
    "size",
)
_INT_LIMIT = 2**31  # pids and ports are C ints for the kernel


def _row_problem(data: dict[str, Any]) -> str | None:
    """Why a row cannot be an instance zoo wrote, or None."""
    missing = [name for name in _STORED if name not in data and name not in _NULLABLE]
    if missing:
        return f"the instances table has no {', '.join(missing)} column"
    for name, value in data.items():
        if value is None and name in _NULLABLE:
            continue
        if name in _INT_COLUMNS:
            ok = type(value) is int and -_INT_LIMIT <= value < _INT_LIMIT
        elif name in _NUMBER_COLUMNS:
            ok = type(value) in (int, float)
        else:
            ok = isinstance(value, str)
        if not ok:
            return f"instance {str(data.get('id'))[:40]!r} has {name} = {str(value)[:40]!r}"
    return None


def _from_row(row: sqlite3.Row) -> Instance:
    # Columns a newer zoo may have added are ignored; ones an older one lacked keep defaults.
    data = {k: v for k, v in dict(row).items() if k in _STORED}
    problem = _row_problem(data)
    if problem is not None:
        raise _damaged(db_path(), problem)
    data["detached"] = bool(data["detached"])
    data["api_key"] = bool(data["api_key"])
    for defaulted in ("phase", "kind"):  # absent from a database an older zoo wrote
        if data.get(defaulted) is None:
            data.pop(defaulted, None)
    instance = Instance(**data)
    return replace(instance, status=_status(instance))


def _stored(instance: Instance) -> dict[str, Any]:
    data = {name: getattr(instance, name) for name in _STORED}
    data["detached"] = int(instance.detached)
    data["api_key"] = int(instance.api_key)
    return data


def add(instance: Instance) -> Instance:
    """Record an instance. A "starting" one without an owner gets this process as its owner
    (the zoo that waits for it); returns the instance as recorded."""
    if instance.phase not in PHASES:
        raise ValueError(f"phase must be one of {PHASES}, not {instance.phase!r}")
    if instance.phase == "starting" and instance.owner_pid is None:
        me = os.getpid()
        instance = replace(instance, owner_pid=me, owner_start=process_start_time(me))
    data = _stored(instance)
    columns = ", ".join(data)
    marks = ", ".join(f":{k}" for k in data)
    with _connect(write=True) as conn:
        conn.execute(f"INSERT INTO instances ({columns}) VALUES ({marks})", data)
    return instance


def update(instance_id: str, **changes: Any) -> bool:
    """Change recorded fields of an instance, e.g. ``update(id, phase="running", proxy_pid=...,
    proxy_pid_start=..., started_at=...)``. False when no such instance is recorded (a
    ``zoo stop`` already forgot it)."""
    unknown = {k for k in changes if k not in _STORED or k == "id"}
    if unknown:
        raise TypeError(f"not an instance field that can change: {', '.join(sorted(unknown))}")
    if "phase" in changes and changes["phase"] not in PHASES:
        raise ValueError(f"phase must be one of {PHASES}, not {changes['phase']!r}")
    if not changes:
        return get(instance_id) is not None
    values = {k: (int(v) if k in ("detached", "api_key") else v) for k, v in changes.items()}
    assignments = ", ".join(f"{k} = :{k}" for k in values)
    with _connect(write=True) as conn:
        cursor = conn.execute(
            f"UPDATE instances SET {assignments} WHERE id = :_id", {**values, "_id": instance_id}
        )
        return cursor.rowcount > 0


def remove(instance_id: str) -> None:
    with _connect(write=True) as conn:
        conn.execute("DELETE FROM instances WHERE id = ?", (instance_id,))


def _rows(where: str = "", params: tuple[Any, ...] = ()) -> list[Instance]:
    if not db_path().exists() and not db_path().is_symlink():
        return []
    with _connect(write=False) as conn:
        known = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'instances'"
        ).fetchone()
        if known is None:  # an empty file (SQLite reads it as an empty database)
            return []
        rows = conn.execute(f"SELECT * FROM instances {where} ORDER BY started_at", params)
        return [_from_row(row) for row in rows.fetchall()]


def list_instances() -> list[Instance]:
    """Every recorded instance, oldest first, each with its live status."""
    return _rows()


def get(instance_id: str) -> Instance | None:
    """The instance with exactly this id, with its live status; None when not recorded."""
    found = _rows("WHERE id = ?", (instance_id,))
    return found[0] if found else None


def find(ref: str) -> list[Instance]:
    """Instances an id, an id prefix, or a model/served name refers to.

    An exact id wins, then names (every instance of that model), then a unique id prefix.
    An empty reference is a usage error (as a prefix it would match everything).
    """
    if not ref.strip():
        raise UsageError("an empty instance name matches nothing; name an ID or a model")
    instances = list_instances()
    exact = [i for i in instances if i.id == ref]
    if exact:
        return exact
    named = [i for i in instances if ref in (i.model, i.served_name)]
    if named:
        return named
    prefixed = [i for i in instances if i.id.startswith(ref)]
    if len(prefixed) > 1:
        raise UsageError(
            f"{ref!r} matches several instances: " + ", ".join(i.describe() for i in prefixed),
            hint="give more of the ID",
        )
    if not prefixed:
        known = ", ".join(f"{i.id} ({i.model})" for i in instances) or "none are recorded"
        raise NotFoundError(f"no instance {ref!r}; instances: {known}")
    return prefixed


def find_one(ref: str) -> Instance:
    """The one instance ``ref`` names; a UsageError listing the matches when it names several."""
    found = find(ref)
    if len(found) > 1:
        raise UsageError(
            f"{ref!r} names {len(found)} instances: " + ", ".join(i.describe() for i in found),
            hint="name one by its ID",
        )
    return found[0]


def new_id() -> str:
    import secrets

    return secrets.token_hex(4)
