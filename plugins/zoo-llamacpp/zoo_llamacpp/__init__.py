"""The llama.cpp engine: GGUF models through xllamacpp, llama.cpp's server in Python.

xllamacpp runs llama.cpp's HTTP server inside the Python process, so the "server command" is
this plugin's own runner (``python -m zoo_llamacpp.runner``), started in the engine's
environment, which keeps the process alive until SIGTERM.

Besides language models it serves GGUF embedding models (llama.cpp's embedding mode, pooled
the family's way) and rerankers (its reranking mode, pooling "rank"); the runner picks the
mode from ``--kind``.
"""

from __future__ import annotations

from zoo import hookimpl
from zoo.catalog.model import Family
from zoo.engine import Capabilities, Engine, LaunchContext, Match, ServerCommand
from zoo.errors import ZooError
from zoo.host import Host
from zoo.kinds import EMBEDDING, LLM, RERANK

XLLAMACPP = "xllamacpp==2026.10.11549"
RUNNER_MODULE = "zoo_llamacpp.runner"
# The API key travels in the environment, not argv, so `ps` does not show it.
API_KEY_ENV = "ZOO_LLAMACPP_API_KEY"
# The spec format's pooling names that llama.cpp has (llama_pooling_type); it has no "max".
POOLINGS = ("mean", "cls", "last")
# llama.cpp's reranking mode reads one score per pair from a classification head (BERT/RoBERTa
# cross-encoders, Qwen3-style LLM rerankers); layer-wise rerankers need several layers read.
RERANK_TYPES = ("cross-encoder", "llm")


class UnsupportedByLlamaCpp(ZooError):
    """The family needs something llama.cpp's server cannot do (e.g. max pooling)."""


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
        # Fitted by bench/speed_estimate.py on a 2-core x86 VM (bench/RESULTS.md): the tiny
        # model's and SmolLM2's tokens/s give the server's fixed cost per token and the
        # share of the measured RAM bandwidth it reads weights at (0.43 there, under other
        # load; ~0.5-0.7 is typical of llama.cpp on GPUs, so one figure serves all devices).
        decode_efficiency=0.45,
        token_overhead_s=0.0001,
        runtime_module="xllamacpp",
        kinds=(LLM, EMBEDDING, RERANK),
        notes="GGUF everywhere: CPU, CUDA (all layers offloaded) and Metal.",
    )

    def check_family(self, family: Family, host: Host) -> Match:
        problem = family_problem(family)
        return Match.no(problem) if problem else Match.yes()

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
        argv += kind_args(ctx)
        argv += list(ctx.extra_args)
        env = {API_KEY_ENV: ctx.api_key} if ctx.api_key else {}
        # The runner gives the key to llama.cpp's server (api_keys), which answers 401 without it.
        return ServerCommand(
            argv=tuple(argv), env=env, health_path="/health", api_key_enforced=True
        )


def family_problem(family: Family) -> str | None:
    """What in ``family``'s spec llama.cpp's server cannot do, as the end of "llama.cpp ...",
    or None: max pooling (it pools by mean, cls, last) and layer-wise rerankers."""
    facts = family.embedding if family.kind == EMBEDDING else None
    if facts is not None and facts.pooling is not None and facts.pooling not in POOLINGS:
        return f"cannot pool by {facts.pooling} (it pools by {', '.join(POOLINGS)})"
    if family.kind == RERANK:
        kind = family.rerank.type if family.rerank is not None else "cross-encoder"
        if kind not in RERANK_TYPES:
            return f"cannot serve {kind} rerankers (its reranking mode reads one score per pair)"
    return None


def kind_args(ctx: LaunchContext) -> list[str]:
    """The runner arguments that start llama.cpp's mode for the family's kind.

    Embedding models are pooled the way the spec says (none said: the GGUF's own
    ``*.pooling_type``); ``normalized: false`` turns llama.cpp's default L2 normalization off,
    so vectors come out as the model makes them. Resolution already left out families that
    ``family_problem`` refuses (``check_family``); a direct call is refused here too.
    """
    family = ctx.family
    problem = family_problem(family)
    if problem is not None:
        raise UnsupportedByLlamaCpp(
            f"{family.name}: llama.cpp {problem}: choose another engine with --engine"
        )
    if family.kind == EMBEDDING:
        args = ["--kind", EMBEDDING]
        facts = family.embedding
        if facts is not None and facts.pooling is not None:
            args += ["--pooling", facts.pooling]
        if facts is not None and facts.normalized is False:
            args.append("--no-normalize")
        return args
    if family.kind == RERANK:
        return ["--kind", RERANK]
    return []


@hookimpl
def zoo_register_engines() -> list[Engine]:
    return [LlamaCppEngine()]
