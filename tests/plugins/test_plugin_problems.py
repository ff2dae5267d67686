"""Failures a command met, kept for a later ``zoo plugins``: per plugin version, for a week,
and never at the cost of the command (a damaged file or a read-only state folder)."""

from __future__ import annotations

import json
import os
import time

import pytest

from zoo.plugin_problems import KEEP_SECONDS, problems_file, remember, remembered


def test_the_latest_failure_per_place_is_kept_for_that_version() -> None:
    remember("echo", "0.3", "engine 'echo'.check", "check() raised KeyError: 'a'")
    remember("echo", "0.3", "engine 'echo'.check", "check() raised KeyError: 'b'")
    remember("echo", "0.3", "engine 'echo'.server_command", "server_command() raised OSError")
    assert [(r.where, r.message) for r in remembered("echo", "0.3")] == [
        ("engine 'echo'.check", "check() raised KeyError: 'b'"),
        ("engine 'echo'.server_command", "server_command() raised OSError"),
    ]
    # An upgrade (another version) starts clean; other plugins are separate.
    assert remembered("echo", "0.4") == [] and remembered("other", "0.3") == []
    assert os.stat(problems_file()).st_mode & 0o077 == 0  # private, like the rest of state


def test_old_failures_are_dropped() -> None:
    remember("echo", "0.3", "engine 'echo'.check", "old")
    data = json.loads(problems_file().read_text())
    data["echo"]["engine 'echo'.check"]["when"] = time.time() - KEEP_SECONDS - 1
    problems_file().write_text(json.dumps(data))
    assert remembered("echo", "0.3") == []
    remember("mirror", "1.0", "hub 'mirror'.fetch", "new")
    assert "echo" not in json.loads(problems_file().read_text())  # pruned on the next write


@pytest.mark.parametrize("content", ["not json", "[1, 2]", '{"echo": 3}'])
def test_a_damaged_file_is_read_as_empty_and_rewritten(content: str) -> None:
    problems_file().parent.mkdir(parents=True, exist_ok=True)
    problems_file().write_text(content)
    assert remembered("echo", "0.3") == []
    remember("echo", "0.3", "engine 'echo'.check", "x")
    assert [r.message for r in remembered("echo", "0.3")] == ["x"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_state_folder_never_breaks_the_command() -> None:
    folder = problems_file().parent
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o500)
    try:
        remember("echo", "0.3", "engine 'echo'.check", "x")  # does not raise
        assert remembered("echo", "0.3") == []
    finally:
        folder.chmod(0o700)


def test_an_unwritable_state_path_never_breaks_the_command(
    monkeypatch: pytest.MonkeyPatch, tmp_path: os.PathLike[str]
) -> None:
    blocker = os.path.join(tmp_path, "a-file")
    with open(blocker, "w") as handle:
        handle.write("not a folder")
    monkeypatch.setenv("ZOO_STATE_DIR", os.path.join(blocker, "state"))
    remember("echo", "0.3", "engine 'echo'.check", "x")  # mkdir fails: ignored
    assert remembered("echo", "0.3") == []
