"""The cluster's nodes as zoo sees them: Ray's view (alive, CPUs, GPUs, memory, labels) plus
what each node says of itself (its host profile, engines ready, models cached)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from zoo.cluster import node_side
from zoo.cluster.connect import ClusterError, ray_module
from zoo.errors import UsageError
from zoo.host import Host

PROBE_TIMEOUT_S = 30.0
ACCELERATOR_PREFIX = "accelerator_type:"


@dataclass(frozen=True)
class Node:
    """One Ray node. ``host`` is None until probed, or when the probe failed (``problem``)."""

    node_id: str
    name: str
    address: str
    alive: bool
    cpus: float = 0.0
    gpus: float = 0.0
    memory_bytes: int = 0  # Ray's "memory" resource on the node
    accelerator: str | None = None  # Ray's accelerator type (its "accelerator_type:X")
    labels: tuple[tuple[str, str], ...] = ()
    host: Host | None = None
    problem: str | None = None
    engines_ready: tuple[str, ...] = ()
    models: tuple[str, ...] = ()

    @property
    def label_map(self) -> dict[str, str]:
        return dict(self.labels)

    def to_json(self) -> dict[str, Any]:
        return {
            "node_id": self.node_id,
            "name": self.name,
            "address": self.address,
            "alive": self.alive,
            "cpus": self.cpus,
            "gpus": self.gpus,
            "memory_bytes": self.memory_bytes,
            "accelerator": self.accelerator,
            "labels": dict(self.labels),
            "host": self.host.to_json() if self.host else None,
            "problem": self.problem,
            "engines_ready": list(self.engines_ready),
            "models": list(self.models),
        }


def from_ray(entry: Mapping[str, Any]) -> Node:
    """A Node from one ``ray.nodes()`` entry (not probed)."""
    resources = {str(k): float(v) for k, v in (entry.get("Resources") or {}).items()}
    labels = {str(k): str(v) for k, v in (entry.get("Labels") or {}).items()}
    prefix = ACCELERATOR_PREFIX
    accelerators = sorted(k[len(prefix) :] for k in resources if k.startswith(prefix))
    hostname = str(entry.get("NodeManagerHostname") or "") or None
    return Node(
        node_id=str(entry.get("NodeID", "")),
        name=node_side.node_name(labels, hostname or str(entry.get("NodeManagerAddress", ""))),
        address=str(entry.get("NodeManagerAddress", "")),
        alive=bool(entry.get("Alive")),
        cpus=resources.get("CPU", 0.0),
        gpus=resources.get("GPU", 0.0),
        memory_bytes=int(resources.get("memory", 0.0)),
        accelerator=accelerators[0] if accelerators else None,
        labels=tuple(sorted(labels.items())),
    )


def list_nodes(*, probe: bool = True, timeout: float = PROBE_TIMEOUT_S) -> list[Node]:
    """The cluster's nodes, alive ones first (each probed on the node when ``probe``)."""
    ray = ray_module()
    try:
        nodes = [from_ray(entry) for entry in ray.nodes()]
    except Exception as error:
        raise ClusterError(f"cannot list the cluster's nodes: {error}") from None
    nodes.sort(key=lambda n: (not n.alive, n.name, n.node_id))
    if probe:
        nodes = probed(nodes, timeout=timeout)
    return nodes


def on_node(node: Node) -> Any:
    """The scheduling strategy that runs a task on ``node`` and nowhere else."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    return NodeAffinitySchedulingStrategy(node.node_id, soft=False)


def probed(nodes: Sequence[Node], *, timeout: float = PROBE_TIMEOUT_S) -> list[Node]:
    """``nodes`` with what each alive one reports of itself (one task per node, in parallel)."""
    from dataclasses import replace

    from zoo.cluster.actor import report_task

    alive = [n for n in nodes if n.alive]
    refs = {
        n.node_id: report_task.options(scheduling_strategy=on_node(n)).remote(n.label_map)
        for n in alive
    }
    answers = gather(refs, timeout)
    out: list[Node] = []
    for node in nodes:
        if not node.alive:
            out.append(replace(node, problem="not alive"))
            continue
        answer = answers.get(node.node_id)
        if isinstance(answer, BaseException) or answer is None:
            why = why_failed(answer, timeout)
            out.append(replace(node, problem=why))
            continue
        report = answer.get("report")
        if report is None:
            out.append(replace(node, problem=str(answer.get("problem"))))
            continue
        out.append(
            replace(
                node,
                host=Host.from_json(report["host"]),
                engines_ready=tuple(report["engines_ready"]),
                models=tuple(report["models"]),
            )
        )
    return out


def gather(refs: Mapping[str, Any], timeout: float) -> dict[str, Any]:
    """The results of ``refs`` (by key) that came within ``timeout``; a failure's exception."""
    import time

    ray = ray_module()
    results: dict[str, Any] = {}
    deadline = time.monotonic() + timeout
    pending = dict(refs)
    while pending:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        ready, _ = ray.wait(list(pending.values()), num_returns=len(pending), timeout=left)
        for key, ref in list(pending.items()):
            if ref in ready:
                try:
                    results[key] = ray.get(ref)
                except Exception as error:
                    results[key] = error
                del pending[key]
        if not ready:
            break
    return results


def why_failed(answer: BaseException | None, timeout: float) -> str:
    """A task's failure (or its silence) as one line."""
    if answer is None:
        return f"did not answer within {timeout:.0f} s (zoo installed there? busy?)"
    text = str(answer).strip().splitlines()
    last = text[-1] if text else type(answer).__name__
    if "ModuleNotFoundError" in str(answer) or "No module named" in str(answer):
        return "zoo is not installed on this node (install zoo-launcher[ray] there)"
    return last


def find_node(nodes: Sequence[Node], ref: str) -> Node:
    """The node ``ref`` names: its name, its address, or its id (a prefix of 6 or more)."""
    wanted = ref.strip()
    exact = [n for n in nodes if wanted in (n.name, n.node_id, n.address)]
    if len(exact) == 1:
        return exact[0]
    if not exact and len(wanted) >= 6:
        exact = [n for n in nodes if n.node_id.startswith(wanted)]
        if len(exact) == 1:
            return exact[0]
    names = ", ".join(sorted({n.name for n in nodes})) or "none"
    if len(exact) > 1:
        raise UsageError(f"{ref!r} names {len(exact)} nodes: use a node id (nodes: {names})")
    raise UsageError(f"no node {ref!r} in the cluster (nodes: {names})")
