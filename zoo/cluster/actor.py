"""The Ray side: the tasks that ask a node about itself, and the engine-server actor.

The only module of zoo with ``import ray`` at the top; imported by ``zoo.cluster`` functions
once a cluster is used. Everything the node does is plain zoo code (``zoo.cluster.node_side``,
``zoo.launch``, ``zoo.runtime.launcher``): the actor only supervises.

``EngineServer`` starts the engine's own server on the node it is placed on, bound to the
node's cluster address and tied to the actor's worker process (if the worker dies, kill -9
included, the engine dies too). ``__init__`` returns at once and the start runs in a thread,
so zoo can tell "not placed" (Ray leaves an unplaceable actor pending forever) from "placed
and loading", and so a restart after a node's death (Ray reruns ``__init__`` on another node)
starts the engine again by itself. On a node other than the one the plan was made on, the
actor plans again there with the same request and options; a plan that would serve something
else (another engine, format, size or quantization) is refused, not started.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ray

from zoo.cluster import node_side
from zoo.cluster.connect import NAMESPACE
from zoo.errors import ZooError

if TYPE_CHECKING:
    from zoo.cluster.nodes import Node
    from zoo.hubs.base import FetchResult
    from zoo.plan import LaunchOptions, Plan
    from zoo.resolve import Request
    from zoo.runtime.launcher import Running

# Lines of the start (download, environment, engine output while waiting) kept for info().
PROGRESS_LINES = 20


def _report(labels: Mapping[str, str]) -> dict[str, Any]:
    """``node_side.report`` on the node this task is placed on."""
    try:
        return {"report": node_side.report(labels), "problem": None}
    except Exception as error:  # reported as the node's problem, not a traceback
        return {"report": None, "problem": _one_line(error)}


def _plan(
    request: Request, options: LaunchOptions, labels: Mapping[str, str]
) -> tuple[Plan | None, str]:
    """The plan for ``request`` made on this node, or None and why nothing fits here."""
    try:
        address = ray.util.get_node_ip_address()
        return node_side.plan_here(request, options, labels, address), ""
    except Exception as error:
        return None, _one_line(error)


def _prepare(plan: Plan) -> FetchResult:
    """``node_side.prepare`` on the node this task is placed on: where the files are."""
    fetched, _ = node_side.prepare(plan, lambda line: None)
    return fetched


# Ray's remote wrappers (typed loosely by Ray: Any here). num_cpus=0: asking a node about
# itself must not wait for a CPU its engines hold.
report_task: Any = ray.remote(num_cpus=0)(_report)
plan_task: Any = ray.remote(num_cpus=0)(_plan)
prepare_task: Any = ray.remote(num_cpus=0)(_prepare)


def _one_line(error: BaseException) -> str:
    if isinstance(error, ZooError):
        return str(error)
    if isinstance(error, ImportError):
        return f"zoo cannot run here: {error}"
    return f"{type(error).__name__}: {error}"


@dataclass(frozen=True)
class LaunchSpec:
    """What the actor is asked to run: the plan made for ``node_id``, and how to plan again."""

    plan: Plan
    request: Request
    node_id: str
    name: str
    owner: str  # "zoo launch" or "zoo serve"
    detached: bool
    pinned: bool
    pooling: bool  # zoo's pooling proxy for embeddings/rerank (zoo launch; zoo serve: no)
    download: bool = True  # False: only where its files are cached (on a restart too)
    # The nodes whose own plan fitted when it was placed: the only ones Ray may put it on.
    fits_on: tuple[Node, ...] = ()


def same_model(a: Plan, b: Plan) -> bool:
    """Whether two plans serve the same thing on what the actor reserved: the same model,
    engine, build, device and number of GPUs (a restart elsewhere may differ in paths)."""

    def key(p: Plan) -> tuple[object, ...]:
        return (
            p.family.name,
            p.engine,
            p.spec.format,
            p.spec.size,
            p.quantization,
            p.device,
            p.memory.gpus,
            p.memory.place,
        )

    return key(a) == key(b)


class EngineServer:
    """The supervisor of one engine server on a node (run as a Ray actor: ``EngineActor``)."""

    def __init__(self, spec: LaunchSpec) -> None:
        self._spec = spec
        context = ray.get_runtime_context()
        self._node_id = context.get_node_id()
        self._ip = ray.util.get_node_ip_address()
        self._labels = _labels_of(self._node_id)
        with warnings.catch_warnings():  # Ray 2.60 marks it deprecated, with no replacement
            warnings.simplefilter("ignore")
            self._restarted = bool(context.was_current_actor_reconstructed)
        self._created = time.time()
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._state = "starting"
        self._error: str | None = None
        self._progress: list[str] = []
        self._said = 0  # lines said since the start (the kept ones are the last of them)
        self._plan: Plan | None = None
        self._running: Running | None = None
        self._stopping = False
        node_side.use_cluster_state()
        threading.Thread(target=self._start, name="zoo-engine-start", daemon=True).start()

    # -- the start, in a thread -------------------------------------------------------------

    def _say(self, line: str) -> None:
        with self._lock:
            self._progress = [*self._progress, line][-PROGRESS_LINES:]
            self._said += 1

    def _plan_here(self) -> Plan:
        spec = self._spec
        if self._node_id == spec.node_id:
            return spec.plan
        labels = self._labels
        plan = node_side.plan_here(spec.request, spec.plan.options, labels, self._ip)
        if not same_model(plan, spec.plan):
            raise ZooError(
                f"on node {node_side.node_name(labels)} the plan would be {plan.engine} "
                f"{plan.spec.format} {plan.quantization} on {plan.device}, not the "
                f"{spec.plan.engine} {spec.plan.spec.format} {spec.plan.quantization} on "
                f"{spec.plan.device} that was launched (and reserved for)"
            )
        return plan

    def _start(self) -> None:
        from zoo import launch
        from zoo.runtime import launcher

        try:
            plan = self._plan_here()
            if plan.device != "cuda":
                # Ray sets CUDA_VISIBLE_DEVICES only for actors that reserve GPUs: an engine
                # planned without one must not use the node's (others' reservations).
                os.environ["CUDA_VISIBLE_DEVICES"] = ""
            engines = launch._engines()
            if plan.engine not in engines:
                raise ZooError(f"engine {plan.engine!r} is not installed on this node")
            _, files = node_side.prepare(plan, self._say, download=self._spec.download)
            running = launcher.start_instance(
                plan,
                engines[plan.engine],
                files,
                say=self._say,
                tied=True,  # the engine lives only as long as this actor's worker
                pooling=self._spec.pooling,
            )
        except BaseException as error:  # reported through info(), never raised in a thread
            with self._lock:
                self._state, self._error = "failed", _one_line(error)
            self._done.set()
            return
        with self._lock:
            self._plan, self._running = plan, running
            stopping = self._stopping
            self._state = "running"
        self._done.set()
        if stopping:  # stop() came while it was starting
            self._stop_engine()

    # -- what callers ask ---------------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        """The instance as it is now (never the API key)."""
        with self._lock:
            state, running = self._state, self._running
            plan = self._plan or self._spec.plan
            data: dict[str, Any] = {
                "zoo": 1,
                "name": self._spec.name,
                "model": plan.family.name,
                "kind": plan.family.kind,
                "engine": plan.engine,
                "format": plan.spec.format,
                "size": plan.spec.size,
                "quantization": plan.quantization,
                "served_name": plan.options.served_name or plan.family.name,
                "node_id": self._node_id,
                "node_name": node_side.node_name(self._labels),
                "node_address": self._ip,
                "owner": self._spec.owner,
                "detached": self._spec.detached,
                "pinned": self._spec.pinned,
                "restarted": self._restarted,
                "api_key": bool(plan.options.api_key),
                "memory_bytes": plan.memory.total_bytes,
                "place": plan.memory.place,
                "started_at": self._created,
                "progress": list(self._progress),
                "progress_total": self._said,
                "error": self._error,
                "url": None,
                "pid": None,
            }
        if running is not None:
            server = running.server
            if state == "running" and server is not None and server.poll() is not None:
                state = "failed"
                data["error"] = f"the engine exited (status {server.returncode})"
            data["url"] = f"http://{_url_host(self._ip)}:{running.instance.port}"
            data["pid"] = running.instance.pid
            data["started_at"] = running.instance.started_at
        data["state"] = state
        return data

    def wait(self, seconds: float) -> dict[str, Any]:
        """``info()`` once the start has ended (ready or failed), or after ``seconds``."""
        self._done.wait(max(0.0, min(seconds, 300.0)))
        return self.info()

    def node(self) -> str:
        """The node this actor runs on (answers as soon as it is placed)."""
        return str(self._node_id)

    def read_log(self, offset: int, limit: int) -> tuple[bytes, int, str]:
        """The log from ``offset`` (at most ``limit`` bytes; negative: that many bytes before
        the end), the offset after it, and which log it is: the start's lines until the
        engine runs, then the engine's log file (a restart on another node is a new one, so
        a follower starts it from 0)."""
        with self._lock:
            running = self._running
            lines = list(self._progress)
        if running is None:
            text = "".join(f"{line}\n" for line in lines).encode()
            start = max(0, len(text) + offset) if offset < 0 else min(offset, len(text))
            end = min(len(text), start + limit)
            return text[start:end], end, f"start {self._created}"
        path = Path(running.instance.log_path)
        try:
            with path.open("rb") as log:
                size = log.seek(0, os.SEEK_END)
                start = max(0, size + offset) if offset < 0 else offset
                start = start if start <= size else 0
                log.seek(start)
                data = log.read(max(0, limit))
        except OSError:
            return b"", max(offset, 0), str(path)
        return data, start + len(data), str(path)

    def stop(self, grace: float = 10.0) -> None:
        """Stop the engine; the caller then ends the actor for good (``ray.kill`` without a
        restart: ``exit_actor`` here would be retried as a failed call and logged as one)."""
        with self._lock:
            self._stopping = True
        self._stop_engine(grace)

    def __ray_shutdown__(self) -> None:  # a graceful end of the actor: the engine goes too
        self._stop_engine()

    def _stop_engine(self, grace: float = 10.0) -> None:
        from zoo.runtime import launcher

        with self._lock:
            running, self._running = self._running, None
            if running is not None:
                self._state = "stopped"
        if running is None:
            return
        try:
            launcher.stop(running.instance, grace=grace, reap=running.server)
        finally:
            for guard in running.guards:
                with contextlib.suppress(Exception):
                    guard.close()


# Concurrency: info() and read_log() answer while another caller waits in wait().
EngineActor: Any = ray.remote(num_cpus=0, max_concurrency=32)(EngineServer)


def _labels_of(node_id: str) -> dict[str, str]:
    for node in ray.nodes():
        if node.get("NodeID") == node_id:
            return {str(k): str(v) for k, v in (node.get("Labels") or {}).items()}
    return {}


def _url_host(ip: str) -> str:
    return f"[{ip}]" if ":" in ip else ip


def actor_options(spec: LaunchSpec, node: Node) -> dict[str, Any]:
    """Ray options for ``spec``'s actor: what the plan needs reserved, and where it may go.

    GPUs are reserved with ``num_gpus`` (Ray then sets ``CUDA_VISIBLE_DEVICES``, so the engine
    sees only its own); a plan in RAM reserves its bytes of Ray's ``memory`` resource. A
    pinned model may run only on its node (by the ``zoo.node`` label, which survives the
    node's restart, else by node id); another prefers the chosen node (soft affinity, or any
    free one) among the nodes where the request fitted, and Ray restarts it on one of those,
    where it plans again.
    """
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    plan = spec.plan
    options: dict[str, Any] = {
        "name": spec.name,
        "namespace": NAMESPACE,
        # Restarted for ever when its node dies; calls are not retried by Ray (each caller
        # has its own timeout and tells "restarting" from "gone" itself).
        "max_restarts": -1,
        "num_cpus": 0,
    }
    if spec.detached:
        options["lifetime"] = "detached"
    if plan.device == "cuda" and plan.memory.gpus:
        # GPUs of any kind: where Ray puts it (another node's free GPUs, or after a failover)
        # the actor plans again for that node's GPUs and refuses a plan that does not fit.
        options["num_gpus"] = plan.memory.gpus
    elif plan.memory.place == "RAM" and plan.memory.total_bytes > 0:
        options["memory"] = plan.memory.total_bytes
    if spec.pinned:
        name = dict(node.labels).get(node_side.NAME_LABEL)
        options["label_selector"] = (
            {node_side.NAME_LABEL: name} if name else {"ray.io/node-id": spec.node_id}
        )
    else:
        if spec.fits_on:
            # Only where the request fitted (a restart on a node too small would only fail).
            options["label_selector"] = fitting_selector(spec.fits_on)
        # Soft: restarts go elsewhere once the node is dead. Spilling: a chosen node whose
        # GPUs another instance holds now hands it to one that has them free (without it
        # Ray waits on the busy node for ever); the actor then plans again where it lands.
        options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(
            spec.node_id, soft=True, _spill_on_unavailable=True
        )
    return options


def fitting_selector(nodes: tuple[Node, ...]) -> dict[str, str]:
    """A Ray label selector for ``nodes``: by their ``zoo.node`` names where they all have one
    (a machine that rejoins under its name is one of them again), else by node id."""
    names = [dict(n.labels).get(node_side.NAME_LABEL) for n in nodes]
    if all(names):
        return {node_side.NAME_LABEL: f"in({','.join(sorted({str(n) for n in names}))})"}
    return {"ray.io/node-id": f"in({','.join(n.node_id for n in nodes)})"}


def create(spec: LaunchSpec, node: Node) -> Any:
    """Create the actor for ``spec`` on (preferably) ``node``; returns its handle at once."""
    return EngineActor.options(**actor_options(spec, node)).remote(spec)
