"""What a machine has: OS, CPU architecture, memory, GPUs, Apple silicon.

A Host is plain data so resolution can plan for a machine other than this one
(``--host-profile FILE.json``). ``detect_host()`` reads this machine.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

GIB = 1024**3


@dataclass(frozen=True)
class Gpu:
    """One accelerator. ``vendor`` is "nvidia" (CUDA), "amd" (ROCm) or "apple" (Metal)."""

    name: str
    memory_bytes: int
    vendor: str = "nvidia"
    compute_capability: tuple[int, int] | None = None  # NVIDIA only, e.g. (9, 0) for H100

    @property
    def has_bf16(self) -> bool:
        if self.vendor == "nvidia":
            return self.compute_capability is not None and self.compute_capability >= (8, 0)
        return self.vendor in ("apple", "amd")


@dataclass(frozen=True)
class Host:
    """A machine to plan for.

    ``os`` is "linux", "darwin" or "windows"; ``arch`` is "x86_64" or "arm64".
    ``cpu_bf16`` says whether the CPU has native BF16 (AVX512-BF16 / AMX / ARM BF16).
    ``installed`` names engines whose runtime is already importable or built;
    ``opt_in`` names opt-in engine variants the user enabled (e.g. "vllm-cpu", "mlx-cpu").
    """

    os: str
    arch: str
    ram_bytes: int
    cpu_count: int = 1
    gpus: tuple[Gpu, ...] = ()
    apple_silicon: bool = False
    cpu_bf16: bool = False
    name: str = "this machine"
    opt_in: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def cuda_gpus(self) -> tuple[Gpu, ...]:
        return tuple(g for g in self.gpus if g.vendor == "nvidia")

    @property
    def gpu_memory_bytes(self) -> int:
        return sum(g.memory_bytes for g in self.gpus)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["gpus"] = [asdict(g) for g in self.gpus]
        return data
