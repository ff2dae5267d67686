"""An engine a third party could publish: it "runs" GGUF files by echoing the prompt back.

Uses only zoo's public API (zoo.hookimpl, zoo.engine, zoo.host, zoo.catalog.model).
"""

from __future__ import annotations

import sys

from zoo import hookimpl
from zoo.catalog.model import Spec
from zoo.engine import Capabilities, Engine, LaunchContext, Match, ServerCommand
from zoo.host import Host


class EchoEngine(Engine):
    name = "echo"
    display_name = "Echo"
    priority = 100  # wins ties, so tests can see it chosen
    capabilities = Capabilities(
        formats={"ggufv2": ("Q4_1", "Q8_0")},
        accelerators=("cpu",),
        preferred_on=("cpu",),
        overhead_bytes=1024**2,
        runtime_module="zoo_echo_engine",
        notes="Echoes prompts; for testing the plugin API.",
    )

    def check(self, spec: Spec, quantization: str, host: Host) -> Match:
        if host.ram_bytes < 1024**3:
            return Match.no("needs at least 1 GiB of RAM")
        return super().check(spec, quantization, host)

    def server_command(self, ctx: LaunchContext) -> ServerCommand:
        python = sys.executable if ctx.python == "python" else ctx.python
        return ServerCommand(
            argv=(
                python,
                "-m",
                "zoo_echo_engine.server",
                ctx.model_path,
                ctx.host,
                str(ctx.port),
                ctx.served_name,
            ),
            env={"ECHO_API_KEY": ctx.api_key or ""},
            health_path="/health",
        )


@hookimpl
def zoo_register_engines() -> list[Engine]:
    return [EchoEngine()]
