"""Engine instances on the cluster, from any process: start, list, find, follow, stop.

An instance is a named ``EngineServer`` actor in Ray's "zoo" namespace (``zoo.cluster.actor``):
Ray's GCS is the one registry, so ``zoo ps`` in another process, on another machine, or after
the launching zoo exited sees the same instances. Every call on an actor has a timeout: an
actor being restarted after its node died answers only once it is back.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from zoo.cluster.connect import NAMESPACE, ClusterError, ray_module
from zoo.cluster.placement import NoNodeFits, Placement
from zoo.errors import NotFoundError, UsageError, ZooError

if TYPE_CHECKING:
    from zoo.hubs.base import FetchResult

PLACEMENT_TIMEOUT_S = 30.0
INFO_TIMEOUT_S = 10.0
# How long one wait call on the actor blocks (the start is watched in steps of this).
WAIT_STEP_S = 5.0
DEFAULT_READY_TIMEOUT_S = 600.0
# How much of a log's end ``log_tail`` reads to find its last lines.
TAIL_BYTES = 256 * 1024
Say = Callable[[str], None]
# The handles of the job-scoped instances this process created (zoo serve's): Ray ends such an
# actor once no handle to it is left, so they are held until the instance is stopped.
_owned: dict[str, Any] = {}
# The log each instance's last read_log was in (see read_log): instance name -> log.
_log_seen: dict[str, str] = {}


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class ClusterInstance:
    """One engine instance on the cluster, as its actor reports it (never its API key).

    ``state``: "starting", "running", "failed", "stopped", or "unreachable" (its actor did
    not answer in time: waiting for a node to be placed on, being restarted on another node
    after its node died, or its node is gone).
    """

    name: str
    model: str
    engine: str
    kind: str
    format: str
    quantization: str
    size: float | None
    served_name: str
    node_id: str
    node_address: str
    url: str | None
    state: str
    node_name: str = ""
    error: str | None = None
    pinned: bool = False
    detached: bool = True
    restarted: bool = False
    started_at: float = 0.0
    api_key: bool = True
    memory_bytes: int = 0
    place: str = "RAM"
    owner: str = "zoo launch"
    pid: int | None = None
    progress: tuple[str, ...] = ()

    @property
    def endpoint(self) -> str | None:
        return f"{self.url}/v1" if self.url else None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "model": self.model,
            "engine": self.engine,
            "kind": self.kind,
            "format": self.format,
            "quantization": self.quantization,
            "size": self.size,
            "served_name": self.served_name,
            "node_id": self.node_id,
            "node_name": self.node_name,
            "node_address": self.node_address,
            "url": self.url,
            "endpoint": self.endpoint,
            "state": self.state,
            "error": self.error,
            "pinned": self.pinned,
            "detached": self.detached,
            "restarted": self.restarted,
            "started_at": self.started_at,
            "api_key": self.api_key,
            "memory_bytes": self.memory_bytes,
            "place": self.place,
            "owner": self.owner,
            "pid": self.pid,
        }


def _from_info(data: dict[str, Any]) -> ClusterInstance:
    return ClusterInstance(
        name=str(data["name"]),
        model=str(data["model"]),
        engine=str(data["engine"]),
        kind=str(data.get("kind", "llm")),
        format=str(data["format"]),
        quantization=str(data["quantization"]),
        size=data.get("size"),
        served_name=str(data["served_name"]),
        node_id=str(data["node_id"]),
        node_address=str(data.get("node_address", "")),
        node_name=str(data.get("node_name", "")),
        url=data.get("url"),
        state=str(data["state"]),
        error=data.get("error"),
        pinned=bool(data.get("pinned")),
        detached=bool(data.get("detached")),
        restarted=bool(data.get("restarted")),
        started_at=float(data.get("started_at") or 0.0),
        api_key=bool(data.get("api_key")),
        memory_bytes=int(data.get("memory_bytes") or 0),
        place=str(data.get("place", "RAM")),
        owner=str(data.get("owner", "zoo launch")),
        pid=data.get("pid"),
        progress=tuple(data.get("progress") or ()),
    )


def _unreachable(name: str) -> ClusterInstance:
    # Actor names are "<model>@<id>", so an instance that does not answer still says what it is.
    model = name.rpartition("@")[0] or name
    return ClusterInstance(
        name=name,
        model=model,
        engine="?",
        kind="?",
        format="?",
        quantization="?",
        size=None,
        served_name=model,
        node_id="",
        node_address="",
        url=None,
        state="unreachable",
        error="its actor did not answer (waiting for a node, being restarted on another node, "
        "or its node is gone)",
    )


def new_name(model: str) -> str:
    from zoo.runtime.state import new_id

    return f"{model}@{new_id()}"


def start(
    placement: Placement,
    *,
    detached: bool = True,
    owner: str = "zoo launch",
    pooling: bool = True,
    placement_timeout: float = PLACEMENT_TIMEOUT_S,
    ready_timeout: float | None = None,
    name: str | None = None,
    download: bool = True,
    say: Say = _stderr,
) -> ClusterInstance:
    """Run ``placement`` on its node and return once the engine answers.

    ``detached``: the instance outlives this process (``zoo launch``); else it ends with this
    process's connection (``zoo serve``). ``download=False``: the node (or one it is moved
    to) must have the files cached already. Not placed within ``placement_timeout`` (Ray would
    wait forever), failed, or not ready in time: the actor is removed and the error says why.
    """
    from zoo.cluster import actor

    ray = ray_module()
    plan = placement.plan
    if not plan.options.api_key:
        raise UsageError(
            "a model on a cluster node is reached over the network: give it an API key",
            hint="--api-key, $ZOO_API_KEY or api_key_file in the settings",
        )
    spec = actor.LaunchSpec(
        plan=plan,
        request=_request_of(plan),
        node_id=placement.node.node_id,
        name=name or new_name(plan.family.name),
        owner=owner,
        detached=detached,
        pinned=placement.pinned,
        pooling=pooling,
        download=download,
        fits_on=tuple(v.node for v in placement.verdicts if v.fits),
    )
    try:
        handle = actor.create(spec, placement.node)
    except ValueError as error:  # a name already taken
        raise ClusterError(f"cannot create {spec.name} on the cluster: {error}") from None
    try:
        try:
            ray.get(handle.node.remote(), timeout=placement_timeout)
        except ray.exceptions.GetTimeoutError:
            raise NoNodeFits(
                f"{plan.family.name} was not placed within {placement_timeout:.0f} s: no node "
                f"has {_needs(plan)} free",
                hint="stop something on the cluster, or add a node that has it",
            ) from None
        if not detached:
            _owned[spec.name] = handle
        return _wait_ready(handle, spec.name, ready_timeout or _ready_timeout(plan), say)
    except ray.exceptions.RayError as error:  # e.g. the actor could not be created there
        _owned.pop(spec.name, None)
        _kill(handle)
        raise ClusterError(f"{spec.name} could not start: {_first_line(error)}") from None
    except BaseException:
        _owned.pop(spec.name, None)
        _kill(handle)
        raise


def prepare(placement: Placement, *, timeout: float = DEFAULT_READY_TIMEOUT_S) -> FetchResult:
    """Download the placement's files into its node's hub cache and build the engine's
    environment there (a setup task on the node; nothing passes through this process)."""
    from zoo.cluster import actor
    from zoo.cluster.nodes import on_node

    ray = ray_module()
    ref = actor.prepare_task.options(scheduling_strategy=on_node(placement.node)).remote(
        placement.plan
    )
    try:
        return ray.get(ref, timeout=timeout)  # type: ignore[no-any-return]
    except ray.exceptions.GetTimeoutError:
        ray.cancel(ref, force=True)
        raise ClusterError(
            f"preparing {placement.plan.family.name} on {placement.node.name} took longer "
            f"than {timeout:.0f} s"
        ) from None
    except ray.exceptions.RayError as error:  # failed there, node gone, worker crashed
        cause = getattr(error, "cause", None)
        cause = cause if isinstance(cause, BaseException) else error
        if isinstance(cause, ZooError):
            raise cause from None
        raise ClusterError(
            f"preparing {placement.plan.family.name} on {placement.node.name} failed: "
            f"{_first_line(cause)}"
        ) from None


def _request_of(plan: Any) -> Any:
    """The request a restarted actor plans again with: the plan's own choices, pinned."""
    from zoo.resolve import Request

    return Request(
        model=plan.family.name,
        engine=plan.engine,
        format=plan.spec.format,
        size=plan.spec.size,
        quantization=plan.quantization,
        hub=plan.hub if plan.hub_locked else None,
        context_length=plan.context_length or None,
        min_speed=0.0,
    )


