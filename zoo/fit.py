"""What fits where: each quantization of a family with its download size, the memory and decode
speed estimated for a host, whether it runs there, whether its files are already in a hub
cache, and which one ``zoo launch`` would choose.

``zoo show`` and ``zoo list --fits/--downloaded`` use it; the docs and the web UI can too. No
decision is made here: fit, memory, speed and the choice come from ``zoo.resolve.candidates``
(the recommended row is its first kept candidate, which is what ``resolve`` picks: both rank
with the same key), download sizes from the lock (``zoo.resolve.recorded_downloads``) or
``zoo.memory.weights_bytes``, "downloaded" from ``zoo.hubs.download.cached_plan`` (no request:
files in the cache and nothing else). The Request comes from the caller (the CLI builds it
with ``zoo.cli.options.model_request``, as ``zoo launch`` does, so the settings file and a
reference's tag decide here too); ``default_request`` is the plain one for other callers.
Heavy modules are imported inside the functions, so ``zoo list`` without ``--fits`` pays
nothing for them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from zoo.catalog.model import Family, Spec
    from zoo.engine import Engine
    from zoo.host import Host
    from zoo.hubs.base import Hub
    from zoo.plan import Candidate
    from zoo.resolve import Request


@dataclass(frozen=True)
class QuantRow:
    """One (spec, quantization) of a family judged on one host."""

    spec: int  # the spec's index in ``family.specs``
    format: str
    size: float
    size_label: str
    quantization: str
    # (hub, repository id) in the order a download tries them, the id's template filled in.
    repos: tuple[tuple[str, str], ...]
    download_bytes: int
    download_estimated: bool  # no lock records the files' size: estimated from bits/weight
    fits: bool  # some installed engine runs it on the host within its memory budget
    reason: str  # resolution's verdict for the row's best engine
    engine: str | None = None
    device: str | None = None
    memory_bytes: int | None = None
    decode_tps: float | None = None
    downloaded: bool | None = None  # None: not checked
    recommended: bool = False

    def to_json(self) -> dict[str, object]:
        return {
            "spec": self.spec,
            "format": self.format,
            "size": self.size,
            "quantization": self.quantization,
            "repos": [{"hub": hub, "model_id": repo} for hub, repo in self.repos],
            "download_bytes": self.download_bytes,
            "download_estimated": self.download_estimated,
            "memory_bytes": self.memory_bytes,
            "decode_tps": self.decode_tps,
            "fits": self.fits,
            "engine": self.engine,
            "device": self.device,
            "reason": self.reason,
            "downloaded": self.downloaded,
            "recommended": self.recommended,
        }


def download_bytes(spec: Spec, quantization: str) -> tuple[int, bool]:
    """The bytes a download of ``quantization`` takes and whether that is an estimate: the
    lock's recorded size from the first source that has one, else the weights' estimate."""
    from zoo import quantization as quant
    from zoo.memory import weights_bytes

    for source in spec.sources:
        if not source.locked or not quant.find(quantization, source.quantizations):
            continue
        from zoo.resolve import recorded_downloads

        for found in recorded_downloads(spec, source):
            if quant.same(found.quantization, quantization) and found.bytes:
                return found.bytes, False
    return weights_bytes(spec, quantization), True


def estimated_range(specs: Iterable[tuple[str, float, Iterable[str]]]) -> list[int]:
    """[smallest, largest] estimated download over (format, size, quantizations) of a family's
    specs (``zoo list``'s size column; from bits per weight, ``zoo.memory.weights_bytes``).

    Estimates only, no lock: listings compute this from the spec data without building the
    families (``views.summary_from_data``), where locks are not read. The formula is
    ``weights_bytes``', restated so that ``zoo list`` need not import the data model (a test
    keeps them equal).
    """
    from zoo.quantization import bits_per_weight

    sizes = [
        int(size * 1e9 * bits_per_weight(q, fmt=fmt) / 8)
        for fmt, size, quantizations in specs
        for q in quantizations
    ]
    return [min(sizes), max(sizes)] if sizes else [0, 0]


def default_request(family: Family) -> Request:
    """The Request of a plain ``zoo launch NAME`` without the settings file's per-model
    defaults: its hub and speed settings only (``zoo.config``), for callers outside the CLI."""
    from zoo import config
    from zoo.resolve import Request

    file = config.load()
    return Request(
        model=family.name,
        default_hub=config.default_hub(file).value,
        min_speed=config.min_speed(None, file).value,
    )


def _broad(request: Request) -> Request:
    """The request without what narrows the choice (engine, format, size, quantization):
    every row of a table is judged, with the hubs, context and speed the request sets."""
    return replace(request, engine=None, format=None, size=None, quantization=None)


def judged(
    family: Family,
    host: Host,
    engines: Mapping[str, Engine],
    hubs: Mapping[str, Hub] | None,
    *,
    request: Request,
) -> list[Candidate]:
    """Every (spec, quantization, engine) of ``family`` that ``request`` wants, judged on
    ``host``, kept first, best first (``zoo.resolve.candidates``); empty when no engine is
    installed."""
    from zoo.catalog.catalog import Catalog
    from zoo.resolve import candidates

    if not engines:
        return []
    catalog = Catalog(families={family.name: family})
    return candidates(catalog, replace(request, model=family.name), engines, host, hubs=hubs)


def fits(
    family: Family,
    host: Host,
    engines: Mapping[str, Engine],
    hubs: Mapping[str, Hub] | None,
    *,
    request: Request,
) -> bool:
    """Whether ``zoo launch`` of ``request`` finds something to run on ``host`` (``zoo list
    --fits``)."""
    found = judged(family, host, engines, hubs, request=request)
    return bool(found) and found[0].kept


def is_downloaded(
    family: Family,
    spec: Spec,
    quantization: str,
    hubs: Mapping[str, Hub],
    *,
    hub: str | None = None,
    default_hub: str | None = None,
) -> bool:
    """Whether the files a launch of (spec, quantization) takes are all in the cache of one of
    the hubs it would download from (``hub``: only that one; else ``default_hub`` first), in
    their order (no network request)."""
    from zoo import quantization as quant
    from zoo.hubs.download import cached_plan
    from zoo.plan import Plan, PlannedSource
    from zoo.resolve import file_selection, hub_order

    order, locked, _ = hub_order(spec, quantization, hub, default_hub, hubs)
    if not order:
        return False
    sources = []
    for source, why in order:
        # The same planned source resolution builds (zoo.resolve._judge).
        found = quant.find(quantization, source.quantizations) or quantization
        sources.append(
            PlannedSource(
                hub=source.hub,
                repo=source.repo_for(found),
                revision=source.revision_for(found),
                selection=file_selection(spec, source, found, hubs),
                reason=why,
            )
        )
    plan = Plan(
        family=family,
        spec=spec,
        quantization=quantization,
        engine="",
        sources=tuple(sources),
        hub_locked=locked,
    )
    try:
        return cached_plan(plan, hubs=hubs) is not None
    except Exception:  # a broken cache entry is "not downloaded", never a failed listing
        return False


def any_downloaded(
    family: Family, hubs: Mapping[str, Hub], *, default_hub: str | None = None
) -> bool:
    """Whether some quantization of ``family`` is in a hub cache (``zoo list --downloaded``)."""
    return any(
        is_downloaded(family, spec, q, hubs, default_hub=default_hub)
        for spec in family.specs
        for q in spec.quantizations
    )


def _key(fmt: str, size: float, quantization: str) -> tuple[str, float, str]:
    from zoo import quantization as quant

    return fmt, size, quant.canonical(quantization)


def family_rows(
    family: Family,
    host: Host,
    engines: Mapping[str, Engine],
    hubs: Mapping[str, Hub],
    *,
    request: Request | None = None,
    check_cache: bool = True,
) -> list[QuantRow]:
    """Every (spec, quantization) of ``family`` on ``host``: specs by size (in the family's
    order among equals), each spec's rows by download size, the one ``zoo launch`` of
    ``request`` would choose marked (its engine, format, size and quantization narrow that
    choice, not the rows; default: ``default_request``)."""
    from zoo.resolve import hub_order

    request = request if request is not None else default_request(family)
    broad = _broad(request)
    found = judged(family, host, engines, hubs, request=broad)
    best: dict[tuple[str, float, str], Candidate] = {}
    for candidate in found:
        key = _key(candidate.format, candidate.size, candidate.quantization)
        held = best.get(key)
        # Kept ones come first, best first; among the rest, one that was sized (it runs
        # here but does not fit) says more than an engine that cannot run it at all.
        if held is None or (
            not held.kept and held.memory_bytes is None and candidate.memory_bytes is not None
        ):
            best[key] = candidate
    # The choice is resolution's for the whole request (kept first, best first, as
    # ``resolve`` ranks them): the broad list's first is that only when nothing narrows it.
    choice = found if request == broad else judged(family, host, engines, hubs, request=request)
    chosen = choice[0] if choice and choice[0].kept else None
    recommended = (
        _key(chosen.format, chosen.size, chosen.quantization) if chosen is not None else None
    )
    rows: list[QuantRow] = []
    specs = sorted(enumerate(family.specs), key=lambda item: (item[1].size, item[0]))
    for index, spec in specs:
        spec_rows = []
        for q in spec.quantizations:
            key = _key(spec.format, spec.size, q)
            judged_here = best.get(key)
            order, _, why_none = hub_order(spec, q, request.hub, request.default_hub, hubs)
            size, estimated = download_bytes(spec, q)
            spec_rows.append(
                QuantRow(
                    spec=index,
                    format=spec.format,
                    size=spec.size,
                    size_label=spec.size_label,
                    quantization=q,
                    repos=tuple((s.hub, s.repo_for(q)) for s, _ in order),
                    download_bytes=size,
                    download_estimated=estimated,
                    fits=judged_here is not None and judged_here.kept,
                    reason=(
                        judged_here.reason
                        if judged_here is not None
                        else why_none or "no installed engine runs it"
                    ),
                    engine=judged_here.engine if judged_here is not None else None,
                    device=judged_here.device if judged_here is not None else None,
                    memory_bytes=judged_here.memory_bytes if judged_here is not None else None,
                    decode_tps=judged_here.decode_tps if judged_here is not None else None,
                    downloaded=(
                        is_downloaded(
                            family,
                            spec,
                            q,
                            hubs,
                            hub=request.hub,
                            default_hub=request.default_hub,
                        )
                        if check_cache
                        else None
                    ),
                    recommended=key == recommended,
                )
            )
        rows.extend(sorted(spec_rows, key=lambda r: r.download_bytes))
    return rows


def group_by_spec(rows: Sequence[QuantRow]) -> list[list[QuantRow]]:
    """``family_rows``' rows in runs of one spec, in their order."""
    groups: list[list[QuantRow]] = []
    for row in rows:
        if groups and groups[-1][0].spec == row.spec:
            groups[-1].append(row)
        else:
            groups.append([row])
    return groups


