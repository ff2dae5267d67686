"""Run the gateway: assemble it from the config, serve it with uvicorn, reload on SIGHUP.

The gateway records itself (pid, start time, address) in zoo's state folder so ``zoo serve
reload`` and ``zoo serve stop`` find it; the models it starts are ordinary zoo instances
(``zoo ps`` lists them), tied to it so none outlives it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from zoo.errors import UsageError, ZooError

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from zoo.catalog.catalog import Catalog
    from zoo.engine import Engine
    from zoo.host import Host
    from zoo.hubs.base import Hub
    from zoo.serve.cluster_backend import ClusterBackend
    from zoo.serve.config import GatewayConfig
    from zoo.serve.gateway import Gateway
    from zoo.serve.types import ModelEntry

DEFAULT_PORT = 11435  # beside Ollama's 11434, so both can run
RECORD = "gateway.json"


@dataclass(frozen=True)
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    config: Path | None = None
    allow_download: bool = False
    memory_budget: int | None = None  # bytes; None: the planned share of this machine
    # The Ray cluster the models run on (HOST:PORT or ray://HOST:PORT); None: this machine.
    cluster: str | None = None
    # Seconds a request waits for a cluster engine Ray is restarting elsewhere (None: 60).
    failover_wait: float | None = None


def record_path() -> Path:
    from zoo.runtime import state

    return state.db_path().parent / RECORD


def discover_downloaded(catalog: Catalog, hubs: Mapping[str, Hub]) -> dict[str, ModelEntry]:
    """Entries for the catalog families whose files some hub already has cached."""
    from zoo import launch
    from zoo.serve.types import ModelEntry

    return {
        name: ModelEntry(name=name, family=name)
        for name in launch.downloaded_families(catalog, hubs)
    }


def budgets(host_memory: Mapping[str, int], override: int | None) -> dict[str, int]:
    if override is None:
        return dict(host_memory)
    return {place: min(value, override) for place, value in host_memory.items()}


def build_gateway(
    options: ServeOptions, *, say: Callable[[str], None]
) -> tuple[Gateway, GatewayConfig]:
    """The gateway for ``options`` and its config (the defaults without a file)."""
    from zoo.host import this_machine
    from zoo.plugins import get_engines, get_hubs
    from zoo.resolve import memory_budget
    from zoo.serve.backend import LocalBackend
    from zoo.serve.config import default_config
    from zoo.serve.gateway import Gateway
    from zoo.serve.metrics import Metrics
    from zoo.serve.proxy import Forwarder
    from zoo.serve.scheduler import Scheduler
    from zoo.serve.types import GatewayBackend, ModelEntry

    catalog = _catalog()
    engines, hubs, host = get_engines(), get_hubs(), this_machine()
    config = _load_config(options.config, catalog, engines) if options.config else default_config()
    for warning in config.warnings:
        say(f"zoo serve: {warning}")
    allow = options.allow_download or config.allow_download
    budget = options.memory_budget or config.memory_budget
    backend: GatewayBackend
    if options.cluster is not None:
        cluster = cluster_backend(options, engines, hubs, host, allow_download=allow, say=say)
        backend, limits = cluster, cluster.budgets(budget)
        found = {
            name: ModelEntry(name=name, family=name)
            for name in sorted(cluster.discovered())
            if name in catalog.families
        }
    else:
        backend = LocalBackend(catalog, engines, hubs, host, say=say, allow_download=allow)
        memory = {
            "RAM": memory_budget(host, "cpu"),
            "GPU memory": memory_budget(host, "cuda"),
            "unified memory": memory_budget(host, "metal"),
        }
        limits = budgets(memory, budget)
        found = discover_downloaded(catalog, hubs) if not options.config else {}
    entries = dict(config.models) if options.config else found
    scheduler = Scheduler(
        backend,
        entries,
        budgets=limits,
        default_keep_alive=config.keep_alive,
        default_concurrency=config.concurrency,
    )
    gateway = Gateway(
        catalog=catalog,
        entries=entries,
        scheduler=scheduler,
        backend=backend,
        forwarder=Forwarder(),
        metrics=Metrics(),
        allow_download=allow,
        config_names=frozenset(config.models) if options.config else frozenset(),
        bind_host=options.host,
    )
    return gateway, config


def cluster_backend(
    options: ServeOptions,
    engines: Mapping[str, Engine],
    hubs: Mapping[str, Hub],
    host: Host,
    *,
    allow_download: bool,
    say: Callable[[str], None],
) -> ClusterBackend:
    """Join the cluster ``options`` names and list its nodes: the backend that places models
    there (the gateway itself still listens where ``options.host`` says)."""
    from zoo.cluster.connect import connect
    from zoo.cluster.nodes import list_nodes
    from zoo.serve.cluster_backend import FAILOVER_WAIT_S, ClusterBackend

    assert options.cluster is not None
    connect(options.cluster)
    nodes = list_nodes()
    for node in nodes:
        if node.alive and node.host is None:
            say(f"zoo serve: node {node.name} ({node.address}) takes no models: {node.problem}")
    wait = FAILOVER_WAIT_S if options.failover_wait is None else options.failover_wait
    return ClusterBackend(
        engines,
        hubs,
        host,
        nodes,
        address=options.cluster,
        say=say,
        allow_download=allow_download,
        failover_wait=wait,
    )


def cluster_words(backend: object) -> str:
    """The startup line's "; cluster HOST:PORT, N nodes" ("" for a local gateway)."""
    from zoo.serve.cluster_backend import ClusterBackend

    if not isinstance(backend, ClusterBackend):
        return ""
    usable = sum(1 for n in backend.nodes if n.alive and n.host is not None)
    alive = sum(1 for n in backend.nodes if n.alive)
    count = f"{usable} node{'s' if usable != 1 else ''}"
    if alive != usable:
        count += f" of {alive} alive"
    return f"; cluster {backend.address}, {count}"


