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
    from zoo.hubs.base import Hub
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


def record_path() -> Path:
    from zoo.runtime import state

    return state.db_path().parent / RECORD


def discover_downloaded(catalog: Catalog, hubs: Mapping[str, Hub]) -> dict[str, ModelEntry]:
    """Entries for the catalog families whose files some hub already has cached."""
    from zoo.serve.types import ModelEntry

    cached: set[tuple[str, str]] = set()
    for name, hub in hubs.items():
        with contextlib.suppress(Exception):  # a broken cache must not stop the gateway
            cached.update((name, e.repo) for e in hub.cache_entries())
    found: dict[str, ModelEntry] = {}
    for family in catalog.families.values():
        for spec in family.specs:
            for source in spec.sources:
                repos = {source.repo_for(q) for q in source.quantizations}
                if any((source.hub, repo) in cached for repo in repos):
                    found.setdefault(family.name, ModelEntry(name=family.name, family=family.name))
    return found


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

    catalog = _catalog()
    engines, hubs, host = get_engines(), get_hubs(), this_machine()
    config = _load_config(options.config, catalog, engines) if options.config else default_config()
    for warning in config.warnings:
        say(f"zoo serve: {warning}")
    allow = options.allow_download or config.allow_download
    entries = dict(config.models) if options.config else discover_downloaded(catalog, hubs)
    backend = LocalBackend(catalog, engines, hubs, host, say=say, allow_download=allow)
    memory = {
        "RAM": memory_budget(host, "cpu"),
        "GPU memory": memory_budget(host, "cuda"),
        "unified memory": memory_budget(host, "metal"),
    }
    budget = options.memory_budget or config.memory_budget
    scheduler = Scheduler(
        backend,
        entries,
        budgets=budgets(memory, budget),
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
    say(f"zoo serve: {url} ({len(gateway.entries)} models)")
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
