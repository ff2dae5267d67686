"""Damaged or hand-made state: zoo never signals a process group it did not start."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time

import pytest
from hostile_helpers import (
    COMMAND_TIMEOUT_S,
    assert_friendly,
    assert_json_error,
    assert_one_error_line,
    zoo,
)

from zoo.runtime import control, process, state


def _record(instance_id: str, pid: int, pgid: int) -> state.Instance:
    return state.add(
        state.Instance(
            id=instance_id,
            model="m",
            engine="fake",
            quantization="none",
            format="pytorch",
            served_name="m",
            host="127.0.0.1",
            port=8000,
            pid=pid,
            pgid=pgid,
            log_path="/nonexistent.log",
            started_at=time.time(),
            detached=True,
            api_key=False,
        )
    )


@pytest.mark.parametrize(("pid", "pgid"), [(0, 0), (-1, -1), (5, 0)])
def test_stop_of_a_record_naming_group_zero_or_below(pid: int, pgid: int) -> None:
    # Was: pgid 0 made `zoo stop` SIGTERM its own process group (the user's shell job: the
    # command died with "Terminated"); -1 was "zoo: error: Invalid argument".
    _record("bad", pid, pgid)
    # Its own session: without the guard, group 0 is this child alone, not the test run.
    result = subprocess.run(
        [sys.executable, "-m", "zoo", "stop", "bad"],
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
        start_new_session=True,
        check=False,
    )
    assert result.returncode == 0, (result.returncode, result.stderr)
    assert_friendly(result)
    assert "cannot be one zoo started; it was left alone" in result.stdout
    assert state.list_instances() == []  # forgotten: the record named no server of ours


def test_stop_never_signals_init(monkeypatch: pytest.MonkeyPatch) -> None:
    # Was: pid 1 is alive and the record has no start time, so it "counted as ours" and
    # stop_group(1) sent SIGTERM to init's group. Signals are recorded here, never sent.
    sent: list[tuple[int, int]] = []
    monkeypatch.setattr(process.os, "killpg", lambda pgid, sig: sent.append((pgid, sig)))
    monkeypatch.setattr(control.process, "group_alive", lambda pgid: True)
    report = control.stop_instance(_record("init", 1, 1), grace=0.1)
    assert [s for s in sent if s[1] != 0] == []
    assert report.stopped == ()
    assert "cannot be one zoo started" in report.left_alone[0]


@pytest.mark.parametrize(
    ("column", "value"), [("pid", "abc"), ("pgid", 2**62), ("port", 1.5), ("started_at", "soon")]
)
def test_a_row_with_values_zoo_never_writes(column: str, value: object) -> None:
    # Was: "internal error: TypeError: '<=' not supported between 'str' and 'int'" (a text
    # pid) or "OverflowError: signed integer is greater than maximum" (from os.kill) on
    # every ps, stop and logs: SQLite keeps any value in any column.
    _record("odd", 12345, 12345)
    with sqlite3.connect(state.db_path()) as conn:
        conn.execute(f"UPDATE instances SET {column} = ?", (value,))  # noqa: S608 - fixed names
    for command in (("ps",), ("stop", "--all"), ("logs", "odd")):
        assert_one_error_line(zoo(*command), "is damaged", f"has {column} = ")
    assert_json_error(zoo("ps", "--json"), "state")
    assert state.db_path().exists()  # left as it is: it may name servers that still run
