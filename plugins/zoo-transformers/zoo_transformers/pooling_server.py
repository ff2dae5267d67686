"""Serve one embedding model or reranker with sentence-transformers, OpenAI-style.

``python -m zoo_transformers.pooling_server --kind embedding|rerank --model DIR ...`` runs in
the Transformers engine's environment (torch, transformers, sentence-transformers, and the
starlette + uvicorn that ``transformers[serving]`` installs), never in zoo's process.
``transformers serve`` (5.24) has no embeddings or rerank route, so these kinds get this small
server instead: ``SentenceTransformer`` for ``POST /v1/embeddings``, ``CrossEncoder`` for
``POST /v1/rerank`` (also ``/rerank`` and ``/v2/rerank``), ``GET /health`` and ``/v1/models``.

Why this and not an engine plugin around infinity-emb (issue 13, measured on a 2-core CPU box
shared with other work): infinity-emb 0.0.78 installs beside torch==2.13.0, but only in an
environment of its own. It pins sentence-transformers<4 (hence transformers<5), numpy<2,
click<8.2, typer<0.13 and uvicorn<0.33, all below what this engine's transformers 5.24
environment holds, so it would be a second multi-GB torch environment (11 minutes to build
here) for the same models, on a Transformers line that cannot load models needing 5.x; and it
sends posthog telemetry unless DO_NOT_TRACK or INFINITY_ANONYMOUS_USAGE_STATS=0 is set. It
served all-MiniLM-L6-v2 faster: 1,024 sentences in batches of 64 over HTTP, median 49
embeddings/s against 15 for this server (4 interleaved rounds), while sentence-transformers
in-process ran 19/s on both stacks (3.4.1 + transformers 4.57 and 6.0.1 + 5.24), so the gap is
in how infinity drives the model, not in the libraries: a lead for making this server faster,
not a reason for a second engine with older pins. This server adds one module and one pinned
requirement to an environment zoo already builds, runs the model exactly as
sentence-transformers does (the reference every engine's test compares with), and enforces
zoo's key itself.

Behaviour a client can rely on:
- ``input`` is a string, a list of strings, a list of token ids or a list of such lists (ids
  are fed to the model as given, no special tokens added). An empty list is a 400.
- Inputs longer than the model's maximum (``--max-tokens``, the family's context_length) are
  truncated to it, as sentence-transformers does with ``max_seq_length``; ``usage`` counts
  the tokens the model really read. With ``--no-truncate`` (the spec's ``truncate: false``)
  such an input is a 400 naming the limit, counted with the model's tokenizer.
- ``encoding_format`` ``float`` or ``base64`` (little-endian float32, as OpenAI sends).
- ``dimensions`` must be one the family lists (``--dimensions``: its full size and Matryoshka
  sizes); vectors are cut to it and renormalized. Any other size is a 400 naming the sizes.
- Rerank: ``documents`` are strings or ``{"text": ...}``; results are sorted by
  ``relevance_score`` (CrossEncoder's score: a sigmoid for one-label models), each with its
  index in the request, cut to ``top_n``, with the document unless ``return_documents`` is
  false.
- The API key comes from ``ZOO_TRANSFORMERS_API_KEY`` (never argv): without it every route but
  ``/health`` answers 401. A route of another kind (chat on an embedding model) is a 404
  whose message names the right route (``zoo.kinds``).

zoo's own package is importable here (zoo links it beside this plugin on the engine's
PYTHONPATH, and this package's ``__init__`` imports it anyway), but only modules with no
dependency beyond the standard library: ``zoo.kinds`` is one.
"""

from __future__ import annotations

import argparse
import base64
import hmac
import math
import os
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from zoo import kinds

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse

    Handler = Callable[[Request], Awaitable[JSONResponse]]

API_KEY_ENV = "ZOO_TRANSFORMERS_API_KEY"
# OpenAI's own limit on inputs per embeddings request; a bound on one request's memory.
MAX_INPUTS = 2048
MAX_DOCUMENTS = 10000
POOLING_MODES = {"mean": "mean", "cls": "cls", "last": "lasttoken", "max": "max"}


