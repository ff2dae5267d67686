"""``zoo launch``: resolve a model to a plan, print it (--dry-run/--explain/--json) or run it.

Resolution is cheap and imports no engine library; ``zoo.launch`` makes the plan (with the
server command it leads to) and runs it, importing the runtime only when a launch happens.
A model already running as the user asked it (``zoo.launch.running_instance``) is not started
twice: its endpoint is printed instead, unless ``--new``.

``--explain`` groups the dropped candidates by reason; ``--explain=all`` (or
``--explain-all``) lists every row. typer has no option with an optional value, so the
command's class spells ``--explain=all`` as ``--explain-all`` before parsing, and a bare
``--cluster`` (the cluster ``$ZOO_CLUSTER`` or the settings file names) as ``--cluster=``.

With ``--cluster`` the plan is made on each node of a Ray cluster (``zoo.cluster.placement``)
and the model runs there as a detached actor (``zoo.cluster.instances``); nothing of
``zoo.cluster`` or ray is imported otherwise.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Annotated

import typer
from typer.core import TyperCommand

from zoo.cli.cluster_cmd import ClusterOption
from zoo.cli.options import (
    ContextOption,
    EngineOption,
    FormatOption,
    HostProfileOption,
    HubOption,
    MinSpeedOption,
    ModelArgument,
    OptInOption,
    QuantizationOption,
    SizeOption,
    check_dtype,
    check_launch_options,
    model_request,
    planning_host,
)

if TYPE_CHECKING:
    from typer._click.core import Context  # the click typer runs on (vendored in typer 0.29)

    from zoo.cli.options import LaunchDefaults
    from zoo.cluster.instances import ClusterInstance
    from zoo.plan import Candidate, LaunchOptions, Plan
    from zoo.resolve import Request
    from zoo.runtime.state import Instance

COMMANDS: tuple[str, ...] = ("launch",)


def launch(
    ctx: typer.Context,
    model: ModelArgument,
    engine: EngineOption = None,
    format: FormatOption = None,
    size: SizeOption = None,
    quantization: QuantizationOption = None,
    hub: HubOption = None,
    context: ContextOption = None,
    min_speed: MinSpeedOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan and stop.")] = False,
    explain: Annotated[
        bool,
        typer.Option(
            "--explain",
            help="Print the plan, why, and the candidates: the kept ones, the dropped ones "
            "grouped by reason (--explain=all: every row).",
        ),
    ] = False,
    explain_all: Annotated[
        bool,
        typer.Option(
            "--explain-all", help="--explain with one row per candidate (also --explain=all)."
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
    host_profile: HostProfileOption = None,
    opt_in: OptInOption = None,
    host: Annotated[
        str | None,
        typer.Option(
            "--host", help="Address the server listens on (default 127.0.0.1, or the config's)."
        ),
    ] = None,
    port: Annotated[int | None, typer.Option("--port", help="Port (default: a free one).")] = None,
    detach: Annotated[
        bool, typer.Option("--detach", "-d", help="Return once the server is ready.")
    ] = False,
    api_key: Annotated[
        str | None,
        typer.Option("--api-key", envvar="ZOO_API_KEY", help="Key clients must send."),
    ] = None,
    served_name: Annotated[
        str | None, typer.Option("--served-name", help="Model name clients ask for.")
    ] = None,
    dtype: Annotated[
        str | None,
        typer.Option("--dtype", help="Compute dtype (auto, bfloat16, float16, float32)."),
    ] = None,
    tensor_parallel_size: Annotated[
        int | None,
        typer.Option("--tensor-parallel-size", "--tp", help="GPUs to shard the model over."),
    ] = None,
    gpu_memory_fraction: Annotated[
        float | None,
        typer.Option("--gpu-memory-fraction", help="Share of each GPU's memory to use (0-1]."),
    ] = None,
    ready_timeout: Annotated[
        float | None,
        typer.Option("--ready-timeout", help="Seconds to wait for the server (default 900)."),
    ] = None,
    new: Annotated[
        bool,
        typer.Option(
            "--new",
            help="Start another instance even if this model is already running "
            "(without it, zoo prints the running one's endpoint).",
        ),
    ] = False,
    cluster: ClusterOption = None,
    node: Annotated[
        str | None,
        typer.Option(
            "--node",
            help="With --cluster: run on this node (name, id or address) and never move it.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run a model behind an OpenAI-compatible endpoint, choosing engine and files for
    this machine. Arguments after `--` go to the engine's server unchanged.

    With --cluster (bare: the cluster $ZOO_CLUSTER or the settings file names), each node of
    the Ray cluster plans for itself and the model runs where its plan is fastest (--node:
    there and nowhere else), as a detached instance reached with an API key; without
    --detach, its log follows here until Ctrl-C, which stops it."""
    from zoo import launch as launching
    from zoo.cli.options import launch_defaults
    from zoo.errors import UsageError
    from zoo.plan import LaunchOptions

    # The flag (or $ZOO_API_KEY), else the settings file's, else the built-in default.
    chosen = launch_defaults(host, port, api_key)
    host, port, api_key = chosen.host.value, chosen.port.value, chosen.api_key.value
    if port is not None and not 0 < port < 65536:
        raise UsageError(f"--port {port} is not a TCP port")
    if tensor_parallel_size is not None and tensor_parallel_size < 1:
        raise UsageError(f"--tensor-parallel-size {tensor_parallel_size} must be 1 or more")
    if gpu_memory_fraction is not None and not 0 < gpu_memory_fraction <= 1:
        raise UsageError(f"--gpu-memory-fraction {gpu_memory_fraction} must be in (0, 1]")
    if ready_timeout is not None and not ready_timeout > 0:
        raise UsageError(f"--ready-timeout {ready_timeout} must be a positive number of seconds")
    check_dtype(dtype)
    if cluster is None and node is not None:
        raise UsageError(
            "--node pins a model to a node of a Ray cluster: add --cluster",
            hint="--cluster HOST:PORT, or a bare --cluster for $ZOO_CLUSTER or the settings "
            "file's cluster",
        )
    if cluster is not None:
        if host_profile:
            raise UsageError(
                "--host-profile plans for another machine; with --cluster each node plans for "
                "its own hardware (see `zoo cluster status`)"
            )
        if opt_in:
            raise UsageError(
                "--opt-in applies to this machine; with --cluster each node plans with its "
                "own opt-ins",
                hint="set ZOO_ENGINE_OPT_IN (or opt_in in the settings file) on the nodes",
            )
        options = LaunchOptions(
            port=port,
            detach=True,  # on a cluster the engine's actor outlives zoo; foreground follows it
            api_key=api_key,
            served_name=served_name,
            extra_args=tuple(ctx.args),
            dtype=dtype,
            tensor_parallel_size=tensor_parallel_size,
            gpu_memory_fraction=gpu_memory_fraction,
            ready_timeout=ready_timeout,
        )
        _launch_on_cluster(
            cluster,
            node,
            chosen,
            options,
            lambda: model_request(
                model, engine, format, size, quantization, hub, context, min_speed
            ),
            print_json=as_json,
            explain=explain or explain_all,
            every=explain_all,
            dry_run=dry_run,
            detach=detach,
            new=new,
        )
        return
    target = planning_host(host_profile, opt_in)
    options = LaunchOptions(
        host=host,
        port=port,
        detach=detach,
        api_key=api_key,
        served_name=served_name,
        extra_args=tuple(ctx.args),
        dtype=dtype,
        tensor_parallel_size=tensor_parallel_size,
        gpu_memory_fraction=gpu_memory_fraction,
        ready_timeout=ready_timeout,
    )
    check_launch_options(options)
    request = model_request(model, engine, format, size, quantization, hub, context, min_speed)
    plan = launching.plan(request, options, host=target)
    # Only instances on this machine: a plan for another host (--host-profile) has none.
    running = None if host_profile or new else launching.running_instance(plan, request)
    if as_json:
        typer.echo(json.dumps(plan.to_json(), indent=2))
        if running is not None:
            typer.echo(running_note(running), err=True)  # stdout stays one JSON document
        return
    if explain or explain_all or dry_run:
        shown = render_explain(plan, every=explain_all) if explain or explain_all else None
        typer.echo(shown or render_plan(plan))
        if running is not None:
            typer.echo(f"\n{running_note(running)}")
        return
    if host_profile:
        raise UsageError(
            "--host-profile plans for another machine: add --dry-run, --explain or --json"
        )
    if running is not None:
        from zoo.runtime.launcher import running_banner

        typer.echo(running_banner(running, plan.family))
        return
    launching.run(plan)


