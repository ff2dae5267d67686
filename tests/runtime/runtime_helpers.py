"""Runtime test helpers: a real fake-engine server process behind a real Engine subclass."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from zoo.catalog.model import family_from_data
from zoo.engine import Engine, LaunchContext, ServerCommand
from zoo.hubs.base import FetchResult
from zoo.plan import FileSelection, LaunchOptions, Plan, PlannedSource
from zoo.runtime import launcher, process, state
from zoo.runtime.invocation import ModelFiles

FAKE_ENGINE = Path(__file__).with_name("fake_engine.py")


class FakeEngine(Engine):
    """An engine whose server is tests/runtime/fake_engine.py, in this interpreter."""

    name = "fake"
    display_name = "Fake engine"

    def __init__(
        self, mode: str = "ok", *, request_model: str | None = None, api_key_enforced: bool = True
    ) -> None:
        self.mode = mode
        self.request_model = request_model
        self.api_key_enforced = api_key_enforced
        self.contexts: list[LaunchContext] = []

    def server_command(self, ctx: LaunchContext) -> ServerCommand:
        self.contexts.append(ctx)
        argv = [
            ctx.python,
            str(FAKE_ENGINE),
            "--port",
            str(ctx.port),
            "--mode",
            self.mode,
            "--name",
            ctx.model_path,
            *ctx.extra_args,
        ]
        return ServerCommand(
            argv=tuple(argv),
            request_model=self.request_model,
            api_key_enforced=self.api_key_enforced,
        )


def start(
    engine: Engine,
    fetched: FetchResult,
    name: str = "tiny-model",
    *,
    say: Callable[[str], None] = lambda _: None,
    context_length: int = 2048,
    **options: Any,
) -> launcher.Running:
    """Start ``engine`` on the fetched folder through the runtime, detached by default."""
    options.setdefault("detach", True)
    options.setdefault("ready_timeout", 20)
    plan = make_plan(name, options=LaunchOptions(**options), context_length=context_length)
    return launcher.start_instance(plan, engine, ModelFiles(str(fetched.root)), say=say)


def make_plan(
    name: str = "tiny-model",
    fmt: str = "pytorch",
    *,
    options: LaunchOptions | None = None,
    context_length: int = 2048,
) -> Plan:
    family = family_from_data(
        {
            "name": name,
            "description": "test",
            "context_length": 2048,
            "languages": ["en"],
            "abilities": ["chat"],
            "specs": [
                {
                    "format": fmt,
                    "size": 0.001,
                    "quantizations": ["none"],
                    "sources": {"huggingface": {"model_id": f"test/{name}"}},
                }
            ],
        }
    )
    return Plan(
        family=family,
        spec=family.specs[0],
        quantization="none",
        engine="fake",
        sources=(PlannedSource("huggingface", f"test/{name}", None, FileSelection(), "test"),),
        context_length=context_length,
        env_ready=True,
        python=sys.executable,  # the fake engine runs in this interpreter
        options=options or LaunchOptions(detach=True, ready_timeout=20),
    )


def instance_record(proc: subprocess.Popen[bytes], **changes: object) -> state.Instance:
    """An instance record (not saved) for ``proc``, as the launcher makes one; ``changes``
    override any field."""
    fields: dict[str, object] = {
        "id": state.new_id(),
        "model": "tiny-model",
        "engine": "fake",
        "quantization": "none",
        "format": "pytorch",
        "served_name": "tiny-model",
        "host": "127.0.0.1",
        "port": 8000,
        "pid": proc.pid,
        "pid_start": process.process_start_time(proc.pid),
        "pgid": proc.pid,
        "log_path": str(state.logs_dir() / "x.log"),
        "started_at": time.time(),
        "detached": True,
        "api_key": False,
    }
    fields.update(changes)
    return state.Instance(**fields)  # type: ignore[arg-type]
