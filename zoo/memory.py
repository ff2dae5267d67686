"""How much memory a (spec, quantization) needs to serve, before anything is downloaded.

    total = weights + KV cache + engine overhead

- weights: the known file size when the plan has it, else ``size × 10⁹ × bits / 8`` with the
  bits per weight of the quantization *in the spec's format* (``zoo.quantization``: "none" is
  16 bits in pytorch but 8.4 in an fp8 repository). MoE models load every expert, so ``size``
  (not ``activated_size``) counts.
- KV cache: ``context × bytes per token``. Without the architecture (layers, KV heads, head
  size) we estimate bytes per token from the size: ``48 KiB × √(size in billions)`` at 16 bits.
  Fitted to grouped-query models: Llama-3-8B 128 KiB/token (formula 136), Seed-OSS-36B
  256 KiB (288), Llama-3-70B 320 KiB (402), SmolLM2-135M 22.5 KiB (17.6). Families can give the
  exact figure as ``extra: {kv_bytes_per_token: N}``. Embedding models and rerankers get the
  same figure for their longest input: an encoder-only one (BERT) needs less, but a
  decoder-based one (Qwen3-Embedding, LLM rerankers) holds its input's keys and values during
  the pass, and paging engines (vLLM, llama.cpp) are given this figure to size that buffer;
  their contexts are short (512-8192 tokens), so the excess is small.
- overhead: the engine's ``Capabilities.overhead_bytes`` (CUDA context, compute buffers).

These are estimates for choosing, not guarantees; they err on the large side for big models.
A size that is not a finite number (validation rejects ``.nan`` and ``1e308``; a spec built in
code may still carry one) never raises: its estimate is ``UNKNOWABLE_BYTES``, which fits nowhere.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from zoo.catalog.model import Family, Spec
from zoo.quantization import bits_per_weight

KIB = 1024
GIB = 1024**3
KV_BYTES_PER_TOKEN_PER_SQRT_B = 48 * KIB
# What a part of an estimate is when its inputs are not finite numbers: more than any machine.
UNKNOWABLE_BYTES = 2**62


@dataclass(frozen=True)
class MemoryEstimate:
    weights_bytes: int
    kv_cache_bytes: int
    overhead_bytes: int

    @property
    def total_bytes(self) -> int:
        return self.weights_bytes + self.kv_cache_bytes + self.overhead_bytes

    def describe(self) -> str:
        return (
            f"{gib(self.total_bytes)} (weights {gib(self.weights_bytes)}, "
            f"KV cache {gib(self.kv_cache_bytes)}, engine {gib(self.overhead_bytes)})"
        )


def gib(n: int, digits: int = 1) -> str:
    return f"{n / GIB:.{digits}f} GiB"


def gib_pair(need: int, budget: int) -> tuple[str, str]:
    """``need`` and ``budget`` in GiB with just enough decimals that unequal amounts never
    print alike: "18.95 GiB" against "18.94 GiB", never "needs 18.9 GiB, more than 18.9 GiB".

    One decimal where that tells them apart (the usual case), up to four; amounts closer
    than that (within ~100 KiB) are given in bytes. Rounding keeps the order, so a need
    larger than the budget never prints smaller.
    """
    for digits in range(1, 5):
        shown = gib(need, digits), gib(budget, digits)
        if need == budget or shown[0] != shown[1]:
            return shown
    return f"{need:,} bytes", f"{budget:,} bytes"


def _bytes(value: float) -> int:
    """``value`` as a byte count; UNKNOWABLE_BYTES for nan, ±inf, negative or huge values."""
    if not math.isfinite(value) or value < 0 or value >= UNKNOWABLE_BYTES:
        return UNKNOWABLE_BYTES
    return int(value)


def weights_bytes(spec: Spec, quantization: str, file_bytes: int | None = None) -> int:
    if file_bytes:
        return file_bytes
    bits = bits_per_weight(quantization, fmt=spec.format)
    return _bytes(spec.size * 1e9 * bits / 8)


def kv_bytes_per_token(family: Family | None, spec: Spec) -> int:
    if family is not None:
        exact = family.extra.get("kv_bytes_per_token")
        if isinstance(exact, int) and not isinstance(exact, bool) and exact > 0:
            return exact
    return _bytes(KV_BYTES_PER_TOKEN_PER_SQRT_B * math.sqrt(max(spec.size, 0.01)))


def kv_cache_bytes(family: Family | None, spec: Spec, context_length: int) -> int:
    return min(kv_bytes_per_token(family, spec) * max(context_length, 0), UNKNOWABLE_BYTES)


def estimate(
    family: Family | None,
    spec: Spec,
    quantization: str,
    context_length: int,
    overhead_bytes: int,
    file_bytes: int | None = None,
) -> MemoryEstimate:
    return MemoryEstimate(
        weights_bytes=weights_bytes(spec, quantization, file_bytes),
        kv_cache_bytes=kv_cache_bytes(family, spec, context_length),
        overhead_bytes=overhead_bytes,
    )
