"""Words reach the engine's server only after `--`: a stray word before it is refused in one
line instead of being passed on (`--explain all` used to end the engine's argv in "all")."""

from __future__ import annotations

import json

import pytest

from zoo.cli.app import _run

MODEL = "smollm2-135m-instruct"


def zoo(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = _run(list(args), as_json="--json" in args, debug=False)
    out, err = capsys.readouterr()
    return status, out, err


def test_a_word_before_the_double_dash_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = zoo(
        capsys, "launch", MODEL, "--hub", "pypi", "--dry-run", "--explain", "all"
    )
    assert status == 2 and out == ""
    assert err.count("\n") == 1 and "unexpected argument 'all'" in err and "after `--`" in err


def test_words_after_the_double_dash_reach_the_engine(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = zoo(capsys, "launch", MODEL, "--hub", "pypi", "--json", "--", "--threads", "1")
    assert status == 0
    plan = json.loads(out)
    assert plan["options"]["extra_args"] == ["--threads", "1"]
    assert plan["command"][-2:] == ["--threads", "1"]


def test_explain_all_in_any_case(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = zoo(capsys, "launch", MODEL, "--hub", "pypi", "--explain=ALL")
    assert status == 0
    assert "dropped:" not in out  # every row, not the grouped summary