def _catalog() -> Catalog:
    from zoo import launch

    return launch._catalog()


def read_config(path: Path) -> GatewayConfig:
    """The config at ``path``, checked against this catalog and the installed engines."""
    from zoo.plugins import get_engines

    return _load_config(path, _catalog(), get_engines())


def _load_config(path: Path, catalog: Catalog, engines: Mapping[str, Any]) -> GatewayConfig:
    from zoo.serve.config import load_config

    return load_config(path, catalog, engines=tuple(engines))


def app_for(
    gateway: Gateway, config: Any, options: ServeOptions, say: Callable[[str], None]
) -> Starlette:
    """The app with a lifespan that preloads, reloads on SIGHUP and stops every model."""
    from zoo.serve.app import build_app

    app = build_app(gateway, config.api_keys)

    @contextlib.asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        if options.config is not None:
            loop.add_signal_handler(signal.SIGHUP, lambda: _reload(gateway, options, say))
        await gateway.scheduler.start()
        try:
            yield
        finally:
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(signal.SIGHUP)
            await gateway.scheduler.close()
            # What the scheduler no longer held (a cluster engine restarted, not adopted).
            await asyncio.to_thread(gateway.backend.stop_all)
            await gateway.forwarder.aclose()

    app.router.lifespan_context = lifespan
    return app


def _reload(gateway: Gateway, options: ServeOptions, say: Callable[[str], None]) -> None:
    """SIGHUP: read the config again; a broken one keeps the old (and says why)."""
    assert options.config is not None
    try:
        config = _load_config(options.config, gateway.catalog, gateway.backend.engines)
    except ZooError as error:
        say(f"zoo serve: reload refused, keeping the old config: {error}")
        return
    # Models served on request (downloaded, not listed) stay; the config's are replaced.
    found_on_request = {
        name: e for name, e in gateway.entries.items() if name not in gateway.config_names
    }
    gateway.entries.clear()
    gateway.entries.update({**found_on_request, **config.models})
    gateway.config_names = frozenset(config.models)
    gateway.api_keys = config.api_keys  # a key taken out of the file stops working now
    gateway.scheduler.update_entries(dict(gateway.entries))
    say(f"zoo serve: reloaded {options.config} ({len(config.models)} models)")
    _warn_if_open(options.host, config, say)


def _warn_if_open(host: str, config: GatewayConfig, say: Callable[[str], None]) -> None:
    from zoo.runtime import process

    if not process.is_loopback(host) and not config.api_keys:
        say(
            f"warning: serving on {host} without an API key: anyone who can reach it "
            "can use every model"
        )


