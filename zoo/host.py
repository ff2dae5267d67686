"""What a machine has: OS, CPU architecture, memory, GPUs, Apple silicon.

A Host is plain data so resolution can plan for a machine other than this one
(``--host-profile FILE.json`` or a built-in name such as ``h100-80g``). ``detect_host()``
reads this machine: /proc on Linux, sysctl on macOS, ``nvidia-smi`` when it is installed.
"""

from __future__ import annotations

import json
import math
import os
import platform
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from zoo.errors import UsageError
from zoo.hardware import cpu_flops, gpu_rates, measured_bandwidth

GIB = 1024**3

# Opt-in engine variants a user enabled, comma-separated (e.g. "vllm-cpu,mlx-cpu").
OPT_IN_ENV = "ZOO_ENGINE_OPT_IN"


@dataclass(frozen=True)
class Gpu:
    """One accelerator. ``vendor`` is "nvidia" (CUDA), "amd" (ROCm) or "apple" (Metal)."""

    name: str
    memory_bytes: int
    vendor: str = "nvidia"
    compute_capability: tuple[int, int] | None = None  # NVIDIA only, e.g. (9, 0) for H100
    # Memory bandwidth (bytes/s) and dense 16-bit compute (FLOP/s), from the data sheet
    # (``zoo.hardware``); None where unknown: speed is then not estimated.
    bandwidth: float | None = None
    flops: float | None = None

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
    ``memory_bandwidth`` is what the CPUs read from RAM (bytes/s: measured once on this
    machine and cached, from the data sheet in profiles) and ``cpu_flops`` their compute
    (FLOP/s); ``zoo.speed`` estimates tokens per second from them. None: unknown.
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
    memory_bandwidth: float | None = None
    cpu_flops: float | None = None

    @property
    def cuda_gpus(self) -> tuple[Gpu, ...]:
        return tuple(g for g in self.gpus if g.vendor == "nvidia")

    @property
    def gpu_memory_bytes(self) -> int:
        return sum(g.memory_bytes for g in self.gpus)

    @property
    def kind(self) -> str:
        """ "cuda", "apple" or "cpu": which engines feel at home here."""
        if self.cuda_gpus:
            return "cuda"
        if self.apple_silicon:
            return "apple"
        return "cpu"

    @property
    def platform(self) -> tuple[str, str]:
        return (self.os, self.arch)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["gpus"] = [asdict(g) for g in self.gpus]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Host:
        """The inverse of ``to_json``; raises UsageError naming what is wrong."""
        if not isinstance(data, dict):
            raise UsageError("a host profile must be a JSON object (see Host.to_json)")
        try:
            gpus = tuple(
                Gpu(
                    name=str(g["name"]),
                    memory_bytes=int(g["memory_bytes"]),
                    vendor=str(g.get("vendor", "nvidia")),
                    compute_capability=(
                        (int(g["compute_capability"][0]), int(g["compute_capability"][1]))
                        if g.get("compute_capability")
                        else None
                    ),
                    bandwidth=_rate(g.get("bandwidth")),
                    flops=_rate(g.get("flops")),
                )
                for g in data.get("gpus") or ()
            )
            return cls(
                os=str(data["os"]),
                arch=normalize_arch(str(data["arch"])),
                ram_bytes=int(data["ram_bytes"]),
                cpu_count=int(data.get("cpu_count", 1)),
                gpus=gpus,
                apple_silicon=bool(data.get("apple_silicon", False)),
                cpu_bf16=bool(data.get("cpu_bf16", False)),
                name=str(data.get("name", "host profile")),
                opt_in=tuple(str(o) for o in data.get("opt_in") or ()),
                extra=dict(data.get("extra") or {}),
                memory_bandwidth=_rate(data.get("memory_bandwidth")),
                cpu_flops=_rate(data.get("cpu_flops")),
            )
        except (KeyError, TypeError, ValueError, IndexError) as error:
            raise UsageError(f"invalid host profile: {type(error).__name__}: {error}") from None

    def with_opt_in(self, names: tuple[str, ...] | list[str]) -> Host:
        merged = tuple(dict.fromkeys([*self.opt_in, *(n for n in names if n)]))
        return replace(self, opt_in=merged)


