"""Building an engine environment: pip's steps on one status line (a terminal) or a few plain
lines (no terminal), pip's output in the environment's log, the log named when pip fails.

pip runs for real, with no index and an empty wheel folder, so the install fails at once.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from zoo.plan import Environment
from zoo.runtime import envs

MISSING = "zoo-no-such-package-anywhere==9.9"


def test_pip_steps_are_read_from_pips_lines() -> None:
    assert envs.pip_step("Collecting torch==2.13.0") == "collecting torch==2.13.0"
    assert envs.pip_step("  Downloading six-1.17.0-py2.py3-none-any.whl (11 kB)") == (
        "downloading six-1.17.0-py2.py3-none-any.whl"
    )
    assert envs.pip_step("Installing collected packages: six, iniconfig, xllamacpp") == (
        "installing 3 packages"
    )
    assert (
        envs.pip_step("Successfully installed iniconfig-2.0 six-1.17.0") == "installed 2 packages"
    )
    assert envs.pip_step("  Attempting uninstall: six") is None
    assert envs.pip_step("Requirement already satisfied: six") is None


def test_without_a_terminal_per_package_steps_are_said_now_and_then() -> None:
    said: list[str] = []
    display = envs._BuildDisplay("reqs", said.append, live=False)
    with display:
        for n in range(200):  # pip's lines for a large install, as fast as pip prints them
            display.step(f"collecting pkg{n}")
            display.step(f"downloading pkg{n}-1.0-py3-none-any.whl")
        display.step("installing 200 packages")
    assert [line.split(" (")[0] for line in said] == [
        "  collecting pkg0",
        "  installing 200 packages",
    ]
    assert all("\x1b" not in line and "\r" not in line for line in said)


@pytest.mark.slow
def test_a_failed_install_names_its_log_and_keeps_pips_output_off_the_terminal(
    offline_pip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZOO_ENVS_DIR", str(tmp_path / "envs"))
    said: list[str] = []
    with pytest.raises(envs.EnvError) as failed:
        envs.ensure_env(Environment("reqs", (MISSING,)), said.append)
    log = tmp_path / "envs" / "reqs" / envs.BUILD_LOG
    assert failed.value.hint == f"pip's full output: {log}"
    message = str(failed.value)
    assert message.startswith("could not install reqs's requirements (exit 1): ERROR: ")
    assert f"No matching distribution found for {MISSING}" in message
    text = log.read_text()
    assert "Looking in links" in text and f"No matching distribution found for {MISSING}" in text
    # What was said: zoo's own lines and pip's step, never pip's lines themselves.
    assert said[0].startswith("Creating the reqs environment in ") and str(log) in said[0]
    assert said[1] == f"Installing {MISSING}"
    assert said[2].startswith("  resolving the requirements (")
    assert not any("Looking in links" in line or "ERROR" in line for line in said)
    assert not envs.env_status(Environment("reqs", (MISSING,))).ready


CHILD = f"""
import sys
from zoo.plan import Environment
from zoo.runtime import envs
try:
    envs.ensure_env(Environment("reqs", ({MISSING!r},)), print, live=True)
except envs.EnvError as error:
    print("FAILED:", error, flush=True)
"""


@pytest.mark.slow
def test_on_a_terminal_the_steps_are_one_redrawn_status_line(
    offline_pip: Path, tmp_path: Path
) -> None:
    import pty

    env = dict(os.environ, ZOO_ENVS_DIR=str(tmp_path / "envs"), COLUMNS="120", TERM="xterm")
    primary, secondary = pty.openpty()
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD], stdin=secondary, stdout=secondary, stderr=secondary, env=env
    )
    os.close(secondary)
    seen = b""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            chunk = os.read(primary, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    child.wait(timeout=30)
    os.close(primary)
    shown = seen.decode(errors="replace")
    assert "Building the reqs environment: resolving the requirements" in shown
    assert "\x1b[" in shown  # redrawn in place (rich), not a line per update
    assert "Looking in links" not in shown  # pip's own output stays in the log
    assert f"pip's full output: {tmp_path / 'envs' / 'reqs' / envs.BUILD_LOG}" in shown
