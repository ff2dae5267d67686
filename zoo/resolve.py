"""Resolution: (catalog, request, engines, host) -> Plan, with a reason for every candidate.

Every (spec, quantization, engine) of the family is judged: the engine's ``check`` (what it
can run on this host), the hub (``--hub``), and memory (``zoo.memory`` against what the device
has). Among the candidates kept, the order is, best first:

0. on the host's accelerator: on a CUDA host, what runs on the GPU before what would fall
   back to the CPU (a 36B model at 8 bits on a CPU answers at a word a second);
1. quality tier: quantizations of 4 bits or better before lower ones;
2. size: when no ``--size`` is given, the largest size that fits (a bigger model at 4 bits
   usually beats a smaller one at 8; families usually have one size per format anyway);
3. precision for this hardware (``zoo.quantization.precision_score``): BF16 where the device
   has native BF16, then F16, then the highest-precision quantization that fits (the format
   guide of the Seed-Coder GGUF cards);
4. the engine at home on this host: GPU engines on CUDA GPUs, MLX on Apple silicon, llama.cpp
   on plain CPUs (``Capabilities.preferred_on``), then ``Engine.priority``;
5. effective bits (Q4_K_M before Q4_0).

Memory budgets: CUDA engines get 90% of the GPUs' memory (vLLM's default utilisation); Apple
silicon's unified memory gives 75% of RAM to the GPU (Metal's working-set limit); CPU engines
get 80% of RAM. An engine that can also run on the CPU (llama.cpp, Transformers) falls back to
it when the model fits in RAM but not on the GPU.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from zoo import quantization as quant
from zoo.catalog.catalog import Catalog
from zoo.catalog.model import Family, Spec, format_size
from zoo.engine import Engine, LaunchContext, Match
from zoo.errors import NotFoundError, UsageError
from zoo.host import Host
from zoo.memory import MemoryEstimate, estimate, gib
from zoo.plan import Candidate, LaunchOptions, Plan

# The context to plan for when none is asked: long contexts cost KV memory a small machine
# does not have; ``--context`` asks for more (up to the family's maximum).
DEFAULT_CONTEXT = 8192
HUB_ENV = "ZOO_HUB"
GPU_SHARE = 0.9
UNIFIED_SHARE = 0.75
RAM_SHARE = 0.8

# Files for formats stored as Hugging Face repositories; the hubs narrow them by listing the
# repository (``*.bin`` only when it has no safetensors). No ``*.py``: remote code is opt-in.
HF_PATTERNS = ("*.json", "*.safetensors", "*.model", "*.tiktoken", "*.txt", "*.jinja")
HF_FALLBACK_PATTERNS = ("*.bin",)


@dataclass(frozen=True)
class Request:
    """What the user asked for; None means "choose for me"."""

    model: str
    engine: str | None = None
    format: str | None = None
    size: float | None = None
    quantization: str | None = None
    hub: str | None = None
    context_length: int | None = None

    def describe(self) -> str:
        words = [self.model]
        for flag, value in (
            ("--engine", self.engine),
            ("--format", self.format),
            ("--size", format_size(self.size) if self.size is not None else None),
            ("--quantization", self.quantization),
            ("--hub", self.hub),
        ):
            if value is not None:
                words.append(f"{flag} {value}")
        return " ".join(words)


EnvReady = Callable[[Engine, Host], bool]


@dataclass(frozen=True)
class _Judged:
    """A candidate with what the ranking needs beside its public Candidate."""

    candidate: Candidate
    spec: Spec
    engine: Engine
    check: Match
    wanted: bool  # matches the request's filters
    memory: MemoryEstimate | None
    budget: int


def resolve(
    catalog: Catalog,
    request: Request,
    engines: Mapping[str, Engine],
    host: Host,
    *,
    env_ready: EnvReady | None = None,
    options: LaunchOptions | None = None,
) -> Plan:
    """The best plan for ``request`` on ``host``, or a UsageError naming what would work."""
    family = catalog.get(request.model)
    _validate(family, request, engines)
    if not engines:
        formats = ", ".join(
            dict.fromkeys(s.format for s in family.specs if request.format in (None, s.format))
        )
        raise UsageError(
            f"{request.describe()} cannot run: no installed engine runs {formats}",
            hint="engines are plugins, e.g. pip install zoo-launcher-llamacpp; see `zoo plugins`",
        )
    context = _context_length(family, request)
    judged = [
        _judge(family, spec, q, engine, host, request, context)
        for spec in family.specs
        for q in spec.quantizations
        for engine in engines.values()
    ]
    kept = sorted((j for j in judged if j.wanted and j.candidate.kept), key=_rank(host))
    if not kept:
        raise UsageError(_impossible(family, request, judged, host))
    best = kept[0]
    considered = [j for j in judged if j.wanted]
    ordered = kept + [j for j in considered if not j.candidate.kept]
    return _plan(family, request, best, ordered, host, context, env_ready, options)


def candidates(
    catalog: Catalog, request: Request, engines: Mapping[str, Engine], host: Host
) -> list[Candidate]:
    """Every (spec, quantization, engine) of the request's family judged on ``host``: those
    kept first, best first (``zoo engines --model``)."""
    family = catalog.get(request.model)
    _validate(family, request, engines)
    context = _context_length(family, request)
    judged = [
        _judge(family, spec, q, engine, host, request, context)
        for spec in family.specs
        for q in spec.quantizations
        for engine in engines.values()
    ]
    kept = sorted((j for j in judged if j.wanted and j.candidate.kept), key=_rank(host))
    rest = [j for j in judged if j.wanted and not j.candidate.kept]
    return [j.candidate for j in kept + rest]


def engine_here(engine: Engine, host: Host) -> Match:
    """Whether ``engine`` can run anything on ``host``, and why not (``zoo engines``)."""
    caps = engine.capabilities_for(host)
    reasons: list[str] = []
    for fmt, allowed in caps.formats.items():
        q = "none" if "*" in allowed else allowed[0]
        verdict = engine.check(Spec(format=fmt, size=1.0, quantizations=(q,), sources=()), q, host)
        if verdict.ok:
            device = engine.device(Spec(format=fmt, size=1.0, quantizations=(q,), sources=()), host)
            variant = f" ({caps.variant} build)" if caps.variant else ""
            return Match.yes(f"runs here on {device}{variant}")
        reasons.append(verdict.reason)
    return Match.no(reasons[0] if reasons else "declares no formats")


def choose_hub(
    spec: Spec,
    quantization: str,
    requested: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> tuple[str | None, str]:
    """The hub to download from and why: ``--hub``, then ``$ZOO_HUB``, then the spec's order.

    Only hubs whose source lists ``quantization`` count. The hubs work may replace this with
    one that also checks reachability.
    """
    having = [s.hub for s in spec.sources if quant.find(quantization, s.quantizations)]
    if requested is not None:
        if requested in having:
            return requested, f"hub {requested} (--hub)"
        return None, f"not on hub {requested} (has: {', '.join(having) or 'none'})"
    env = (os.environ if environ is None else environ).get(HUB_ENV, "").strip()
    if env == "auto":  # the default: the spec's order, skipping unreachable hubs at download
        env = ""
    if env and env in having:
        return env, f"hub {env} (${HUB_ENV})"
    if not having:
        return None, "no hub has this quantization"
    note = f" (${HUB_ENV}={env} has no source for it)" if env else " (first source in the spec)"
    return having[0], f"hub {having[0]}{note}"


def _validate(family: Family, request: Request, engines: Mapping[str, Engine]) -> None:
    if request.engine is not None and request.engine not in engines:
        names = ", ".join(sorted(engines)) or "none installed"
        raise NotFoundError(f"unknown engine {request.engine!r}", hint=f"engines: {names}")
    if request.format is not None and request.format not in family.formats:
        raise UsageError(
            f"{family.name} has no {request.format} format (has: {', '.join(family.formats)})"
        )
    specs = [s for s in family.specs if request.format in (None, s.format)]
    if request.size is not None and not any(_same_size(s.size, request.size) for s in specs):
        sizes = ", ".join(dict.fromkeys(s.size_label for s in specs))
        raise UsageError(
            f"{family.name} has no size {format_size(request.size)}"
            f"{' in ' + request.format if request.format else ''} (has: {sizes})"
        )
    specs = [s for s in specs if request.size is None or _same_size(s.size, request.size)]
    if request.quantization is not None and not any(
        quant.find(request.quantization, s.quantizations) for s in specs
    ):
        names = ", ".join(dict.fromkeys(q for s in specs for q in s.quantizations))
        raise UsageError(
            f"{family.name} has no quantization {request.quantization!r} for that request"
            f" (has: {names})"
        )


def _same_size(a: float, b: float) -> bool:
    return abs(a - b) < 1e-9


def _context_length(family: Family, request: Request) -> int:
    if request.context_length is None:
        return min(family.context_length, DEFAULT_CONTEXT)
    if request.context_length <= 0:
        raise UsageError("--context must be a positive number of tokens")
    if request.context_length > family.context_length:
        raise UsageError(
            f"{family.name} supports a context of at most {family.context_length} tokens"
        )
    return request.context_length


def _budget(host: Host, device: str) -> int:
    if device == "cuda":
        return int(sum(g.memory_bytes for g in host.cuda_gpus) * GPU_SHARE)
    if device == "metal":
        return int(host.ram_bytes * UNIFIED_SHARE)
    return int(host.ram_bytes * RAM_SHARE)


def _device_words(device: str) -> str:
    return {"cuda": "GPU memory", "metal": "unified memory"}.get(device, "RAM")


def _judge(
    family: Family, spec: Spec, q: str, engine: Engine, host: Host, request: Request, context: int
) -> _Judged:
    wanted = (
        request.engine in (None, engine.name)
        and request.format in (None, spec.format)
        and (request.size is None or _same_size(spec.size, request.size))
        and (request.quantization is None or quant.same(request.quantization, q))
    )

    def verdict(
        kept: bool,
        reason: str,
        memory: MemoryEstimate | None = None,
        device: str | None = None,
        hub: str | None = None,
        budget: int = 0,
    ) -> _Judged:
        candidate = Candidate(
            engine=engine.name,
            format=spec.format,
            size=spec.size,
            quantization=q,
            kept=kept,
            reason=reason,
            memory_bytes=memory.total_bytes if memory else None,
            device=device,
            hub=hub,
        )
        return _Judged(candidate, spec, engine, check, wanted, memory, budget)

    check = engine.check(spec, q, host)
    if not check.ok:
        return verdict(False, check.reason)
    caps = engine.capabilities_for(host)
    if spec.format in caps.experimental_formats and request.engine != engine.name:
        return verdict(
            False,
            f"{spec.format} support is experimental: used only with --engine {engine.name}",
        )
    hub, hub_reason = choose_hub(spec, q, request.hub)
    if hub is None:
        return verdict(False, hub_reason)
    device = engine.device(spec, host)
    memory = estimate(family, spec, q, context, engine.overhead_bytes(host))
    budget = _budget(host, device)
    if memory.total_bytes > budget and device == "cuda":
        cpu_ok = "cpu" in caps.accelerators and "cuda" not in caps.format_accelerators.get(
            spec.format, ()
        )
        if cpu_ok and memory.total_bytes <= _budget(host, "cpu"):
            device, budget = "cpu", _budget(host, "cpu")
    if memory.total_bytes > budget:
        return verdict(
            False,
            f"needs {gib(memory.total_bytes)}, more than the {gib(budget)} of "
            f"{_device_words(device)} usable here",
            memory,
            device,
            hub,
            budget,
        )
    return verdict(
        True,
        f"{check.reason}; needs {gib(memory.total_bytes)} of {gib(budget)} {_device_words(device)}",
        memory,
        device,
        hub,
        budget,
    )


def _rank(host: Host) -> Callable[[_Judged], tuple[float, ...]]:
    def key(j: _Judged) -> tuple[float, ...]:
        c = j.candidate
        score = _precision(c.quantization, c.device or "cpu", host)
        caps = j.engine.capabilities_for(host)
        at_home = 1.0 if host.kind in caps.preferred_on else 0.0
        on_accelerator = c.device != "cpu" or host.kind == "cpu"
        # Negated: sorted() puts the smallest first, and we want the best first.
        return (
            -float(on_accelerator),
            -float(score >= quant.GOOD_QUALITY),
            -c.size,
            -score,
            -at_home,
            -float(j.engine.priority),
            -quant.bits_per_weight(c.quantization),
        )

    return key


def _precision(q: str, device: str, host: Host) -> float:
    if device == "cuda":
        bf16 = all(g.has_bf16 for g in host.cuda_gpus)
    elif device == "metal":
        bf16 = True
    else:
        bf16 = host.cpu_bf16
    return quant.precision_score(q, bf16=bf16, gpu=device in ("cuda", "metal"))


def _describe(j: _Judged) -> str:
    c = j.candidate
    return (
        f"{c.format} {format_size(c.size)}B {c.quantization} with "
        f"{j.engine.display_name or j.engine.name}"
    )


def _impossible(family: Family, request: Request, judged: Sequence[_Judged], host: Host) -> str:
    """One line: what fails for the request, and the nearest thing that works here."""
    asked = [j for j in judged if j.wanted]
    workable = sorted((j for j in judged if j.candidate.kept), key=_rank(host))
    nearest = f"; on this machine: {_describe(workable[0])}" if workable else ""
    runnable = [j for j in asked if j.check.ok and j.memory is not None]
    if runnable:
        smallest = min(runnable, key=lambda j: j.memory.total_bytes if j.memory else 0)
        return (
            f"{request.describe()} does not fit {host.name}: the smallest, "
            f"{_describe(smallest)}, {smallest.candidate.reason}{nearest}"
        )
    reasons = _common_reason(asked)
    if not workable:
        nearest = "; nothing in this family runs here"
    return f"{request.describe()} {reasons}{nearest}"


def _common_reason(asked: Sequence[_Judged]) -> str:
    """The failure shared by the engines that know the format, naming them, e.g.
    "needs a CUDA GPU (vLLM, Transformers)"."""
    by_reason: dict[str, list[str]] = {}
    for j in asked:
        if j.spec.format not in j.engine.capabilities.formats and not any(
            j.spec.format in v.formats for v in j.engine.variants
        ):
            continue  # engines that never run this format say nothing useful
        reason = j.check.reason if not j.check.ok else j.candidate.reason
        name = j.engine.display_name or j.engine.name
        by_reason.setdefault(reason, [])
        if name not in by_reason[reason]:
            by_reason[reason].append(name)
    if not by_reason:
        formats = ", ".join(dict.fromkeys(j.spec.format for j in asked))
        return f"cannot run: no installed engine runs {formats}"
    parts = []
    for reason, names in by_reason.items():
        words = reason.removeprefix(f"{asked[0].spec.format} ") if len(by_reason) == 1 else reason
        parts.append(f"{words} ({', '.join(names)})")
    return "; ".join(parts[:3])


def _plan(
    family: Family,
    request: Request,
    best: _Judged,
    ordered: Sequence[_Judged],
    host: Host,
    context: int,
    env_ready: EnvReady | None,
    options: LaunchOptions | None,
) -> Plan:
    c = best.candidate
    spec, engine = best.spec, best.engine
    hub = c.hub or ""
    source = spec.source(hub)
    assert source is not None and best.memory is not None
    q = quant.find(c.quantization, source.quantizations) or c.quantization
    repo = source.repo_for(q)
    if spec.format == "ggufv2" or hub == "pypi":
        files = source.files_for(q)
        files += source.multimodal_projectors[:1]
    else:
        files = HF_PATTERNS
    ready = (env_ready or default_env_ready)(engine, host)
    caps = engine.capabilities_for(host)
    requirements = tuple(engine.requirements(host))
    _, hub_reason = choose_hub(spec, q, request.hub)
    reasons = [
        f"host: {describe_host(host)}",
        "order: on the GPU where there is one, quality of 4 bits or better, the largest size, "
        "then BF16 where the hardware has it, then F16, then the highest-precision "
        "quantization that fits; GPU engines on GPUs, MLX on Apple silicon, "
        "llama.cpp on plain CPUs",
        f"chosen: {_describe(best)} on {c.device}: {c.reason}",
    ]
    better = _better_but_dropped(best, ordered, host)
    if better is not None:
        reasons.append(f"not {_describe(better)}: {better.candidate.reason}")
    reasons.append(hub_reason)
    reasons.append(
        "engine environment: ready"
        if ready
        else f"engine environment: will be created ({' '.join(requirements) or 'no packages'})"
    )
    plan = Plan(
        family=family,
        spec=spec,
        quantization=q,
        engine=engine.name,
        hub=hub,
        repo=repo,
        revision=source.revision,
        files=tuple(files),
        memory_bytes=best.memory.total_bytes,
        context_length=context,
        env_ready=ready,
        reasons=tuple(reasons),
        candidates=tuple(j.candidate for j in ordered),
        extra={
            "weights_bytes": best.memory.weights_bytes,
            "overhead_bytes": best.memory.overhead_bytes,
            "budget_bytes": best.budget,
            **({"fallback_patterns": list(HF_FALLBACK_PATTERNS)} if files == HF_PATTERNS else {}),
        },
        device=c.device or "cpu",
        variant=caps.variant,
        requirements=requirements,
        host_name=host.name,
        kv_cache_bytes=best.memory.kv_cache_bytes,
        requested_hub=request.hub,
    )
    return replace(plan, command=preview_command(plan, engine, host, options))


def _better_but_dropped(best: _Judged, ordered: Sequence[_Judged], host: Host) -> _Judged | None:
    """The most precise candidate that ran here but did not fit, if more precise than best."""
    best_score = _precision(best.candidate.quantization, best.candidate.device or "cpu", host)
    misses = [
        j
        for j in ordered
        if not j.candidate.kept
        and j.memory is not None
        and j.check.ok
        and _precision(j.candidate.quantization, j.candidate.device or "cpu", host) > best_score
    ]
    return sorted(misses, key=_rank(host))[0] if misses else None


def describe_host(host: Host) -> str:
    parts = [f"{host.name} ({host.os}/{host.arch}, {gib(host.ram_bytes)} RAM"]
    for gpu in host.gpus:
        if gpu.vendor == "apple":
            continue
        cc = ".".join(map(str, gpu.compute_capability)) if gpu.compute_capability else "?"
        parts.append(f"{gpu.name} {gib(gpu.memory_bytes)} (compute {cc})")
    if host.apple_silicon:
        parts.append("Apple silicon")
    parts.append("BF16 CPU" if host.cpu_bf16 else "no BF16 on the CPU")
    return ", ".join(parts) + ")"


def default_env_ready(engine: Engine, host: Host) -> bool:
    """Whether the engine's environment is ready, without importing anything heavy."""
    try:
        from zoo.runtime.envs import env_status
    except ImportError:
        env_status = None  # type: ignore[assignment]
    if env_status is not None:
        return bool(env_status(engine, host).ready)
    module = engine.runtime_module(host)
    if not module:
        return False
    import importlib.util

    # Only the top-level name: find_spec("a.b") would import package "a".
    return importlib.util.find_spec(module.split(".")[0]) is not None


