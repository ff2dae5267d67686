"""Start and stop the gateway's models on a Ray cluster (``zoo serve --cluster``).

Each alive node with a host profile is a set of places of its own ("gpu1: GPU memory",
"gpu1: RAM", ...), budgeted like this machine's, so the scheduler's memory-aware eviction
works per node unchanged. A model is placed once per entry (``zoo.cluster.placement.place``:
each node plans for itself, the best fit wins) with a private key only this gateway knows, and
started as a job-scoped engine actor (``zoo.cluster.instances.start(detached=False)``): its
engine dies with this gateway's Ray driver.

Failover: Ray restarts the actor of a dead node on another one that fits, under a new address.
An instance that does not answer (being restarted) or answers under another address is not
alive for the scheduler (a quick check, made for each request), whose next load adopts it
(``start`` finds the instance it started for that entry and waits for it, bounded by
``failover_wait``) instead of starting a second engine: the request arriving in the gap waits
on that load, the gateway follows the new address and the request is served. ``stop`` of an
upstream whose instance moved only forgets that address.

Blocking: the scheduler calls these methods in worker threads.
"""

from __future__ import annotations

import contextlib
import secrets
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from zoo.errors import ZooError
from zoo.serve.errors import DoesNotFit, LoadFailed, NotDownloaded
from zoo.serve.types import ModelEntry, Upstream

if TYPE_CHECKING:
    from zoo.cluster.instances import ClusterInstance
    from zoo.cluster.nodes import Node
    from zoo.cluster.placement import Placement
    from zoo.engine import Engine
    from zoo.host import Host
    from zoo.hubs.base import FetchResult, Hub, ProgressCallback
    from zoo.plan import Plan

# Seconds a request (or the scheduler's health check) waits for an engine whose actor Ray is
# restarting after its node died: Ray notices a dead node in about 16 s with its default
# health checks, and the engine then loads its model again on the new node.
FAILOVER_WAIT_S = 60.0
# Seconds an adopted (restarted) instance may take to serve again once Ray has placed it.
ADOPT_TIMEOUT_S = 900.0
# How long a request's alive check waits for the actor's answer (each request asks, so that
# one sent after a node died is held for the restarted engine rather than sent to the dead).
ALIVE_WAIT_S = 2.0
# How long stop() waits for an actor's answer before reading it as being restarted.
STOP_WAIT_S = 5.0
PLACES = (("cpu", "RAM"), ("cuda", "GPU memory"), ("metal", "unified memory"))
_POLL_S = 0.5


def place_name(node_name: str, place: str) -> str:
    """The budget a model on ``node_name`` counts against: "NODE: GPU memory"."""
    return f"{node_name}: {place}"


def node_budgets(nodes: Sequence[Node], override: int | None = None) -> dict[str, int]:
    """Each alive node's places ("NODE: RAM", and its GPU or unified memory if it has some)
    with their budgets (``override`` caps each), as the scheduler takes them; a node without
    a host profile contributes nothing (no model is placed there)."""
    from zoo.resolve import memory_budget

    out: dict[str, int] = {}
    for node in nodes:
        host = node.host
        if not node.alive or host is None:
            continue
        # Only the places the node has (no plan there uses another): the web UI shows each.
        has = {"cpu": True, "cuda": bool(host.cuda_gpus), "metal": host.apple_silicon}
        for device, place in PLACES:
            if not has[device]:
                continue
            value = memory_budget(host, device)
            out[place_name(node.name, place)] = value if override is None else min(value, override)
    return out


@dataclass(frozen=True)
class _Placed:
    """An entry's placement and the private key its engine checks."""

    placement: Placement
    api_key: str


@dataclass(frozen=True)
class _Mine:
    """An instance this gateway started (and has not stopped) for ``entry``."""

    entry: ModelEntry
    name: str
    api_key: str
    plan: Plan


