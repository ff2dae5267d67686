"""``zoo cluster status``, and the cluster parts shared by ``zoo launch``, ``ps``, ``stop`` and
``logs`` (``--cluster``).

A cluster is a Ray cluster with zoo installed on every node (``zoo.cluster``). Which one is
meant: ``--cluster``/``--address``, else ``$ZOO_CLUSTER``, else the settings file's
``cluster`` (``zoo.cluster.address.cluster_address``). Nothing from ``zoo.cluster`` or ray is
imported until a command needs the cluster, so the CLI stays fast without one.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer
from typer.core import TyperCommand

if TYPE_CHECKING:
    from typer._click.core import Context  # the click typer runs on (vendored in typer 0.29)

    from zoo.cluster.instances import ClusterInstance
    from zoo.cluster.nodes import Node
    from zoo.cluster.placement import Placement

COMMANDS: tuple[str, ...] = ("cluster",)

STATUS_JSON_VERSION = 1
PLACEMENT_JSON_VERSION = 1

# How to name a cluster, said wherever one is missing.
HOW_TO_NAME = (
    "give --cluster HOST:PORT (the head node's address), set $ZOO_CLUSTER, "
    'or put cluster = "HOST:PORT" in the settings file'
)

ClusterOption = Annotated[
    str | None,
    typer.Option(
        "--cluster",
        help="Ray cluster to use: HOST:PORT of its head node or ray://HOST:PORT; bare "
        "--cluster: the one ZOO_CLUSTER or the settings file's `cluster` names.",
        show_default=False,
    ),
]

cluster_app = typer.Typer(
    name="cluster",
    help="The Ray cluster zoo places models on: its nodes, their GPUs, engines and models.",
    no_args_is_help=True,
)


def bare_cluster(args: list[str]) -> list[str]:
    """A ``--cluster`` with no value (last, or followed by another option) becomes
    ``--cluster=``: the cluster ``$ZOO_CLUSTER`` or the settings file names. typer has no
    option with an optional value; the command classes call this before parsing."""
    spelled = list(args)
    for index, word in enumerate(spelled):
        if word == "--cluster" and (
            index + 1 == len(spelled) or spelled[index + 1].startswith("-")
        ):
            spelled[index] = "--cluster="
    return spelled


class ClusterCommand(TyperCommand):
    """A command whose ``--cluster`` may be given bare (``bare_cluster``)."""

    def parse_args(self, ctx: Context, args: list[str]) -> list[str]:
        end = args.index("--") if "--" in args else len(args)
        return super().parse_args(ctx, [*bare_cluster(args[:end]), *args[end:]])


def address_or_none(flag: str | None) -> str | None:
    """The cluster named by the flag, $ZOO_CLUSTER or the settings file (checked), or None;
    an empty flag (a bare ``--cluster``) names none itself."""
    from zoo.cluster.address import cluster_address

    return cluster_address(flag or None)


def require_address(flag: str | None, what: str = "this command") -> str:
    """The cluster to use; a usage error saying how to name one when none is named."""
    from zoo.errors import UsageError

    address = address_or_none(flag)
    if address is not None:
        return address
    if flag == "":
        raise UsageError(
            "--cluster has no address, and neither $ZOO_CLUSTER nor the settings file's "
            "`cluster` names one",
            hint="give --cluster HOST:PORT (the head node's address)",
        )
    raise UsageError(f"no Ray cluster named for {what}", hint=HOW_TO_NAME)


def connect(address: str) -> None:
    from zoo.cluster.connect import connect as ray_connect

    ray_connect(address)


@cluster_app.command("status")
def status(
    address: Annotated[
        str | None,
        typer.Option(
            "--address",
            "--cluster",
            help="HOST:PORT of the head node or ray://HOST:PORT "
            "(also: ZOO_CLUSTER, or `cluster` in the settings file).",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the nodes as JSON.")] = False,
) -> None:
    """The cluster's nodes: GPUs (count x kind, memory each), RAM, CPUs, the engines ready
    and the models cached on each, and why a node could not be probed."""
    from zoo.cluster.nodes import list_nodes

    where = require_address(address, "`zoo cluster status`")
    connect(where)
    nodes = list_nodes()
    if as_json:
        document = {
            "version": STATUS_JSON_VERSION,
            "address": where,
            "nodes": [node.to_json() for node in nodes],
        }
        typer.echo(json.dumps(document, indent=2))
        return
    typer.echo(render_nodes(where, nodes))


def render_nodes(address: str, nodes: list[Node]) -> str:
    from zoo.cli.texttable import Column, render

    if not nodes:
        return f"cluster {address}: no nodes"
    problems = any(node.problem for node in nodes)
    columns = [
        Column("NODE", wrap=False),
        Column("ADDRESS", wrap=False),
        Column("ALIVE"),
        Column("GPUS", wrap=False),
        Column("RAM", wrap=False, right=True),
        Column("CPUS", right=True),
        Column("ENGINES"),
        Column("MODELS"),
    ]
    if problems:
        columns.append(Column("PROBLEM"))
    rows = []
    for node in nodes:
        row = [
            node.name,
            node.address,
            "yes" if node.alive else "no",
            gpus_cell(node),
            ram_cell(node),
            f"{node.cpus:g}",
            ", ".join(node.engines_ready) or ("?" if node.host is None else "-"),
            ", ".join(node.models) or ("?" if node.host is None else "-"),
        ]
        if problems:
            row.append(node.problem or "")
        rows.append(row)
    alive = sum(1 for node in nodes if node.alive)
    heading = f"cluster {address}: {len(nodes)} node{'s' * (len(nodes) != 1)}, {alive} alive"
    return heading + "\n" + render(columns, rows)


def gpus_cell(node: Node) -> str:
    """``2 x NVIDIA H100 80GB HBM3 (80 GiB)``, one group per kind; Ray's GPU count (and
    accelerator type) when the node's profile is unknown; ``-`` for none."""
    if node.host is not None and node.host.gpus:
        groups: dict[tuple[str, int], int] = {}
        for gpu in node.host.gpus:
            groups[gpu.name, gpu.memory_bytes] = groups.get((gpu.name, gpu.memory_bytes), 0) + 1
        return ", ".join(
            f"{count} x {name} ({_gib(memory)})" for (name, memory), count in groups.items()
        )
    if node.gpus:
        return f"{node.gpus:g} x {node.accelerator}" if node.accelerator else f"{node.gpus:g}"
    return "-"


