"""What an engine is, as plugins write one.

An engine declares what it can run as data (``Capabilities``), answers whether it can run one
(spec, quantization) on a host (``check`` -> ``Match``), names the Python requirements of its
runtime environment, and builds the command line of its own OpenAI-compatible server.
It never imports its engine library in the zoo process: that happens in the server process.

This module is public API: third-party engine plugins import ``Engine``, ``Capabilities``,
``Match``, ``ServerCommand`` and ``LaunchContext`` from here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from zoo.catalog.model import Family, Spec
from zoo.host import Host


@dataclass(frozen=True)
class Match:
    """Whether an engine can run something, and why (or why not) in words a user reads."""

    ok: bool
    reason: str

    @classmethod
    def yes(cls, reason: str = "supported") -> Match:
        return cls(True, reason)

    @classmethod
    def no(cls, reason: str) -> Match:
        return cls(False, reason)

    def __bool__(self) -> bool:
        return self.ok


@dataclass(frozen=True)
class Capabilities:
    """What an engine can run, as data (rendered in docs, read by resolution).

    ``formats`` maps a spec format to the quantization families it runs in that format
    ("*" for any). ``platforms`` are (os, arch) pairs with "*" wildcards. ``accelerators``
    lists what it can use ("cpu", "cuda", "metal", "rocm"); ``requires_accelerator`` says
    it cannot run without one of the non-CPU ones. ``requirements`` are pip requirement
    strings for its runtime environment; ``opt_in`` names a variant a user must enable.
    """

    formats: Mapping[str, tuple[str, ...]]
    platforms: tuple[tuple[str, str], ...] = (("*", "*"),)
    accelerators: tuple[str, ...] = ("cpu",)
    requires_accelerator: bool = False
    requirements: tuple[str, ...] = ()
    opt_in: str | None = None
    notes: str = ""


@dataclass(frozen=True)
class LaunchContext:
    """What the runtime knows when it asks an engine for its server command."""

    family: Family
    spec: Spec
    quantization: str
    model_path: str  # a directory (HF formats) or the first GGUF file
    served_name: str
    host: str = "127.0.0.1"
    port: int = 0
    context_length: int | None = None
    api_key: str | None = None
    dtype: str | None = None
    tensor_parallel_size: int | None = None
    gpu_memory_fraction: float | None = None
    extra_args: tuple[str, ...] = ()
    python: str = "python"  # the interpreter of the engine's environment


@dataclass(frozen=True)
class ServerCommand:
    """A server process to start: argv, extra environment, and how to probe readiness.

    ``health_path`` is polled first (None when the server has none); readiness is then
    confirmed by one tiny completion. ``needs_model_in_request`` tells the runtime the server
    ignores its served name and wants this value as the request's model (or none at all).
    ``api_key_enforced`` says the server checks ``--api-key`` itself.
    """

    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    health_path: str | None = "/health"
    request_model: str | None = None
    api_key_enforced: bool = True


class Engine:
    """Base class for engines. Subclasses set ``name``, ``display_name``, ``capabilities``.

    ``check`` has a default that applies the declared capabilities; override it to add rules
    the data cannot express (e.g. compute capability for FP8) and call ``super().check``.
    """

    name: str = ""
    display_name: str = ""
    capabilities: Capabilities = Capabilities(formats={})
    # Higher wins when two engines can run the same thing on a host with the same weights.
    priority: int = 0

    def check(self, spec: Spec, quantization: str, host: Host) -> Match:
        raise NotImplementedError

    def server_command(self, ctx: LaunchContext) -> ServerCommand:
        raise NotImplementedError

    def requirements(self, host: Host) -> Sequence[str]:
        """Pip requirement strings for this engine's runtime environment on ``host``."""
        return self.capabilities.requirements

    def __repr__(self) -> str:
        return f"<Engine {self.name}>"
