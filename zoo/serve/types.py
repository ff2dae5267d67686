"""The data the gateway's parts pass each other: what it serves, and how a loaded model is
reached."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class ModelEntry:
    """One model the gateway serves, from its config (or found in the cache).

    ``name`` is what clients ask for; the launch fields narrow the catalog request the way
    ``zoo launch`` flags do. ``keep_alive`` is seconds after the last request ends (None: the
    gateway's default; negative: forever; 0: unload right after the response). ``pinned``
    models are never evicted; ``preload`` ones load when the gateway starts; ``concurrency``
    caps requests queued plus in flight (None: the gateway's default).
    """

    name: str
    family: str
    aliases: tuple[str, ...] = ()
    engine: str | None = None
    format: str | None = None
    size: float | None = None
    quantization: str | None = None
    hub: str | None = None
    context_length: int | None = None
    engine_args: tuple[str, ...] = ()
    keep_alive: float | None = None
    pinned: bool = False
    preload: bool = False
    concurrency: int | None = None
    # Downloading it on a request is allowed (listed in the config, or --allow-download).
    download: bool = False


@dataclass(frozen=True)
class Upstream:
    """A loaded model as the proxy reaches it: the engine's own server, no proxy between.

    ``request_model`` is the model name upstream requests carry ("" or None: leave it out);
    ``api_key`` the private key the engine checks, if it checks one.
    """

    base_url: str
    request_model: str | None
    api_key: str | None
    instance_id: str
    memory_bytes: int
    place: str  # the budget it counts against: "RAM", "GPU memory" or "unified memory"


class Backend(Protocol):
    """Starts and stops models for the scheduler. Blocking: the scheduler runs it in threads."""

    def plan_memory(self, entry: ModelEntry) -> tuple[int, str]:
        """The planned memory of ``entry`` and the budget it counts against, loading nothing."""
        ...

    def start(self, entry: ModelEntry) -> Upstream:
        """Start ``entry`` and return once it answers; a ZooError says why it could not."""
        ...

    def alive(self, upstream: Upstream) -> bool:
        """Whether the engine behind ``upstream`` is still running."""
        ...

    def stop(self, upstream: Upstream) -> None:
        """Stop the engine behind ``upstream`` (its process group) and forget its record."""
        ...

    def log_tail(self, upstream: Upstream, lines: int = 15) -> str:
        """The last lines of the engine's log, for an error a client reads."""
        ...
