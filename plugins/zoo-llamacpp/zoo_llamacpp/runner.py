"""Serve one GGUF model with xllamacpp until SIGTERM: ``python -m zoo_llamacpp.runner ...``.

Runs inside the engine's environment (where xllamacpp is installed), never in zoo's process.
xllamacpp's Server serves HTTP for as long as the object lives, so this process holds it and
sleeps until it is told to stop.

``--kind embedding`` starts llama.cpp's embedding mode (``/v1/embeddings``), ``--kind rerank``
its reranking mode (``/v1/rerank``, ``/rerank``): the same switches as llama-server's
``--embedding --pooling X`` and ``--reranking``.
"""

from __future__ import annotations

import argparse
import os
import signal
import threading
from collections.abc import Sequence
from typing import Any

API_KEY_ENV = "ZOO_LLAMACPP_API_KEY"
KINDS = ("llm", "embedding", "rerank")
# The spec format's pooling names -> llama.cpp's llama_pooling_type members.
POOLING_TYPES = {
    "mean": "LLAMA_POOLING_TYPE_MEAN",
    "cls": "LLAMA_POOLING_TYPE_CLS",
    "last": "LLAMA_POOLING_TYPE_LAST",
}
# common_params.embd_normalize: 2 is L2 (llama.cpp's default), -1 leaves vectors as they are.
NORMALIZE_L2 = 2
NORMALIZE_NONE = -1


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="zoo_llamacpp.runner")
    parser.add_argument("--model", required=True, help="the GGUF file (first part if split)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--alias", default=None, help="the model name clients use")
    parser.add_argument("--ctx-size", type=int, default=0, help="0: the model's own")
    parser.add_argument("--threads", type=int, default=0, help="0: llama.cpp's default")
    parser.add_argument("--n-gpu-layers", type=int, default=0, help="-1: all")
    parser.add_argument("--chat-template", default=None)
    parser.add_argument("--mmproj", default=None, help="multimodal projector GGUF")
    parser.add_argument("--kind", choices=KINDS, default="llm", help="what the model does")
    parser.add_argument(
        "--pooling",
        choices=tuple(POOLING_TYPES),
        default=None,
        help="embedding pooling (default: the GGUF's own)",
    )
    parser.add_argument(
        "--no-normalize", action="store_true", help="embeddings as the model makes them"
    )
    return parser.parse_args(argv)


def build_params(args: argparse.Namespace, xllamacpp: Any) -> Any:
    """Fill xllamacpp.CommonParams from the arguments (the module is passed in for tests)."""
    params = xllamacpp.CommonParams()
    params.model.path = args.model
    params.hostnames = [args.host]
    params.port = args.port
    params.n_gpu_layers = args.n_gpu_layers
    if args.ctx_size:
        params.n_ctx = args.ctx_size
    if args.threads:
        params.cpuparams.n_threads = args.threads
        params.cpuparams_batch.n_threads = args.threads
    if args.alias:
        # This xllamacpp takes aliases as a set; a plain string is silently ignored
        # (responses then say "model": "-").
        params.model_alias = {args.alias}
    if args.chat_template:
        params.chat_template = args.chat_template
    if args.mmproj:
        params.mmproj.path = args.mmproj
        # The projector goes where the layers go: on the CPU when no layer is offloaded.
        params.mmproj_use_gpu = args.n_gpu_layers != 0
    if args.kind in ("embedding", "rerank"):
        _pooling_mode(params, args, xllamacpp)
    api_key = os.environ.get(API_KEY_ENV)
    if api_key:
        params.api_keys = [api_key]
    return params


def _pooling_mode(params: Any, args: argparse.Namespace, xllamacpp: Any) -> None:
    """Embedding or reranking mode: llama.cpp's server answers /v1/embeddings or /v1/rerank."""
    pooling = xllamacpp.llama_pooling_type
    params.embedding = True
    if args.kind == "rerank":
        # What llama-server's --reranking sets: the rerank endpoints need exactly this pair.
        params.pooling_type = pooling.LLAMA_POOLING_TYPE_RANK
    elif args.pooling:
        params.pooling_type = getattr(pooling, POOLING_TYPES[args.pooling])
    # else LLAMA_POOLING_TYPE_UNSPECIFIED: the model's own (``<arch>.pooling_type`` in the GGUF).
    if args.kind == "embedding":
        params.embd_normalize = NORMALIZE_NONE if args.no_normalize else NORMALIZE_L2
    if args.ctx_size:
        # Encoder models see a whole input in one micro-batch: llama.cpp refuses an input longer
        # than n_ubatch ("increase the physical batch size"), and its default 512 is shorter
        # than many embedding models' context. So one micro-batch holds a full-length input.
        params.n_batch = args.ctx_size
        params.n_ubatch = args.ctx_size


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    import xllamacpp  # only in the engine's environment

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    server = xllamacpp.Server(build_params(args, xllamacpp))
    try:
        while not stop.wait(3600):
            pass
    finally:
        del server


if __name__ == "__main__":
    main()
