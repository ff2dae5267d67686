"""Running instances: ``zoo ps``, ``zoo stop``, ``zoo logs``, and ``zoo engines install``.

Everything heavy (SQLite, process checks, pip) is imported inside the commands.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from zoo.cli.options import OptInOption, planning_host

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
    """List launched instances; the status is checked live (a killed server shows "dead").

    Statuses: running; starting (not ready yet); orphaned (its zoo died while it was
    starting: `zoo stop` ends it); failed (exited before it was ready); dead (exited later).
    """
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
    # One line per status that needs explaining, so nobody has to look "orphaned" up.
    for status in ("orphaned", "failed", "dead"):
        if any(i.status == status for i in instances):
            typer.echo(f"{status}: {state.STATUSES[status]}; `zoo stop ID` cleans it up.")


_STOPPED = {
    "running": "",
    "starting": " while it was starting",
    "orphaned": " (its zoo had gone while it was starting)",
    "failed": " (it had already exited before it was ready)",
    "dead": " (it had already exited)",
}


def stop(
    refs: Annotated[
        list[str] | None,
        typer.Argument(
            help="Instance ids (or unique prefixes) or model names.", show_default=False
        ),
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="Stop every instance.")] = False,
) -> None:
    """Stop instances: SIGTERM to the server's process group, SIGKILL after a grace period.

    A name that fits several instances lists them and stops none; every name is checked
    before anything is stopped, so a typo stops nothing.
    """
    from zoo.errors import UsageError
    from zoo.runtime import control, state

    names = list(refs or [])
    if all_ and names:
        raise UsageError("name instances or use --all, not both")
    if not all_ and not names:
        raise UsageError("name an instance (ID or model name) or use --all", hint="see `zoo ps`")
    if all_:
        targets = state.list_instances()
    else:
        targets = []
        for ref in names:
            found = state.find_one(ref)
            if all(t.id != found.id for t in targets):
                targets.append(found)
    if not targets:
        typer.echo("No instances to stop.")
        return
    for instance in targets:
        report = control.stop_instance(instance)
        was = _STOPPED.get(instance.status, "")
        verb = "Stopped" if report.stopped or not report.left_alone else "Forgot"
        typer.echo(f"{verb} {instance.id} ({instance.model}){was}.")
        for line in report.left_alone:
            typer.echo(f"  {line}.")


def logs(
    ref: Annotated[str, typer.Argument(help="Instance id (or prefix) or model name.")],
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Print new lines too.")] = False,
    lines: Annotated[
        int, typer.Option("--lines", "-n", help="Lines to show first (0: none).")
    ] = 50,
) -> None:
    """Print an instance's server log (with -f, until the instance stops or Ctrl-C)."""
    import sys
    from pathlib import Path

    from zoo.errors import NotFoundError, UsageError
    from zoo.runtime import process, state

    if lines < 0:
        raise UsageError(f"--lines {lines}: give 0 or more lines")
    instance = state.find_one(ref)
    path = Path(instance.log_path)
    if not path.is_file():
        raise NotFoundError(
            f"the log of {instance.id} ({instance.model}) is gone: {path} does not exist"
        )
    # Following starts exactly where the lines shown end: a line written in between is
    # printed once, never lost.
    shown_until = path.stat().st_size
    for line in process.tail(path, lines, until=shown_until):
        typer.echo(line)
    if not follow:
        return
    out = sys.stdout.buffer
    try:
        for chunk in process.follow(
            path,
            lambda: process.pid_alive(instance.pid, instance.pid_start),
            offset=shown_until,
            watch_path=True,
        ):
            out.write(chunk)
            out.flush()
    except KeyboardInterrupt:
        return


def engines_install(
    name: Annotated[str, typer.Argument(help="Engine name (see `zoo engines`).")],
    force: Annotated[bool, typer.Option("--force", help="Rebuild even if it is ready.")] = False,
    opt_in: OptInOption = None,
) -> None:
    """Build an engine's environment now (with pip), so a later launch starts at once."""
    from zoo.errors import NotFoundError
    from zoo.plugins import get_engines
    from zoo.resolve import engine_environment
    from zoo.runtime.envs import ensure_env, env_status

    engines = get_engines()
    if name not in engines:
        raise NotFoundError(f"no engine {name!r}; engines: {', '.join(sorted(engines))}")
    environment = engine_environment(engines[name], planning_host(None, opt_in))
    before = env_status(environment)
    if before.ready and not force:
        typer.echo(f"{name}: ready ({before.reason}).")
        return
    import sys

    # On a terminal, pip's steps on one redrawn status line, as `zoo launch` shows them.
    status = ensure_env(
        environment,
        lambda line: typer.echo(line, err=True),
        force=force,
        live=sys.stderr.isatty(),
    )
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
