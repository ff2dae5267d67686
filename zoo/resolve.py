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

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from zoo import kinds
from zoo import quantization as quant
from zoo.catalog.catalog import Catalog
from zoo.catalog.model import Family, Source, Spec, format_size
from zoo.engine import Engine, Match
from zoo.errors import NotFoundError, UsageError
from zoo.host import Host
from zoo.memory import MemoryEstimate, estimate, gib, gib_pair
from zoo.plan import (
    Candidate,
    Environment,
    FileSelection,
    LaunchOptions,
    MemoryBreakdown,
    Plan,
    PlannedSource,
)
from zoo.speed import DEFAULT_MIN_SPEED, SpeedEstimate, device_rates, estimate_speed

if TYPE_CHECKING:
    from zoo.hubs.base import Hub

# The context to plan for when none is asked: long contexts cost KV memory a small machine
# does not have; ``--context`` asks for more (up to the family's maximum).
DEFAULT_CONTEXT = 8192
GPU_SHARE = 0.9
UNIFIED_SHARE = 0.75
RAM_SHARE = 0.8

# An engine environment's readiness and interpreter: (ready, python). Given to resolution by
# its caller (``zoo.launch``), which may read the file system; resolution itself reads nothing.
EnvProbe = Callable[[Environment], tuple[bool, str]]


def _not_probed(environment: Environment) -> tuple[bool, str]:
    return False, "python"


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
    # The hub to prefer when ``--hub`` is not given (``$ZOO_HUB``, read by the caller).
    default_hub: str | None = None
    # Tokens per second a candidate must reach to count as usable (``--min-speed``; None:
    # ``zoo.speed.DEFAULT_MIN_SPEED``, 0: speed does not matter).
    min_speed: float | None = None

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
    sources: tuple[PlannedSource, ...] = ()
    gpus: int = 0
    tensor_parallel: int | None = None
    hub_locked: bool = False  # the user named the hub (``hub_order``)
    speed: SpeedEstimate | None = None


def resolve(
    catalog: Catalog,
    request: Request,
    engines: Mapping[str, Engine],
    host: Host,
    *,
    hubs: Mapping[str, Hub] | None = None,
    env_probe: EnvProbe | None = None,
    options: LaunchOptions | None = None,
) -> Plan:
    """The best plan for ``request`` on ``host``, or a UsageError naming what would work.

    Everything resolution needs is an argument: the installed ``hubs`` (their traits decide
    how files are selected; None: every hub the spec names, files exact only for GGUF), the
    ``env_probe`` for engine environments, and the launch ``options`` the plan will carry.
    """
    family = catalog.get(request.model)
    validate_request(family, request, engines)
    if not engines:
        formats = ", ".join(
            dict.fromkeys(s.format for s in family.specs if request.format in (None, s.format))
        )
        raise UsageError(
            f"{request.describe()} cannot run: no installed engine runs {formats}",
            hint="engines are plugins, e.g. pip install zoo-launcher-llamacpp; see `zoo plugins`",
        )
    options = options or LaunchOptions()
    context = context_length(family, request)
    judged = _judge_all(family, request, engines, host, context, hubs, options)
    kept = sorted((j for j in judged if j.wanted and j.candidate.kept), key=_rank(host, request))
    if not kept:
        raise UsageError(_impossible(family, request, judged, host))
    best = kept[0]
    considered = [j for j in judged if j.wanted]
    ordered = kept + [j for j in considered if not j.candidate.kept]
    return _plan(family, request, best, ordered, host, context, env_probe, options)


def candidates(
    catalog: Catalog,
    request: Request,
    engines: Mapping[str, Engine],
    host: Host,
    *,
    hubs: Mapping[str, Hub] | None = None,
) -> list[Candidate]:
    """Every (spec, quantization, engine) of the request's family judged on ``host``: those
    kept first, best first (``zoo engines --model``)."""
    family = catalog.get(request.model)
    validate_request(family, request, engines)
    context = context_length(family, request)
    judged = _judge_all(family, request, engines, host, context, hubs, LaunchOptions())
    kept = sorted((j for j in judged if j.wanted and j.candidate.kept), key=_rank(host, request))
    rest = [j for j in judged if j.wanted and not j.candidate.kept]
    return [j.candidate for j in kept + rest]


