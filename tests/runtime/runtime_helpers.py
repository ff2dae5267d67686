"""Runtime test helpers: a real fake-engine server process behind a real Engine subclass."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from zoo.catalog.model import family_from_data
from zoo.engine import Engine, LaunchContext, ServerCommand
from zoo.plan import Plan

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


@dataclass
class Options:
    """The launch options the runtime reads (zoo.plan.LaunchOptions has the same fields)."""

    host: str = "127.0.0.1"
    port: int | None = None
    detach: bool = True
    api_key: str | None = None
    served_name: str | None = None
    context_length: int | None = None
    dtype: str | None = None
    tensor_parallel_size: int | None = None
    gpu_memory_fraction: float | None = None
    extra_args: tuple[str, ...] = ()
    ready_timeout: float | None = 20


def make_plan(name: str = "tiny-model", fmt: str = "pytorch") -> Plan:
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
        hub="huggingface",
        repo=f"test/{name}",
        revision=None,
        files=(),
        memory_bytes=0,
        context_length=2048,
        env_ready=True,
    )