def ram_cell(node: Node) -> str:
    """The node's RAM as its profile says, else Ray's memory resource."""
    if node.host is not None:
        return _gib(node.host.ram_bytes)
    return _gib(node.memory_bytes) if node.memory_bytes else "-"


def _gib(n: int) -> str:
    """GiB with one decimal, none for a whole number (``80 GiB``, ``7.5 GiB``)."""
    from zoo.memory import GIB

    value = round(n / GIB, 1)
    return f"{value:.0f} GiB" if value == int(value) else f"{value:.1f} GiB"


# --- zoo launch --cluster ------------------------------------------------------------------


def render_placement(placement: Placement) -> str:
    pinned = " (pinned with --node)" if placement.pinned else ""
    lines = [f"node:         {placement.node.name} ({placement.node.address}){pinned}"]
    lines += ["placement:", *placement.explain_lines()]
    return "\n".join(lines)


def node_names() -> dict[str, str]:
    """Node id -> node name, from Ray's view of the nodes ({} when it cannot be had)."""
    from zoo.cluster.nodes import list_nodes
    from zoo.errors import ZooError

    try:
        return {node.node_id: node.name for node in list_nodes(probe=False)}
    except ZooError:
        return {}


def node_of(instance: ClusterInstance, names: dict[str, str]) -> str:
    """The name of the node an instance runs on (as it reports it, else as the cluster lists
    it), else its address."""
    return (
        instance.node_name
        or names.get(instance.node_id)
        or instance.node_address
        or instance.node_id[:8]
        or "?"
    )


def stop_hint(instance: ClusterInstance, address: str) -> str:
    return f"zoo stop {instance.name} --cluster {address}"


