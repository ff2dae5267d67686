"""Running instances: ``zoo ps``, ``zoo stop``, ``zoo logs``, and ``zoo engines install``.

Everything heavy (SQLite, process checks, pip) is imported inside the commands.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

# Top-level command names this module adds (lets the CLI skip loading plugins for them).
COMMANDS: tuple[str, ...] = ("ps", "stop", "logs")
# Adds `zoo engines install` to the engines group.
EXTENDS: tuple[str, ...] = ("engines",)

PS_JSON_VERSION = 1


def _uptime(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def ps(
    as_json: Annotated[bool, typer.Option("--json", help="Print the instances as JSON.")] = False,
) -> None:
    """List launched instances; the status is checked live (a killed server shows "dead")."""
    from zoo.runtime import state

    instances = state.list_instances()
    if as_json:
        typer.echo(
            json.dumps(
                {"version": PS_JSON_VERSION, "instances": [i.to_json() for i in instances]},
                indent=2,
            )
        )
        return
    if not instances:
        typer.echo("No instances. Start one with `zoo launch MODEL --detach`.")
        return
    header = ("ID", "MODEL", "ENGINE", "QUANT", "ENDPOINT", "PID", "UPTIME", "STATUS")
    rows = [header] + [
        (
            i.id,
            i.model,
            i.engine,
            i.quantization,
            i.endpoint,
            str(i.pid),
            _uptime(i.uptime),
            i.status,
        )
        for i in instances
    ]
    widths = [max(len(row[c]) for row in rows) for c in range(len(header))]
    for row in rows:
        typer.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def stop(
    ref: Annotated[str | None, typer.Argument(help="Instance id (or prefix) or model.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Stop every instance.")] = False,
) -> None:
    """Stop instances: SIGTERM to the server's process group, SIGKILL after a grace period."""
    from zoo.errors import UsageError
    from zoo.runtime import launcher, state

    if all_ == (ref is not None):
        raise UsageError("name one instance (ID or model name) or use --all")
    targets = state.list_instances() if all_ else state.find(ref or "")
    if not targets:
        typer.echo("No instances to stop.")
        return
    for instance in targets:
        launcher.stop(instance)
        was = " (it had already exited)" if instance.status == "dead" else ""
        typer.echo(f"Stopped {instance.id} ({instance.model}){was}.")


def logs(
    ref: Annotated[str, typer.Argument(help="Instance id (or prefix) or model name.")],
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Print new lines too.")] = False,
    lines: Annotated[int, typer.Option("--lines", "-n", help="Lines to show first.")] = 50,
) -> None:
    """Print an instance's server log (with -f, until the instance stops or Ctrl-C)."""
    import sys
    from pathlib import Path

    from zoo.errors import UsageError
    from zoo.runtime import process, state

    found = state.find(ref)
    if len(found) > 1:
        raise UsageError(f"{ref!r} names several instances: " + ", ".join(i.id for i in found))
    instance = found[0]
    path = Path(instance.log_path)
    for line in process.tail(path, lines):
        typer.echo(line)
    if not follow:
        return
    out = sys.stdout.buffer
    try:
        for chunk in process.follow(
            path, lambda: process.pid_alive(instance.pid), from_start=False
        ):
            out.write(chunk)
            out.flush()
    except KeyboardInterrupt:
        return


def engines_install(
    name: Annotated[str, typer.Argument(help="Engine name (see `zoo engines`).")],
    force: Annotated[bool, typer.Option("--force", help="Rebuild even if it is ready.")] = False,
) -> None:
    """Build an engine's environment now (with pip), so a later launch starts at once."""
    from zoo.errors import NotFoundError
    from zoo.plugins import get_engines
    from zoo.runtime.envs import ensure_env, env_status
    from zoo.runtime.launcher import this_host

    engines = get_engines()
    if name not in engines:
        raise NotFoundError(f"no engine {name!r}; engines: {', '.join(sorted(engines))}")
    engine = engines[name]
    host = this_host()
    before = env_status(engine, host)
    if before.ready and not force:
        typer.echo(f"{name}: ready ({before.reason}).")
        return
    status = ensure_env(engine, host, lambda line: typer.echo(line, err=True), force=force)
    typer.echo(f"{name}: ready ({status.reason}).")


def register(app: typer.Typer) -> None:
    app.command("ps")(ps)
    app.command("stop")(stop)
    app.command("logs")(logs)
    # `zoo engines install` joins the engines group that zoo.cli.engines_cmds owns.
    from zoo.cli import engines_cmds

    group = getattr(engines_cmds, "engines_app", None)
    if isinstance(group, typer.Typer):
        group.command("install")(engines_install)
