"""`zoo launch --explain`: kept candidates listed, dropped ones grouped by reason (`=all`: every
row), tokens/s per candidate; `--dry-run` shows the speed; `--min-speed` reaches the choice."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from zoo.cli.app import build_app, main
from zoo.speed import tokens_per_second

MODEL, PROFILE = "seed-oss", "m2-32g"
GROUP = re.compile(r"^  x (\d+) dropped(?: \(([^)]*)\))?: (.+)$")


def run(*args: str) -> str:
    result = CliRunner().invoke(build_app(), list(args))
    assert result.exit_code == 0, result.output
    return result.output


def plan_json(*args: str) -> dict[str, object]:
    data: dict[str, object] = json.loads(run("launch", "--json", *args))
    return data


def candidates(*args: str) -> list[dict[str, object]]:
    found = plan_json(*args)["candidates"]
    assert isinstance(found, list)
    return found


def section(out: str) -> list[str]:
    """The lines after the candidates heading."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("candidates"))
    return lines[start + 1 :]


def _without_need(reason: str) -> str:
    """A memory reason as its group says it: no need, the budget at one decimal (a need close
    to the budget gets more decimals in its own reason: ``zoo.memory.gib_pair``)."""
    found = re.match(r"^needs [^,]+, more than the ([\d.]+) GiB (.*)$", reason)
    return f"needs more than the {float(found[1]):.1f} GiB {found[2]}" if found else reason


def test_dropped_candidates_are_grouped_by_reason_and_kept_ones_listed() -> None:
    every = candidates(MODEL, "--host-profile", PROFILE)
    kept = [c for c in every if c["kept"]]
    dropped = [c for c in every if not c["kept"]]
    assert kept and len(dropped) > 10
    out = run("launch", MODEL, "--explain", "--host-profile", PROFILE)
    lines = section(out)
    groups = [GROUP.match(line) for line in lines if line.startswith("  x ")]
    assert all(groups)
    # Every dropped candidate is counted once, in fewer lines than there are candidates.
    assert sum(int(g[1]) for g in groups if g) == len(dropped)
    assert len(groups) < len(dropped)
    # One line per reason: the reasons in the plan, with each need taken out of memory ones.
    reasons = {_without_need(str(c["reason"])) for c in dropped}
    assert {g[3].rsplit(": ", 1)[0] for g in groups if g} == reasons
    # The memory group (they ran here, they did not fit) comes first and names its members.
    first = groups[0]
    assert first is not None and first[2] is None  # several engines: each entry names one
    assert first[3].startswith("needs more than the 24.0 GiB of unified memory usable here: ")
    assert "transformers pytorch 36B none" in first[3] and "llamacpp ggufv2 36B Q8_0" in first[3]
    # A group of one engine and format says them once.
    assert any(
        g and g[2] == "llamacpp, gptq" and g[3].endswith(": 36B Int8, 36B Int4, 36B Int3")
        for g in groups
    )
    # Kept candidates: one row each, best first, the choice marked.
    rows = [line for line in lines if line.startswith(("  * ", "    "))]
    assert len(rows) == len(kept)
    assert rows[0].split()[1:5] == [
        kept[0]["engine"],
        kept[0]["format"],
        "36B",
        kept[0]["quantization"],
    ]
    assert "--explain=all" in out


@pytest.mark.parametrize("spelling", [["--explain=all"], ["--explain-all"]])
def test_explain_all_prints_one_row_per_candidate(spelling: list[str]) -> None:
    every = candidates(MODEL, "--host-profile", PROFILE)
    out = run("launch", MODEL, *spelling, "--host-profile", PROFILE)
    rows = [line for line in section(out) if line.startswith(("  * ", "    ", "  x "))]
    assert len(rows) == len(every)
    assert not any(GROUP.match(line) for line in rows)
    for row, c in zip(rows, every, strict=True):
        assert row.endswith(str(c["reason"])) and (row[2] == "x") == (not c["kept"])


def test_explain_is_a_plain_flag_anywhere_on_the_line() -> None:
    # An option with an optional value would swallow the model name here.
    out = run("launch", "--explain", MODEL, "--host-profile", PROFILE)
    assert "dropped" in out and "why:" in out
    # Words after `--` go to the engine as they are: `--explain=all` there is not zoo's.
    argv = plan_json(MODEL, "--host-profile", PROFILE, "--", "--explain=all")["command"]
    assert isinstance(argv, list) and "--explain=all" in argv


def test_each_candidate_row_shows_its_estimated_tokens_per_second() -> None:
    every = candidates(MODEL, "--host-profile", PROFILE)
    out = run("launch", MODEL, "--explain=all", "--host-profile", PROFILE)
    rows = [line for line in section(out) if line.startswith(("  * ", "    ", "  x "))]
    for row, c in zip(rows, every, strict=True):
        tps = c["decode_tps"]
        assert isinstance(tps, float | None)
        shown = tokens_per_second(tps) if tps is not None else "-"
        assert f" {shown}  " in row, row
    assert any(c["decode_tps"] for c in every) and any(c["decode_tps"] is None for c in every)


def test_dry_run_shows_the_speed_or_says_it_is_unknown(tmp_path: Path) -> None:
    plan = plan_json("smollm2-135m-instruct", "--host-profile", "cpu-8g")
    speed = plan["speed"]
    assert isinstance(speed, dict)
    out = run("launch", "smollm2-135m-instruct", "--dry-run", "--host-profile", "cpu-8g")
    rows = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    decode = tokens_per_second(speed["decode_tokens_per_second"])
    assert rows["speed"].strip().startswith(f"{decode} decoding")
    # A machine whose memory bandwidth is unknown gets no guess.
    from zoo.host import load_host_profile

    data = load_host_profile("cpu-8g").to_json()
    data.update(name="no-bandwidth", memory_bandwidth=None)
    profile = tmp_path / "host.json"
    profile.write_text(json.dumps(data))
    out = run("launch", "smollm2-135m-instruct", "--dry-run", "--host-profile", str(profile))
    rows = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    assert rows["speed"].strip().startswith("unknown on this device")


def test_min_speed_reaches_the_choice(capsys: pytest.CaptureFixture[str]) -> None:
    # Qwen3 on a 24 GB CPU: a usable speed (8 tok/s) wants a small model; with any speed
    # accepted the largest that fits wins, far slower.
    default = plan_json("qwen3", "--host-profile", "cpu-24g")
    anything = plan_json("qwen3", "--host-profile", "cpu-24g", "--min-speed", "0")
    assert (default["min_speed"], anything["min_speed"]) == (8.0, 0.0)
    fast, big = default["candidates"][0], anything["candidates"][0]  # type: ignore[index]
    assert fast["decode_tps"] >= 8 > big["decode_tps"]
    assert big["size"] > fast["size"]
    with pytest.raises(SystemExit) as done:
        main(["launch", "qwen3", "--dry-run", "--min-speed", "-1"])
    err = capsys.readouterr().err
    assert done.value.code == 2 and err.count("\n") == 1
    assert "--min-speed -1" in err and "0 or more" in err