def _launch_on_cluster(
    flag: str,
    node: str | None,
    chosen: LaunchDefaults,
    options: LaunchOptions,
    make_request: Callable[[], Request],
    *,
    print_json: bool,
    explain: bool,
    every: bool,
    dry_run: bool,
    detach: bool,
    new: bool,
) -> None:
    """``zoo launch --cluster``: place the request on a node (its plan made there), print the
    placement (--dry-run, --explain, --json) or start it as a detached actor on that node."""
    from zoo.cli import cluster_cmd
    from zoo.errors import UsageError

    if chosen.host.source == "flag":
        raise UsageError(
            "--host: on a cluster the engine listens on its node's cluster address",
            hint="leave --host out with --cluster",
        )
    if not options.api_key:
        raise UsageError(
            "a model on a cluster node is reached over the network: it needs an API key",
            hint="give --api-key, set $ZOO_API_KEY, or set api_key_file in the settings file",
        )
    address = cluster_cmd.require_address(flag, "--cluster")
    check_launch_options(options)
    request = make_request()
    cluster_cmd.connect(address)
    from zoo.cluster import instances
    from zoo.cluster.nodes import find_node, list_nodes
    from zoo.cluster.placement import place

    nodes = list_nodes(probe=False)
    pinned = find_node(nodes, node) if node is not None else None  # a typo: before planning
    if not (print_json or explain or dry_run or new):
        running = _running_on_cluster(request, options, pinned.node_id if pinned else None)
        if running is not None:
            names = {n.node_id: n.name for n in nodes}
            where = cluster_cmd.node_of(running, names)
            typer.echo(cluster_cmd.cluster_banner(running, address, where, running=True))
            typer.echo("  (--new starts another instance)")
            return
    placement = place(request, options, nodes=nodes, pin=node)
    if print_json:
        document = {
            "version": cluster_cmd.PLACEMENT_JSON_VERSION,
            "address": address,
            "placement": placement.to_json(),
            "plan": placement.plan.to_json(),
        }
        typer.echo(json.dumps(document, indent=2))
        return
    if explain or dry_run:
        shown = render_explain(placement.plan, every=every) if explain else None
        typer.echo(cluster_cmd.render_placement(placement))
        typer.echo("")
        typer.echo(shown or render_plan(placement.plan))
        return
    instance = instances.start(
        placement,
        detached=True,
        ready_timeout=options.ready_timeout,
        say=lambda line: typer.echo(line, err=True),
    )
    where = instance.node_name or placement.node.name
    if instance.node_id != placement.node.node_id:
        # Ray gave it another node (the chosen one's GPUs were taken meanwhile): the plan
        # it runs is the one that node made, not the one printed for the chosen node.
        typer.echo(
            f"zoo: note: placed on {where}, not {placement.node.name} (no room there when it "
            f"started); it planned again on {where}",
            err=True,
        )
    typer.echo(cluster_cmd.cluster_banner(instance, address, where))
    if not detach:
        cluster_cmd.follow_until_stopped(instance, where)


