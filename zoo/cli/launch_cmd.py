"""``zoo launch``: resolve a model to a plan, print it (--dry-run/--explain/--json) or run it.

Resolution is cheap and imports no engine library; ``zoo.launch`` makes the plan (with the
server command it leads to) and runs it, importing the runtime only when a launch happens.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

from zoo.cli.options import (
    ContextOption,
    EngineOption,
    FormatOption,
    HostProfileOption,
    HubOption,
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
    from zoo.plan import Plan

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
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan and stop.")] = False,
    explain: Annotated[
        bool, typer.Option("--explain", help="Print every candidate with why it was kept.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
    host_profile: HostProfileOption = None,
    opt_in: OptInOption = None,
    host: Annotated[
        str, typer.Option("--host", help="Address the server listens on.")
    ] = "127.0.0.1",
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
) -> None:
    """Run a model behind an OpenAI-compatible endpoint, choosing engine and files for
    this machine. Arguments after `--` go to the engine's server unchanged."""
    from zoo import launch as launching
    from zoo.errors import UsageError
    from zoo.plan import LaunchOptions

    if port is not None and not 0 < port < 65536:
        raise UsageError(f"--port {port} is not a TCP port")
    if tensor_parallel_size is not None and tensor_parallel_size < 1:
        raise UsageError(f"--tensor-parallel-size {tensor_parallel_size} must be 1 or more")
    if gpu_memory_fraction is not None and not 0 < gpu_memory_fraction <= 1:
        raise UsageError(f"--gpu-memory-fraction {gpu_memory_fraction} must be in (0, 1]")
    if ready_timeout is not None and not ready_timeout > 0:
        raise UsageError(f"--ready-timeout {ready_timeout} must be a positive number of seconds")
    check_dtype(dtype)
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
    request = model_request(model, engine, format, size, quantization, hub, context)
    plan = launching.plan(request, options, host=target)
    if as_json:
        typer.echo(json.dumps(plan.to_json(), indent=2))
        return
    if explain:
        typer.echo(render_explain(plan))
        return
    if dry_run:
        typer.echo(render_plan(plan))
        return
    if host_profile:
        raise UsageError(
            "--host-profile plans for another machine: add --dry-run, --explain or --json"
        )
    launching.run(plan)


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


def render_explain(plan: Plan) -> str:
    from zoo.memory import gib

    lines = [render_plan(plan), "", "why:"]
    lines += [f"  {reason}" for reason in plan.reasons]
    lines += ["", "candidates (best first; x = dropped):"]
    for index, c in enumerate(plan.candidates):
        mark = "*" if index == 0 else (" " if c.kept else "x")
        memory = gib(c.memory_bytes) if c.memory_bytes else "-"
        lines.append(
            f"  {mark} {c.engine:12} {c.format:8} {_size(c.size):>6} {c.quantization:12} "
            f"{(c.device or '-'):6} {memory:>10}  {c.reason}"
        )
    return "\n".join(lines)


def _size(size: float) -> str:
    from zoo.catalog.model import format_size

    return format_size(size) + "B"


def _shell_join(argv: tuple[str, ...]) -> str:
    import shlex

    return " ".join(shlex.quote(a) for a in argv)


def register(app: typer.Typer) -> None:
    app.command(
        "launch",
        context_settings={"allow_extra_args": True},
        no_args_is_help=True,
    )(launch)