class ClusterBackend:
    """Models as engine actors on the nodes of the Ray cluster ``connect()`` joined."""

    def __init__(
        self,
        engines: Mapping[str, Engine],
        hubs: Mapping[str, Hub],
        host: Host,
        nodes: Sequence[Node],
        *,
        address: str = "",
        say: Callable[[str], None] = lambda line: None,
        allow_download: bool = False,
        failover_wait: float = FAILOVER_WAIT_S,
        adopt_timeout: float = ADOPT_TIMEOUT_S,
        place_timeout: float = 60.0,
    ) -> None:
        self._engines = engines
        self._hubs = hubs
        self._host = host
        self._nodes: tuple[Node, ...] = tuple(nodes)
        self.address = address
        self._say = say
        self._allow_download = allow_download
        self.failover_wait = failover_wait
        self._adopt_timeout = adopt_timeout
        self._place_timeout = place_timeout
        self._placed: dict[ModelEntry, _Placed] = {}
        self._mine: dict[str, _Mine] = {}  # by instance name
        self._lock = threading.Lock()

    # -- what the gateway and the web UI read ----------------------------------------------

    @property
    def engines(self) -> Mapping[str, Engine]:
        return self._engines

    @property
    def hubs(self) -> Mapping[str, Hub]:
        return self._hubs

    @property
    def host(self) -> Host:
        """The gateway's own machine (the web UI judges builds on it; nodes plan for
        themselves)."""
        return self._host

    @property
    def nodes(self) -> tuple[Node, ...]:
        """The cluster's nodes as last listed (at start, and at each placement)."""
        return self._nodes

    def budgets(self, override: int | None = None) -> dict[str, int]:
        return node_budgets(self._nodes, override)

    def log_path(self, instance_id: str) -> Path | None:
        """None: the engine's log is on its node (``log_tail`` reads it through Ray)."""
        return None

    def downloaded(self, entry: ModelEntry) -> bool:
        """Whether some alive node's hub caches hold files of ``entry``'s family (from the
        last node listing: no request is made)."""
        return any(n.alive and n.host is not None and entry.family in n.models for n in self._nodes)

    def discovered(self) -> set[str]:
        """The families some alive node has files of (what a gateway without config serves)."""
        return {f for n in self._nodes if n.alive and n.host is not None for f in n.models}

    # -- placing ---------------------------------------------------------------------------

    def placement(self, entry: ModelEntry) -> Placement:
        """Where ``entry`` runs, and its plan there (cached per entry)."""
        return self._placed_of(entry).placement

    def plan(self, entry: ModelEntry) -> Plan:
        return self.placement(entry).plan

    def plan_memory(self, entry: ModelEntry) -> tuple[int, str]:
        placement = self.placement(entry)
        memory = placement.plan.memory
        return memory.total_bytes, place_name(placement.node.name, memory.place)

    def _placed_of(self, entry: ModelEntry) -> _Placed:
        from zoo.cluster import nodes as cluster_nodes
        from zoo.cluster import placement as cluster_placement
        from zoo.plan import LaunchOptions
        from zoo.resolve import Request

        with self._lock:
            found = self._placed.get(entry)
        if found is not None:
            return found
        request = Request(
            model=entry.family,
            engine=entry.engine,
            format=entry.format,
            size=entry.size,
            quantization=entry.quantization,
            hub=entry.hub,
            context_length=entry.context_length,
        )
        api_key = secrets.token_urlsafe(24)
        options = LaunchOptions(
            detach=True,
            # A key only this gateway knows: nobody else on the cluster's network can use the
            # engine directly.
            api_key=api_key,
            served_name=entry.name,
            extra_args=entry.engine_args,
        )
        try:
            listed = cluster_nodes.list_nodes()
            self._nodes = tuple(listed)
            placement = None
            if not (entry.download or self._allow_download):
                # It may not be downloaded: the nodes that have its files, if one fits (else
                # the best node, and starting it says where it is not downloaded).
                having = [n for n in listed if n.alive and entry.family in n.models]
                if having and len(having) < len(listed):
                    with contextlib.suppress(cluster_placement.NoNodeFits):
                        placement = cluster_placement.place(
                            request, options, nodes=having, timeout=self._place_timeout
                        )
            if placement is None:
                placement = cluster_placement.place(
                    request, options, nodes=listed, timeout=self._place_timeout
                )
        except cluster_placement.NoNodeFits as error:
            raise DoesNotFit(f"{entry.name}: {error}") from error
        except ZooError as error:  # the cluster itself: unreachable, a node gone mid-way
            raise LoadFailed(f"{entry.name} cannot be placed on the cluster: {error}") from error
        placed = _Placed(placement, api_key)
        with self._lock:
            self._placed.setdefault(entry, placed)
            return self._placed[entry]

    def _forget_placement(self, entry: ModelEntry) -> None:
        with self._lock:
            self._placed.pop(entry, None)

    def download(self, entry: ModelEntry, progress: ProgressCallback) -> FetchResult:
        """Fetch ``entry``'s files on the node it is placed on (a setup task there, which
        builds the engine's environment too); ``progress`` is not called: the node does not
        stream its per-file progress."""
        from zoo.cluster import instances
        from zoo.cluster import nodes as cluster_nodes

        placement = self.placement(entry)
        try:
            fetched = instances.prepare(placement)
        except ZooError as error:
            raise LoadFailed(
                f"{entry.name} could not be downloaded on {placement.node.name}: {error}"
            ) from error
        with contextlib.suppress(ZooError):  # the node lists the family as cached from now on
            self._nodes = tuple(cluster_nodes.list_nodes())
        return fetched

    # -- starting and following ------------------------------------------------------------

    def start(self, entry: ModelEntry) -> Upstream:
        from zoo.cluster import instances

        adopted = self._adopt(entry)
        if adopted is not None:
            return adopted
        placed = self._placed_of(entry)
        placement = placed.placement
        node = placement.node
        if not (entry.download or self._allow_download or entry.family in node.models):
            raise NotDownloaded(
                f"{entry.name} is not downloaded on {node.name}, the node it fits best: "
                f"`zoo download {placement.plan.family.name}` there first, list it in the "
                "gateway config, or start zoo serve with --allow-download"
            )
        try:
            instance = instances.start(
                placement,
                detached=False,  # job-scoped: the engine ends with this gateway's connection
                owner="zoo serve",
                pooling=False,  # the gateway shapes embeddings and rerank answers itself
                # Where Ray puts it (another node than the chosen one, or after a failover)
                # it downloads only as this gateway may.
                download=entry.download or self._allow_download,
                say=self._say,
            )
        except ZooError as error:
            # The cluster may have changed (a node gone): the next load places it again.
            self._forget_placement(entry)
            raise LoadFailed(f"{entry.name} could not start on {node.name}: {error}") from error
        mine = _Mine(entry, instance.name, placed.api_key, placement.plan)
        with self._lock:
            self._mine[instance.name] = mine
        if instance.node_id != node.node_id:
            # Ray gave it another node (the chosen one's GPUs were taken): it planned again
            # there, and the next placement is decided afresh.
            self._forget_placement(entry)
        return self._upstream(mine, instance)

    def _adopt(self, entry: ModelEntry) -> Upstream | None:
        """The instance this gateway started for ``entry`` that Ray restarted (its node died),
        once it serves again; None when there is none to adopt (any found unusable is
        stopped)."""

        with self._lock:
            candidates = [m for m in self._mine.values() if m.entry.name == entry.name]
        for mine in candidates:
            if mine.entry != entry:  # its launch fields changed since: not what is asked now
                self._stop_instance(mine.name)
                continue
            try:
                instance = self._wait_running(mine.name)
            except ZooError as error:
                self._say(f"zoo serve: {entry.name}: {error}; starting it again")
                instance = None
            if instance is None:
                self._stop_instance(mine.name)
                self._forget_placement(entry)  # placed on a node that may be gone
                continue
            upstream = self._upstream(mine, instance)
            self._say(f"zoo serve: {entry.name} is served from {upstream.place} now")
            # Its node is another now: the next placement is decided afresh.
            self._forget_placement(entry)
            return upstream
        return None

    def _wait_running(self, name: str) -> ClusterInstance | None:
        """The instance once it is running with an address; None: gone, failed, silent for
        longer than ``failover_wait`` (Ray found no node for it), or not serving within the
        adopt timeout."""
        from zoo.cluster import instances

        now = time.monotonic()
        deadline, silent_until = now + self._adopt_timeout, now + self.failover_wait
        while True:
            asked = time.monotonic()
            wait = max(0.0, min(self.failover_wait, deadline - asked))
            instance = instances.current(name, wait=wait)
            now = time.monotonic()
            if instance is None:
                return None
            if instance.state == "running" and instance.url:
                return instance
            if instance.state in ("failed", "stopped"):
                if instance.error:
                    self._say(f"zoo serve: {name}: {instance.error}")
                return None
            if instance.state != "unreachable":
                silent_until = now + self.failover_wait  # it answers: loading on its node
            if now >= deadline or now >= silent_until:
                return None
            if now - asked < _POLL_S:
                time.sleep(_POLL_S)

    def _node_name(self, node_id: str, address: str) -> str:
        """The name of the node ``node_id`` (listed again when it joined since)."""
        from zoo.cluster import nodes as cluster_nodes

        for node in self._nodes:
            if node.node_id == node_id:
                return node.name
        with contextlib.suppress(ZooError):
            for node in cluster_nodes.list_nodes(probe=False):
                if node.node_id == node_id:
                    return node.name
        return address or node_id

    def _upstream(self, mine: _Mine, instance: ClusterInstance) -> Upstream:
        assert instance.url is not None
        place = instance.place or mine.plan.memory.place
        node = self._node_name(instance.node_id, instance.node_address)
        return Upstream(
            base_url=instance.url,
            request_model=instance.served_name or mine.entry.name,
            api_key=mine.api_key,
            instance_id=instance.name,
            memory_bytes=instance.memory_bytes or mine.plan.memory.total_bytes,
            place=place_name(node, place),
        )

    def alive(self, upstream: Upstream) -> bool:
        """Whether the instance still serves at ``upstream``'s address. Quick (a request and
        the scheduler's tick each ask): an instance that does not answer within
        ``ALIVE_WAIT_S`` (Ray restarting it after its node died) is not alive, and the next
        load, one at a time, waits for it (``_adopt``, bounded by ``failover_wait``)."""
        from zoo.cluster import instances

        instance = instances.current(upstream.instance_id, wait=ALIVE_WAIT_S)
        return (
            instance is not None
            and instance.state == "running"
            and instance.url == upstream.base_url
        )

    def stop(self, upstream: Upstream) -> None:
        """Stop the instance behind ``upstream``. One that Ray restarted (or is restarting)
        elsewhere is only forgotten at this address: the next load adopts it."""
        from zoo.cluster import instances

        with self._lock:
            mine = self._mine.get(upstream.instance_id)
        if mine is None:
            return
        # Long enough for a healthy actor under load; one that still does not answer is being
        # restarted elsewhere (Ray's doing): forgotten here, adopted by the next load.
        instance = instances.current(upstream.instance_id, wait=STOP_WAIT_S)
        if instance is None:
            with self._lock:
                self._mine.pop(upstream.instance_id, None)
            return
        gone = instance.state in ("failed", "stopped")
        if instance.url == upstream.base_url or gone:
            self._stop_instance(upstream.instance_id)

    def _stop_instance(self, name: str) -> None:
        from zoo.cluster import instances

        try:
            instances.stop(name)
        finally:
            with self._lock:
                self._mine.pop(name, None)

    def log_tail(self, upstream: Upstream, lines: int = 15) -> str:
        from zoo.cluster import instances

        try:
            return instances.log_tail(upstream.instance_id, lines)
        except ZooError:
            return ""

    def stop_all(self) -> None:
        """Stop every instance this gateway started, restarted ones not adopted included."""
        with self._lock:
            names = list(self._mine)
        for name in names:
            try:
                self._stop_instance(name)
            except ZooError as error:
                self._say(f"zoo serve: stopping {name}: {error}")
