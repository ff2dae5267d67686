"""The data the gateway's parts pass each other: what it serves, and how a loaded model is
reached."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from zoo.engine import Engine
    from zoo.host import Host
    from zoo.hubs.base import FetchResult, Hub, ProgressCallback
    from zoo.plan import Plan


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


class GatewayBackend(Backend, Protocol):
    """What the gateway and its web UI use of a backend besides the scheduler's calls: on this
    machine (``LocalBackend``) or on a Ray cluster (``ClusterBackend``)."""

    @property
    def engines(self) -> Mapping[str, Engine]:
        """The engines installed where the gateway runs (a config reload checks names)."""
        ...

    @property
    def hubs(self) -> Mapping[str, Hub]:
        """The hubs the gateway's own downloads and listings use."""
        ...

    @property
    def host(self) -> Host:
        """The machine the web UI judges builds on."""
        ...

    def plan(self, entry: ModelEntry) -> Plan:
        """The plan ``entry`` runs (or would run) with, cached per entry."""
        ...

    def downloaded(self, entry: ModelEntry) -> bool:
        """Whether ``entry``'s files are cached where it would run; cheap (no request made)."""
        ...

    def download(self, entry: ModelEntry, progress: ProgressCallback) -> FetchResult:
        """Fetch ``entry``'s files into the cache of the machine it would run on (progress
        per file where the fetch runs here; a cluster node reports only the end)."""
        ...

    def log_path(self, instance_id: str) -> Path | None:
        """The engine log of a running instance as a file here (None: no local file)."""
        ...

    def stop_all(self) -> None:
        """Stop every engine this backend started and still holds (the gateway is exiting)."""
        ...
