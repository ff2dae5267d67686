"""A Plan: everything resolution decided, ready to download and launch.

Produced by ``zoo.resolve.resolve``; consumed by ``zoo.hubs`` (what to fetch) and
``zoo.runtime`` (what to start). Plain data, printable as JSON (``zoo launch --dry-run --json``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from zoo.catalog.model import Family, Spec


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