def _judge_all(
    family: Family,
    request: Request,
    engines: Mapping[str, Engine],
    host: Host,
    context: int,
    hubs: Mapping[str, Hub] | None,
    options: LaunchOptions,
) -> list[_Judged]:
    return [
        _judge(family, spec, q, engine, host, request, context, hubs, options)
        for spec in family.specs
        for q in spec.quantizations
        for engine in engines.values()
    ]


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


def engine_environment(engine: Engine, host: Host) -> Environment:
    """The environment ``engine`` runs in on ``host`` (its variant's requirements there)."""
    return Environment(
        engine=engine.name,
        requirements=tuple(engine.requirements(host)),
        uninstall=tuple(engine.env_uninstall(host)),
        runtime_module=engine.runtime_module(host),
    )


def hub_order(
    spec: Spec,
    quantization: str,
    requested: str | None = None,
    default: str | None = None,
    hubs: Mapping[str, Hub] | None = None,
) -> tuple[list[tuple[Source, str]], bool, str]:
    """The sources to download ``quantization`` from, best first, each with why; whether the
    choice is locked (the user named the hub, so no other may stand in); and, when the list is
    empty, why.

    The one rule for which hub: ``--hub`` (``requested``), then ``$ZOO_HUB`` (``default``,
    "auto" meaning none), then the spec's order. Only sources that list the quantization and
    whose hub is installed count. Which of them is finally used (one already in its cache, the
    first reachable one) is decided at download time among exactly these, in this order.
    """
    having = [s for s in spec.sources if quant.find(quantization, s.quantizations)]
    missing = [s.hub for s in having if hubs is not None and s.hub not in hubs]
    installed = [s for s in having if hubs is None or s.hub in hubs]
    names = ", ".join(s.hub for s in having) or "none"
    if requested is not None:
        for source in installed:
            if source.hub == requested:
                return [(source, f"hub {requested} (--hub)")], True, ""
        if requested in missing:
            return [], True, f"hub {requested} is not installed (see `zoo plugins`)"
        return [], True, f"not on hub {requested} (has: {names})"
    default = (default or "").strip()
    if default == "auto":
        default = ""
    if not installed:
        if missing:
            return [], False, f"no installed hub has it (sources on: {', '.join(missing)})"
        return [], False, "no hub has this quantization"
    if default:
        first = [s for s in installed if s.hub == default]
        if first:
            return [(first[0], f"hub {default} ($ZOO_HUB)")], True, ""
    note = " (first in the spec)"
    if default:
        why = "is not installed" if default in missing else "has no source for it"
        note = f" ($ZOO_HUB={default} {why})"
    order = [(installed[0], f"hub {installed[0].hub}{note}")]
    order += [(s, f"hub {s.hub} (next in the spec)") for s in installed[1:]]
    return order, False, ""


def file_selection(
    spec: Spec, source: Source, q: str, hubs: Mapping[str, Hub] | None
) -> FileSelection:
    """How this source's files are chosen: named exactly (GGUF, or a hub that serves named
    files such as PyPI packages), or by ``zoo.hubs.select``'s rule from the listing."""
    hub = hubs.get(source.hub) if hubs is not None else None
    exact = spec.format == "ggufv2" or (hub is not None and hub.names_exact_files)
    if exact:
        return FileSelection(exact=source.files_for(q) + source.multimodal_projectors[:1])
    return FileSelection(exclude=tuple(source.exclude))


@dataclass(frozen=True)
class RecordedDownload:
    """What a lock file records for one quantization of a source: the commit its revision
    was pinned to, the files' total size (None where the lock lacks one), and when."""

    quantization: str
    repo: str
    commit: str
    checked: str
    bytes: int | None


def recorded_downloads(spec: Spec, source: Source) -> tuple[RecordedDownload, ...]:
    """The lock's facts per quantization of ``source`` (those whose repository was checked),
    for ``zoo show`` and the docs: the files a download takes, by the same selection a plan
    makes, so the size shown is what a dry run states."""
    from zoo.hubs.locked import locked_files

    found = []
    for q in source.quantizations:
        locked = source.locked_repo(q)
        if locked is None:
            continue
        files = locked_files(locked, file_selection(spec, source, q, None), hub=source.hub)
        size = None if files is None else sum(f.size or 0 for f in files)
        found.append(RecordedDownload(q, locked.repo, locked.commit, locked.checked, size))
    return tuple(found)