class BadRequest(Exception):
    """A request answered with ``status`` and an OpenAI-shaped error body."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 400,
        param: str | None = None,
        code: str = "invalid_request",
        kind: str = "invalid_request_error",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.param = param
        self.code = code
        self.kind = kind

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.kind,
                "param": self.param,
                "code": self.code,
            }
        }


# --- requests: plain data in, checked data out (no torch, so unit tests run anywhere) ---


@dataclass(frozen=True)
class EmbeddingRequest:
    texts: tuple[str, ...] | None  # either texts or token ids
    token_ids: tuple[tuple[int, ...], ...] | None
    encoding_format: str
    dimensions: int | None

    @property
    def count(self) -> int:
        return len(self.texts if self.texts is not None else self.token_ids or ())


@dataclass(frozen=True)
class RerankRequest:
    query: str
    documents: tuple[str, ...]
    top_n: int | None
    return_documents: bool


def _check_model(body: dict[str, Any], served_name: str) -> None:
    model = body.get("model")
    if model is not None and model != served_name:
        raise BadRequest(
            f"model {model!r} is not served here; this server serves {served_name!r}",
            status=404,
            param="model",
            code="model_not_found",
        )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def parse_embedding_request(
    body: object, served_name: str, allowed_dimensions: Sequence[int]
) -> EmbeddingRequest:
    """Check an OpenAI embeddings body; BadRequest says what is wrong in one line."""
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    _check_model(body, served_name)
    raw = body.get("input")
    texts: tuple[str, ...] | None = None
    ids: tuple[tuple[int, ...], ...] | None = None
    if isinstance(raw, str):
        texts = (raw,)
    elif isinstance(raw, list):
        if not raw:
            raise BadRequest("'input' is an empty list: send at least one text", param="input")
        if all(isinstance(item, str) for item in raw):
            texts = tuple(raw)
        elif all(_is_int(item) for item in raw):
            ids = (tuple(raw),)
        elif all(isinstance(item, list) and all(_is_int(t) for t in item) for item in raw):
            ids = tuple(tuple(item) for item in raw)
            if any(not item for item in ids):
                raise BadRequest("'input' holds an empty list of token ids", param="input")
        else:
            raise BadRequest(
                "'input' must be a string, a list of strings, a list of token ids or a list of "
                "lists of token ids",
                param="input",
            )
    else:
        raise BadRequest("'input' is required: a string or a list of strings", param="input")
    count = len(texts if texts is not None else ids or ())
    if count > MAX_INPUTS:
        raise BadRequest(
            f"'input' holds {count} items; at most {MAX_INPUTS} per request", param="input"
        )
    fmt = body.get("encoding_format") or "float"
    if fmt not in ("float", "base64"):
        raise BadRequest(
            f"'encoding_format' must be 'float' or 'base64', not {fmt!r}",
            param="encoding_format",
        )
    dimensions = body.get("dimensions")
    if dimensions is not None:
        if not _is_int(dimensions) or dimensions < 1:
            raise BadRequest("'dimensions' must be a positive integer", param="dimensions")
        if dimensions not in allowed_dimensions:
            sizes = ", ".join(str(n) for n in sorted(allowed_dimensions, reverse=True))
            may = f"'dimensions' may be {sizes}" if sizes else "it takes no 'dimensions'"
            raise BadRequest(
                f"model {served_name!r} cannot give {dimensions}-dimensional vectors; {may}",
                param="dimensions",
            )
    return EmbeddingRequest(texts, ids, fmt, dimensions)


def parse_rerank_request(body: object, served_name: str) -> RerankRequest:
    """Check a rerank body (vLLM / Jina / Cohere shape)."""
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    _check_model(body, served_name)
    query = body.get("query")
    if not isinstance(query, str):
        raise BadRequest("'query' is required: a string", param="query")
    raw = body.get("documents")
    if not isinstance(raw, list) or not raw:
        raise BadRequest("'documents' must be a non-empty list", param="documents")
    if len(raw) > MAX_DOCUMENTS:
        raise BadRequest(f"at most {MAX_DOCUMENTS} documents per request", param="documents")
    documents: list[str] = []
    for item in raw:
        if isinstance(item, dict) and isinstance(item.get("text"), str):
            documents.append(item["text"])
        elif isinstance(item, str):
            documents.append(item)
        else:
            raise BadRequest(
                'each document must be a string or {"text": string}', param="documents"
            )
    top_n = body.get("top_n")
    if top_n is not None and (not _is_int(top_n) or top_n < 0):
        raise BadRequest("'top_n' must be a non-negative integer", param="top_n")
    return_documents = body.get("return_documents", True)
    if not isinstance(return_documents, bool):
        raise BadRequest("'return_documents' must be true or false", param="return_documents")
    # top_n 0 means "all", as in vLLM.
    return RerankRequest(query, tuple(documents), top_n or None, return_documents)


# --- responses ---


def cut(vector: Sequence[float], dimensions: int | None) -> list[float]:
    """The first ``dimensions`` values, scaled back to length 1 (Matryoshka truncation)."""
    values = [float(v) for v in vector]
    if dimensions is None or dimensions >= len(values):
        return values
    head = values[:dimensions]
    norm = math.sqrt(sum(v * v for v in head))
    return [v / norm for v in head] if norm > 0 else head


def encode(vector: list[float], encoding_format: str) -> list[float] | str:
    if encoding_format == "base64":
        import numpy as np

        return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")
    return vector


def embedding_response(
    vectors: Sequence[Sequence[float]], request: EmbeddingRequest, served_name: str, tokens: int
) -> dict[str, Any]:
    return {
        "object": "list",
        "data": [
            {
                "object": "embedding",
                "index": i,
                "embedding": encode(cut(v, request.dimensions), request.encoding_format),
            }
            for i, v in enumerate(vectors)
        ],
        "model": served_name,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def rerank_response(
    scores: Sequence[float], request: RerankRequest, served_name: str, tokens: int
) -> dict[str, Any]:
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    if request.top_n is not None:
        order = order[: request.top_n]
    results: list[dict[str, Any]] = []
    for i in order:
        result: dict[str, Any] = {"index": i, "relevance_score": float(scores[i])}
        if request.return_documents:
            result["document"] = {"text": request.documents[i]}
        results.append(result)
    return {
        "id": f"rerank-{uuid.uuid4().hex}",
        "model": served_name,
        "results": results,
        "usage": {"total_tokens": tokens},
    }


# --- the models (sentence-transformers, imported only in the server process) ---


class Backend(Protocol):
    """What the app needs of a model: vectors or scores, and the tokens read."""

    def embed(self, request: EmbeddingRequest) -> tuple[list[list[float]], int]: ...

    def rerank(self, query: str, documents: Sequence[str]) -> tuple[list[float], int]: ...


class SentenceTransformersBackend:
    """One SentenceTransformer or CrossEncoder, called by one request at a time."""

    def __init__(self, args: argparse.Namespace) -> None:
        import torch

        if args.threads:
            torch.set_num_threads(args.threads)
        self.torch = torch
        self.kind = args.kind
        self.batch_size = args.batch_size
        # torch runs one forward pass at a time well; concurrent requests queue here.
        self.lock = threading.Lock()
        model_kwargs: dict[str, Any] = {}
        if args.dtype and args.dtype != "auto":
            model_kwargs["dtype"] = getattr(torch, args.dtype)
        if args.kind == kinds.RERANK:
            from sentence_transformers import CrossEncoder

            self.model: Any = CrossEncoder(
                args.model,
                device=args.device,
                max_length=args.max_tokens,
                trust_remote_code=False,
                local_files_only=True,
                model_kwargs=model_kwargs,
            )
        else:
            self.model = _sentence_transformer(args, model_kwargs)
        self.tokenizer: Any = self.model.tokenizer
        self.max_tokens = int(args.max_tokens or self.model.max_seq_length or 512)
        self.truncate = not args.no_truncate
        self.served_name = args.served_name

    def _refuse_long(self, counts: Sequence[int], limit: int) -> None:
        """Without truncation an input over ``limit`` tokens is a 400 naming the limit."""
        longest = max(counts, default=0)
        if not self.truncate and longest > limit:
            raise BadRequest(too_long_message(longest, self.served_name, limit), param="input")

    def embed(self, request: EmbeddingRequest) -> tuple[list[list[float]], int]:
        with self.lock:
            if request.texts is not None:
                return self._embed_texts(list(request.texts))
            return self._embed_ids(request.token_ids or ())

    def _embed_texts(self, texts: list[str]) -> tuple[list[list[float]], int]:
        # sentence-transformers' own encode, so the vectors are exactly the library's; the
        # fast tokenizer counts the tokens it reads (cut at the same max_seq_length).
        limit = self.model.max_seq_length
        if not self.truncate:
            whole = self.tokenizer(texts, truncation=False)["input_ids"]
            self._refuse_long([len(ids) for ids in whole], limit)
        counted = self.tokenizer(texts, truncation=True, max_length=limit)
        tokens = sum(len(ids) for ids in counted["input_ids"])
        vectors = self.model.encode(
            texts, batch_size=self.batch_size, convert_to_numpy=True, show_progress_bar=False
        )
        return vectors.astype("float32").tolist(), tokens

    def _embed_ids(self, batches: Sequence[Sequence[int]]) -> tuple[list[list[float]], int]:
        self._refuse_long([len(ids) for ids in batches], self.max_tokens)
        # Longest first, as encode does: batches pad less.
        order = sorted(range(len(batches)), key=lambda i: -len(batches[i]))
        vectors: list[list[float]] = [[] for _ in batches]
        tokens = 0
        with self.torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                chunk = order[start : start + self.batch_size]
                features = self._id_features([batches[i] for i in chunk])
                tokens += int(features["attention_mask"].sum())
                features = {k: v.to(self.model.device) for k, v in features.items()}
                out = self.model(features)["sentence_embedding"].float().cpu()
                for i, row in zip(chunk, out.tolist(), strict=True):
                    vectors[i] = row
        return vectors, tokens

    def _id_features(self, batch: Sequence[Sequence[int]]) -> dict[str, Any]:
        """Model inputs for token ids as given, cut to the maximum and right-padded."""
        vocab = len(self.tokenizer)
        for ids in batch:
            bad = next((t for t in ids if not 0 <= t < vocab), None)
            if bad is not None:
                raise BadRequest(
                    f"token id {bad} is outside the model's vocabulary (0..{vocab - 1})",
                    param="input",
                )
        rows = [list(ids[: self.max_tokens]) for ids in batch]
        width = max(len(r) for r in rows)
        pad = self.tokenizer.pad_token_id or 0
        ids_t = self.torch.tensor([r + [pad] * (width - len(r)) for r in rows])
        mask = self.torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
        features = {"input_ids": ids_t, "attention_mask": mask}
        if "token_type_ids" in getattr(self.tokenizer, "model_input_names", ()):
            features["token_type_ids"] = self.torch.zeros_like(ids_t)
        return features

    def rerank(self, query: str, documents: Sequence[str]) -> tuple[list[float], int]:
        pairs = [(query, d) for d in documents]
        with self.lock:
            if not self.truncate:
                whole = self.tokenizer([query] * len(documents), list(documents))["input_ids"]
                self._refuse_long([len(ids) for ids in whole], self.max_tokens)
            encoded = self.tokenizer(
                [query] * len(documents),
                list(documents),
                truncation=True,
                max_length=self.max_tokens,
            )
            tokens = sum(len(ids) for ids in encoded["input_ids"])
            scores = self.model.predict(
                pairs, batch_size=self.batch_size, convert_to_numpy=True, show_progress_bar=False
            )
        return [float(s) for s in scores], tokens


def _sentence_transformer(args: argparse.Namespace, model_kwargs: dict[str, Any]) -> Any:
    """The folder's own sentence-transformers modules, or (a plain Transformers checkpoint)
    the family's pooling and normalization put after it."""
    from sentence_transformers import SentenceTransformer

    common: dict[str, Any] = {
        "device": args.device,
        "trust_remote_code": False,
        "local_files_only": True,
    }
    if os.path.exists(os.path.join(args.model, "modules.json")):
        model = SentenceTransformer(args.model, model_kwargs=model_kwargs, **common)
    else:
        from sentence_transformers import models

        body = models.Transformer(args.model, model_kwargs=model_kwargs)
        modules: list[Any] = [
            body,
            models.Pooling(
                body.get_word_embedding_dimension(),
                pooling_mode=POOLING_MODES.get(args.pooling or "mean", "mean"),
            ),
        ]
        if args.normalize:
            modules.append(models.Normalize())
        model = SentenceTransformer(modules=modules, **common)
    if args.max_tokens:
        # The family's context_length, but never past the positions the model has.
        positions = getattr(model[0].auto_model.config, "max_position_embeddings", None)
        model.max_seq_length = min(args.max_tokens, positions or args.max_tokens)
    return model


