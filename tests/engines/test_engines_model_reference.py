"""`zoo engines --model` takes the references `zoo launch` takes (qwen3:8b) and shows the
estimated speed of each row."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from zoo.cli.app import build_app


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(build_app(), list(args))
    return result.exit_code, result.output


def test_a_tag_narrows_the_rows_to_its_size() -> None:
    code, out = run("engines", "--model", "qwen3:8b", "--host-profile", "cpu-24g", "--json")
    assert code == 0, out
    sizes = {c["size"] for c in json.loads(out)["candidates"]}
    assert sizes == {8.0}
    code, out = run("engines", "--model", "qwen3", "--host-profile", "cpu-24g", "--json")
    assert {c["size"] for c in json.loads(out)["candidates"]} > {8.0}


def test_a_tag_the_family_lacks_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    from zoo.cli.app import _run

    code = _run(
        ["engines", "--model", "qwen3:9b", "--host-profile", "cpu-24g"], as_json=False, debug=False
    )
    _, err = capsys.readouterr()
    assert code == 2
    assert err.count("\n") == 1 and "qwen3 has no size 9b" in err


def test_rows_show_the_estimated_speed() -> None:
    code, out = run("engines", "--model", "qwen3:8b", "--host-profile", "cpu-24g")
    assert code == 0, out
    header, first = out.splitlines()[:2]
    assert "speed" in header.split()
    assert "tok/s" in first