def validate_request(family: Family, request: Request, engines: Mapping[str, Engine]) -> None:
    """Refuse, in one line, what ``family`` cannot be asked: an unknown engine, a format, size
    or quantization it does not have (the settings file's defaults are checked by this too)."""
    if request.engine is not None and request.engine not in engines:
        names = ", ".join(sorted(engines)) or "none installed"
        raise NotFoundError(f"unknown engine {request.engine!r}", hint=f"engines: {names}")
    if request.format is not None and request.format not in family.formats:
        raise UsageError(
            f"{family.name} has no {request.format!r} format (has: {', '.join(family.formats)})"
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


def context_length(family: Family, request: Request) -> int:
    """The context to plan for: the request's (checked against the family's), or the default."""
    if request.context_length is None:
        return min(family.context_length, DEFAULT_CONTEXT)
    if request.context_length <= 0:
        raise UsageError("--context must be a positive number of tokens")
    if request.context_length > family.context_length:
        raise UsageError(
            f"{family.name} supports a context of at most {family.context_length} tokens"
        )
    return request.context_length


@dataclass(frozen=True)
class _Budget:
    bytes: int
    gpus: int = 0  # GPUs used (CUDA only)
    tensor_parallel: int | None = None  # the --tensor-parallel-size the engine must be given


def memory_budget(host: Host, device: str) -> int:
    """The memory engines computing on ``device`` may plan for on ``host``."""
    if device == "cuda":
        return int(sum(g.memory_bytes for g in host.cuda_gpus) * GPU_SHARE)
    if device == "metal":
        return int(host.ram_bytes * UNIFIED_SHARE)
    return int(host.ram_bytes * RAM_SHARE)


def _gpu_budget(host: Host, split: str, needed: int, asked_tp: int | None) -> _Budget:
    """What the GPUs offer an engine, given how it spreads a model over them.

    "layers": the engine spreads layers over every GPU itself (llama.cpp). "tensor-parallel":
    it shards over the number of GPUs it is told (vLLM), a power of two here; the plan takes
    the fewest that hold the model (or the user's ``--tensor-parallel-size``) and the engine is
    given that number. "none": one GPU, the largest.
    """
    gpus = sorted((g.memory_bytes for g in host.cuda_gpus), reverse=True)
    if not gpus:
        return _Budget(0)
    if split == "layers":
        return _Budget(int(sum(gpus) * GPU_SHARE), len(gpus))
    if split == "tensor-parallel":
        sizes = [asked_tp] if asked_tp else [n for n in (1, 2, 4, 8, 16) if n <= len(gpus)]
        for n in sizes:
            share = int(n * min(gpus[:n]) * GPU_SHARE) if n <= len(gpus) else 0
            if needed <= share or n == sizes[-1]:
                return _Budget(share, min(n, len(gpus)), n if n > 1 or asked_tp else None)
    return _Budget(int(gpus[0] * GPU_SHARE), 1)


def _device_words(device: str) -> str:
    return {"cuda": "GPU memory", "metal": "unified memory"}.get(device, "RAM")


def _judge(
    family: Family,
    spec: Spec,
    q: str,
    engine: Engine,
    host: Host,
    request: Request,
    context: int,
    hubs: Mapping[str, Hub] | None,
    options: LaunchOptions,
) -> _Judged:
    wanted = (
        request.engine in (None, engine.name)
        and request.format in (None, spec.format)
        and (request.size is None or _same_size(spec.size, request.size))
        and (request.quantization is None or quant.same(request.quantization, q))
    )
    check = Match.no("no hub has it")

    def verdict(
        kept: bool,
        reason: str,
        memory: MemoryEstimate | None = None,
        device: str | None = None,
        sources: tuple[PlannedSource, ...] = (),
        budget: _Budget = _Budget(0),
    ) -> _Judged:
        speed = None
        if memory is not None and device is not None:
            caps = engine.capabilities_for(host)
            rates = device_rates(host, device, budget.gpus, caps.gpu_split)
            speed = estimate_speed(
                spec,
                memory.weights_bytes,
                memory.kv_cache_bytes,
                rates,
                efficiency=caps.decode_efficiency,
                token_overhead_s=caps.token_overhead_s,
                context_tokens=context,
            )
        candidate = Candidate(
            engine=engine.name,
            format=spec.format,
            size=spec.size,
            quantization=q,
            kept=kept,
            reason=reason,
            memory_bytes=memory.total_bytes if memory else None,
            device=device,
            hub=sources[0].hub if sources else None,
            decode_tps=speed.decode_tokens_per_second if speed else None,
            prefill_tps=speed.prefill_tokens_per_second if speed else None,
        )
        return _Judged(
            candidate,
            spec,
            engine,
            check,
            wanted,
            memory,
            budget.bytes,
            sources,
            budget.gpus,
            budget.tensor_parallel,
            locked,
            speed,
        )

    order, locked, why_none = hub_order(spec, q, request.hub, request.default_hub, hubs)
    serves = engine.capabilities_for(host).kinds
    if family.kind not in serves:
        served = ", ".join(kinds.KINDS[k].plural if k in kinds.KINDS else k for k in serves)
        check = Match.no(f"does not serve {kinds.kind(family.kind).plural} (serves {served})")
        return verdict(False, check.reason)
    check = engine.check_family(family, host)
    if not check.ok:
        return verdict(False, check.reason)
    if not order:
        check = engine.check(spec, q, host)
        return verdict(False, check.reason if not check.ok else why_none)
    # The engine judges each hub's copy: they may differ (split parts on one hub, not another).
    sources: list[PlannedSource] = []
    verdicts: list[Match] = []
    for source, hub_reason in order:
        verdict_here = engine.check(replace(spec, sources=(source,)), q, host)
        verdicts.append(verdict_here)
        if verdict_here.ok:
            found = quant.find(q, source.quantizations) or q
            sources.append(
                PlannedSource(
                    hub=source.hub,
                    repo=source.repo_for(found),
                    # The commit the lock pinned (while it is current): the dry run shows
                    # what the download fetches.
                    revision=source.revision_for(found),
                    selection=file_selection(spec, source, found, hubs),
                    reason=hub_reason,
                )
            )
    check = next((v for v in verdicts if v.ok), verdicts[0])
    if not sources:
        return verdict(False, check.reason)
    planned = tuple(sources)
    caps = engine.capabilities_for(host)
    if spec.format in caps.experimental_formats and request.engine != engine.name:
        return verdict(
            False,
            f"{spec.format} support is experimental: used only with --engine {engine.name}",
        )
    if request.context_length is not None and not caps.honours_context:
        return verdict(False, "cannot be given a context length (--context): it uses the model's")
    device = engine.device(spec, host)
    asked_tp, gpu_count = options.tensor_parallel_size, len(host.cuda_gpus)
    if device == "cuda" and caps.gpu_split == "tensor-parallel" and (asked_tp or 0) > gpu_count:
        return verdict(
            False,
            f"--tensor-parallel-size {asked_tp} needs {asked_tp} GPUs; the host has {gpu_count}",
        )
    memory = estimate(family, spec, q, context, engine.overhead_bytes(host))
    if device == "cuda":
        budget = _gpu_budget(host, caps.gpu_split, memory.total_bytes, options.tensor_parallel_size)
    else:
        budget = _Budget(memory_budget(host, device))
    if memory.total_bytes > budget.bytes and device == "cuda":
        cpu_ok = "cpu" in caps.accelerators and "cuda" not in caps.format_accelerators.get(
            spec.format, ()
        )
        if cpu_ok and memory.total_bytes <= memory_budget(host, "cpu"):
            device, budget = "cpu", _Budget(memory_budget(host, "cpu"))
    where = _device_words(device)
    if device == "cuda" and budget.gpus:
        where = f"GPU memory on {budget.gpus} GPU{'s' if budget.gpus > 1 else ''}"
    # Enough decimals that a need just over the budget never reads as equal to it.
    need, have = gib_pair(memory.total_bytes, budget.bytes)
    if memory.total_bytes > budget.bytes:
        return verdict(
            False,
            f"needs {need}, more than the {have} of {where} usable here",
            memory,
            device,
            planned,
            budget,
        )
    return verdict(
        True,
        f"{check.reason}; needs {need} of {have} {where}",
        memory,
        device,
        planned,
        budget,
    )


def min_speed(request: Request) -> float:
    """The tokens per second the request calls usable."""
    return DEFAULT_MIN_SPEED if request.min_speed is None else max(request.min_speed, 0.0)


def _rank(host: Host, request: Request) -> Callable[[_Judged], tuple[float, ...]]:
    usable_speed = min_speed(request)

    def key(j: _Judged) -> tuple[float, ...]:
        c = j.candidate
        score = _precision(c.quantization, c.format, c.device or "cpu", host)
        caps = j.engine.capabilities_for(host)
        at_home = 1.0 if host.kind in caps.preferred_on else 0.0
        on_accelerator = c.device != "cpu" or host.kind == "cpu"
        good = score >= quant.GOOD_QUALITY
        # Unknown speed (a GPU without data-sheet figures) counts as usable: no guess.
        usable = c.decode_tps is None or c.decode_tps >= usable_speed
        # Speed is bought with a smaller model, never with fewer than 4 bits: a 4-bit
        # candidate that is usable beats everything, then any 4-bit one (the fastest when
        # none is usable), and only where no 4-bit one fits do the lower bits compete, by
        # size then precision (what fits, as before) after being usable.
        if usable:
            bigger_or_faster = c.size
        elif good:
            bigger_or_faster = c.decode_tps or 0.0
        else:
            bigger_or_faster = c.size
        # Negated: sorted() puts the smallest first, and we want the best first.
        return (
            -float(usable and good),
            -float(on_accelerator),
            -float(good),
            -float(usable),
            -bigger_or_faster,
            -score,
            -at_home,
            -float(j.engine.priority),
            -quant.bits_per_weight(c.quantization, fmt=c.format),
        )

    return key


def _precision(q: str, fmt: str, device: str, host: Host) -> float:
    if device == "cuda":
        bf16 = all(g.has_bf16 for g in host.cuda_gpus)
    elif device == "metal":
        bf16 = True
    else:
        bf16 = host.cpu_bf16
    return quant.precision_score(q, bf16=bf16, gpu=device in ("cuda", "metal"), fmt=fmt)


def _describe(j: _Judged) -> str:
    c = j.candidate
    return (
        f"{c.format} {format_size(c.size)}B {c.quantization} with "
        f"{j.engine.display_name or j.engine.name}"
    )


def _impossible(family: Family, request: Request, judged: Sequence[_Judged], host: Host) -> str:
    """One line: what fails for the request, and the nearest thing that works here."""
    asked = [j for j in judged if j.wanted]
    workable = sorted((j for j in judged if j.candidate.kept), key=_rank(host, request))
    nearest = f"; on this machine: {_describe(workable[0])}" if workable else ""
    runnable = [j for j in asked if j.check.ok and j.memory is not None]
    if runnable:
        smallest = min(runnable, key=lambda j: j.memory.total_bytes if j.memory else 0)
        return (
            f"{request.describe()} does not fit {host.name}: the smallest, "
            f"{_describe(smallest)}, {smallest.candidate.reason}{nearest}"
        )
    reasons = _common_reason(asked, family.kind)
    if not workable:
        nearest = "; nothing in this family runs here"
    return f"{request.describe()} {reasons}{nearest}"


def _common_reason(asked: Sequence[_Judged], kind: str) -> str:
    """The failure shared by the engines that know the format and kind, naming them, e.g.
    "needs a CUDA GPU (vLLM, Transformers)"."""
    by_reason: dict[str, list[str]] = {}
    for j in asked:
        every = (j.engine.capabilities, *j.engine.variants)
        if not any(j.spec.format in c.formats and kind in c.kinds for c in every):
            continue  # engines that never run this format or kind say nothing useful
        reason = j.check.reason if not j.check.ok else j.candidate.reason
        name = j.engine.display_name or j.engine.name
        by_reason.setdefault(reason, [])
        if name not in by_reason[reason]:
            by_reason[reason].append(name)
    if not by_reason:
        formats = ", ".join(dict.fromkeys(j.spec.format for j in asked))
        if kind != kinds.LLM:
            named = {j.engine.name for j in asked}
            if len(named) == 1:  # --engine named it: its own reason, another may serve the kind
                only = asked[0].engine
                return f"cannot run: {only.display_name or only.name} {asked[0].candidate.reason}"
            return f"cannot run: no installed engine serves {kinds.kind(kind).plural} in {formats}"
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
    env_probe: EnvProbe | None,
    options: LaunchOptions,
) -> Plan:
    c = best.candidate
    spec, engine = best.spec, best.engine
    assert best.memory is not None and best.sources
    caps = engine.capabilities_for(host)
    environment = engine_environment(engine, host)
    ready, python = (env_probe or _not_probed)(environment)
    if best.tensor_parallel and options.tensor_parallel_size is None:
        options = replace(options, tensor_parallel_size=best.tensor_parallel)
    usable = min_speed(request)
    reasons = [
        f"host: {describe_host(host)}",
        (
            f"order: a usable speed first (an estimated {usable:g} tokens/s or more, "
            "--min-speed) at 4 bits or better, bought with a smaller model, never with fewer "
            "bits; then on the GPU where there is one, quality of 4 bits or better (the "
            "fastest when none is usable), the largest size, then BF16 where the hardware "
            "has it, then F16, then the highest-precision quantization that fits; GPU "
            "engines on GPUs, MLX on Apple silicon, llama.cpp on plain CPUs"
        ),
        f"chosen: {_describe(best)} on {c.device}: {c.reason}",
    ]
    if best.speed is not None:
        reasons.append(f"speed: {describe_speed(best.speed)}")
    faster = _faster_choice_missed(best, ordered, usable, host)
    if faster:
        reasons.append(faster)
    better = _better_but_dropped(best, ordered, host, request)
    if better is not None:
        reasons.append(f"not {_describe(better)}: {better.candidate.reason}")
    reasons += [s.reason for s in best.sources]
    if best.tensor_parallel:
        reasons.append(f"tensor parallel over {best.tensor_parallel} GPUs")
    requirements = " ".join(environment.requirements) or "no packages"
    reasons.append(
        "engine environment: ready"
        if ready
        else f"engine environment: will be created ({requirements})"
    )
    return Plan(
        family=family,
        spec=spec,
        quantization=c.quantization,
        engine=engine.name,
        sources=best.sources,
        memory=MemoryBreakdown(
            weights_bytes=best.memory.weights_bytes,
            kv_cache_bytes=best.memory.kv_cache_bytes,
            overhead_bytes=best.memory.overhead_bytes,
            budget_bytes=best.budget,
            place=_device_words(c.device or "cpu"),
            gpus=best.gpus,
        ),
        context_length=context,
        environment=environment,
        env_ready=ready,
        python=python,
        options=options,
        hub_locked=best.hub_locked,
        device=c.device or "cpu",
        variant=caps.variant,
        threads=host.cpu_count or None,
        host_name=host.name,
        reasons=tuple(reasons),
        candidates=tuple(j.candidate for j in ordered),
        speed=best.speed,
        min_speed=usable,
    )


