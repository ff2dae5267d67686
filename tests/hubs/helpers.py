"""Plans for hub tests, built from spec data the way the catalog builds them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from zoo.catalog.model import family_from_data
from zoo.hubs.base import Hub
from zoo.plan import Plan, PlannedSource
from zoo.resolve import file_selection, hub_order


def make_plan(
    sources: dict[str, Any],
    *,
    fmt: str = "ggufv2",
    quantization: str = "Q4_0",
    hub: str | None = None,
    reasons: tuple[str, ...] = (),
    explicit: bool = False,
    hubs: Mapping[str, Hub] | None = None,
) -> Plan:
    """A plan for a one-spec family whose spec has ``sources`` (hub -> source data).

    ``hub`` goes first; ``explicit`` makes it the only one, as ``--hub`` does.
    """
    family = family_from_data(
        {
            "name": "toy",
            "description": "a toy",
            "context_length": 4096,
            "languages": ["en"],
            "abilities": ["chat"],
            "specs": [
                {"format": fmt, "size": 1, "quantizations": [quantization], "sources": sources}
            ],
        }
    )
    spec = family.specs[0]
    if hub is not None and not explicit:
        first = [s for s in spec.sources if s.hub == hub]
        spec = replace(spec, sources=(*first, *(s for s in spec.sources if s.hub != hub)))
    # The hub order and file selection resolution would make (zoo.resolve decides both).
    order, locked, _ = hub_order(spec, quantization, hub if explicit else None, hubs=hubs)
    return Plan(
        family=family,
        spec=spec,
        quantization=quantization,
        engine="llama.cpp",
        sources=tuple(
            PlannedSource(
                hub=s.hub,
                repo=s.repo_for(quantization),
                revision=s.revision_for(quantization),
                selection=file_selection(spec, s, quantization, hubs),
                reason=why,
            )
            for s, why in order
        ),
        context_length=4096,
        env_ready=True,
        reasons=reasons,
        hub_locked=locked,
    )
