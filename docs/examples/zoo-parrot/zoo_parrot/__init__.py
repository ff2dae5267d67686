"""zoo-parrot: an engine plugin for zoo.

The Parrot server (``zoo_parrot.server``) is a small OpenAI-compatible server that "runs" a GGUF
file by repeating the prompt back. Swap its command line for your real server's and the rest of
this module stays the same.
"""

from __future__ import annotations

from pathlib import Path

from zoo import hookimpl
from zoo.catalog.model import Spec
from zoo.engine import Capabilities, Engine, LaunchContext, Match, ServerCommand
from zoo.host import Host


class ParrotEngine(Engine):
    name = "parrot"  # what users type after --engine
    display_name = "Parrot"  # how tables and docs name it
    capabilities = Capabilities(
        formats={"ggufv2": ("Q8_0", "Q4_K_M")},  # or ("*",) for every quantization
        platforms=(("linux", "*"), ("darwin", "*")),
        accelerators=("cpu",),
        # pip requirement strings for the engine's own environment (a venv zoo builds);
        # the Parrot server needs only the standard library.
        requirements=(),
        runtime_module=None,  # a module that imports once the requirements are installed
        overhead_bytes=64 * 1024**2,  # the server's own memory beside weights and KV cache
        notes="Repeats the prompt back; the tutorial engine of the plugin guide.",
    )

    def check(self, spec: Spec, quantization: str, host: Host) -> Match:
        # A rule the capabilities cannot express; everything else is the default check.
        if spec.size > 1:
            return Match.no("only runs models below 1B parameters")
        return super().check(spec, quantization, host)

    def server_command(self, ctx: LaunchContext) -> ServerCommand:
        argv = [
            ctx.python,  # the interpreter of the engine's environment
            "-m",
            "zoo_parrot.server",  # importable there: zoo links this package in
            "--model",
            ctx.model_path,
            "--host",
            ctx.host,
            "--port",
            str(ctx.port),
            "--served-name",
            ctx.served_name,
        ]
        if ctx.context_length:
            argv += ["--ctx-size", str(ctx.context_length)]
        argv += ctx.extra_args  # what the user wrote after `zoo launch MODEL --`
        return ServerCommand(argv=tuple(argv), health_path="/health")


@hookimpl
def zoo_register_engines() -> list[Engine]:
    return [ParrotEngine()]


@hookimpl
def zoo_catalog_paths() -> list[Path]:
    # Spec files shipped as package data beside this module.
    return [Path(__file__).parent / "specs"]