def _better_but_dropped(
    best: _Judged, ordered: Sequence[_Judged], host: Host, request: Request
) -> _Judged | None:
    """The most precise candidate that ran here but did not fit, if more precise than best."""
    c = best.candidate
    best_score = _precision(c.quantization, c.format, c.device or "cpu", host)
    misses = [
        j
        for j in ordered
        if not j.candidate.kept
        and j.memory is not None
        and j.check.ok
        and _precision(
            j.candidate.quantization, j.candidate.format, j.candidate.device or "cpu", host
        )
        > best_score
    ]
    return sorted(misses, key=_rank(host, request))[0] if misses else None


def describe_speed(speed: SpeedEstimate) -> str:
    """ "~35 tok/s decoding, ~900 tok/s reading the prompt (1.1 GB read per token at 12 GB/s)"."""
    from zoo.speed import tokens_per_second

    prefill = speed.prefill_tokens_per_second
    reading = f", {tokens_per_second(prefill)} reading the prompt" if prefill else ""
    return (
        f"{tokens_per_second(speed.decode_tokens_per_second)} decoding{reading} "
        f"(an estimate: {speed.bytes_per_token / 1e9:.2g} GB read per token at "
        f"{speed.bandwidth / 1e9:,.0f} GB/s)"
    )


def _faster_choice_missed(
    best: _Judged, ordered: Sequence[_Judged], usable: float, host: Host
) -> str:
    """When the choice is slower than usable, say so, and why it was chosen all the same."""
    c = best.candidate
    tps = c.decode_tps
    if tps is None or tps >= usable:
        return ""
    if _precision(c.quantization, c.format, c.device or "cpu", host) < quant.GOOD_QUALITY:
        return (
            f"slow here: no candidate reaches {usable:g} tokens/s on this host and none of "
            "4 bits or better fits, so the largest and most precise that fits was chosen"
        )
    fastest = max((j.candidate.decode_tps or 0.0 for j in ordered if j.candidate.kept), default=0.0)
    if fastest >= usable:
        # Only a candidate of fewer than 4 bits would reach it: quality was kept.
        return (
            f"slow here: only quantizations of fewer than 4 bits reach {usable:g} tokens/s "
            "on this host, so 4 bits or better were kept and the fastest of those chosen "
            "(a smaller model or --quantization trades that; --min-speed 0 prefers size)"
        )
    return (
        f"slow here: no candidate reaches {usable:g} tokens/s on this host, so the fastest "
        "was chosen (--min-speed 0 prefers quality and size instead)"
    )


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