def _running_on_cluster(
    request: Request, options: LaunchOptions, node_id: str | None
) -> ClusterInstance | None:
    """A running cluster instance of what ``request`` asks that serves as ``options`` ask
    (the rule of ``zoo.launch.running_instance``; the key is checked by asking the instance
    with it), on the pinned node when there is one; else None."""
    from zoo import quantization as quant
    from zoo.cluster import instances
    from zoo.errors import ZooError
    from zoo.launch import _same_size
    from zoo.registry import catalog_with_plugins

    if request.context_length is not None or options.extra_args:
        return None
    try:
        family = catalog_with_plugins().get(request.model)
    except ZooError:
        return None  # an unknown model: the placement names it
    several_sizes = len({s.size for s in family.specs}) > 1
    for inst in instances.list_instances():
        if (
            inst.state == "running"
            and inst.url is not None
            and inst.model == family.name
            and request.engine in (None, inst.engine)
            and request.format in (None, inst.format)
            and (
                request.quantization is None or quant.same(request.quantization, inst.quantization)
            )
            and (request.size is None or _same_size(request.size, inst.size, several_sizes))
            and options.served_name in (None, inst.served_name)
            and node_id in (None, inst.node_id)
            and _answers_with_key(inst, options.api_key)
        ):
            return inst
    return None


def _answers_with_key(inst: ClusterInstance, api_key: str | None) -> bool:
    import httpx

    if api_key is None:
        return False
    try:
        answer = httpx.get(
            f"{inst.endpoint}/models",
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=3.0,
        )
    except httpx.HTTPError:
        return False
    return answer.status_code == 200


def running_note(instance: Instance) -> str:
    return (
        f"note: {instance.model} is already running ({instance.engine}, {instance.format} "
        f"{instance.quantization}) at {instance.endpoint} [instance {instance.id}]: "
        "`zoo launch` prints its endpoint instead of starting another (--new starts one)"
    )


