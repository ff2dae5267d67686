"""Careless and hostile ``zoo launch`` flags, through the real command (dry runs: no engine)."""

from __future__ import annotations

import pytest
from hostile_helpers import assert_json_error, assert_one_error_line, zoo

MODEL = "smollm2-135m-instruct"  # shipped: llama.cpp's runner parses its flags with argparse


@pytest.mark.parametrize("engine_arg", ["--hos", "--ho=0.0.0.0", "--po", "--bin", "--lis"])
def test_an_abbreviated_address_flag_after_the_double_dash(engine_arg: str) -> None:
    # Was: passed on as is, and argparse (llama.cpp's runner, mlx_lm.server) takes any
    # unambiguous prefix, so `-- --hos 0.0.0.0` bound the server to every interface while
    # zoo recorded and printed 127.0.0.1.
    result = zoo("launch", MODEL, "--dry-run", "--", engine_arg, "0.0.0.0")
    flag = engine_arg.split("=", maxsplit=1)[0]
    assert_one_error_line(result, f"the engine argument {flag} would override the address")
    assert_json_error(zoo("launch", MODEL, "--dry-run", "--json", "--", engine_arg, "1"), "usage")


def test_engine_flags_that_only_start_like_an_address_flag_pass() -> None:
    result = zoo("launch", MODEL, "--dry-run", "--", "--hostname-check", "--pooling", "mean")
    assert result.returncode == 0, result.stderr
    assert "--hostname-check --pooling mean" in result.stdout
