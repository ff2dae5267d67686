"""What the automatic choice would run on a few reference machines, for the model pages.

Resolution itself (``zoo.resolve.candidates``) judges every spec, quantization and engine on
each built-in host profile, so the page says what ``zoo launch NAME --host-profile PROFILE
--dry-run`` would: the choice, its memory and estimated speed, or why nothing runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from zoo.catalog.catalog import Catalog
from zoo.catalog.model import Family
from zoo.docs.context import DocsContext
from zoo.host import BUILTIN_PROFILES
from zoo.plan import Candidate

# A desktop CPU, a gaming GPU and a data-centre GPU: the machines readers usually compare.
REFERENCE_HOSTS = ("cpu-24g", "rtx4090-24g", "h100-80g")
HOST_WORDS = {
    "cpu-24g": "CPU only, 24 GiB RAM",
    "rtx4090-24g": "RTX 4090, 24 GiB",
    "h100-80g": "H100, 80 GiB",
}


@dataclass(frozen=True)
class HostFit:
    profile: str
    best: Candidate | None  # the automatic choice; None: nothing runs there
    reason: str  # why nothing runs ("" when something does)


def host_fits(family: Family, ctx: DocsContext) -> list[HostFit]:
    """The automatic choice on each reference host ([] without engines to judge with)."""
    if not ctx.runtime_engines:
        return []
    from zoo.errors import ZooError
    from zoo.resolve import Request, candidates

    catalog = Catalog({family.name: family})
    # Only the engines that declare one of the family's formats for its kind: the others are
    # dropped by resolution anyway, and judging them costs half the docs build's time here.
    declared = {
        info.name
        for info in ctx.engines
        if any(info.runs(s.format, q, family.kind) for s in family.specs for q in s.quantizations)
    }
    engines = {n: e for n, e in ctx.runtime_engines.items() if n in declared}
    if not engines:
        return [HostFit(p, None, "no installed engine runs its formats") for p in REFERENCE_HOSTS]
    fits = []
    for profile in REFERENCE_HOSTS:
        try:
            judged = candidates(
                catalog, Request(model=family.name), engines, BUILTIN_PROFILES[profile]
            )
        except ZooError as error:
            fits.append(HostFit(profile, None, str(error)))
            continue
        kept = [c for c in judged if c.kept]
        if kept:
            fits.append(HostFit(profile, kept[0], ""))
            continue
        # The closest miss: a candidate that was judged on memory says how much it needs.
        sized = [c for c in judged if c.memory_bytes is not None]
        closest = min(sized, key=lambda c: c.memory_bytes or 0) if sized else None
        pick = closest or (judged[0] if judged else None)
        fits.append(HostFit(profile, None, pick.reason if pick else "no engine runs it"))
    return fits
