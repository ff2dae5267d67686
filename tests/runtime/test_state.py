"""Instance state for real: lifecycle, orphans, schema migration, damaged or read-only state."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from runtime_helpers import instance_record

from zoo.errors import NotFoundError, UsageError
from zoo.runtime import process, state

# instances.db as the first zoo releases wrote it (before phases, owners, proxy start times).
OLD_SCHEMA = """
CREATE TABLE instances (
    id TEXT PRIMARY KEY, model TEXT NOT NULL, engine TEXT NOT NULL,
    quantization TEXT NOT NULL, format TEXT NOT NULL, served_name TEXT NOT NULL,
    host TEXT NOT NULL, port INTEGER NOT NULL, pid INTEGER NOT NULL, pid_start TEXT,
    pgid INTEGER NOT NULL, proxy_pid INTEGER, engine_port INTEGER, log_path TEXT NOT NULL,
    started_at REAL NOT NULL, detached INTEGER NOT NULL, api_key INTEGER NOT NULL
)
"""


@pytest.fixture
def sleeper(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A real server-like process in its own group, as process.start makes them."""
    proc = process.start(
        [sys.executable, "-c", "import time; time.sleep(600)"],
        log_path=tmp_path / "sleeper.log",
        foreground=False,
    )
    yield proc
    process.stop_group(proc.pid, grace=1, reap=proc)


