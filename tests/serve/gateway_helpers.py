"""A real gateway for tests: uvicorn on 127.0.0.1 in a thread, the real backend (zoo.launch,
the runtime, a local hub), and an engine whose server is tests/serve/gateway_engine.py."""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from zoo.catalog.catalog import Catalog, load_catalog
from zoo.engine import Capabilities, Engine, LaunchContext, ServerCommand
from zoo.host import GIB, Host
from zoo.hubs.huggingface import HuggingFaceHub
from zoo.runtime import process
from zoo.serve.backend import LocalBackend
from zoo.serve.config import ApiKey, GatewayConfig
from zoo.serve.gateway import Gateway
from zoo.serve.metrics import Metrics
from zoo.serve.proxy import Forwarder
from zoo.serve.scheduler import Scheduler
from zoo.serve.server import ServeOptions, app_for
from zoo.serve.types import ModelEntry
from zoo.testing.hubserver import HubServer

ENGINE_SCRIPT = Path(__file__).with_name("gateway_engine.py")
HOST = Host(os="linux", arch="x86_64", ram_bytes=24 * GIB, cpu_count=2, name="test-host")
# Each model plans to about 1 GiB (the engine's declared overhead): a 1.5 GiB budget holds one.
ONE_GIB = GIB

FAMILY = """\
name: {name}
description: A tiny family for gateway tests.
context_length: 2048
languages: [en]
abilities: [{abilities}]
{fim}specs:
  - format: ggufv2
    size: 0.001
    quantizations: [Q8_0]
    sources:
      huggingface:
        model_id: test/{name}-GGUF
        file: {name}.{{quantization}}.gguf
"""
SEED_FIM = """\
fim:
  prefix: "<[fim-prefix]>"
  suffix: "<[fim-suffix]>"
  middle: "<[fim-middle]>"
  order: [suffix, prefix, middle]
"""


class GatewayEngine(Engine):
    """Runs tests/serve/gateway_engine.py; checks the key it is given (so zoo sends one)."""

    name = "gw"
    display_name = "Gateway test engine"
    capabilities = Capabilities(
        formats={"ggufv2": ("Q8_0",)},
        accelerators=("cpu",),
        requirements=("pyyaml>=6",),  # met by this interpreter: no environment to build
        overhead_bytes=ONE_GIB,
        honours_context=False,
    )

    def __init__(self, *extra: str) -> None:
        self.extra = extra

    def server_command(self, ctx: LaunchContext) -> ServerCommand:
        argv = [
            sys.executable,
            str(ENGINE_SCRIPT),
            "--port",
            str(ctx.port),
            "--host",
            ctx.host,
            "--name",
            ctx.served_name,
            *self.extra,
            *ctx.extra_args,
        ]
        env = {"GW_API_KEY": ctx.api_key} if ctx.api_key else {}
        return ServerCommand(argv=tuple(argv), env=env, api_key_enforced=True)


def write_catalog(folder: Path, names: Mapping[str, bool]) -> Catalog:
    """Families ``names`` (name -> has a Seed-Coder-style FIM template) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, fim in names.items():
        text = FAMILY.format(
            name=name, abilities="generate" if fim else "chat", fim=SEED_FIM if fim else ""
        )
        (folder / f"{name}.yaml").write_text(text)
    return load_catalog([folder], use_cache=False)


def serve_files(server: HubServer, names: list[str]) -> None:
    for name in names:
        server.add_repo(f"test/{name}-GGUF", {f"{name}.Q8_0.gguf": b"GGUF" + bytes(32)})


@dataclass
class Running:
    url: str
    gateway: Gateway
    thread: threading.Thread
    loop: asyncio.AbstractEventLoop

    @property
    def v1(self) -> str:
        return self.url + "/v1"


@contextmanager
def running_gateway(
    catalog: Catalog,
    entries: Mapping[str, ModelEntry],
    *,
    engine: Engine | None = None,
    budget: int = 8 * GIB,
    keys: tuple[ApiKey, ...] = (),
    keep_alive: float = 300.0,
    concurrency: int = 10,
    allow_download: bool = True,
) -> Iterator[Running]:
    """A gateway serving ``entries`` on a free port; every model it started is stopped after."""
    import uvicorn

    engines = {"gw": engine or GatewayEngine()}
    hubs = {"huggingface": HuggingFaceHub()}
    backend = LocalBackend(catalog, engines, hubs, HOST, allow_download=allow_download)
    scheduler = Scheduler(
        backend,
        entries,
        budgets={"RAM": budget},
        default_keep_alive=keep_alive,
        default_concurrency=concurrency,
        tick_interval=0.1,
    )
    gateway = Gateway(
        catalog=catalog,
        entries=dict(entries),
        scheduler=scheduler,
        backend=backend,
        forwarder=Forwarder(),
        metrics=Metrics(),
        allow_download=allow_download,
    )
    config = GatewayConfig(api_keys=keys)
    app = app_for(gateway, config, ServeOptions(), lambda line: None)
    port = process.free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            if httpx.get(url + "/health", timeout=1, trust_env=False).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("the test gateway did not start")
        time.sleep(0.05)
    # The loop uvicorn runs the app on (the scheduler's ticker task lives there).
    ticker = scheduler._ticker
    assert ticker is not None
    loop = ticker.get_loop()
    try:
        yield Running(url, gateway, thread, loop)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        backend.stop_all()
