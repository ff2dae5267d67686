"""Bits per weight and precision ranking of quantization names, for memory and choice.

Names are matched case-insensitively (``q4_k_m`` is ``Q4_K_M``). The catalog owns the
vocabulary used for validation; this module only answers "how many bits" and "how precise".

Precision follows the format guide of the Seed-Coder GGUF cards: BF16 where the hardware has
native BF16, then F16, then the highest-precision quantization. BF16 on hardware without it
falls back to FP32 arithmetic and runs slowly, so it is ranked below every 4-bit-or-better
quantization (still above 3-bit and lower ones, whose quality loss is worse than slowness).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# llama.cpp's effective bits per weight for whole models (block scales included).
GGUF_BITS: dict[str, float] = {
    "F32": 32.0,
    "BF16": 16.0,
    "F16": 16.0,
    "Q8_0": 8.5,
    "Q8_K": 8.5,
    "Q6_K": 6.56,
    "Q5_1": 6.0,
    "Q5_K_M": 5.69,
    "Q5_K_S": 5.54,
    "Q5_0": 5.5,
    "Q4_1": 5.0,
    "Q4_K_M": 4.85,
    "Q4_K_S": 4.58,
    "Q4_K": 4.85,
    "Q4_0": 4.5,
    "IQ4_NL": 4.5,
    "IQ4_XS": 4.25,
    "Q3_K_L": 4.27,
    "Q3_K_M": 3.91,
    "Q3_K_S": 3.5,
    "Q3_K": 3.91,
    "IQ3_M": 3.66,
    "IQ3_S": 3.44,
    "IQ3_XS": 3.3,
    "IQ3_XXS": 3.06,
    "Q2_K_L": 3.0,
    "Q2_K": 2.63,
    "Q2_K_S": 2.5,
    "IQ2_M": 2.7,
    "IQ2_S": 2.5,
    "IQ2_XS": 2.31,
    "IQ2_XXS": 2.06,
    "TQ2_0": 2.06,
    "IQ1_M": 1.75,
    "TQ1_0": 1.69,
    "IQ1_S": 1.56,
}

# Hugging Face style names (pytorch, gptq, awq, fp8, bnb, fp4, mlx formats), as Xinference
# writes them. "none" means the checkpoint's own 16-bit weights.
OTHER_BITS: dict[str, float] = {
    "none": 16.0,
    "fp32": 32.0,
    "float32": 32.0,
    "bf16": 16.0,
    "bfloat16": 16.0,
    "fp16": 16.0,
    "float16": 16.0,
    "int8": 8.25,
    "8-bit": 8.25,
    "8bit": 8.5,
    "fp8": 8.0,
    "w8a8": 8.0,
    "int4": 4.25,
    "4-bit": 4.5,
    "4bit": 4.5,
    "fp4": 4.5,
    "nvfp4": 4.5,
    "mxfp4": 4.25,
    "w4a16": 4.25,
    "6bit": 6.5,
    "5bit": 5.5,
    "3bit": 3.5,
    "int3": 3.25,
    "2bit": 2.5,
    "int2": 2.25,
}

DEFAULT_BITS = 16.0


def canonical(name: str) -> str:
    """The comparison key for a quantization name: upper case, '-' and '_' alike."""
    return name.strip().upper().replace("-", "_")


def same(a: str, b: str) -> bool:
    return canonical(a) == canonical(b)


def find(name: str, available: tuple[str, ...] | list[str]) -> str | None:
    """The spelling of ``name`` in ``available`` (case-insensitive), or None."""
    key = canonical(name)
    return next((q for q in available if canonical(q) == key), None)


@dataclass(frozen=True)
class QuantInfo:
    """What a quantization name means: effective bits per weight, nominal bits, kind."""

    bits: float  # effective bits per weight, for memory estimates
    nominal: float  # the bits the name promises (8 for Q8_0), for precision classes
    kind: str  # "bf16", "f16", "f32", "native" (checkpoint dtype), "hybrid" or "quant"
    core: str | None = None  # hybrids: the full-precision part ("bf16" or "f16")


_HYBRID = re.compile(r"^(BF16|F16)_(.+)$")


def info(name: str) -> QuantInfo:
    """Bits and kind of a quantization name; unknown names count as 16-bit quantizations."""
    key = canonical(name)
    lowered = name.strip().lower()
    if lowered == "none":
        return QuantInfo(16.0, 16.0, "native")
    if key in ("BF16", "BFLOAT16"):
        return QuantInfo(16.0, 16.0, "bf16")
    if key in ("F16", "FP16", "FLOAT16"):
        return QuantInfo(16.0, 16.0, "f16")
    if key in ("F32", "FP32", "FLOAT32"):
        return QuantInfo(32.0, 32.0, "f32")
    hybrid = _HYBRID.match(key)
    if hybrid:
        # Mungert-style hybrids keep attention/output layers at 16 bits (about a quarter of
        # the weights) and quantize the rest.
        rest = info(hybrid.group(2))
        bits = 0.25 * 16.0 + 0.75 * rest.bits
        return QuantInfo(bits, rest.nominal, "hybrid", core=hybrid.group(1).lower())
    gguf_key = key.removeprefix("UD_").removeprefix("I1_")
    if gguf_key.endswith("_XL"):
        # Unsloth "dynamic" XL quants bump important layers: a little above the base quant.
        base = GGUF_BITS.get(gguf_key.removesuffix("_XL") + "_M") or GGUF_BITS.get(
            gguf_key.removesuffix("_XL")
        )
        if base is None and gguf_key.startswith("Q8"):
            base = GGUF_BITS["Q8_0"]
        if base is not None:
            return QuantInfo(base + 0.3, _nominal(gguf_key), "quant")
    if gguf_key in GGUF_BITS:
        return QuantInfo(GGUF_BITS[gguf_key], _nominal(gguf_key), "quant")
    other = OTHER_BITS.get(lowered) or OTHER_BITS.get(lowered.replace("_", "-"))
    if other is not None:
        return QuantInfo(other, _nominal(lowered), "quant")
    # Spellings outside the table (Q6_K_M, Q2_K_M): the base type, else bits + block scales.
    for suffix in ("_XXS", "_XS", "_S", "_M", "_L"):
        base = GGUF_BITS.get(gguf_key.removesuffix(suffix))
        if gguf_key.endswith(suffix) and base is not None:
            return QuantInfo(base, _nominal(gguf_key), "quant")
    if re.match(r"^I?Q\d", gguf_key):
        return QuantInfo(_nominal(gguf_key) + 0.5, _nominal(gguf_key), "quant")
    return QuantInfo(DEFAULT_BITS, _nominal(key), "quant")


def _nominal(key: str) -> float:
    digits = re.search(r"(\d+)", key)
    return float(digits.group(1)) if digits else DEFAULT_BITS


def bits_per_weight(name: str) -> float:
    return info(name).bits


def precision_score(name: str, *, bf16: bool, gpu: bool) -> float:
    """Higher is more precise *for this hardware*; used to order candidates.

    ``bf16``: the device that computes has native BF16. ``gpu``: it is a GPU (engines there
    cast a BF16 checkpoint to FP16 when BF16 is missing, which costs nothing).
    """
    q = info(name)
    if q.kind == "bf16" or (q.kind == "native" and bf16):
        return 17.0 if bf16 else 3.5
    if q.kind == "native":
        return 16.5 if gpu else 3.5
    if q.kind == "f16":
        return 16.5
    if q.kind == "f32":
        return 16.0
    if q.kind == "hybrid":
        # Better than the plain quantization, if the core precision runs natively.
        bonus = 0.5 if (q.core == "f16" or bf16) else 0.0
        return q.nominal + bonus
    return q.nominal


# Quantizations at or above this precision score count as "good quality": a larger model
# at such a quantization is preferred to a smaller one at higher precision.
GOOD_QUALITY = 4.0
