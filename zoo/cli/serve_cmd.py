"""``zoo serve``: one endpoint for every model; ``zoo serve reload|stop|status|schema``.

The gateway itself lives in ``zoo.serve`` (starlette, uvicorn, httpx), imported only when a
serve command runs so the rest of the CLI starts fast.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Annotated

import typer

COMMANDS: tuple[str, ...] = ("serve",)

serve_app = typer.Typer(
    help="One OpenAI- and Ollama-compatible endpoint for every model, started on demand.",
    invoke_without_command=True,
    no_args_is_help=False,
)


@serve_app.callback()
def serve(
    ctx: typer.Context,
    host: Annotated[
        str | None,
        typer.Option("--host", help="Address to listen on (default: listen.host, or 127.0.0.1)."),
    ] = None,
    port: Annotated[
        int | None, typer.Option("--port", help="Port (default: listen.port, or 11435).")
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="Gateway config (YAML; `zoo serve schema`).")
    ] = None,
    allow_download: Annotated[
        bool,
        typer.Option("--allow-download", help="Download models on request (any catalog model)."),
    ] = False,
    memory_budget: Annotated[
        str | None,
        typer.Option("--memory-budget", help="Memory the models may use, e.g. 12GiB."),
    ] = None,
    detach: Annotated[
        bool, typer.Option("--detach", "-d", help="Run in the background; print the URL.")
    ] = False,
    cluster: Annotated[
        str | None,
        typer.Option(
            "--cluster",
            help="Run the models on this Ray cluster (HOST:PORT or ray://HOST:PORT; "
            "default: $ZOO_CLUSTER, or the settings' cluster).",
        ),
    ] = None,
    failover_wait: Annotated[
        float | None,
        typer.Option(
            "--failover-wait",
            help="Seconds a request waits for a cluster engine restarting on another node "
            "after its node died (default 60).",
        ),
    ] = None,
) -> None:
    """Serve every model behind one endpoint (Ctrl-C stops it and every model it started)."""
    if ctx.invoked_subcommand is not None:
        return
    from zoo.errors import UsageError
    from zoo.serve.server import DEFAULT_PORT, ServeOptions
    from zoo.serve.server import detach as run_detached
    from zoo.serve.server import serve as run

    if port is not None and not 0 < port < 65536:
        raise UsageError(f"--port {port} is not a TCP port")
    budget = None
    if memory_budget is not None:
        from zoo.serve.config import parse_size

        try:
            budget = parse_size(memory_budget)
        except ValueError as error:
            raise UsageError(f"--memory-budget {memory_budget!r}: {error}") from error
    if config is not None and not config.is_file():
        raise UsageError(f"--config {config}: no such file")
    if failover_wait is not None and not failover_wait >= 0:
        raise UsageError(f"--failover-wait {failover_wait}: give a number of seconds, 0 or more")
    from zoo.cluster.address import cluster_address

    address = cluster_address(cluster)
    # The config's `listen` where no option says otherwise (read here, before --detach needs
    # the address; a broken config is reported now, in one message, not by a child's exit).
    if config is not None and (host is None or port is None):
        from zoo.runtime import process
        from zoo.serve.server import read_config

        listen = read_config(config)
        host = host or listen.host
        port = port or listen.port or process.free_port()  # listen.port 0: any free port
    options = ServeOptions(
        host=host or "127.0.0.1",
        port=port or DEFAULT_PORT,
        config=config.resolve() if config else None,
        allow_download=allow_download,
        memory_budget=budget,
        cluster=address,
        failover_wait=failover_wait,
    )
    if detach:
        typer.echo(run_detached(options) + "/v1")
        return
    run(options, say=lambda line: typer.echo(line, err=True))


@serve_app.command("reload")
def reload() -> None:
    """Read the running gateway's config again (the same as sending it SIGHUP)."""
    from zoo.serve.server import signal_gateway

    data = signal_gateway(signal.SIGHUP)
    typer.echo(
        f"Asked the gateway (pid {data['pid']}) to reload {data.get('config') or 'its config'}."
    )


@serve_app.command("stop")
def stop() -> None:
    """Stop the running gateway and every model it started."""
    from zoo.serve.server import signal_gateway

    data = signal_gateway(signal.SIGTERM)
    typer.echo(f"Stopping the gateway (pid {data['pid']}).")


@serve_app.command("status")
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Whether a gateway runs here, where, and what it serves."""
    from zoo.errors import UsageError
    from zoo.serve.server import running_gateway

    data = running_gateway()
    if data is None:
        raise UsageError("no zoo serve is running", hint="start one with `zoo serve`")
    if as_json:
        typer.echo(json.dumps({"version": 1, **data}, indent=2))
        return
    from zoo.runtime.process import url_host

    url = f"http://{url_host(str(data['host']))}:{data['port']}/v1"
    typer.echo(f"zoo serve (pid {data['pid']}) on {url}")


@serve_app.command("schema")
def schema() -> None:
    """Print the gateway config's JSON Schema (for editors)."""
    from zoo.serve.config import config_schema

    typer.echo(json.dumps(config_schema(), indent=2))


def register(app: typer.Typer) -> None:
    app.add_typer(serve_app, name="serve")
