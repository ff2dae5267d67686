"""Speed estimates (zoo.speed, zoo.hardware) and the usable-speed rule of zoo.resolve."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from zoo import hardware
from zoo import quantization as quant
from zoo.catalog.catalog import Catalog
from zoo.catalog.model import Source, Spec
from zoo.engine import Capabilities, Engine
from zoo.errors import UsageError
from zoo.host import BUILTIN_PROFILES, GIB, Gpu, Host, detect_host
from zoo.plugin_contract import capabilities_problems
from zoo.resolve import Request, resolve
from zoo.speed import (
    CHAT_TOKENS,
    TENSOR_PARALLEL_LOSS,
    device_rates,
    estimate_speed,
    tokens_per_second,
)

GB = 1e9


def spec(size: float, activated: float | None = None) -> Spec:
    return Spec(
        "ggufv2", size, ("Q4_K_M",), (Source("huggingface", "o/m", ("Q4_K_M",)),), activated
    )


def two_core_cpu() -> Host:
    """A small VM like the one this project is developed on: 2 cores, ~12 GB/s, 24 GiB."""
    return Host(
        "linux",
        "x86_64",
        24 * GIB,
        cpu_count=2,
        name="2-core",
        memory_bandwidth=12 * GB,
        cpu_flops=hardware.cpu_flops(2, {"avx2"}),
    )


# ---------------------------------------------------------------------------------------------
# The estimate


def test_decode_is_bytes_over_bandwidth_plus_the_fixed_cost() -> None:
    est = estimate_speed(
        spec(8), 4 * 10**9, 0, (10 * GB, 1e12), efficiency=0.5, token_overhead_s=0.1
    )
    assert est is not None
    assert est.bytes_per_token == 4 * 10**9 and est.bandwidth == 10 * GB
    # 4 GB at 5 GB/s effective is 0.8 s, plus 0.1 s: 1/0.9 tokens a second.
    assert est.decode_tokens_per_second == pytest.approx(1 / 0.9)
    # Prefill: 2 FLOPs per parameter at 40 % of 1 TFLOP/s.
    assert est.prefill_tokens_per_second == pytest.approx(0.4e12 / (2 * 8e9))


def test_moe_reads_only_its_active_share() -> None:
    rates = (100 * GB, 1e13)
    dense = estimate_speed(spec(30), 16 * 10**9, 0, rates, efficiency=1, token_overhead_s=0)
    moe = estimate_speed(
        spec(30, activated=3), 16 * 10**9, 0, rates, efficiency=1, token_overhead_s=0
    )
    assert dense is not None and moe is not None
    assert moe.bytes_per_token == pytest.approx(dense.bytes_per_token / 10, rel=1e-6)
    assert moe.decode_tokens_per_second == pytest.approx(10 * dense.decode_tokens_per_second)
    assert moe.prefill_tokens_per_second == pytest.approx(
        10 * (dense.prefill_tokens_per_second or 0)
    )


def test_kv_cache_read_is_a_chat_not_the_whole_context() -> None:
    rates = (10 * GB, 0.0)
    kv = 8 * 10**9  # the planned context's cache
    long = estimate_speed(
        spec(1), 0, kv, rates, efficiency=1, token_overhead_s=0, context_tokens=8 * CHAT_TOKENS
    )
    short = estimate_speed(
        spec(1), 0, kv, rates, efficiency=1, token_overhead_s=0, context_tokens=CHAT_TOKENS
    )
    assert long is not None and short is not None
    assert long.bytes_per_token == kv // 8  # CHAT_TOKENS of the 8 × CHAT_TOKENS cached
    assert short.bytes_per_token == kv // 2  # at most half a context
    assert long.prefill_tokens_per_second is None  # no FLOP/s known: no prefill figure


def test_unknown_rates_give_no_estimate() -> None:
    assert estimate_speed(spec(8), 10**9, 0, None, efficiency=0.5, token_overhead_s=0) is None
    host = Host("linux", "x86_64", 64 * GIB, gpus=(Gpu("Some Future GPU", 80 * GIB),))
    assert hardware.gpu_rates("Some Future GPU") == (None, None)
    assert device_rates(host, "cuda", 1, "layers") is None
    assert device_rates(replace(host, memory_bandwidth=None), "cpu", 0, "layers") is None


def test_gpu_rates_by_the_most_specific_name() -> None:
    assert hardware.gpu_rates("NVIDIA H100 80GB HBM3")[0] == 3350 * GB
    assert hardware.gpu_rates("NVIDIA H100 PCIe")[0] == 2000 * GB
    assert hardware.gpu_rates("NVIDIA GeForce RTX 4090")[0] == 1008 * GB


def test_tensor_parallel_adds_bandwidth_layer_split_does_not() -> None:
    h100 = BUILTIN_PROFILES["h100-80g"].gpus[0]
    host = replace(BUILTIN_PROFILES["h100-80g"], gpus=(h100, h100))
    one = h100.bandwidth or 0.0
    tensor = device_rates(host, "cuda", 2, "tensor-parallel")
    layers = device_rates(host, "cuda", 2, "layers")
    assert tensor is not None and layers is not None
    # Side by side: both GPUs' bandwidth, less the all-reduce between layers.
    assert tensor[0] == pytest.approx(2 * one * TENSOR_PARALLEL_LOSS)
    # One after the other: each token waits for every GPU in turn.
    assert layers[0] == pytest.approx(one)
    # On one GPU both are that GPU.
    assert device_rates(host, "cuda", 1, "tensor-parallel") == (one, h100.flops)


def test_tokens_per_second_text() -> None:
    assert tokens_per_second(35.4) == "~35 tok/s"
    assert tokens_per_second(0.84) == "~0.8 tok/s"
    assert tokens_per_second(None) == "?"


# ---------------------------------------------------------------------------------------------
# This machine's bandwidth: measured once, cached, overridable


def test_bandwidth_is_measured_once_then_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(hardware.BANDWIDTH_ENV, raising=False)
    first = hardware.measured_bandwidth("cpu A", tmp_path)
    assert first is not None and 0.1 * GB < first < 10_000 * GB
    saved = json.loads((tmp_path / "host-bandwidth.json").read_text())
    key = f"{hardware.MEASURE_METHOD} cpu A"
    assert saved["key"] == key and saved["bytes_per_second"] == first
    # A second call reads the cache: a planted figure comes back, nothing is measured.
    (tmp_path / "host-bandwidth.json").write_text(
        json.dumps({"key": key, "bytes_per_second": 1.5e9})
    )
    assert hardware.measured_bandwidth("cpu A", tmp_path) == 1.5e9
    # Another CPU (key) is measured afresh.
    assert hardware.measured_bandwidth("cpu B", tmp_path) != 1.5e9
    # So is a figure an older way of measuring cached (the method is part of the key).
    (tmp_path / "host-bandwidth.json").write_text(
        json.dumps({"key": "cpu A", "bytes_per_second": 1.5e9})
    )
    assert hardware.measured_bandwidth("cpu A", tmp_path) != 1.5e9


def test_bandwidth_override_and_unwritable_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(hardware.BANDWIDTH_ENV, "42")
    assert hardware.measured_bandwidth("any", tmp_path) == 42 * GB
    assert not (tmp_path / "host-bandwidth.json").exists()  # the override measures nothing
    for nonsense in ("nonsense", "inf", "nan", "-3", "0"):
        monkeypatch.setenv(hardware.BANDWIDTH_ENV, nonsense)
        with pytest.raises(UsageError, match="is not a memory bandwidth"):
            hardware.measured_bandwidth("any", tmp_path)
    monkeypatch.delenv(hardware.BANDWIDTH_ENV)
    blocked = tmp_path / "file"
    blocked.write_text("")  # a file where the cache folder should be: never an error
    assert (hardware.measured_bandwidth("any", blocked) or 0) > 0


def test_detected_host_carries_the_rates(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(hardware.BANDWIDTH_ENV, "12.5")
    host = detect_host()
    assert host.memory_bandwidth == 12.5 * GB
    assert (host.cpu_flops or 0) > 0
    assert Host.from_json(json.loads(json.dumps(host.to_json()))) == host


def test_commands_that_do_not_plan_never_measure(tmp_path: Path) -> None:
    """`zoo list` (and the catalog commands) must not pay for a bandwidth measurement."""
    env = {"ZOO_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    code = (
        "import sys, zoo.hardware as h\n"
        "h.measure_bandwidth = lambda *a, **k: sys.exit('measured')\n"
        "from zoo.cli.app import main\n"
        "try:\n"
        "    main(['list'])\n"
        "except SystemExit as e:\n"
        "    assert e.code in (0, None), e.code\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert not (tmp_path / "cache" / "host-bandwidth.json").exists()


# ---------------------------------------------------------------------------------------------
# The plugin contract


def test_contract_rejects_bad_speed_figures() -> None:
    good = Capabilities(formats={"ggufv2": ("*",)})
    assert not any("decode_efficiency" in p for p in capabilities_problems(good))
    for bad in (0, 1.5, -0.2, float("nan"), True, "0.5"):
        problems = capabilities_problems(replace(good, decode_efficiency=bad))
        assert any("decode_efficiency" in p for p in problems), bad
    for bad in (-0.001, float("inf"), 120):
        problems = capabilities_problems(replace(good, token_overhead_s=bad))
        assert any("token_overhead_s" in p for p in problems), bad


def test_shipped_engines_set_measured_figures(engines: dict[str, Engine]) -> None:
    for name, engine in engines.items():
        for caps in (engine.capabilities, *engine.variants):
            assert capabilities_problems(caps) == [], (name, caps.variant)
            # Set by each plugin (bench/speed_estimate.py), not zoo.engine's defaults.
            assert (caps.decode_efficiency, caps.token_overhead_s) != (0.5, 0.005), name


# ---------------------------------------------------------------------------------------------
# The usable-speed rule


def test_two_core_cpu_gets_a_small_or_moe_model_at_4_bits(
    catalog: Catalog, engines: dict[str, Engine]
) -> None:
    host = two_core_cpu()
    plan = resolve(catalog, Request("qwen3"), engines, host)
    assert plan.speed is not None and plan.speed.decode_tokens_per_second >= 8
    small_or_moe = plan.spec.size <= 8 or plan.spec.activated_size is not None
    assert small_or_moe, (plan.spec.size, plan.quantization)
    assert quant.bits_per_weight(plan.quantization, fmt=plan.spec.format) >= 4
    # Without the speed rule the same host gets the largest model that fits, far too slow.
    slow = resolve(catalog, Request("qwen3", min_speed=0), engines, host)
    assert slow.spec.size == 32 and slow.speed is not None
    assert slow.speed.decode_tokens_per_second < 2
    assert slow.min_speed == 0 and plan.min_speed == 8


def test_h100_still_gets_the_big_model(catalog: Catalog, engines: dict[str, Engine]) -> None:
    plan = resolve(catalog, Request("qwen3"), engines, BUILTIN_PROFILES["h100-80g"])
    sizes = [s.size for s in catalog.get("qwen3").specs if s.size <= 40]
    assert plan.spec.size == max(sizes) and plan.device == "cuda"
    assert plan.speed is not None and plan.speed.decode_tokens_per_second >= 8
    assert any(r.startswith("order: a usable speed first") for r in plan.reasons)


def test_nothing_usable_picks_the_fastest_and_says_slow(
    catalog: Catalog, engines: dict[str, Engine]
) -> None:
    host = replace(two_core_cpu(), memory_bandwidth=0.5 * GB)
    plan = resolve(catalog, Request("qwen3"), engines, host)
    got = plan.speed.decode_tokens_per_second if plan.speed else None
    assert got is not None and got < 8
    faster = [
        c
        for c in plan.candidates
        if c.kept
        and (c.decode_tps or 0) > got
        and quant.bits_per_weight(c.quantization, fmt=c.format) >= 4
    ]
    assert faster == []  # the fastest candidate of 4 bits or better
    assert any(r.startswith("slow here: no candidate reaches 8 tokens/s") for r in plan.reasons)


def test_speed_is_not_bought_with_fewer_than_4_bits(
    catalog: Catalog, engines: dict[str, Engine]
) -> None:
    # One size only, on a desktop: a 1-bit file would reach 8 tok/s, but 4 bits are kept.
    plan = resolve(
        catalog, Request("seed-coder-8b-reasoning"), engines, BUILTIN_PROFILES["cpu-24g"]
    )
    assert quant.bits_per_weight(plan.quantization, fmt=plan.spec.format) >= 4
    quick = [c for c in plan.candidates if c.kept and (c.decode_tps or 0) >= 8]
    assert quick and all(quant.bits_per_weight(c.quantization, fmt=c.format) < 4 for c in quick)
    assert any("only quantizations of fewer than 4 bits reach" in r for r in plan.reasons)


def test_min_speed_moves_the_bar(catalog: Catalog, engines: dict[str, Engine]) -> None:
    host = two_core_cpu()
    usual = resolve(catalog, Request("qwen3"), engines, host)
    patient = resolve(catalog, Request("qwen3", min_speed=3), engines, host)
    assert patient.spec.size > usual.spec.size
    assert patient.speed is not None and patient.speed.decode_tokens_per_second >= 3
    assert patient.min_speed == 3


def test_every_builtin_profile_carries_its_rates() -> None:
    """Plans for the reference profiles (docs, `--host-profile`) always show a speed."""
    for name, host in BUILTIN_PROFILES.items():
        assert host.memory_bandwidth and host.cpu_flops, name
        assert all(g.bandwidth and g.flops for g in host.gpus), name
        again = Host.from_json(json.loads(json.dumps(host.to_json())))
        assert again.memory_bandwidth == host.memory_bandwidth, name
