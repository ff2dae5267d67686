"""What a machine has: OS, CPU architecture, memory, GPUs, Apple silicon.

A Host is plain data so resolution can plan for a machine other than this one
(``--host-profile FILE.json`` or a built-in name such as ``h100-80g``). ``detect_host()``
reads this machine: /proc on Linux, sysctl on macOS, ``nvidia-smi`` when it is installed.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from zoo.errors import UsageError

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
            )
        except (KeyError, TypeError, ValueError, IndexError) as error:
            raise UsageError(f"invalid host profile: {type(error).__name__}: {error}") from None

    def with_opt_in(self, names: tuple[str, ...] | list[str]) -> Host:
        merged = tuple(dict.fromkeys([*self.opt_in, *(n for n in names if n)]))
        return replace(self, opt_in=merged)


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
    return Gpu(name=name, memory_bytes=gib * GIB, vendor="nvidia", compute_capability=cc)


BUILTIN_PROFILES: dict[str, Host] = {
    "cpu-8g": Host("linux", "x86_64", 8 * GIB, cpu_count=4, name="cpu-8g"),
    "cpu-24g": Host("linux", "x86_64", 24 * GIB, cpu_count=8, name="cpu-24g"),
    "cpu-64g-bf16": Host(
        "linux", "x86_64", 64 * GIB, cpu_count=32, cpu_bf16=True, name="cpu-64g-bf16"
    ),
    "rtx4090-24g": Host(
        "linux",
        "x86_64",
        64 * GIB,
        cpu_count=16,
        gpus=(_nvidia("NVIDIA GeForce RTX 4090", 24, (8, 9)),),
        name="rtx4090-24g",
    ),
    "t4-16g": Host(
        "linux",
        "x86_64",
        32 * GIB,
        cpu_count=8,
        gpus=(_nvidia("Tesla T4", 16, (7, 5)),),
        name="t4-16g",
    ),
    "a100-80g": Host(
        "linux",
        "x86_64",
        256 * GIB,
        cpu_count=32,
        gpus=(_nvidia("NVIDIA A100-SXM4-80GB", 80, (8, 0)),),
        name="a100-80g",
    ),
    "h100-80g": Host(
        "linux",
        "x86_64",
        256 * GIB,
        cpu_count=32,
        gpus=(_nvidia("NVIDIA H100 80GB HBM3", 80, (9, 0)),),
        name="h100-80g",
    ),
    "m2-32g": Host(
        "darwin",
        "arm64",
        32 * GIB,
        cpu_count=8,
        apple_silicon=True,
        cpu_bf16=True,
        gpus=(Gpu("Apple M2 GPU", 32 * GIB, vendor="apple"),),
        name="m2-32g",
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
    if apple:
        # Apple silicon's GPU shares the machine's memory.
        gpus = (
            *gpus,
            Gpu(
                name=_sysctl("machdep.cpu.brand_string") or "Apple GPU",
                memory_bytes=ram,
                vendor="apple",
            ),
        )
    return Host(
        os=system,
        arch=arch,
        ram_bytes=ram,
        cpu_count=os.cpu_count() or 1,
        gpus=gpus,
        apple_silicon=apple,
        cpu_bf16=apple or _cpu_has_bf16(system),
        name="this machine",
        opt_in=opt_in_from_env(),
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
        gpus.append(Gpu(name=parts[0], memory_bytes=memory, vendor="nvidia", compute_capability=cc))
    return tuple(gpus)
