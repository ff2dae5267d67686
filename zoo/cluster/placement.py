"""Which node runs a request: each alive node plans it for itself, and the best plan wins.

A planning task runs on every alive node at once (``zoo.cluster.actor.plan_task``): the node's
own hardware, engines, engine environments and hub caches decide, exactly as ``zoo launch`` on
that node would. The node whose plan is estimated fastest is chosen (ties: the node already
holding the files, then the name), or the pinned one; every node's verdict is kept so the
choice can be explained like ``--explain`` explains candidates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from zoo.cluster.nodes import (
    PROBE_TIMEOUT_S,
    Node,
    find_node,
    gather,
    list_nodes,
    on_node,
    why_failed,
)
from zoo.errors import ZooError

if TYPE_CHECKING:
    from zoo.plan import LaunchOptions, Plan
    from zoo.resolve import Request

PLAN_TIMEOUT_S = 60.0


class NoNodeFits(ZooError):
    """No node of the cluster can run the request (each node's reason is in the message)."""


@dataclass(frozen=True)
class Verdict:
    """One node's answer: its plan (it fits) or why not."""

    node: Node
    plan: Plan | None
    reason: str

    @property
    def fits(self) -> bool:
        return self.plan is not None


@dataclass(frozen=True)
class Placement:
    """The chosen node and its plan, with every node's verdict."""

    node: Node
    plan: Plan
    verdicts: tuple[Verdict, ...]
    pinned: bool = False

    def explain_lines(self) -> list[str]:
        """One line per node: chosen, fits, or does not fit and why."""
        wide = max((len(v.node.name) for v in self.verdicts), default=4)
        lines = []
        for v in self.verdicts:
            if v.node.node_id == self.node.node_id:
                mark = "pinned" if self.pinned else "chosen"
            else:
                mark = "fits" if v.fits else "no fit"
            lines.append(f"  {v.node.name:{wide}}  {mark:6}  {v.reason}")
        return lines

    def to_json(self) -> dict[str, object]:
        return {
            "node": self.node.name,
            "node_id": self.node.node_id,
            "pinned": self.pinned,
            "nodes": [
                {
                    "node": v.node.name,
                    "node_id": v.node.node_id,
                    "fits": v.fits,
                    "chosen": v.node.node_id == self.node.node_id,
                    "reason": v.reason,
                }
                for v in self.verdicts
            ],
        }


def summary(plan: Plan) -> str:
    """A plan in a few words: what runs, where it computes, its memory and speed."""
    from zoo.memory import gib

    speed = plan.speed.decode_tokens_per_second if plan.speed else None
    words = [
        f"{plan.engine} {plan.spec.format} {plan.spec.size:g}B {plan.quantization}",
        f"on {plan.device}",
        f"{gib(plan.memory.total_bytes)} of {plan.memory.place}",
    ]
    if speed:
        words.append(f"~{speed:.0f} tokens/s")
    return ", ".join(words)


def plan_on_nodes(
    request: Request,
    options: LaunchOptions,
    nodes: Sequence[Node],
    *,
    timeout: float = PLAN_TIMEOUT_S,
) -> list[Verdict]:
    """Every node's verdict on ``request``: alive ones plan it there, in parallel."""
    from zoo.cluster.actor import plan_task

    refs = {
        n.node_id: plan_task.options(scheduling_strategy=on_node(n)).remote(
            request, options, n.label_map
        )
        for n in nodes
        if n.alive
    }
    answers = gather(refs, timeout)
    verdicts = []
    for node in nodes:
        if not node.alive:
            verdicts.append(Verdict(node, None, "the node is not alive"))
            continue
        answer = answers.get(node.node_id)
        if answer is None:
            verdicts.append(Verdict(node, None, f"did not answer within {timeout:.0f} s"))
        elif isinstance(answer, BaseException):
            verdicts.append(Verdict(node, None, why_failed(answer, timeout)))
        else:
            plan, why = answer
            verdicts.append(Verdict(node, plan, summary(plan) if plan is not None else why))
    return verdicts


def choose(verdicts: Sequence[Verdict], *, request: str, pin: str | None = None) -> Placement:
    """The placement among ``verdicts``: the pinned node, else the fastest plan."""
    nodes = [v.node for v in verdicts]
    if pin is not None:
        node = find_node(nodes, pin)
        [verdict] = [v for v in verdicts if v.node.node_id == node.node_id]
        if verdict.plan is None:
            raise NoNodeFits(f"{request} cannot run on node {node.name}: {verdict.reason}")
        return Placement(node, verdict.plan, tuple(verdicts), pinned=True)
    fitting = [v for v in verdicts if v.plan is not None]
    if not fitting:
        reasons = "; ".join(f"{v.node.name}: {v.reason}" for v in verdicts) or "it has no nodes"
        raise NoNodeFits(f"{request} fits no node of the cluster: {reasons}")
    best = min(fitting, key=_rank)
    assert best.plan is not None
    return Placement(best.node, best.plan, tuple(verdicts))


def _rank(v: Verdict) -> tuple[float, int, str, str]:
    plan = v.plan
    assert plan is not None
    speed = plan.speed.decode_tokens_per_second if plan.speed else 0.0
    cached = 0 if plan.family.name in v.node.models else 1
    return (-speed, cached, v.node.name, v.node.node_id)


def place(
    request: Request,
    options: LaunchOptions,
    *,
    nodes: Sequence[Node] | None = None,
    pin: str | None = None,
    timeout: float = PLAN_TIMEOUT_S,
) -> Placement:
    """Plan ``request`` on every alive node and choose one (``pin``: that node or nothing)."""
    found = list(nodes) if nodes is not None else list_nodes(probe=False, timeout=PROBE_TIMEOUT_S)
    if pin is not None:
        find_node(found, pin)  # an unknown node is a usage error before any planning
    verdicts = plan_on_nodes(request, options, found, timeout=timeout)
    return choose(verdicts, request=request.model, pin=pin)