def _rate(value: Any) -> float | None:
    """A positive finite rate (bytes/s, FLOP/s) from a profile, or None when absent."""
    if value is None:
        return None
    rate = float(value)
    if not math.isfinite(rate) or rate <= 0:
        raise ValueError(f"a rate must be a positive number, not {value!r}")
    return rate


def normalize_arch(arch: str) -> str:
    lowered = arch.lower()
    if lowered in ("aarch64", "arm64", "armv8"):
        return "arm64"
    if lowered in ("amd64", "x86_64", "x64"):
        return "x86_64"
    return lowered


def opt_in_from_env() -> tuple[str, ...]:
    raw = os.environ.get(OPT_IN_ENV, "")
    return tuple(name.strip() for name in raw.split(",") if name.strip())


def this_machine(opt_in: Sequence[str] = ()) -> Host:
    """This machine as detected, with the engine variants opted into (``$ZOO_ENGINE_OPT_IN``
    and ``opt_in``): the host every launch plans for."""
    return detect_host().with_opt_in([*opt_in_from_env(), *opt_in])


# Named profiles for planning another machine: ``zoo launch X --dry-run --host-profile h100-80g``.
def _nvidia(name: str, gib: int, cc: tuple[int, int]) -> Gpu:
    bandwidth, flops = gpu_rates(name)
    return Gpu(
        name=name,
        memory_bytes=gib * GIB,
        vendor="nvidia",
        compute_capability=cc,
        bandwidth=bandwidth,
        flops=flops,
    )


def _cpu(name: str, gib: int, cores: int, bandwidth_gb: float, *, bf16: bool = False) -> Host:
    """A CPU-only profile: RAM bandwidth from typical DDR4/DDR5 channel counts."""
    return Host(
        "linux",
        "x86_64",
        gib * GIB,
        cpu_count=cores,
        cpu_bf16=bf16,
        name=name,
        memory_bandwidth=bandwidth_gb * 1e9,
        cpu_flops=cpu_flops(cores, {"avx512f"} if bf16 else {"avx2"}),
    )


def _server(name: str, gpu: Gpu, ram_gib: int, cores: int) -> Host:
    return Host(
        "linux",
        "x86_64",
        ram_gib * GIB,
        cpu_count=cores,
        gpus=(gpu,),
        name=name,
        memory_bandwidth=(60 if cores <= 16 else 150) * 1e9,
        cpu_flops=cpu_flops(cores, {"avx2"}),
    )


BUILTIN_PROFILES: dict[str, Host] = {
    "cpu-8g": _cpu("cpu-8g", 8, 4, 20),  # a laptop: two DDR4 channels
    "cpu-24g": _cpu("cpu-24g", 24, 8, 40),  # a desktop: two DDR5 channels
    "cpu-64g-bf16": _cpu("cpu-64g-bf16", 64, 32, 150, bf16=True),  # a server socket
    "rtx4090-24g": _server("rtx4090-24g", _nvidia("NVIDIA GeForce RTX 4090", 24, (8, 9)), 64, 16),
    "t4-16g": _server("t4-16g", _nvidia("Tesla T4", 16, (7, 5)), 32, 8),
    "a100-80g": _server("a100-80g", _nvidia("NVIDIA A100-SXM4-80GB", 80, (8, 0)), 256, 32),
    "h100-80g": _server("h100-80g", _nvidia("NVIDIA H100 80GB HBM3", 80, (9, 0)), 256, 32),
    "m2-32g": Host(
        "darwin",
        "arm64",
        32 * GIB,
        cpu_count=8,
        apple_silicon=True,
        cpu_bf16=True,
        gpus=(
            Gpu(
                "Apple M2 Pro",
                32 * GIB,
                vendor="apple",
                bandwidth=gpu_rates("Apple M2 Pro")[0],
                flops=gpu_rates("Apple M2 Pro")[1],
            ),
        ),
        name="m2-32g",
        memory_bandwidth=gpu_rates("Apple M2 Pro")[0],
        cpu_flops=cpu_flops(8, {"asimd"}),
    ),
}


