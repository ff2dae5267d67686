"""Hostile or mistaken input to the settings and references, through the real CLI entry: a file
nested or grown past reason, speeds that compare as nothing (nan, inf, negative), per-model
defaults the family or the engines lack, and control characters in a reference. Each is one
line on stderr, exit status 2, naming where the value came from."""

from __future__ import annotations

from pathlib import Path

import pytest

from zoo import config
from zoo.cli.app import main

SMOL = "smollm2-135m-instruct"


def _zoo(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as done:
        main(list(args))
    out, err = capsys.readouterr()
    return int(done.value.code or 0), out, err


def _one_error(err: str) -> str:
    assert err.startswith("zoo: error: "), err
    assert err.count("\n") == 1, err
    return err


def test_a_deeply_nested_file_is_one_line(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_file.write_text("hub = " + "[" * 5000 + "]" * 5000 + "\n")
    code, out, err = _zoo(capsys, "config", "show")
    assert (code, out) == (2, "")
    assert (
        _one_error(err) == f"zoo: error: {config_file}: not valid TOML: values nested too deeply\n"
    )


def test_a_file_over_the_limit_is_refused_unread(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Valid TOML (a comment), so only the size can refuse it.
    config_file.write_text("#" * config.MAX_BYTES + "\nport = 9000\n")
    code, _, err = _zoo(capsys, "config", "show")
    assert code == 2
    assert f"the settings file {config_file} is larger than 1 MiB" in _one_error(err)
    config_file.write_text("#" * (config.MAX_BYTES - 20) + "\nport = 9000\n")
    code, out, _ = _zoo(capsys, "config", "show")
    assert code == 0 and "9000" in out


@pytest.mark.parametrize("text", ["nan", "inf", "-inf", "-1"])
def test_the_files_min_speed_must_be_finite_and_not_negative(
    config_file: Path, capsys: pytest.CaptureFixture[str], text: str
) -> None:
    config_file.write_text(f"hub = 'auto'\nmin_speed = {text}\n")
    code, _, err = _zoo(capsys, "config", "show")
    assert code == 2
    assert _one_error(err).startswith(f"zoo: error: {config_file}:2: min_speed {text} is not a")


def test_a_huge_min_speed_is_allowed(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # A finite speed nothing reaches means "take the fastest": a choice, not a mistake.
    config_file.write_text("min_speed = 1e300\n")
    code, out, _ = _zoo(capsys, "config", "show")
    assert code == 0 and "1e+300 tok/s" in out
    code, out, _ = _zoo(capsys, "launch", SMOL, "--dry-run", "--min-speed", "1e300")
    assert code == 0, out


@pytest.mark.parametrize("command", ["show", "pull", "run", "launch", "download"])
@pytest.mark.parametrize("value", ["nan", "inf", "-1"])
def test_every_command_with_min_speed_checks_it(
    isolated_zoo: Path, capsys: pytest.CaptureFixture[str], command: str, value: str
) -> None:
    assert "--min-speed" in _help(capsys, command)
    code, out, err = _zoo(capsys, command, SMOL, f"--min-speed={value}")
    assert (code, out) == (2, "")
    assert _one_error(err).startswith(f"zoo: error: --min-speed {value} is not a number")


def _help(capsys: pytest.CaptureFixture[str], command: str) -> str:
    code, out, _ = _zoo(capsys, command, "--help")
    assert code == 0
    return out


@pytest.mark.parametrize(
    ("setting", "said"),
    [
        ('quantization = "ZZZ"', "has no quantization 'ZZZ'"),
        ('format = "nope"', "has no 'nope' format"),
        ('size = "999B"', "has no size 999"),
        ("context = 99999999", "supports a context of at most"),
    ],
)
def test_a_per_model_default_the_family_lacks_names_the_file(
    config_file: Path, capsys: pytest.CaptureFixture[str], setting: str, said: str
) -> None:
    config_file.write_text(f'port = 9000\n\n[models."{SMOL}"]\n{setting}\n')
    code, out, err = _zoo(capsys, "launch", SMOL, "--dry-run")
    assert (code, out) == (2, "")
    key = setting.split(maxsplit=1)[0]
    assert _one_error(err).startswith(f"zoo: error: {config_file}:4: [models.{SMOL}] {key}: ")
    assert said in err


def test_an_unknown_engine_in_the_file_names_the_file_and_the_engines(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_file.write_text(f'[models."{SMOL}"]\nengine = "llama.cpp"\n')
    code, _, err = _zoo(capsys, "launch", SMOL, "--dry-run")
    assert code == 2
    assert _one_error(err).startswith(
        f"zoo: error: {config_file}:2: [models.{SMOL}] engine: unknown engine 'llama.cpp'"
    )
    assert "engines: " in err and "llamacpp" in err
    # The same default through another command that reads the file's defaults.
    code, _, err2 = _zoo(capsys, "pull", SMOL)
    assert (code, err2) == (2, err)


def test_a_flag_overrides_a_bad_default_and_a_flags_mistake_is_not_blamed_on_the_file(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_file.write_text(f'[models."{SMOL}"]\nquantization = "ZZZ"\n')
    code, out, _ = _zoo(capsys, "launch", SMOL, "--dry-run", "-q", "q4_1")
    assert code == 0, out
    code, _, err = _zoo(capsys, "launch", SMOL, "--dry-run", "--engine", "nope")
    assert code == 1 and "unknown engine 'nope'" in err and str(config_file) not in err


def test_a_control_character_in_a_per_model_default_is_escaped(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_file.write_text(f'[models."{SMOL}"]\nformat = "gguf\\u0007"\n')
    code, _, err = _zoo(capsys, "launch", SMOL, "--dry-run")
    assert code == 2 and "\x07" not in err
    assert f"{config_file}:2: [models.{SMOL}] format: " in _one_error(err) and "gguf\\x07" in err
    code, out, _ = _zoo(capsys, "config", "show")
    assert code == 0 and "\x07" not in out and "gguf\\x07" in out


def test_the_docstring_example_engine_is_a_real_engine() -> None:
    from zoo.plugins import get_engines

    (line,) = [line for line in (config.__doc__ or "").splitlines() if "engine =" in line]
    assert line.split('"')[1] in get_engines()


@pytest.mark.parametrize(
    ("args", "status"),
    [
        (["qwen3:8b\x07"], 2),  # no such quantization
        (["qwen3:\x1b[2J"], 2),
        (["qwen3:8b-\x07"], 2),  # a size, then no such quantization
        (["qwen3:8b-q4_k_m", "--quantization", "q8\x07"], 2),  # a tag and a flag disagree
        (["\x07:8b"], 1),  # no such model
    ],
)
def test_control_characters_in_a_reference_are_shown_escaped(
    isolated_zoo: Path, capsys: pytest.CaptureFixture[str], args: list[str], status: int
) -> None:
    code, out, err = _zoo(capsys, "launch", *args, "--dry-run")
    assert (code, out) == (status, "")
    assert "\x07" not in err and "\x1b" not in err
    assert "\\x07" in err or "\\x1b" in err
    _one_error(err)
