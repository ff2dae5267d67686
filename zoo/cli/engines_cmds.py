"""``zoo engines`` (which engines can run here, and what they can run of a model) and
``zoo plugins`` (what is installed, from which distribution, implementing which hooks).

``engines_app`` is a Typer group so other command modules can add subcommands to it
(``zoo engines install NAME``); with no subcommand it lists the engines.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any

import typer

from zoo.cli.options import HostProfileOption, OptInOption, complete_model, planning_host

if TYPE_CHECKING:
    from zoo.engine import Engine
    from zoo.host import Host

COMMANDS: tuple[str, ...] = ("engines", "plugins")

engines_app = typer.Typer(
    name="engines",
    help="List engines, whether they can run here and why not; --model shows what of a model "
    "each engine can run here.",
    invoke_without_command=True,
    no_args_is_help=False,
)


@engines_app.callback(invoke_without_command=True)
def engines(
    ctx: typer.Context,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            help="Show every (engine, format, size, quantization) of this model that can run "
            "here (a reference such as qwen3:8b narrows it).",
            autocompletion=complete_model,
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
    host_profile: HostProfileOption = None,
    opt_in: OptInOption = None,
) -> None:
    if ctx.invoked_subcommand is not None:
        return
    from zoo.plugins import get_engines

    host = planning_host(host_profile, opt_in)
    found = get_engines()
    if model is not None:
        _model_table(model, found, host, as_json)
        return
    from zoo.resolve import engine_environment, engine_here
    from zoo.runtime.envs import env_status

    rows: list[dict[str, Any]] = []
    for name, engine in sorted(found.items()):
        verdict = engine_here(engine, host)
        caps = engine.capabilities_for(host)
        rows.append(
            {
                "name": name,
                "display_name": engine.display_name or name,
                "runs_here": verdict.ok,
                "reason": verdict.reason,
                "variant": caps.variant,
                "formats": {f: list(q) for f, q in caps.formats.items()},
                "kinds": list(caps.kinds),
                "requirements": list(engine.requirements(host)),
                "env_ready": bool(
                    verdict.ok and env_status(engine_environment(engine, host)).ready
                ),
            }
        )
    if as_json:
        typer.echo(json.dumps({"version": 1, "host": host.name, "engines": rows}, indent=2))
        return
    if not rows:
        typer.echo("No engines installed (engine plugins register through the `zoo` hooks).")
        return
    # Columns: name, runs here, formats, the model kinds it serves (llm, embedding, rerank),
    # why (not). Widths follow the rows, so the reason starts as early as it can.
    formats = [", ".join(row["formats"]) for row in rows]
    served = [", ".join(row["kinds"]) for row in rows]
    wide, kinds_wide = max(map(len, formats)), max(map(len, served))
    for row, fmts, kinds in zip(rows, formats, served, strict=True):
        mark = "yes" if row["runs_here"] else "no "
        env = " [environment ready]" if row["env_ready"] else ""
        typer.echo(
            f"{row['name']:14} {mark}  {fmts:{wide}}  {kinds:{kinds_wide}}  {row['reason']}{env}"
        )


def _model_table(model: str, found: Mapping[str, Engine], host: Host, as_json: bool) -> None:
    from zoo.cli.options import model_request
    from zoo.memory import gib
    from zoo.registry import catalog_with_plugins
    from zoo.resolve import candidates
    from zoo.speed import tokens_per_second

    catalog = catalog_with_plugins()
    request = model_request(model, None, None, None, None, None, None)
    judged = candidates(catalog, request, found, host)
    runnable = [c for c in judged if c.kept or c.memory_bytes is not None]
    # Engines that do not serve the family's kind (a language-model engine for an embedding
    # model) have no row: say why below the table rather than leave them out silently.
    kind = catalog.get(request.model).kind
    other_kind = {
        name for name, engine in found.items() if kind not in engine.capabilities_for(host).kinds
    }
    if as_json:
        typer.echo(
            json.dumps(
                {"version": 1, "model": model, "candidates": [c.to_json() for c in judged]},
                indent=2,
            )
        )
        return
    if not runnable:
        typer.echo(f"Nothing of {model} runs here:")
        for reason in dict.fromkeys(f"{c.engine}: {c.reason}" for c in judged):
            typer.echo(f"  {reason}")
        return
    typer.echo(
        f"{'engine':12} {'format':8} {'size':>6} {'quantization':14} {'device':6} "
        f"{'memory':>10} {'speed':>12}  fits"
    )
    for c in runnable:
        memory = gib(c.memory_bytes) if c.memory_bytes else "-"
        speed = tokens_per_second(c.decode_tps) if c.decode_tps is not None else "-"
        fits = "yes" if c.kept else "no: " + c.reason
        size = f"{c.size:g}B"
        typer.echo(
            f"{c.engine:12} {c.format:8} {size:>6} {c.quantization:14} "
            f"{(c.device or '-'):6} {memory:>10} {speed:>12}  {fits}"
        )
    shown = {c.engine for c in runnable}
    for reason in dict.fromkeys(
        f"{c.engine}: {c.reason}" for c in judged if c.engine in other_kind - shown
    ):
        typer.echo(f"not shown: {reason}")


def plugins(
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """List plugins: entry point, distribution and version, hooks implemented, problems."""
    from zoo.plugins import plugin_report

    report = plugin_report()
    if as_json:
        typer.echo(json.dumps({"version": 1, "plugins": report}, indent=2))
        return
    for item in report:
        hooks: list[str] = item["hooks"]  # type: ignore[assignment]
        problems: list[str] = item["problems"]  # type: ignore[assignment]
        earlier: list[dict[str, str]] = item["earlier_problems"]  # type: ignore[assignment]
        where = f"{item['distribution']} {item['version']}" if item["distribution"] else "-"
        if item["disabled"]:
            status = "disabled (ZOO_DISABLE_PLUGINS)"
        elif not item["loaded"]:
            status = "FAILED: not loaded"
        else:
            status = ", ".join(hooks) or "no hooks"
        typer.echo(f"{item['name']:14} {where:32} {status}")
        for problem in problems:
            typer.echo(f"{'':14} ! {problem}")
        for seen in earlier:
            typer.echo(f"{'':14} ! {seen['message']} (seen {seen['when']})")


def register(app: typer.Typer) -> None:
    app.add_typer(engines_app, name="engines")
    app.command("plugins")(plugins)