def render_plan(plan: Plan) -> str:
    from zoo import kinds
    from zoo.hubs.select import describe_rule
    from zoo.memory import gib

    variant = f", {plan.variant} build" if plan.variant else ""
    memory = plan.memory
    gpus = f" on {memory.gpus} GPUs" if memory.gpus > 1 else ""
    shown = (
        f"{gib(memory.total_bytes)} (weights {gib(memory.weights_bytes)}, "
        f"KV cache {gib(memory.kv_cache_bytes)} for {plan.context_length} tokens, engine "
        f"{gib(memory.overhead_bytes)}) of {gib(memory.budget_bytes)} {memory.place}{gpus} usable"
    )
    if plan.env_ready:
        env = "ready"
    elif plan.requirements:
        env = f"will be created: pip install {' '.join(plan.requirements)}"
    else:
        env = "will be created (an empty virtual environment: nothing to install)"
    rows = [("model", plan.family.name)]
    if plan.family.kind != kinds.LLM:
        # Not an LLM: say so, and where its endpoint answers (not /v1/chat/completions).
        from zoo.cli.catalog_cmds import kind_brief

        rows += [
            *kind_brief(plan.family),
            ("route", f"POST {kinds.kind(plan.family.kind).main_route}"),
        ]
    rows += [
        ("host", plan.host_name),
        ("engine", f"{plan.engine} on {plan.device}{variant}"),
        ("spec", f"{plan.spec.format}, {plan.spec.size_label}B"),
        ("quantization", plan.quantization),
    ]
    for index, source in enumerate(plan.sources):
        selection = source.selection
        files = (
            ", ".join(selection.exact)
            if selection.exact is not None
            else describe_rule(selection.exclude, remote_code=selection.remote_code)
        )
        revision = f" @ {source.revision}" if source.revision else ""
        label = "hub" if index == 0 else "then"
        rows.append((label, f"{source.hub}: {source.repo}{revision}"))
        if index == 0:
            from zoo.hubs.locked import plan_recorded_bytes
            from zoo.hubs.progress import human_bytes

            recorded = plan_recorded_bytes(plan, source.hub)  # the lock's sizes: no request
            if recorded is not None:
                files += f" ({human_bytes(recorded)}, as `zoo catalog check` recorded it)"
            rows.append(("files", files))
    if plan.hub_locked:
        rows.append(("", "(no other hub: the hub was named)"))
    rows += [
        ("memory", shown),
        ("speed", render_speed(plan)),
        ("environment", env),
        ("command", _shell_join(plan.command) or "(the engine builds it at launch)"),
    ]
    if plan.command_env:
        rows.append(("command env", " ".join(f"{k}={v}" for k, v in plan.command_env)))
    if plan.proxied:
        options = plan.options
        where = f"{options.host}:{options.port}" if options.port else f"{options.host}, a free port"
        behind = "the engine behind it listens on a private loopback port chosen at launch"
        rows.append(("proxy", f"zoo's proxy serves {where}; {behind} (0 above)"))
        if plan.proxy_command:
            key = "ZOO_PROXY_API_KEY=*** " if options.api_key else ""
            rows.append(("proxy argv", key + _shell_join(plan.proxy_command)))
    elif not plan.options.port:
        rows.append(("port", "a free one, chosen at launch (0 above)"))
    return "\n".join(f"{label + ':' if label else '':14}{value}" for label, value in rows)


def render_speed(plan: Plan) -> str:
    if plan.speed is None:
        return "unknown on this device (no bandwidth figure for it)"
    from zoo.resolve import describe_speed

    return describe_speed(plan.speed)


def render_explain(plan: Plan, *, every: bool = False) -> str:
    """The plan, why, then the candidates: every row (``every``), or the kept ones and one
    line per reason the others were dropped for."""
    lines = [render_plan(plan), "", "why:"]
    lines += [f"  {reason}" for reason in plan.reasons]
    if every:
        lines += ["", "candidates (best first; x = dropped):"]
        lines += [
            _row(c, "*" if i == 0 else (" " if c.kept else "x"))
            for i, c in enumerate(plan.candidates)
        ]
        return "\n".join(lines)
    kept = [c for c in plan.candidates if c.kept]
    dropped = [c for c in plan.candidates if not c.kept]
    lines += ["", f"candidates: {len(kept)} kept (best first), {len(dropped)} dropped (x)"]
    lines += [_row(c, "*" if i == 0 else " ") for i, c in enumerate(kept)]
    lines += [f"  x {line}" for line in dropped_by_reason(dropped)]
    if dropped:
        lines.append("  (--explain=all lists every candidate with its own reason)")
    return "\n".join(lines)


