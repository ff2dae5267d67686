"""Running instances: ``zoo ps``, ``zoo stop``, ``zoo logs``, and ``zoo engines install``.

Everything heavy (SQLite, process checks, pip, and ``zoo.cluster`` with ray for
``--cluster``) is imported inside the commands. ``ps`` lists a configured cluster's instances
with this machine's; ``stop`` and ``logs`` look on the cluster with ``--cluster``, and for a
name this machine does not have when $ZOO_CLUSTER or the settings file names a cluster.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

from zoo.cli.cluster_cmd import ClusterCommand, ClusterOption
from zoo.cli.options import OptInOption, planning_host

if TYPE_CHECKING:
    from zoo.cluster.instances import ClusterInstance

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
    cluster: ClusterOption = None,
) -> None:
    """List launched instances; the status is checked live (a killed server shows "dead").

    Statuses: running; starting (not ready yet); orphaned (its zoo died while it was
    starting: `zoo stop` ends it); failed (exited before it was ready); dead (exited later).

    With a Ray cluster (--cluster, or $ZOO_CLUSTER or the settings file's `cluster`), the
    cluster's instances are listed too, after this machine's, with the node each runs on
    (NODE "local": this machine). A cluster named only by $ZOO_CLUSTER or the settings file
    that cannot be reached is a note on stderr and the local list still prints; one named by
    --cluster is an error. Cluster states: starting, running, failed, stopped, unreachable
    (its actor did not answer: being restarted on another node after its node died);
    "(restarted)": it runs again after a restart.
    """
    from zoo.runtime import state

    instances = state.list_instances()
    address, remote, problem = _cluster_instances(cluster)
    if as_json:
        document: dict[str, object] = {
            "version": PS_JSON_VERSION,
            "instances": [i.to_json() for i in instances],
        }
        if address is not None or problem is not None:  # a bad cluster setting is said too
            document["cluster"] = {
                "address": address,
                "instances": [c.to_json() for c in remote],
                "error": problem,
            }
        typer.echo(json.dumps(document, indent=2))
        return
    if problem is not None:
        typer.echo(f"zoo: note: {problem}; listing this machine's instances only", err=True)
    if not instances and not remote:
        where = " on this machine or the cluster" if address is not None and not problem else ""
        typer.echo(f"No instances{where}. Start one with `zoo launch MODEL --detach`.")
        return
    with_nodes = address is not None
    node_column: tuple[str, ...] = ("NODE",) if with_nodes else ()
    header = ("ID", "MODEL", "ENGINE", "QUANT", *node_column, "ENDPOINT", "PID", "UPTIME", "STATUS")
    local = ("local",) if with_nodes else ()
    rows: list[tuple[str, ...]] = [header]
    for i in instances:
        rows.append(
            (
                i.id,
                i.model,
                i.engine,
                i.quantization,
                *local,
                i.endpoint,
                str(i.pid),
                _uptime(i.uptime),
                i.status,
            )
        )
    if remote:
        import time

        from zoo.cli.cluster_cmd import node_names, node_of

        now, names = time.time(), node_names()
        for c in remote:
            rows.append(
                (
                    c.name,
                    c.model,
                    c.engine,
                    c.quantization,
                    node_of(c, names),
                    c.endpoint or "-",
                    "-",
                    _uptime(max(now - c.started_at, 0.0)) if c.started_at else "-",
                    c.state + (" (restarted)" if c.restarted else ""),
                )
            )
    widths = [max(len(row[c]) for row in rows) for c in range(len(header))]
    for row in rows:
        typer.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    # One line per status that needs explaining, so nobody has to look "orphaned" up.
    for status in ("orphaned", "failed", "dead"):
        if any(i.status == status for i in instances):
            typer.echo(f"{status}: {state.STATUSES[status]}; `zoo stop ID` cleans it up.")
    for status, meaning in CLUSTER_STATES.items():
        if any(c.state == status for c in remote):
            typer.echo(f"{status} (cluster): {meaning}; `zoo stop ID --cluster` ends it.")
    for c in remote:
        if c.error and c.state != "unreachable":  # unreachable: explained just above
            typer.echo(f"{c.name}: {c.error}")


# The cluster states `zoo ps` explains under its table.
CLUSTER_STATES = {
    "failed": "it could not start, or cannot run on the node it was restarted on",
    "unreachable": "its actor did not answer: waiting for a node (to be placed, or restarted "
    "after its node died), or its node is gone",
}


def _cluster_instances(
    flag: str | None,
) -> tuple[str | None, list[ClusterInstance], str | None]:
    """The cluster's address, its instances, and why they could not be listed: an error when
    ``--cluster`` named the cluster, a note when $ZOO_CLUSTER or the settings file did."""
    from zoo.cli import cluster_cmd
    from zoo.errors import ZooError

    try:
        address = (
            cluster_cmd.require_address(flag, "--cluster")
            if flag is not None
            else cluster_cmd.address_or_none(None)
        )
    except ZooError as error:
        if flag is not None:
            raise
        return None, [], f"no cluster listed: {error}"
    if address is None:
        return None, [], None
    try:
        from zoo.cluster import instances

        cluster_cmd.connect(address)
        return address, instances.list_instances(), None
    except ZooError as error:
        if flag is not None:
            raise
        return address, [], f"the cluster at {address} was not listed: {error}"


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
    cluster: ClusterOption = None,
) -> None:
    """Stop instances: SIGTERM to the server's process group, SIGKILL after a grace period.

    A name that fits several instances lists them and stops none; every name is checked
    before anything is stopped, so a typo stops nothing.

    With --cluster, the names are the cluster's instances (`zoo ps --cluster`) and --all
    stops every instance on the cluster. Without it, a name this machine does not have is
    looked up on the cluster $ZOO_CLUSTER or the settings file names; --all stops only this
    machine's instances.
    """
    from zoo.errors import NotFoundError, UsageError
    from zoo.runtime import control, state

    names = list(refs or [])
    if all_ and names:
        raise UsageError("name instances or use --all, not both")
    if not all_ and not names:
        raise UsageError("name an instance (ID or model name) or use --all", hint="see `zoo ps`")
    if cluster is not None:
        joined = _connected_cluster(cluster)
        _stop_on_cluster(joined, _cluster_targets(joined, names, every=all_))
        return
    remote: list[ClusterInstance] = []
    address: str | None = None
    if all_:
        targets = state.list_instances()
    else:
        targets = []
        for ref in names:
            try:
                found = state.find_one(ref)
            except NotFoundError as missing:
                address = _configured_cluster()
                if address is None:
                    raise
                try:
                    on_cluster = _cluster_targets(address, [ref], every=False)
                except NotFoundError:
                    raise NotFoundError(
                        f"{missing.args[0]}; none on the cluster at {address} either",
                        hint="see `zoo ps`",
                    ) from None
                remote += [c for c in on_cluster if all(r.name != c.name for r in remote)]
                continue
            if all(t.id != found.id for t in targets):
                targets.append(found)
    if not targets and not remote:
        typer.echo("No instances to stop.")
        return
    for instance in targets:
        report = control.stop_instance(instance)
        was = _STOPPED.get(instance.status, "")
        verb = "Stopped" if report.stopped or not report.left_alone else "Forgot"
        typer.echo(f"{verb} {instance.id} ({instance.model}){was}.")
        for line in report.left_alone:
            typer.echo(f"  {line}.")
    if remote and address is not None:
        _stop_on_cluster(address, remote)


def _connected_cluster(flag: str) -> str:
    """The cluster ``--cluster`` names (bare: $ZOO_CLUSTER or the settings file's), joined."""
    from zoo.cli import cluster_cmd

    address = cluster_cmd.require_address(flag, "--cluster")
    cluster_cmd.connect(address)
    return address


def _configured_cluster() -> str | None:
    """The cluster $ZOO_CLUSTER or the settings file names, joined; None when there is none
    or it cannot be reached (a name not found here is then reported as not found)."""
    from zoo.cli import cluster_cmd
    from zoo.errors import ZooError

    try:
        address = cluster_cmd.address_or_none(None)
        if address is not None:
            cluster_cmd.connect(address)
    except ZooError as error:
        typer.echo(f"zoo: note: the cluster was not searched: {error}", err=True)
        return None
    return address


def _cluster_targets(address: str, refs: list[str], *, every: bool) -> list[ClusterInstance]:
    """The cluster instances ``refs`` name (each exactly one), or all; checked before any is
    stopped."""
    from zoo.cluster import instances
    from zoo.errors import NotFoundError, UsageError

    if every:
        return instances.list_instances()
    targets: list[ClusterInstance] = []
    for ref in refs:
        if not ref.strip():
            raise UsageError("an empty instance name matches nothing; name an ID or a model")
        found = instances.find(ref)
        if not found:
            known = instances.list_instances()
            listed = ", ".join(f"{c.name} ({c.model})" for c in known) or "none are running"
            raise NotFoundError(
                f"no instance {ref!r} on the cluster at {address}; instances: {listed}"
            )
        if len(found) > 1:
            raise UsageError(
                f"{ref!r} names {len(found)} instances on the cluster: "
                + ", ".join(f"{c.name} ({c.model} at {c.node_address})" for c in found),
                hint="name one by its ID",
            )
        if all(t.name != found[0].name for t in targets):
            targets.append(found[0])
    return targets


def _stop_on_cluster(address: str, targets: list[ClusterInstance]) -> None:
    from zoo.cluster import instances

    if not targets:
        typer.echo(f"No instances to stop on the cluster at {address}.")
        return
    from zoo.cli.cluster_cmd import node_names, node_of

    names = node_names()
    for c in targets:
        if instances.stop(c.name):
            typer.echo(f"Stopped {c.name} ({c.model}) on node {node_of(c, names)}.")
        else:
            typer.echo(f"{c.name} ({c.model}) was already gone from the cluster.")


def logs(
    ref: Annotated[str, typer.Argument(help="Instance id (or prefix) or model name.")],
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Print new lines too.")] = False,
    lines: Annotated[
        int, typer.Option("--lines", "-n", help="Lines to show first (0: none).")
    ] = 50,
    cluster: ClusterOption = None,
) -> None:
    """Print an instance's server log (with -f, until the instance stops or Ctrl-C).

    With --cluster, an instance on the cluster (its log is read from its node; after a
    restart on another node, the new engine's log). Without it, a name this machine does
    not have is looked up on the cluster $ZOO_CLUSTER or the settings file names.
    """
    import sys
    from pathlib import Path

    from zoo.errors import NotFoundError, UsageError
    from zoo.runtime import process, state

    if lines < 0:
        raise UsageError(f"--lines {lines}: give 0 or more lines")
    if cluster is not None:
        joined = _connected_cluster(cluster)
        _cluster_logs(_cluster_targets(joined, [ref], every=False)[0], follow, lines)
        return
    try:
        instance = state.find_one(ref)
    except NotFoundError as missing:
        address = _configured_cluster()
        if address is None:
            raise
        try:
            found = _cluster_targets(address, [ref], every=False)[0]
        except NotFoundError:
            raise NotFoundError(
                f"{missing.args[0]}; none on the cluster at {address} either",
                hint="see `zoo ps`",
            ) from None
        _cluster_logs(found, follow, lines)
        return
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


def _cluster_logs(instance: ClusterInstance, follow: bool, lines: int) -> None:
    """The last ``lines`` of a cluster instance's log; with ``follow``, then what it adds
    until it is gone or Ctrl-C."""
    from zoo.cli import cluster_cmd
    from zoo.cluster import instances

    if not follow:
        if lines:
            text = instances.log_tail(instance.name, lines=lines)
            if text:
                typer.echo(text.rstrip("\n"))
        return
    # The whole log is read once, so following starts exactly where the lines shown end.
    offset, tail = cluster_cmd.read_to_end(instance.name)
    shown = tail.decode(errors="replace").splitlines()[-lines:] if lines else []
    for line in shown:
        typer.echo(line)
    try:
        cluster_cmd.follow_log(instance, offset)
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
    app.command("ps", cls=ClusterCommand)(ps)
    app.command("stop", cls=ClusterCommand)(stop)
    app.command("logs", cls=ClusterCommand)(logs)
    # `zoo engines install` joins the engines group that zoo.cli.engines_cmds owns.
    from zoo.cli import engines_cmds

    group = getattr(engines_cmds, "engines_app", None)
    if isinstance(group, typer.Typer):
        group.command("install")(engines_install)