def dead_process() -> tuple[int, str | None]:
    """The pid and start time of a process that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    start = process.process_start_time(proc.pid)
    proc.wait()
    return proc.pid, start


def make_instance(proc: subprocess.Popen[bytes], **changes: object) -> state.Instance:
    return instance_record(proc, **changes)


def status_of(instance_id: str) -> str:
    found = state.get(instance_id)
    assert found is not None
    return found.status


def test_an_instance_is_starting_then_running_then_dead(
    sleeper: subprocess.Popen[bytes],
) -> None:
    recorded = state.add(make_instance(sleeper, phase="starting"))
    # The adding process is the owner: the zoo that waits for readiness.
    assert recorded.owner_pid == os.getpid()
    assert recorded.owner_start == process.process_start_time(os.getpid())
    assert status_of(recorded.id) == "starting"
    assert [i.status for i in state.list_instances()] == ["starting"]

    assert state.update(recorded.id, phase="running", proxy_pid=None, engine_port=9000)
    again = state.get(recorded.id)
    assert again is not None and again.status == "running" and again.engine_port == 9000

    sleeper.kill()
    sleeper.wait()
    assert status_of(recorded.id) == "dead"


def test_a_starting_instance_whose_zoo_died_is_orphaned_then_failed(
    sleeper: subprocess.Popen[bytes],
) -> None:
    owner, owner_start = dead_process()
    recorded = state.add(
        make_instance(sleeper, phase="starting", owner_pid=owner, owner_start=owner_start)
    )
    assert recorded.owner_pid == owner  # an explicit owner is kept
    assert status_of(recorded.id) == "orphaned"
    sleeper.kill()
    sleeper.wait()
    assert status_of(recorded.id) == "failed"


def test_an_owner_pid_now_used_by_another_program_reads_as_orphaned(
    sleeper: subprocess.Popen[bytes],
) -> None:
    # This test process stands in for the other program: its pid, an older start time.
    recorded = state.add(
        make_instance(sleeper, phase="starting", owner_pid=os.getpid(), owner_start="1")
    )
    assert status_of(recorded.id) == "orphaned"


def test_a_starting_instance_that_exited_while_its_zoo_waits_has_failed(
    sleeper: subprocess.Popen[bytes],
) -> None:
    recorded = state.add(make_instance(sleeper, phase="starting"))
    sleeper.kill()
    sleeper.wait()
    assert status_of(recorded.id) == "failed"


def test_a_proxy_pid_reused_by_another_program_makes_the_instance_dead(
    sleeper: subprocess.Popen[bytes],
) -> None:
    """The proxy's start time is recorded and checked, like the engine's."""
    ours = state.add(
        make_instance(
            sleeper,
            proxy_pid=os.getpid(),
            proxy_pid_start=process.process_start_time(os.getpid()),
        )
    )
    reused = state.add(make_instance(sleeper, proxy_pid=os.getpid(), proxy_pid_start="1"))
    assert status_of(ours.id) == "running"
    assert status_of(reused.id) == "dead"


def test_update_names_only_known_fields_and_says_when_the_record_is_gone(
    sleeper: subprocess.Popen[bytes],
) -> None:
    recorded = state.add(make_instance(sleeper, phase="starting"))
    with pytest.raises(TypeError, match="nonsense"):
        state.update(recorded.id, nonsense=1)
    with pytest.raises(TypeError, match="id"):
        state.update(recorded.id, id="other")
    with pytest.raises(ValueError, match="phase"):
        state.update(recorded.id, phase="ready")
    state.remove(recorded.id)
    assert state.update(recorded.id, phase="running") is False


def _old_database(row_pid: int) -> Path:
    path = state.db_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path)
    conn.execute(OLD_SCHEMA)
    conn.execute(
        "INSERT INTO instances VALUES ('old1', 'old-model', 'fake', 'none', 'pytorch', "
        "'old-model', '127.0.0.1', 8100, ?, ?, ?, NULL, NULL, '/tmp/old.log', ?, 1, 0)",
        (row_pid, process.process_start_time(row_pid), row_pid, time.time() - 60),
    )
    conn.commit()
    conn.close()
    return path


def test_an_old_database_keeps_its_rows_and_gains_the_new_columns(
    sleeper: subprocess.Popen[bytes],
) -> None:
    path = _old_database(sleeper.pid)
    before = path.read_bytes()
    [old] = state.list_instances()
    assert (old.id, old.phase, old.status, old.proxy_pid_start) == (
        "old1",
        "running",
        "running",
        None,
    )
    assert path.read_bytes() == before  # reading never rewrites the file

    new = state.add(make_instance(sleeper, phase="starting"))
    assert [i.id for i in state.list_instances()] == ["old1", new.id]
    columns = {row[1] for row in sqlite3.connect(path).execute("PRAGMA table_info(instances)")}
    assert {"phase", "owner_pid", "owner_start", "proxy_pid_start"} <= columns
    [old_again] = [i for i in state.list_instances() if i.id == "old1"]
    assert old_again == old


def test_columns_from_a_newer_zoo_are_ignored(sleeper: subprocess.Popen[bytes]) -> None:
    recorded = state.add(make_instance(sleeper))
    conn = sqlite3.connect(state.db_path())
    conn.execute("ALTER TABLE instances ADD COLUMN gpu TEXT")
    conn.commit()
    conn.close()
    assert [i.id for i in state.list_instances()] == [recorded.id]


# --- damaged or unwritable state: one line that names the file, and nothing overwritten ---


def _valid_database_bytes(proc: subprocess.Popen[bytes]) -> bytes:
    for _ in range(40):
        state.add(make_instance(proc, model="m" * 200))
    data = state.db_path().read_bytes()
    state.db_path().unlink()
    return data


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_damaged_database_is_reported_and_left_as_it_is(
    damage: str, sleeper: subprocess.Popen[bytes]
) -> None:
    path = state.db_path()
    if damage == "garbage":
        state.private_dirs()
        path.write_bytes(os.urandom(5000))
    else:
        data = _valid_database_bytes(sleeper)
        assert len(data) > 8192
        path.write_bytes(data[: len(data) // 2])
    before = path.read_bytes()
    for action in (state.list_instances, lambda: state.add(make_instance(sleeper))):
        with pytest.raises(state.StateError) as caught:
            action()
        message = str(caught.value)
        assert f"{path} is damaged" in message
        assert f"mv {path} {path}.broken" in message
        assert "\n" not in message
    assert path.read_bytes() == before


def test_a_folder_in_place_of_the_database_is_one_line() -> None:
    state.db_path().mkdir(parents=True)
    for action in (state.list_instances, lambda: state.remove("x")):
        with pytest.raises(state.StateError, match=r"is damaged \(it is not a regular file\)"):
            action()


def test_a_state_folder_under_a_regular_file_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sleeper: subprocess.Popen[bytes]
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    monkeypatch.setenv("ZOO_STATE_DIR", str(blocker / "state"))
    assert state.list_instances() == []  # nothing recorded there: nothing to list
    for action in (
        lambda: state.add(make_instance(sleeper)),
        lambda: state.new_log("abc"),
    ):
        with pytest.raises(state.StateError) as caught:
            action()
        assert f"{blocker} is a file, not a folder" in str(caught.value)
        assert "ZOO_STATE_DIR" in str(caught.value)
    assert blocker.read_text() == "x"


@pytest.fixture
def read_only_state(sleeper: subprocess.Popen[bytes]) -> Iterator[state.Instance]:
    """The state folder with one record, then bind-mounted read-only over itself (root
    ignores permission bits, so chmod would prove nothing)."""
    recorded = state.add(make_instance(sleeper))
    folder = state.db_path().parent
    mounted = subprocess.run(
        ["mount", "--bind", "-o", "ro", str(folder), str(folder)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot bind-mount read-only here: {mounted.stderr.decode().strip()}")
    try:
        yield recorded
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def test_a_read_only_state_folder_still_lists_and_refuses_writes_in_one_line(
    read_only_state: state.Instance, sleeper: subprocess.Popen[bytes]
) -> None:
    assert [i.id for i in state.list_instances()] == [read_only_state.id]
    for action in (
        lambda: state.add(make_instance(sleeper)),
        lambda: state.remove(read_only_state.id),
        lambda: state.new_log("abc"),
    ):
        with pytest.raises(state.StateError) as caught:
            action()
        message = str(caught.value)
        assert "cannot write zoo's" in message and "ZOO_STATE_DIR" in message
        assert "\n" not in message


def test_ps_on_a_damaged_database_prints_one_line() -> None:
    state.private_dirs()
    state.db_path().write_bytes(b"this is not sqlite" * 100)
    done = subprocess.run([sys.executable, "-m", "zoo", "ps"], capture_output=True, text=True)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.startswith(f"zoo: error: zoo's instance database {state.db_path()}")
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


# --- finding instances by what a user types ---


def test_find_refuses_an_empty_reference(sleeper: subprocess.Popen[bytes]) -> None:
    state.add(make_instance(sleeper))
    for ref in ("", "  "):
        with pytest.raises(UsageError, match="empty"):
            state.find(ref)


def test_find_one_lists_the_instances_an_ambiguous_name_fits(
    sleeper: subprocess.Popen[bytes],
) -> None:
    first = state.add(make_instance(sleeper, id="aaaa1111"))
    second = state.add(make_instance(sleeper, id="aaaa2222"))
    with pytest.raises(UsageError) as caught:
        state.find_one("tiny-model")
    assert first.id in str(caught.value) and second.id in str(caught.value)
    with pytest.raises(UsageError, match="matches several"):
        state.find_one("aaaa")
    assert state.find_one("aaaa2").id == second.id
    assert state.find_one(first.id).id == first.id
    with pytest.raises(NotFoundError, match="no instance 'bbbb'"):
        state.find_one("bbbb")