def cluster_banner(
    instance: ClusterInstance, address: str, node: str, *, running: bool = False
) -> str:
    """What a user needs to reach a model on a cluster node (the endpoint, a curl with the
    key), and how to stop it; ``running``: it was already running, not started now."""
    import shlex

    from zoo import kinds

    model_kind = kinds.KINDS.get(instance.kind, kinds.KINDS[kinds.LLM])
    body = json.dumps({"model": instance.served_name, **model_kind.example}, ensure_ascii=False)
    what = f"{instance.model} ({instance.engine}, {instance.format} {instance.quantization})"
    verb = "is already running" if running else "is ready"
    lines = [
        f"{what} {verb} on node {node}  [instance {instance.name}]",
        f"  endpoint: {instance.endpoint or '(not ready yet)'}",
        f"  model:    {instance.served_name}",
    ]
    if instance.url:
        lines.append(
            f"  try:      curl {instance.url}{model_kind.main_route}"
            " -H 'Content-Type: application/json' -H \"Authorization: Bearer $ZOO_API_KEY\""
            f" -d {shlex.quote(body)}"
        )
    lines.append(f"  stop:     {stop_hint(instance, address)}")
    return "\n".join(lines)


def read_to_end(name: str, keep: int = 1 << 20) -> tuple[int, bytes]:
    """The offset just past the instance's log as it is now, and its last ``keep`` bytes."""
    from zoo.cluster import instances

    offset, tail = 0, b""
    while True:
        chunk, after = instances.read_log(name, offset)
        if not chunk:
            return offset, tail
        tail = (tail + chunk)[-keep:] if keep > 0 else b""
        offset = after


def follow_until_stopped(instance: ClusterInstance, node: str) -> None:
    """The foreground contract of a local ``zoo launch``, for an instance on a cluster: its
    log goes to stderr as it grows until Ctrl-C (or SIGTERM), then the instance is stopped;
    however the command ends, the instance does not outlive it. An instance that fails or
    is stopped from elsewhere ends the command with an error naming it."""
    import contextlib

    from zoo.cluster import instances
    from zoo.runtime.launcher import _sigterm_interrupts

    name = instance.name
    try:
        with _sigterm_interrupts():
            follow_log(instance, read_to_end(name, keep=0)[0], stderr=True, fail=True)
    except KeyboardInterrupt:
        with contextlib.suppress(OSError):  # a closed stdout must not keep the server running
            typer.echo(f"Stopping {instance.model} on node {node} ...")
        instances.stop(name)
        typer.echo("Stopped.")
        return
    except BaseException:
        with contextlib.suppress(Exception):
            instances.stop(name, grace=2.0)
        raise


def follow_log(
    instance: ClusterInstance, offset: int, *, stderr: bool = False, fail: bool = False
) -> None:
    """Copy the instance's log from ``offset`` as it grows (polling ``read_log``) until the
    instance is gone, failed or stopped; ``fail``: that is an error. While its actor does not
    answer (being restarted on another node) the log waits; after a restart it is the new
    engine's, from its start."""
    import sys
    import time

    from zoo.cluster import instances
    from zoo.cluster.connect import ClusterError
    from zoo.errors import NotFoundError

    stream = sys.stderr if stderr else sys.stdout
    out = getattr(stream, "buffer", None)
    name = instance.name
    checked = time.monotonic()
    while True:
        try:
            chunk, offset = instances.read_log(name, offset)
        except NotFoundError:
            chunk, current = b"", None
        except ClusterError:  # not answering: restarting, or its node is gone
            chunk, current = b"", instance
        else:
            current = instance
        if chunk:
            if out is not None:
                out.write(chunk)
                out.flush()
            else:
                stream.write(chunk.decode(errors="replace"))
                stream.flush()
            continue
        now = time.monotonic()
        if current is not None and now - checked >= STATE_EVERY_S:
            checked = now
            current = instances.current(name, wait=0.0)
        if current is None:
            if not fail:
                return
            raise ClusterError(
                f"{instance.model} is no longer on the cluster [instance {name}]",
                hint="stopped from another shell, or its actor was removed",
            )
        if current.state in ("failed", "stopped"):
            if not fail:
                return
            raise ClusterError(
                f"{instance.model} {current.state} on the cluster [instance {name}]"
                + (f": {current.error}" if current.error else ""),
                hint=f"see `zoo logs {name} --cluster`",
            )
        time.sleep(POLL_S)


# How often a followed log is read, and how often the instance's state is checked meanwhile.
POLL_S = 0.5
STATE_EVERY_S = 2.0


def register(app: typer.Typer) -> None:
    app.add_typer(cluster_app, name="cluster")
