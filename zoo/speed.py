"""How fast a (spec, quantization, engine) will answer on a host, before anything is downloaded.

Decoding one token reads every active weight once, and the device's memory bandwidth bounds
that long before its compute does (batch 1, as a person chatting uses it):

    seconds per token = bytes read per token / (bandwidth × engine efficiency)
                        + the engine's fixed cost per token
    bytes read per token = weights × active share (MoE: activated_size / size)
                           + the KV cache of a conversation so far (CHAT_TOKENS, at most
                             half the planned context)

Prefill (reading the prompt) is bound by compute: ``2 × active parameters`` FLOPs per token
over the device's FLOP/s times the engine's efficiency. Bandwidths come from ``zoo.hardware``
(data sheets for GPUs, a measurement for this machine's CPUs). Several GPUs: an engine that
splits layers reads them one GPU after the other (one GPU's bandwidth); one that splits
tensors reads them side by side (the sum, less TENSOR_PARALLEL_LOSS for the all-reduce
between layers).

The engines' ``decode_efficiency`` and ``token_overhead_s`` (``zoo.engine.Capabilities``) are
fitted per engine by bench/speed_estimate.py; the KV cache share matters for long chats, not
for these short ones, so its assumption is a typical conversation rather than the worst one.

These are estimates for choosing (``zoo.resolve``'s usable-speed rule, ``--min-speed``) and
for showing; bench/speed_estimate.py records their error against measured tokens/s.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from zoo.catalog.model import Spec
from zoo.host import Host

# Below this many tokens a second an answer reads slower than a person reads it.
DEFAULT_MIN_SPEED = 8.0
# The engine's share of peak FLOP/s while reading a prompt.
PREFILL_EFFICIENCY = 0.4
# Tokens already in the context when a typical answer is decoded (a few turns of chat): the
# KV cache read per token. A half-full 8K context (the planned default) would count 4K tokens
# of KV for every answer, more than a chat has, and penalise candidates with a large cache.
CHAT_TOKENS = 2048
# What tensor parallelism loses to the all-reduce between layers at batch 1 (vLLM's TP=2
# decodes ~1.7x, not 2x, as fast as one GPU): the sum of bandwidths is scaled by this.
TENSOR_PARALLEL_LOSS = 0.85


@dataclass(frozen=True)
class SpeedEstimate:
    """Tokens per second decoding (one stream) and reading the prompt, and what bounds them."""

    decode_tokens_per_second: float
    prefill_tokens_per_second: float | None
    bytes_per_token: int
    bandwidth: float  # bytes/s of the device that reads the weights

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def active_share(spec: Spec) -> float:
    """The share of the weights read per token: ``activated_size / size`` for MoE models."""
    if spec.activated_size and spec.size > 0 and spec.activated_size < spec.size:
        return spec.activated_size / spec.size
    return 1.0


def device_rates(host: Host, device: str, gpus: int, gpu_split: str) -> tuple[float, float] | None:
    """(bandwidth bytes/s, FLOP/s) of the device a plan computes on, or None if unknown."""
    if device == "cpu":
        if host.memory_bandwidth is None:
            return None
        return host.memory_bandwidth, host.cpu_flops or 0.0
    kind = "apple" if device == "metal" else "nvidia"
    used = [g for g in host.gpus if g.vendor == kind]
    if device == "cuda":
        used = sorted(used, key=lambda g: g.memory_bytes, reverse=True)[: max(gpus, 1)]
    if not used or any(g.bandwidth is None for g in used):
        return None
    flops = sum(g.flops or 0.0 for g in used)
    if gpu_split == "tensor-parallel":
        total = sum(g.bandwidth or 0.0 for g in used)
        return (total * TENSOR_PARALLEL_LOSS if len(used) > 1 else total), flops
    return min(g.bandwidth or 0.0 for g in used), flops


def estimate_speed(
    spec: Spec,
    weights_bytes: int,
    kv_cache_bytes: int,
    rates: tuple[float, float] | None,
    *,
    efficiency: float,
    token_overhead_s: float,
    context_tokens: int | None = None,
) -> SpeedEstimate | None:
    """The estimate for weights of ``weights_bytes`` and a KV cache of ``kv_cache_bytes`` (the
    whole planned context of ``context_tokens``) on a device with ``rates``; None when the
    rates are unknown. Without ``context_tokens`` half the cache is counted."""
    if rates is None:
        return None
    bandwidth, flops = rates
    if bandwidth <= 0 or not math.isfinite(weights_bytes):
        return None
    kv_share = 0.5
    if context_tokens and context_tokens > 0:
        kv_share = min(0.5, CHAT_TOKENS / context_tokens)
    per_token = int(weights_bytes * active_share(spec) + kv_cache_bytes * kv_share)
    seconds = per_token / (bandwidth * max(efficiency, 1e-3)) + max(token_overhead_s, 0.0)
    decode = 1.0 / seconds if seconds > 0 else math.inf
    prefill = None
    active = spec.size * active_share(spec) * 1e9
    if flops > 0 and active > 0:
        prefill = flops * PREFILL_EFFICIENCY / (2 * active)
    return SpeedEstimate(
        decode_tokens_per_second=decode,
        prefill_tokens_per_second=prefill,
        bytes_per_token=per_token,
        bandwidth=bandwidth,
    )


def tokens_per_second(value: float | None) -> str:
    """A speed as people read it: "~35 tok/s", "~0.8 tok/s", "?" when unknown."""
    if value is None:
        return "?"
    if value < 0.1:
        return "<0.1 tok/s"
    if value >= 10:
        return f"~{value:.0f} tok/s"
    return f"~{value:.1f} tok/s"
