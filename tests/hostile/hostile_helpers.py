"""Running the real ``zoo`` command as a user would, and what every bad input must get back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

# Long enough for a cold start on a loaded 2-core machine, short enough that a hang fails fast.
COMMAND_TIMEOUT_S = 60


def zoo(
    *args: str,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = COMMAND_TIMEOUT_S,
) -> subprocess.CompletedProcess[str]:
    """``zoo ARGS`` in a child process (the conftest's ZOO_HOME is inherited), stdin closed."""
    return subprocess.run(
        [sys.executable, "-m", "zoo", *args],
        env={**os.environ, **(env or {})},
        cwd=cwd,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=timeout,
        check=False,
    )


def assert_friendly(result: subprocess.CompletedProcess[str]) -> None:
    """No traceback and no 'internal error' (zoo's report of a bug) anywhere in the output."""
    both = result.stdout + result.stderr
    assert "Traceback" not in both, both
    assert "internal error" not in both, both


def assert_one_error_line(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    """A failed command: non-zero, exactly one ``zoo: error:`` line on stderr naming ``needles``."""
    assert_friendly(result)
    assert result.returncode != 0, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("zoo: error:")]
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def assert_json_error(result: subprocess.CompletedProcess[str], code: str | None = None) -> Any:
    """A failed ``--json`` command: non-zero, stdout is exactly one JSON error object."""
    assert_friendly(result)
    assert result.returncode != 0, result.stdout + result.stderr
    document = json.loads(result.stdout)
    assert set(document) == {"version", "error"}, document
    assert set(document["error"]) == {"code", "message", "hint"}, document
    if code is not None:
        assert document["error"]["code"] == code, document
    return document["error"]