def _ready_timeout(plan: Any) -> float:
    return float(plan.options.ready_timeout or DEFAULT_READY_TIMEOUT_S)


def _needs(plan: Any) -> str:
    from zoo.memory import gib

    if plan.device == "cuda" and plan.memory.gpus:
        return f"{plan.memory.gpus} GPU(s)"
    return f"{gib(plan.memory.total_bytes)} of memory"


def _wait_ready(handle: Any, name: str, timeout: float, say: Say) -> ClusterInstance:
    ray = ray_module()
    deadline = time.monotonic() + timeout
    shown = 0
    while True:
        left = deadline - time.monotonic()
        step = max(0.1, min(WAIT_STEP_S, left))
        try:
            data = ray.get(handle.wait.remote(step), timeout=step + INFO_TIMEOUT_S)
        except ray.exceptions.GetTimeoutError:
            data = None
        except ray.exceptions.RayActorError as error:
            if _handle(name) is None:
                raise ClusterError(
                    f"{name} ended while starting (stopped, or its node went away): "
                    f"{_first_line(error)}"
                ) from None
            time.sleep(0.5)  # being restarted (its node died): it starts again by itself
            data = None
        if data is not None:
            # The actor keeps the last lines and counts them all: print the ones not seen.
            progress = list(data.get("progress") or ())
            total = int(data.get("progress_total") or len(progress))
            for line in progress[max(0, len(progress) - (total - shown)) :]:
                say(line)
            shown = total
            inst = _from_info(data)
            if inst.state == "running":
                return inst
            if inst.state == "failed":
                raise ClusterError(f"{name} failed on its node: {inst.error}")
        if time.monotonic() >= deadline:
            tail = log_tail(name, 15)
            raise ClusterError(
                f"{name} was not ready within {timeout:.0f} s"
                + (f"; the end of its log:\n{tail}" if tail else "")
            )


