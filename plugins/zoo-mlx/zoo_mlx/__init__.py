"""The MLX engine: ``mlx_lm.server`` for MLX checkpoints.

Native on Apple silicon (Metal). On Linux, MLX has a CPU backend (``mlx[cpu]``): slow but real,
so it is an opt-in (``ZOO_ENGINE_OPT_IN=mlx-cpu``). ``mlx_lm.server`` has no served-name or API
key flag: requests must name the model directory (or none) and the runtime guards the key.
Nor does it take a context length, so ``zoo launch --context`` is refused for it.
"""

from __future__ import annotations

from pathlib import Path

from zoo import hookimpl
from zoo.engine import Capabilities, Engine, LaunchContext, ServerCommand

MLX_VERSION = "0.32.4"
MLX_LM = "mlx-lm==0.32.2"


class MlxEngine(Engine):
    name = "mlx"
    display_name = "MLX"
    priority = 25
    capabilities = Capabilities(
        formats={"mlx": ("*",)},
        platforms=(("darwin", "arm64"),),
        accelerators=("metal",),
        requires_accelerator=True,
        requirements=(f"mlx=={MLX_VERSION}", MLX_LM),
        preferred_on=("apple",),
        overhead_bytes=512 * 1024**2,
        # Apple's unified memory read by Metal kernels, a lazy graph evaluated per token (not
        # measured here: no Mac; llama.cpp's fitted share, a little above it as MLX is on
        # Apple silicon, and a Python loop's fixed cost per token).
        decode_efficiency=0.5,
        token_overhead_s=0.002,
        runtime_module="mlx_lm",
        # mlx_lm.server has no context-length option (0.32.2): it uses the model's own.
        honours_context=False,
        notes="MLX checkpoints on Apple silicon.",
    )
    variants = (
        Capabilities(
            formats={"mlx": ("*",)},
            platforms=(("linux", "x86_64"), ("linux", "arm64")),
            accelerators=("cpu",),
            # The [cpu] extra is what installs a backend on Linux; mlx-lm does not pull mlx.
            requirements=(f"mlx[cpu]=={MLX_VERSION}", MLX_LM),
            opt_in="mlx-cpu",
            variant="cpu",
            overhead_bytes=512 * 1024**2,
            # MLX's CPU backend is far less tuned than its Metal one (not measured here).
            decode_efficiency=0.3,
            token_overhead_s=0.01,
            runtime_module="mlx_lm",
            honours_context=False,
            notes="MLX's CPU backend on Linux: opt in with ZOO_ENGINE_OPT_IN=mlx-cpu.",
        ),
    )

    def server_command(self, ctx: LaunchContext) -> ServerCommand:
        script = (
            str(Path(ctx.python).parent / "mlx_lm.server")
            if "/" in ctx.python
            else ("mlx_lm.server")
        )
        argv = [
            script,
            "--model",
            ctx.model_path,
            "--host",
            ctx.host,
            "--port",
            str(ctx.port),
            *ctx.extra_args,
        ]
        # mlx_lm.server answers /v1/models with an empty body when the hub cache folder does
        # not exist (it scans it), so point it at a folder that surely does.
        return ServerCommand(
            argv=tuple(argv),
            env={"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": ctx.model_path},
            health_path="/health",
            request_model=ctx.model_path,
            api_key_enforced=False,
        )


@hookimpl
def zoo_register_engines() -> list[Engine]:
    return [MlxEngine()]
