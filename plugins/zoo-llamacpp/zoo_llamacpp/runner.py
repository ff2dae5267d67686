"""Serve one GGUF model with xllamacpp until SIGTERM: ``python -m zoo_llamacpp.runner ...``.

Runs inside the engine's environment (where xllamacpp is installed), never in zoo's process.
xllamacpp's Server serves HTTP for as long as the object lives, so this process holds it and
sleeps until it is told to stop.
"""

from __future__ import annotations

import argparse
import os
import signal
import threading
from collections.abc import Sequence
from typing import Any

API_KEY_ENV = "ZOO_LLAMACPP_API_KEY"


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
    api_key = os.environ.get(API_KEY_ENV)
    if api_key:
        params.api_keys = [api_key]
    return params


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