# --- HTTP ---


def too_long_message(tokens: int, name: str, limit: int) -> str:
    """The 400's line for an input over the limit (the words zoo's proxy uses too)."""
    return f"an input has {tokens} tokens: {name} takes at most {limit} tokens per input"


def _error(error: BadRequest) -> JSONResponse:
    from starlette.responses import JSONResponse

    return JSONResponse(error.body(), status_code=error.status)


def build_app(
    backend: Backend,
    *,
    kind: str,
    served_name: str,
    api_key: str | None,
    allowed_dimensions: Sequence[int] = (),
) -> Starlette:
    """The ASGI app for one model of ``kind`` (a fake ``backend`` in unit tests)."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    created = int(time.time())

    def authorized(request: Request) -> bool:
        if not api_key:
            return True
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        given = token.strip() if scheme.lower() == "bearer" else ""
        return hmac.compare_digest(given.encode(), api_key.encode())

    async def json_body(request: Request) -> object:
        try:
            return await request.json()
        except ValueError as error:
            raise BadRequest("the request body is not valid JSON") from error

    def guarded(handler: Handler) -> Handler:
        async def run(request: Request) -> JSONResponse:
            if not authorized(request):
                return _error(
                    BadRequest(
                        "invalid or missing API key (send Authorization: Bearer <key>)",
                        status=401,
                        code="invalid_api_key",
                        kind="authentication_error",
                    )
                )
            try:
                return await handler(request)
            except BadRequest as error:
                return _error(error)

        return run

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def list_models(request: Request) -> JSONResponse:
        model = {
            "id": served_name,
            "object": "model",
            "created": created,
            "owned_by": "zoo",
            "kind": kind,
        }
        return JSONResponse({"object": "list", "data": [model]})

    async def embeddings(request: Request) -> JSONResponse:
        parsed = parse_embedding_request(await json_body(request), served_name, allowed_dimensions)
        vectors, tokens = await run_in_threadpool(backend.embed, parsed)
        return JSONResponse(embedding_response(vectors, parsed, served_name, tokens))

    async def rerank(request: Request) -> JSONResponse:
        parsed = parse_rerank_request(await json_body(request), served_name)
        scores, tokens = await run_in_threadpool(backend.rerank, parsed.query, parsed.documents)
        return JSONResponse(rerank_response(scores, parsed, served_name, tokens))

    async def other_kind(request: Request) -> JSONResponse:
        message = kinds.wrong_route(served_name, kind, request.url.path)
        raise BadRequest(message or "not found", status=404, code="wrong_route")

    serve = {kinds.EMBEDDING: embeddings, kinds.RERANK: rerank}[kind]
    routes = [
        Route("/health", health, methods=["GET"]),
        Route("/v1/models", guarded(list_models), methods=["GET"]),
        *(Route(path, guarded(serve), methods=["POST"]) for path in kinds.KINDS[kind].routes),
        *(
            Route(path, guarded(other_kind), methods=["POST"])
            for other in kinds.KINDS.values()
            if other.name != kind
            for path in other.routes
        ),
    ]

    async def not_found(request: Request, exc: Exception) -> JSONResponse:
        status = getattr(exc, "status_code", 404)
        message = "method not allowed" if status == 405 else f"no route {request.url.path}"
        return _error(BadRequest(message, status=status, code="not_found"))

    return Starlette(routes=routes, exception_handlers={404: not_found, 405: not_found})


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="zoo_transformers.pooling_server")
    parser.add_argument("--kind", choices=(kinds.EMBEDDING, kinds.RERANK), required=True)
    parser.add_argument("--model", required=True, help="the model folder")
    parser.add_argument("--served-name", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or mps")
    parser.add_argument("--dtype", default=None, help="float32, float16, bfloat16 or auto")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads; 0: torch's")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-tokens", type=int, default=0, help="truncate inputs to this")
    parser.add_argument(
        "--no-truncate", action="store_true", help="refuse longer inputs (400) instead"
    )
    parser.add_argument(
        "--dimensions",
        type=int,
        action="append",
        default=[],
        help="a vector size requests may ask for (repeat: the full size, Matryoshka sizes)",
    )
    parser.add_argument("--pooling", choices=tuple(POOLING_MODES), default=None)
    parser.add_argument("--normalize", action="store_true")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import uvicorn

    backend = SentenceTransformersBackend(args)
    app = build_app(
        backend,
        kind=args.kind,
        served_name=args.served_name,
        api_key=os.environ.get(API_KEY_ENV) or None,
        allowed_dimensions=tuple(args.dimensions),
    )
    # uvicorn stops cleanly on SIGTERM (zoo stop); its access log would print every request.
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
