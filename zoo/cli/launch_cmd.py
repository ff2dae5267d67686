"""``zoo launch``: resolve a model to a plan, print it (--dry-run/--explain/--json) or run it.

Resolution is cheap and imports no engine library; running is handed to
``zoo.runtime.launcher.launch``, imported only when a launch really happens.
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
) -> None:
    """Run a model behind an OpenAI-compatible endpoint, choosing engine and files for
    this machine. Arguments after `--` go to the engine's server unchanged."""
    from zoo.catalog.catalog import load_catalog
    from zoo.errors import UsageError
    from zoo.plan import LaunchOptions
    from zoo.plugins import get_engines
    from zoo.resolve import resolve

    if port is not None and not 0 < port < 65536:
        raise UsageError(f"--port {port} is not a TCP port")
    if tensor_parallel_size is not None and tensor_parallel_size < 1:
        raise UsageError(f"--tensor-parallel-size {tensor_parallel_size} must be 1 or more")
    if gpu_memory_fraction is not None and not 0 < gpu_memory_fraction <= 1:
        raise UsageError(f"--gpu-memory-fraction {gpu_memory_fraction} must be in (0, 1]")
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
    )
    request = model_request(model, engine, format, size, quantization, hub, context)
    plan = resolve(load_catalog(), request, get_engines(), target, options=options)
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
    from zoo.runtime.launcher import launch as run_plan

    run_plan(plan, options)


def render_plan(plan: Plan) -> str:
    from zoo.memory import gib

    place = {"cuda": "GPU memory", "metal": "unified memory"}.get(plan.device, "RAM")
    variant = f", {plan.variant} build" if plan.variant else ""
    revision = f" @ {plan.revision}" if plan.revision else ""
    kind = "patterns" if plan.files_are_patterns else "files"
    extra = plan.extra
    memory = (
        f"{gib(plan.memory_bytes)} (weights {gib(int(extra.get('weights_bytes', 0)))}, "
        f"KV cache {gib(plan.kv_cache_bytes)} for {plan.context_length} tokens, engine "
        f"{gib(int(extra.get('overhead_bytes', 0)))}) of "
        f"{gib(int(extra.get('budget_bytes', 0)))} {place} usable"
    )
    env = (
        "ready" if plan.env_ready else f"will be created: pip install {' '.join(plan.requirements)}"
    )
    rows = [
        ("model", plan.family.name),
        ("host", plan.host_name),
        ("engine", f"{plan.engine} on {plan.device}{variant}"),
        ("spec", f"{plan.spec.format}, {plan.spec.size_label}B"),
        ("quantization", plan.quantization),
        ("hub", plan.hub),
        ("repo", plan.repo + revision),
        (kind, ", ".join(plan.files)),
        ("memory", memory),
        ("environment", env),
        ("command", _shell_join(plan.command) or "(the engine builds it at launch)"),
    ]
    return "\n".join(f"{label + ':':14}{value}" for label, value in rows)


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
