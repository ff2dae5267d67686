"""Host detection and profiles, quantization bits and precision, memory estimates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zoo import quantization as quant
from zoo.catalog.model import Source, Spec
from zoo.errors import UsageError
from zoo.host import (
    BUILTIN_PROFILES,
    GIB,
    Host,
    detect_host,
    load_host_profile,
    parse_cpu_bf16,
    parse_nvidia_smi,
)
from zoo.memory import estimate, kv_bytes_per_token


def test_detect_this_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZOO_ENGINE_OPT_IN", "vllm-cpu, mlx-cpu")
    host = detect_host()
    assert host.os in ("linux", "darwin", "windows") and host.ram_bytes > 0
    assert host.cpu_count >= 1 and host.opt_in == ("vllm-cpu", "mlx-cpu")
    assert Host.from_json(json.loads(json.dumps(host.to_json()))) == host


def test_nvidia_smi_parsing() -> None:
    gpus = parse_nvidia_smi("NVIDIA H100 80GB HBM3, 81559, 9.0\nTesla T4, 15360, 7.5\n\n")
    assert [(g.name, g.compute_capability, g.has_bf16) for g in gpus] == [
        ("NVIDIA H100 80GB HBM3", (9, 0), True),
        ("Tesla T4", (7, 5), False),
    ]
    assert gpus[0].memory_bytes == 81559 * 1024 * 1024
    assert parse_nvidia_smi("garbage\n,,\nname, [N/A], 8.0") == ()


@given(st.text())
def test_nvidia_smi_parser_never_crashes(text: str) -> None:
    parse_nvidia_smi(text)


def test_cpu_bf16_flag() -> None:
    assert parse_cpu_bf16("processor: 0\nflags\t: fpu avx512f avx512_bf16 amx_tile\n")
    assert not parse_cpu_bf16("flags\t: fpu sse avx2\n")
    assert parse_cpu_bf16("Features\t: fp asimd bf16\n")


def test_profiles_by_name_and_file(tmp_path: Path) -> None:
    assert load_host_profile("h100-80g").cuda_gpus[0].compute_capability == (9, 0)
    path = tmp_path / "box.json"
    path.write_text(json.dumps(BUILTIN_PROFILES["m2-32g"].to_json() | {"name": "my mac"}))
    mac = load_host_profile(path)
    assert mac.apple_silicon and mac.kind == "apple" and mac.name == "my mac"
    with pytest.raises(UsageError, match="no host profile 'nope'"):
        load_host_profile("nope")
    path.write_text('{"os": "linux"}')
    with pytest.raises(UsageError, match="invalid host profile"):
        load_host_profile(path)


@pytest.mark.parametrize(
    ("name", "fmt", "bits"),
    [
        ("Q4_K_M", "ggufv2", 4.80),
        ("q4_k_m", None, 4.80),
        ("Q8_0", "ggufv2", 8.5),
        ("BF16", None, 16),
        ("none", "pytorch", 16),
        ("none", "fp8", 8.4),  # an fp8 repository "as published" is FP8
        ("Int4", "gptq", 4.6),
        ("4bit", "mlx", 4.5),
        ("4bit", "awq", 4.6),  # same word, another layout
        ("IQ1_S", "ggufv2", 1.56),
        ("q6_k_m", "ggufv2", 6.56),
    ],
)
def test_bits_per_weight(name: str, fmt: str | None, bits: float) -> None:
    assert quant.bits_per_weight(name, fmt=fmt) == pytest.approx(bits)


def test_precision_follows_the_format_guide() -> None:
    def order(names: list[str], **hw: bool) -> list[str]:
        return sorted(names, key=lambda n: -quant.precision_score(n, **hw))

    names = ["Q4_K_M", "BF16", "F16", "Q8_0", "IQ3_M", "bf16_q8_0"]
    assert order(names, bf16=True, gpu=True) == [
        "BF16",
        "F16",
        "bf16_q8_0",
        "Q8_0",
        "Q4_K_M",
        "IQ3_M",
    ]
    # Without BF16, BF16 falls back to FP32 and slows down: after the 4-bit quants.
    assert order(names, bf16=False, gpu=False) == [
        "F16",
        "Q8_0",
        "bf16_q8_0",
        "Q4_K_M",
        "BF16",
        "IQ3_M",
    ]


@given(st.text(max_size=30))
def test_quantization_info_is_total(name: str) -> None:
    info = quant.info(name)
    assert info.bits > 0


def test_memory_estimate() -> None:
    spec = Spec("ggufv2", 8, ("Q4_K_M",), (Source("huggingface", "o/m", ("Q4_K_M",)),))
    est = estimate(None, spec, "Q4_K_M", 8192, 300 * 1024**2)
    assert est.weights_bytes == int(8e9 * 4.80 / 8)
    assert kv_bytes_per_token(None, spec) == pytest.approx(136 * 1024, rel=0.05)
    assert est.total_bytes == est.weights_bytes + est.kv_cache_bytes + est.overhead_bytes
    assert 5 * GIB < est.total_bytes < 7 * GIB
    known = estimate(None, spec, "Q4_K_M", 0, 0, file_bytes=123)
    assert known.total_bytes == 123
