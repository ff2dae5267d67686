"""``zoo show`` says what ``zoo launch`` would choose with the same settings: the settings
file (min_speed, ``[models."NAME"]`` defaults) and a reference's tag (``qwen3:8b``) are read
by the same function; ``zoo list --size`` reads sizes as ``zoo launch --size`` does; the
header has no padding, and only language models show a decode speed. The shipped catalog
and the real engine plugins, planned for built-in host profiles (nothing is downloaded)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_show_table import zoo

HOST = ("--host-profile", "cpu-24g")


@pytest.fixture(autouse=True)
def plain_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # A developer's own settings must not decide these tests.
    for name in ("ZOO_HUB", "ZOO_CONFIG", "ZOO_ENGINE_OPT_IN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))


def _settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, text: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(text)
    monkeypatch.setenv("ZOO_CONFIG", str(path))


def _launch_choice(capsys: pytest.CaptureFixture[str], model: str) -> tuple[object, ...]:
    code, out, err = zoo(capsys, "launch", model, "--dry-run", "--json", *HOST)
    assert code == 0, err
    plan = json.loads(out)
    return plan["format"], plan["size"], plan["quantization"], plan["engine"]


def _show(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, object]:
    code, out, err = zoo(capsys, "show", *args, "--json", *HOST)
    assert code == 0, err
    here = json.loads(out)["family"]["here"]
    assert isinstance(here, dict)
    return here


def _show_choice(capsys: pytest.CaptureFixture[str], model: str) -> tuple[object, ...]:
    chosen = _show(capsys, model)["recommended"]
    assert isinstance(chosen, dict)
    return chosen["format"], chosen["size"], chosen["quantization"], chosen["engine"]


def test_show_chooses_what_launch_chooses_with_the_settings_file(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    choices = []
    for text in (
        "",
        "min_speed = 0\n",
        'min_speed = 0\n[models."qwen3"]\nquantization = "Q4_K_M"\n',
    ):
        _settings(monkeypatch, tmp_path, text)
        launched = _launch_choice(capsys, "qwen3")
        assert _show_choice(capsys, "qwen3") == launched, text
        code, out, _ = zoo(capsys, "show", "qwen3", *HOST)
        fmt, size, quantization, engine = launched
        assert code == 0
        assert f"chooses {fmt} {size:g}B {quantization} with {engine} (*)" in out, text
        choices.append(launched)
    # Each setting changes the choice here, so an ignored one would be caught above.
    assert len(set(choices)) == 3, choices
    assert choices[2][2] == "Q4_K_M"


def test_list_fits_reads_the_settings_file(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A per-model quantization the family lacks: `zoo launch smollm2-...` fails, so the
    # family does not "fit" (the launch's request, not one of list's own).
    smol = "smollm2-135m-instruct"
    code, out, err = zoo(capsys, "list", "--fits", "--json", *HOST)
    assert code == 0, err
    assert smol in [f["name"] for f in json.loads(out)["families"]]
    _settings(monkeypatch, tmp_path, f'[models."{smol}"]\nquantization = "IQ1_S"\n')
    code, out, err = zoo(capsys, "list", "--fits", "--json", *HOST)
    assert code == 0, err
    assert smol not in [f["name"] for f in json.loads(out)["families"]]


def test_show_with_a_tag_shows_the_builds_it_names(capsys: pytest.CaptureFixture[str]) -> None:
    everything = _show(capsys, "qwen3")["quantizations"]
    assert isinstance(everything, list)
    eight = [r for r in everything if r["size"] == 8]
    assert eight and len(eight) < len(everything)
    here = _show(capsys, "qwen3:8b")
    rows = here["quantizations"]
    assert isinstance(rows, list)

    def facts(row: dict[str, object]) -> dict[str, object]:
        return {k: v for k, v in row.items() if k != "recommended"}

    # The same rows; the mark moves to the best 8B one.
    assert [facts(r) for r in rows] == [facts(r) for r in eight]
    assert [r for r in rows if r["recommended"]] == [here["recommended"]]
    assert _show_choice(capsys, "qwen3:8b") == _launch_choice(capsys, "qwen3:8b")
    one = _show(capsys, "qwen3:8b-q4_k_m")["quantizations"]
    assert isinstance(one, list) and one
    assert {(r["size"], r["quantization"]) for r in one} == {(8, "Q4_K_M")}
    code, out, _ = zoo(capsys, "show", "qwen3:8b", *HOST)
    assert code == 0
    assert "`zoo launch qwen3:8b` chooses ggufv2 8B " in out and " 30B " not in out
    code, out, err = zoo(capsys, "show", "qwen3:7b")
    assert (code, out) == (2, "")
    assert err.startswith("zoo: error: ") and "8b" in err


def test_show_completes_model_names() -> None:
    # The real console script, as bash asks it (tests/cli/test_completion.py's protocol).
    zoo_script = Path(sys.executable).with_name("zoo")
    done = subprocess.run(
        [str(zoo_script), "completion"],
        env={
            **os.environ,
            "COMP_WORDS": "zoo show qwen3-emb",
            "COMP_CWORD": "2",
            "_ZOO_COMPLETE": "complete_bash",
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    found = done.stdout.split()
    assert "qwen3-embedding-0.6b" in found
    assert all(name.startswith("qwen3-emb") for name in found)


def test_list_size_reads_a_mixture_of_experts_size(capsys: pytest.CaptureFixture[str]) -> None:
    def listed(size: str) -> list[str]:
        code, out, err = zoo(capsys, "list", "--size", size, "--json")
        assert code == 0, err
        return [f["name"] for f in json.loads(out)["families"]]

    moe = listed("30B-A3B")
    assert "qwen3" in moe
    # Dense 32B is not 30B-A3B; a 30B with another active size is not either.
    assert "qwen3" not in listed("30B-A9B")
    assert set(moe) <= set(listed("30B"))
    assert "qwen3" in listed("30b-a3b")


@pytest.mark.parametrize("speed", ["-1", "nan", "inf"])
def test_show_refuses_a_min_speed_that_is_not_one(
    capsys: pytest.CaptureFixture[str], speed: str
) -> None:
    code, out, err = zoo(capsys, "show", "qwen3", "--min-speed", speed)
    assert (code, out) == (2, "")
    assert err.startswith("zoo: error: --min-speed") and err.count("\n") == 1, err


def test_show_pads_no_line_and_gives_no_speed_to_embeddings(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = zoo(capsys, "show", "qwen3-embedding-0.6b", *HOST)
    assert code == 0, err
    assert [line for line in out.splitlines() if line != line.rstrip()] == []
    assert "QUANTIZATION" in out and "SPEED" not in out and "tok/s" not in out
    code, out, err = zoo(capsys, "show", "qwen3:8b", *HOST)
    assert code == 0, err
    assert [line for line in out.splitlines() if line != line.rstrip()] == []
    assert "SPEED" in out and "tok/s" in out