def preview_command(
    plan: Plan, engine: Engine, host: Host, options: LaunchOptions | None = None
) -> tuple[str, ...]:
    """The server command the plan leads to, with the model path not yet downloaded shown as
    ``<hub:repo>/file``; the runtime builds the real one after downloading."""
    options = options or LaunchOptions()
    where = f"<{plan.hub}:{plan.repo}>"
    model_path = f"{where}/{plan.files[0]}" if not plan.files_are_patterns else where
    ctx = launch_context(plan, model_path, options, host)
    try:
        return tuple(engine.server_command(ctx).argv)
    except Exception:  # a preview must never fail a dry run
        return ()


def launch_context(
    plan: Plan,
    model_path: str,
    options: LaunchOptions,
    host: Host | None = None,
    python: str = "python",
    port: int | None = None,
) -> LaunchContext:
    """The LaunchContext for ``plan``: shared by the dry-run preview and the runtime."""
    return LaunchContext(
        family=plan.family,
        spec=plan.spec,
        quantization=plan.quantization,
        model_path=model_path,
        served_name=options.served_name or plan.family.name,
        host=options.host,
        port=port if port is not None else (options.port or 0),
        context_length=plan.context_length,
        api_key=options.api_key,
        dtype=options.dtype,
        tensor_parallel_size=options.tensor_parallel_size,
        gpu_memory_fraction=options.gpu_memory_fraction,
        extra_args=options.extra_args,
        python=python,
        device=plan.device,
        variant=plan.variant,
        kv_cache_bytes=plan.kv_cache_bytes,
        threads=host.cpu_count if host is not None else None,
    )
