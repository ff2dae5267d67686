"""The Transformers engine: ``transformers serve`` for Hugging Face checkpoints, and
sentence-transformers for embedding models and rerankers.

Runs unquantized (pytorch) weights everywhere, CPU included; GPTQ, AWQ and bitsandbytes
weights need their CUDA kernels. ``transformers serve`` has neither a served-name nor an API
key flag: requests must name the model directory (or no model), and the runtime guards the key.
Nor does it take a context length, so ``zoo launch --context`` is refused for it.

Embedding and rerank families (pytorch weights) are served by this plugin's own
``zoo_transformers.pooling_server`` in the same environment: ``transformers serve`` has no
such routes. That module's docstring says why it is not a plugin around infinity-emb.
"""

from __future__ import annotations

from pathlib import Path

from zoo import hookimpl, kinds
from zoo.catalog.model import Family
from zoo.engine import Capabilities, Engine, LaunchContext, ServerCommand
from zoo.errors import ZooError

TRANSFORMERS = "transformers[serving]==5.24.0"
# Exactly this torch: the CPU wheel is on the machines zoo is tested on, and any other pin
# makes pip fetch a multi-GB CUDA build.
TORCH = "torch==2.13.0"
# Embedding and rerank models (pooling_server.py). 6.0.1 takes transformers 5.x and lies in
# this machine's local index beside torch.
SENTENCE_TRANSFORMERS = "sentence-transformers==6.0.1"
POOLING_MODULE = "zoo_transformers.pooling_server"
# The pooling server reads the key from here: argv is shown by `ps` and recorded.
API_KEY_ENV = "ZOO_TRANSFORMERS_API_KEY"
DEVICES = {"cuda": "cuda", "metal": "mps"}


class TransformersEngine(Engine):
    name = "transformers"
    display_name = "Transformers"
    priority = 20
    capabilities = Capabilities(
        formats={"pytorch": ("*",), "gptq": ("*",), "awq": ("*",), "bnb": ("*",)},
        accelerators=("cuda", "metal", "cpu"),
        format_accelerators={"gptq": ("cuda",), "awq": ("cuda",), "bnb": ("cuda",)},
        requirements=(TORCH, TRANSFORMERS, SENTENCE_TRANSFORMERS),
        overhead_bytes=1024**3,
        # `transformers serve` runs eager PyTorch and its Python loop for every token: the
        # tiny model measures the fixed cost (bench/speed_estimate.py); the bandwidth share
        # is eager PyTorch's at batch 1 (not measurable here: no model big enough).
        decode_efficiency=0.4,
        token_overhead_s=0.002,
        runtime_module="transformers",
        # `transformers serve` has no context-length option (5.24): it uses the model's own.
        honours_context=False,
        notes=(
            "pytorch weights on any device; GPTQ/AWQ/bitsandbytes only with CUDA kernels; "
            "embedding and rerank models (pytorch) through sentence-transformers."
        ),
        kinds=(kinds.LLM, kinds.EMBEDDING, kinds.RERANK),
    )

    def server_command(self, ctx: LaunchContext) -> ServerCommand:
        if ctx.family.kind in (kinds.EMBEDDING, kinds.RERANK):
            return pooling_command(ctx)
        # The console script sits beside the environment's interpreter.
        script = (
            str(Path(ctx.python).parent / "transformers") if "/" in ctx.python else ("transformers")
        )
        device = DEVICES.get(ctx.device, "cpu")
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


def truncates(family: Family) -> bool:
    """The spec's ``truncate`` for the family's kind (True, the default, when it has none)."""
    facts = family.embedding if family.kind == kinds.EMBEDDING else family.rerank
    return facts is None or facts.truncate


def pooling_command(ctx: LaunchContext) -> ServerCommand:
    """The pooling server for an embedding model or a reranker (pooling_server.py)."""
    if ctx.spec.format != "pytorch":
        raise ZooError(
            f"the Transformers engine serves {kinds.kind(ctx.family.kind).plural} in pytorch "
            f"format only, not {ctx.spec.format}"
        )
    argv = [
        ctx.python,
        "-m",
        POOLING_MODULE,
        "--kind",
        ctx.family.kind,
        "--model",
        ctx.model_path,
        "--served-name",
        ctx.served_name,
        "--host",
        ctx.host,
        "--port",
        str(ctx.port),
        "--device",
        DEVICES.get(ctx.device, "cpu"),
        # Longer inputs are truncated to the family's max input (sentence-transformers'
        # max_seq_length), or refused when the spec says truncate: false.
        "--max-tokens",
        str(ctx.family.context_length),
    ]
    if not truncates(ctx.family):
        argv.append("--no-truncate")
    if ctx.dtype:
        argv += ["--dtype", ctx.dtype]
    if ctx.threads:
        argv += ["--threads", str(ctx.threads)]
    facts = ctx.family.embedding
    if ctx.family.kind == kinds.EMBEDDING and facts is not None:
        # The sizes a request's `dimensions` may ask for: the full one and the Matryoshka cuts.
        for size in (facts.dimensions, *facts.matryoshka_dimensions):
            argv += ["--dimensions", str(size)]
        # Used only for a plain Transformers folder (no modules.json of sentence-transformers).
        if facts.pooling:
            argv += ["--pooling", facts.pooling]
        if facts.normalized:
            argv.append("--normalize")
    argv += list(ctx.extra_args)
    env = {"HF_HUB_OFFLINE": "1"}
    if ctx.api_key:
        env[API_KEY_ENV] = ctx.api_key
    # The server answers 401 without the key and serves the served name itself: no proxy.
    return ServerCommand(argv=tuple(argv), env=env, health_path="/health", api_key_enforced=True)


@hookimpl
def zoo_register_engines() -> list[Engine]:
    return [TransformersEngine()]