def _row(c: Candidate, mark: str) -> str:
    from zoo.memory import gib
    from zoo.speed import tokens_per_second

    memory = gib(c.memory_bytes) if c.memory_bytes else "-"
    speed = tokens_per_second(c.decode_tps) if c.decode_tps is not None else "-"
    return (
        f"  {mark} {c.engine:12} {c.format:8} {_size(c.size):>6} {c.quantization:12} "
        f"{(c.device or '-'):6} {memory:>10} {speed:>12}  {c.reason}"
    )


# A memory verdict names the candidate's own need ("needs 30.1 GiB, more than the 18.8 GiB of
# RAM usable here"): grouped, the need goes and the budget (at one decimal) stays.
_MEMORY_REASON = re.compile(
    r"^needs [\d.,]+ (?:GiB|bytes), more than the (?P<budget>[\d.,]+) (?P<unit>GiB|bytes) "
    r"of (?P<where>.+)$"
)
# How many candidates a group line names before "and N more".
GROUP_NAMES = 8


def _reason_key(reason: str) -> str:
    found = _MEMORY_REASON.match(reason)
    if found is None:
        return reason
    budget = float(found["budget"].replace(",", ""))
    if found["unit"] == "bytes":
        budget /= 1024**3
    return f"needs more than the {budget:.1f} GiB of {found['where']}"


def dropped_by_reason(dropped: Sequence[Candidate]) -> list[str]:
    """One line per reason, those that ran but did not fit first, then the largest groups:
    "14 dropped: needs more than the 18.8 GiB of RAM usable here: 30B Q8_0, 32B Q4_K_M, ...
    and 6 more"; what a whole group shares (one engine, one format) is said once, in brackets,
    instead of in every entry."""
    groups: dict[str, list[Candidate]] = {}
    for c in dropped:
        groups.setdefault(_reason_key(c.reason), []).append(c)
    lines = []

    # Candidates that ran here but did not fit say the most: their groups come first.
    def order(item: tuple[str, list[Candidate]]) -> tuple[bool, int]:
        return all(c.memory_bytes is None for c in item[1]), -len(item[1])

    for key, members in sorted(groups.items(), key=order):
        engines = {c.engine for c in members}
        formats = {c.format for c in members}
        # What the whole group shares is said once: (engine, format) or (engine).
        common = [members[0].engine] if len(engines) == 1 else []
        if common and len(formats) == 1:
            common.append(members[0].format)
        names = list(
            dict.fromkeys(
                " ".join([c.engine, c.format, _size(c.size), c.quantization][len(common) :])
                for c in members
            )
        )
        listed = ", ".join(names[:GROUP_NAMES])
        if len(names) > GROUP_NAMES:
            listed += f", ... and {len(names) - GROUP_NAMES} more"
        where = f" ({', '.join(common)})" if common else ""
        lines.append(f"{len(members)} dropped{where}: {key}: {listed}")
    return lines


def _size(size: float) -> str:
    from zoo.catalog.model import format_size

    return format_size(size) + "B"


def _shell_join(argv: tuple[str, ...]) -> str:
    import shlex

    return " ".join(shlex.quote(a) for a in argv)


class LaunchCommand(TyperCommand):
    """``zoo launch``, where ``--explain=all`` means ``--explain-all`` (words after ``--`` go
    to the engine untouched)."""

    def parse_args(self, ctx: Context, args: list[str]) -> list[str]:
        from zoo.cli.cluster_cmd import bare_cluster
        from zoo.errors import UsageError

        end = args.index("--") if "--" in args else len(args)
        ours = ["--explain-all" if a.lower() == "--explain=all" else a for a in args[:end]]
        ours = bare_cluster(ours)
        rest = super().parse_args(ctx, [*ours, *args[end:]])
        # Extra words reach the engine only after `--`: a stray one before it (`--explain
        # all`, a typo) is a mistake, not an engine argument.
        after = max(len(args) - end - 1, 0)
        stray = ctx.args[: len(ctx.args) - after]
        if stray:
            raise UsageError(
                f"unexpected argument {stray[0]!r}",
                hint="engine arguments go after `--`, e.g. zoo launch MODEL -- --threads 4",
            )
        return rest


def register(app: typer.Typer) -> None:
    app.command(
        "launch",
        cls=LaunchCommand,
        context_settings={"allow_extra_args": True},
        no_args_is_help=True,
    )(launch)
