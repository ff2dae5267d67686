"""The Transformers engine: ``transformers serve`` for Hugging Face checkpoints.

Runs unquantized (pytorch) weights everywhere, CPU included; GPTQ, AWQ and bitsandbytes
weights need their CUDA kernels. ``transformers serve`` has neither a served-name nor an API
key flag: requests must name the model directory (or no model), and the runtime guards the key.
Nor does it take a context length, so ``zoo launch --context`` is refused for it.
"""

from __future__ import annotations

from pathlib import Path

from zoo import hookimpl
from zoo.engine import Capabilities, Engine, LaunchContext, ServerCommand

TRANSFORMERS = "transformers[serving]==5.24.0"
# Exactly this torch: the CPU wheel is on the machines zoo is tested on, and any other pin
# makes pip fetch a multi-GB CUDA build.
TORCH = "torch==2.13.0"


class TransformersEngine(Engine):
    name = "transformers"
    display_name = "Transformers"
    priority = 20
    capabilities = Capabilities(
        formats={"pytorch": ("*",), "gptq": ("*",), "awq": ("*",), "bnb": ("*",)},
        accelerators=("cuda", "metal", "cpu"),
        format_accelerators={"gptq": ("cuda",), "awq": ("cuda",), "bnb": ("cuda",)},
        requirements=(TORCH, TRANSFORMERS),
        overhead_bytes=1024**3,
        runtime_module="transformers",
        # `transformers serve` has no context-length option (5.24): it uses the model's own.
        honours_context=False,
        notes="pytorch weights on any device; GPTQ/AWQ/bitsandbytes only with CUDA kernels.",
    )

    def server_command(self, ctx: LaunchContext) -> ServerCommand:
        # The console script sits beside the environment's interpreter.
        script = (
            str(Path(ctx.python).parent / "transformers") if "/" in ctx.python else ("transformers")
        )
        device = {"cuda": "cuda", "metal": "mps"}.get(ctx.device, "cpu")
        argv = [
            script,
            "serve",
            ctx.model_path,
            "--host",
            ctx.host,
            "--port",
            str(ctx.port),
            "--device",
            device,
            *(("--dtype", ctx.dtype) if ctx.dtype else ()),
            *ctx.extra_args,
        ]
        return ServerCommand(
            argv=tuple(argv),
            env={"HF_HUB_OFFLINE": "1"},
            health_path="/health",
            request_model=ctx.model_path,
            api_key_enforced=False,
        )


@hookimpl
def zoo_register_engines() -> list[Engine]:
    return [TransformersEngine()]
