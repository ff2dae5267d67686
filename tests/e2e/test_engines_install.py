"""`zoo engines install NAME` against the real engine plugins and the cached environments."""

from __future__ import annotations

import pytest
from conftest import zoo

pytestmark = pytest.mark.slow


def test_install_builds_once_then_reports_ready() -> None:
    first = zoo("engines", "install", "llamacpp")
    assert "llamacpp: ready" in first.stdout
    again = zoo("engines", "install", "llamacpp")
    assert again.stdout.strip().startswith("llamacpp: ready (environment built at")
    assert again.stderr.strip() == ""  # nothing rebuilt the second time


def test_unknown_engine_is_one_line() -> None:
    done = zoo("engines", "install", "nope", check=False)
    assert done.returncode == 1
    assert done.stderr.startswith("zoo: error: no engine 'nope'; engines: llamacpp, mlx,")
    assert len(done.stderr.strip().splitlines()) == 1