def _first_line(error: BaseException) -> str:
    lines = [line for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def _kill(handle: Any) -> None:
    ray = ray_module()
    with contextlib.suppress(Exception):  # already gone
        ray.kill(handle, no_restart=True)


def _handle(name: str) -> Any | None:
    """The actor ``name`` (None: no such instance); the cluster not answering is an error."""
    ray = ray_module()
    try:
        return ray.get_actor(name, namespace=NAMESPACE)
    except ValueError:
        return None
    except Exception as error:  # the GCS away (a head restarting), a lost connection
        why = _first_line(error)
        raise ClusterError(f"the cluster did not answer about {name}: {why}") from None


def names() -> list[str]:
    """The names of zoo's instances on the cluster (named actors in its namespace)."""
    ray = ray_module()
    try:
        found = ray.util.list_named_actors(all_namespaces=True)
    except Exception as error:
        why = _first_line(error)
        raise ClusterError(f"the cluster did not list its instances: {why}") from None
    return sorted(
        str(a["name"]) for a in found if a.get("namespace") == NAMESPACE and "@" in str(a["name"])
    )


def list_instances(*, timeout: float = INFO_TIMEOUT_S) -> list[ClusterInstance]:
    """Every instance on the cluster (asked in parallel; the silent ones as "unreachable")."""
    from zoo.cluster.nodes import gather

    handles = {n: h for n in names() if (h := _handle(n)) is not None}
    answers = gather({n: h.info.remote() for n, h in handles.items()}, timeout)
    out = []
    for name in handles:
        data = answers.get(name)
        if isinstance(data, dict) and data.get("zoo") == 1:
            out.append(_from_info(data))
        elif data is None or isinstance(data, BaseException):
            out.append(_unreachable(name))
    return out


def find(ref: str, *, timeout: float = INFO_TIMEOUT_S) -> list[ClusterInstance]:
    """The instances ``ref`` names: the instance name, its id (after the "@"), the model or
    the served name."""
    wanted = ref.strip()
    return [
        inst
        for inst in list_instances(timeout=timeout)
        if wanted in (inst.name, inst.name.rpartition("@")[2], inst.model, inst.served_name)
    ]


def current(name: str, *, wait: float) -> ClusterInstance | None:
    """``name`` as it is now; while it is being restarted or loading, wait up to ``wait`` s
    for it to run again. None: the instance is gone (stopped, or never restarted)."""
    ray = ray_module()
    deadline = time.monotonic() + wait
    last: ClusterInstance | None = None
    while True:
        handle = _handle(name)
        if handle is None:
            _owned.pop(name, None)
            return None
        left = deadline - time.monotonic()
        step = max(0.1, min(WAIT_STEP_S, left))
        try:
            data = ray.get(handle.wait.remote(step), timeout=step + 1.0)
            last = _from_info(data)
            if last.state != "starting":
                return last
        except (ray.exceptions.GetTimeoutError, ray.exceptions.RayActorError):
            # Being restarted on another node (or its node is gone): ask again shortly; a
            # name that is gone ends the wait above.
            last = _unreachable(name)
            time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
        if time.monotonic() >= deadline:
            return last


def stop(name: str, *, grace: float = 10.0) -> bool:
    """Stop the instance ``name`` (its engine, then its actor for good); False: not found."""
    ray = ray_module()
    handle = _handle(name)
    if handle is None:
        return False
    # The engine first (SIGTERM, then SIGKILL after the grace), then the actor for good. A
    # restarting or stuck actor is killed by Ray, whose cleanup takes the engine with it.
    with contextlib.suppress(Exception):
        ray.get(handle.stop.remote(grace), timeout=grace + 10.0)
    _kill(handle)
    _owned.pop(name, None)
    return True


def read_log(name: str, offset: int = 0, limit: int = 1 << 20) -> tuple[bytes, int]:
    """Bytes of the instance's engine log from ``offset`` (negative: that many bytes before
    its end), and the offset after them. NotFoundError: the instance is gone; ClusterError:
    it does not answer now (being restarted on another node)."""
    ray = ray_module()
    handle = _handle(name)
    if handle is None:
        raise NotFoundError(f"no instance {name!r} on the cluster")
    try:
        data, after, which = ray.get(handle.read_log.remote(offset, limit), timeout=INFO_TIMEOUT_S)
        if offset > 0 and _log_seen.get(name, which) != which:
            # Another log than the one the offset was in (the engine started, or started again
            # on another node): read the new one from its start.
            data, after, which = ray.get(handle.read_log.remote(0, limit), timeout=INFO_TIMEOUT_S)
        _log_seen[name] = which
    except ray.exceptions.GetTimeoutError:
        raise ClusterError(f"{name} did not answer within {INFO_TIMEOUT_S:.0f} s") from None
    except ray.exceptions.RayActorError:
        if _handle(name) is None:
            raise NotFoundError(f"{name} has ended") from None
        raise ClusterError(f"{name} does not answer: being restarted on another node") from None
    return bytes(data), int(after)


def log_tail(name: str, lines: int = 15) -> str:
    """The last ``lines`` lines of the instance's engine log ("" when it cannot be read)."""
    try:
        data, _ = read_log(name, -TAIL_BYTES, TAIL_BYTES)
    except Exception:
        return ""
    text = data.decode("utf-8", "replace").splitlines()
    return "\n".join(text[-lines:]) if lines > 0 else ""
