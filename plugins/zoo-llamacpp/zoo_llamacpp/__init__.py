"""The llama.cpp engine: GGUF models through xllamacpp, llama.cpp's server in Python.

xllamacpp runs llama.cpp's HTTP server inside the Python process, so the "server command" is
this plugin's own runner (``python -m zoo_llamacpp.runner``), started in the engine's
environment, which keeps the process alive until SIGTERM.
"""

from __future__ import annotations

from zoo import hookimpl
from zoo.engine import Capabilities, Engine, LaunchContext, ServerCommand

XLLAMACPP = "xllamacpp==2026.10.11549"
RUNNER_MODULE = "zoo_llamacpp.runner"
# The API key travels in the environment, not argv, so `ps` does not show it.
API_KEY_ENV = "ZOO_LLAMACPP_API_KEY"


class LlamaCppEngine(Engine):
    name = "llamacpp"
    display_name = "llama.cpp"
    priority = 10
    capabilities = Capabilities(
        formats={"ggufv2": ("*",)},
        # xllamacpp publishes wheels for these; elsewhere there is nothing to install.
        platforms=(("linux", "x86_64"), ("darwin", "arm64")),
        accelerators=("cuda", "metal", "cpu"),
        requirements=(XLLAMACPP,),
        preferred_on=("cpu", "apple"),
        # llama.cpp spreads the layers over every visible GPU by itself (split mode "layer").
        gpu_split="layers",
        overhead_bytes=300 * 1024**2,
        runtime_module="xllamacpp",
        notes="GGUF everywhere: CPU, CUDA (all layers offloaded) and Metal.",
    )

    def server_command(self, ctx: LaunchContext) -> ServerCommand:
        argv = [
            ctx.python,
            "-m",
            RUNNER_MODULE,
            "--model",
            ctx.model_path,
            "--host",
            ctx.host,
            "--port",
            str(ctx.port),
            "--alias",
            ctx.served_name,
            "--n-gpu-layers",
            "-1" if ctx.device in ("cuda", "metal") else "0",
        ]
        if ctx.context_length:
            argv += ["--ctx-size", str(ctx.context_length)]
        if ctx.threads:
            argv += ["--threads", str(ctx.threads)]
        if ctx.projector_path:
            # Vision models: without the projector llama.cpp serves text only.
            argv += ["--mmproj", ctx.projector_path]
        argv += list(ctx.extra_args)
        env = {API_KEY_ENV: ctx.api_key} if ctx.api_key else {}
        # The runner gives the key to llama.cpp's server (api_keys), which answers 401 without it.
        return ServerCommand(
            argv=tuple(argv), env=env, health_path="/health", api_key_enforced=True
        )


@hookimpl
def zoo_register_engines() -> list[Engine]:
    return [LlamaCppEngine()]
