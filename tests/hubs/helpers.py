"""Plans for hub tests, built from spec data the way the catalog builds them."""

from __future__ import annotations

from typing import Any

from zoo.catalog.model import family_from_data
from zoo.plan import Plan


def make_plan(
    sources: dict[str, Any],
    *,
    fmt: str = "ggufv2",
    quantization: str = "Q4_0",
    hub: str | None = None,
    reasons: tuple[str, ...] = (),
) -> Plan:
    """A plan for a one-spec family whose spec has ``sources`` (hub -> source data)."""
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
    hub = hub or spec.sources[0].hub
    source = spec.source(hub)
    assert source is not None
    return Plan(
        family=family,
        spec=spec,
        quantization=quantization,
        engine="llama.cpp",
        hub=hub,
        repo=source.repo_for(quantization),
        revision=source.revision,
        files=source.files_for(quantization),
        memory_bytes=0,
        context_length=4096,
        env_ready=True,
        reasons=reasons,
    )