def load_host_profile(path_or_name: str | Path) -> Host:
    """A host from a JSON file (shape of ``Host.to_json``) or a built-in profile name."""
    text = str(path_or_name)
    if text in BUILTIN_PROFILES and not Path(text).is_file():
        return BUILTIN_PROFILES[text]
    path = Path(text).expanduser()
    if not path.is_file():
        names = ", ".join(BUILTIN_PROFILES)
        raise UsageError(f"no host profile {text!r}: not a file nor one of {names}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as error:  # RecursionError: [[[[...]]]]
        raise UsageError(f"cannot read host profile {path}: {error}") from None
    host = Host.from_json(data)
    return host if "name" in data else replace(host, name=path.stem)


def detect_host() -> Host:
    """This machine, with the opt-ins from ``ZOO_ENGINE_OPT_IN``."""
    system = platform.system().lower()
    arch = normalize_arch(platform.machine())
    apple = system == "darwin" and arch == "arm64"
    ram = _ram_bytes(system)
    gpus = _nvidia_gpus()
    brand = _cpu_brand(system)
    bandwidth: float | None = None
    if apple:
        # Apple silicon's GPU shares the machine's memory, and its bandwidth.
        bandwidth, flops = gpu_rates(brand or "")
        gpus = (
            *gpus,
            Gpu(
                name=brand or "Apple GPU",
                memory_bytes=ram,
                vendor="apple",
                bandwidth=bandwidth,
                flops=flops,
            ),
        )
    cores = os.cpu_count() or 1
    if bandwidth is None:
        from zoo.paths import cache_dir

        bandwidth = measured_bandwidth(f"{brand} {cores} {ram}", cache_dir())
    return Host(
        os=system,
        arch=arch,
        ram_bytes=ram,
        cpu_count=cores,
        gpus=gpus,
        apple_silicon=apple,
        cpu_bf16=apple or _cpu_has_bf16(system),
        name="this machine",
        opt_in=opt_in_from_env(),
        memory_bandwidth=bandwidth,
        cpu_flops=cpu_flops(cores, _cpu_flags(system)),
    )


def _ram_bytes(system: str) -> int:
    if system == "linux":
        try:
            for line in Path("/proc/meminfo").read_text().splitlines():
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
        except (OSError, ValueError, IndexError):
            pass
    if system == "darwin":
        value = _sysctl("hw.memsize")
        if value and value.isdigit():
            return int(value)
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0


def _cpu_has_bf16(system: str) -> bool:
    if system != "linux":
        return False
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return parse_cpu_bf16(text)


def _cpu_brand(system: str) -> str | None:
    if system == "darwin":
        return _sysctl("machdep.cpu.brand_string")
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                return value.strip()
    except OSError:
        pass
    return None


def _cpu_flags(system: str) -> set[str]:
    if system == "darwin":
        return {"asimd"}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return set(value.split())
    return set()


def parse_cpu_bf16(cpuinfo: str) -> bool:
    """Whether /proc/cpuinfo lists a native BF16 instruction set (x86 or ARM)."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            flags = set(value.split())
            return bool(flags & {"avx512_bf16", "amx_bf16", "bf16"})
    return False


def _sysctl(name: str) -> str | None:
    if shutil.which("sysctl") is None:
        return None
    try:
        out = subprocess.run(["sysctl", "-n", name], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


NVIDIA_QUERY = "name,memory.total,compute_cap"


def _nvidia_gpus() -> tuple[Gpu, ...]:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return ()
    try:
        out = subprocess.run(
            [exe, f"--query-gpu={NVIDIA_QUERY}", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return ()
    if out.returncode != 0:
        return ()
    return parse_nvidia_smi(out.stdout)


def parse_nvidia_smi(text: str) -> tuple[Gpu, ...]:
    """GPUs from ``nvidia-smi --query-gpu=name,memory.total,compute_cap`` CSV (MiB, "9.0")."""
    gpus: list[Gpu] = []
    for line in text.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) < 3 or not parts[0]:
            continue
        try:
            memory = int(float(parts[1]) * 1024 * 1024)
        except ValueError:
            continue
        cc: tuple[int, int] | None = None
        major, _, minor = parts[2].partition(".")
        if major.isdigit() and minor.isdigit():
            cc = (int(major), int(minor))
        bandwidth, flops = gpu_rates(parts[0])
        gpus.append(
            Gpu(
                name=parts[0],
                memory_bytes=memory,
                vendor="nvidia",
                compute_capability=cc,
                bandwidth=bandwidth,
                flops=flops,
            )
        )
    return tuple(gpus)