def repositories(rows: Sequence[QuantRow]) -> str:
    """Where one spec's rows download from, template filled in, e.g. "Qwen/Qwen3-8B
    (huggingface, modelscope)" or "mlx-community/Qwen3-8B-{4bit,8bit} (huggingface)"."""
    by_hub: dict[str, dict[str, str]] = {}
    for row in rows:
        for hub, repo in row.repos:
            by_hub.setdefault(hub, {})[row.quantization] = repo
    hubs_of: dict[str, list[str]] = {}
    for hub, repos in by_hub.items():
        hubs_of.setdefault(_brace(repos), []).append(hub)
    return ", ".join(f"{label} ({', '.join(hubs)})" for label, hubs in hubs_of.items())


def _brace(repos: Mapping[str, str]) -> str:
    """quantization -> repository as one name: the shared one, or the template with a brace
    list of the quantizations where each repository has its own ("org/m-{Q4_K_M,Q8_0}")."""
    names = list(dict.fromkeys(repos.values()))
    if len(names) == 1:
        return names[0]
    marker = "\0"
    shapes = {repo.replace(q, marker, 1) for q, repo in repos.items()}
    if len(shapes) == 1 and marker in (shape := shapes.pop()):
        return shape.replace(marker, "{" + ",".join(repos) + "}")
    return ", ".join(names)


def size_range(low: int, high: int) -> str:
    """A download range as people read it: "0.1-20 GB", "90-270 MB", "4.9 GB", "0.4-1.3 TB"."""
    unit, scale = ("TB", 1e12) if high >= 1e12 else ("GB", 1e9) if high >= 1e9 else ("MB", 1e6)

    def number(n: int) -> str:
        value = n / scale
        return f"{value:.1f}" if value < 10 else f"{value:.0f}"

    lo, hi = number(low), number(high)
    return f"{hi} {unit}" if lo == hi else f"{lo}-{hi} {unit}"