def serve(options: ServeOptions, *, say: Callable[[str], None]) -> None:
    """Serve in the foreground until SIGINT/SIGTERM; every model started is stopped."""
    import uvicorn

    from zoo.runtime import process

    process.check_bind_host(options.host)
    if process.port_in_use(options.host, options.port):
        raise UsageError(
            f"port {options.port} on {options.host} is already in use",
            hint="is a gateway running already (`zoo serve status`)? choose another with --port",
        )
    gateway, config = build_gateway(options, say=say)
    app = app_for(gateway, config, options, say)
    _warn_if_open(options.host, config, say)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=options.host,
            port=options.port,
            log_level="warning",
            lifespan="on",
            # Clients (editors, chat UIs) reuse their connection between requests.
            timeout_keep_alive=30,
        )
    )
    _write_record(options)
    # uvicorn re-raises SIGTERM once it has shut down, and the process dies of it before any
    # `finally` here runs: the record goes when the app's lifespan ends, just before that.
    app.router.lifespan_context = _forgetting_record(app.router.lifespan_context)
    url = f"http://{process.url_host(options.host)}:{options.port}/v1"
    say(f"zoo serve: {url} ({len(gateway.entries)} models{cluster_words(gateway.backend)})")
    try:
        server.run()
    finally:
        _forget_record()


def _forgetting_record(inner: Any) -> Any:
    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        try:
            async with inner(app):
                yield
        finally:
            _forget_record()

    return lifespan


def _forget_record() -> None:
    """Remove the gateway record if it is this process's (another gateway may have replaced it)."""
    path = record_path()
    try:
        mine = json.loads(path.read_text()).get("pid") == os.getpid()
    except (OSError, ValueError, AttributeError):
        return
    if mine:
        with contextlib.suppress(OSError):
            path.unlink()


def _write_record(options: ServeOptions) -> None:
    from zoo.runtime import process, state

    state.private_dirs()
    data = {
        "pid": os.getpid(),
        "pid_start": process.process_start_time(os.getpid()),
        "host": options.host,
        "port": options.port,
        "config": str(options.config) if options.config else None,
        "cluster": options.cluster,
        "started_at": time.time(),
    }
    path = record_path()
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)


def running_gateway() -> dict[str, Any] | None:
    """The recorded gateway if its process is still the one that wrote the record."""
    from zoo.runtime import process

    try:
        data = json.loads(record_path().read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    record: dict[str, Any] = data
    pid = record.get("pid")
    if not isinstance(pid, int) or pid <= 1:  # a damaged record names no process of ours
        return None
    if not process.pid_alive(pid, record.get("pid_start")):
        return None
    return record


def signal_gateway(sig: int) -> dict[str, Any]:
    data = running_gateway()
    if data is None:
        raise UsageError("no zoo serve is running", hint="start one with `zoo serve`")
    os.kill(int(data["pid"]), sig)
    return data


def serve_argv(options: ServeOptions) -> list[str]:
    """The ``zoo serve`` command line that serves ``options`` in the foreground.

    Every choice the parent made is spelled out: the child must not choose again (a config's
    ``listen.port: 0`` picks a free port, and a second pick is another port than the one the
    parent waits on).
    """
    argv = ["serve", "--host", options.host, "--port", str(options.port)]
    if options.config is not None:
        argv += ["--config", str(options.config)]
    if options.allow_download:
        argv.append("--allow-download")
    if options.memory_budget is not None:
        argv += ["--memory-budget", str(options.memory_budget)]
    if options.cluster is not None:
        argv += ["--cluster", options.cluster]
    if options.failover_wait is not None:
        argv += ["--failover-wait", str(options.failover_wait)]
    return argv


def detach(options: ServeOptions, *, timeout: float = 60.0) -> str:
    """Start ``zoo serve`` in the background; return its URL once up (stop it if it is not)."""
    import subprocess
    import urllib.request

    from zoo.runtime import process, state

    log = state.logs_dir() / "gateway.log"
    state.private_dirs()
    with open(log, "ab") as out:
        child = subprocess.Popen(
            [sys.executable, "-m", "zoo", *serve_argv(options)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://{process.url_host(options.host)}:{options.port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.poll() is not None:
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-5:])
            raise UsageError(f"zoo serve exited with status {child.returncode}:\n{tail}")
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(url + "/health", timeout=1) as response,  # noqa: S310 - http URL we built
        ):
            if response.status == 200:
                return url
        time.sleep(0.1)
    # Ours, and useless to the user who was told it failed: not left running unseen.
    child.terminate()
    with contextlib.suppress(subprocess.TimeoutExpired):
        child.wait(timeout=15)
    raise UsageError(f"zoo serve did not answer on {url} within {timeout:.0f} s (log: {log})")


__all__ = ["DEFAULT_PORT", "ServeOptions", "detach", "serve", "serve_argv", "signal_gateway"]
