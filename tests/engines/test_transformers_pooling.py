"""The Transformers engine's embedding and rerank mode: the server command by kind, and the
pooling server's HTTP behaviour (OpenAI shapes, key, errors) against a stand-in model.

The real model behind the same app (sentence-transformers in the engine's environment) is
tested end to end in tests/e2e/test_embeddings_transformers.py.
"""

from __future__ import annotations

import base64
import math
import struct
import threading
from collections.abc import Sequence

import pytest
from starlette.testclient import TestClient
from zoo_transformers import pooling_server
from zoo_transformers.pooling_server import EmbeddingRequest, build_app, parse_args

from zoo.catalog.model import EmbeddingFacts, Family, RerankFacts, Spec
from zoo.engine import Engine, LaunchContext, ServerCommand
from zoo.errors import ZooError

KEY = "sk-test-key"


def family(kind: str, fmt: str = "pytorch", **facts: object) -> Family:
    facts.setdefault("abilities", ())
    return Family(
        name=f"a-{kind}-model",
        description="",
        context_length=256,
        languages=("en",),
        specs=(Spec(format=fmt, size=0.02, quantizations=("none",), sources=()),),
        kind=kind,
        **facts,  # type: ignore[arg-type]
    )


def command(engine: Engine, fam: Family, **options: object) -> ServerCommand:
    ctx = LaunchContext(
        family=fam,
        spec=fam.specs[0],
        quantization="none",
        model_path="/models/m",
        served_name="m",
        port=8011,
        api_key=KEY,
        python="/envs/transformers/bin/python",
        **options,  # type: ignore[arg-type]
    )
    return engine.server_command(ctx)


def test_transformers_serves_every_kind(engines: dict[str, Engine]) -> None:
    assert engines["transformers"].capabilities.kinds == ("llm", "embedding", "rerank")
    requirements = engines["transformers"].capabilities.requirements
    assert any(r.startswith("sentence-transformers==") for r in requirements)


def test_embedding_models_start_the_pooling_server_with_their_facts(
    engines: dict[str, Engine],
) -> None:
    facts = EmbeddingFacts(768, matryoshka_dimensions=(256, 64), pooling="mean", normalized=True)
    cmd = command(engines["transformers"], family("embedding", embedding=facts), threads=3)
    argv = cmd.argv
    assert argv[:3] == ("/envs/transformers/bin/python", "-m", "zoo_transformers.pooling_server")
    args = parse_args(argv[3:])  # what the plugin builds, the server takes
    assert (args.kind, args.model, args.served_name, args.port) == (
        "embedding",
        "/models/m",
        "m",
        8011,
    )
    assert args.dimensions == [768, 256, 64]
    assert (args.pooling, args.normalize, args.max_tokens, args.threads) == ("mean", True, 256, 3)
    assert args.device == "cpu"
    # The key is enforced by the server itself, from its environment, never argv.
    assert KEY not in " ".join(argv)
    assert cmd.env[pooling_server.API_KEY_ENV] == KEY
    assert cmd.env["HF_HUB_OFFLINE"] == "1"
    assert cmd.api_key_enforced and cmd.health_path == "/health" and cmd.request_model is None


def test_rerankers_start_the_pooling_server_in_rerank_mode(engines: dict[str, Engine]) -> None:
    cmd = command(engines["transformers"], family("rerank"), device="cuda", dtype="float16")
    args = parse_args(cmd.argv[3:])
    assert (args.kind, args.device, args.dtype) == ("rerank", "cuda", "float16")
    assert args.dimensions == []  # no embedding facts, no sizes
    metal = command(engines["transformers"], family("rerank"), device="metal").argv
    assert metal[metal.index("--device") + 1] == "mps"


def test_language_models_still_get_transformers_serve(engines: dict[str, Engine]) -> None:
    argv = command(engines["transformers"], family("llm", abilities=("chat",))).argv
    assert argv[:2] == ("/envs/transformers/bin/transformers", "serve")
    assert "zoo_transformers.pooling_server" not in argv


def test_quantized_embedding_weights_are_one_clear_error(engines: dict[str, Engine]) -> None:
    with pytest.raises(ZooError, match="embedding models in pytorch format only, not gptq"):
        command(engines["transformers"], family("embedding", fmt="gptq"))


# --- the pooling server's app, with a stand-in model ---


class FakeModel:
    """Vectors (i+1, 1, 0, 0...) for the i-th text; rerank scores: the document's length."""

    def __init__(self) -> None:
        self.calls: list[EmbeddingRequest] = []

    def embed(self, request: EmbeddingRequest) -> tuple[list[list[float]], int]:
        self.calls.append(request)
        items = request.texts if request.texts is not None else request.token_ids or ()
        vectors = [[float(i + 1), 1.0, 0.5, 0.25] for i in range(len(items))]
        return vectors, 7 * len(items)

    def rerank(self, query: str, documents: Sequence[str]) -> tuple[list[float], int]:
        return [float(len(d)) for d in documents], 3 * len(documents)


def client(kind: str, model: FakeModel | None = None, key: str | None = KEY) -> TestClient:
    app = build_app(
        model or FakeModel(),
        kind=kind,
        served_name="m",
        api_key=key,
        allowed_dimensions=(4, 2),
    )
    return TestClient(app, headers={"Authorization": f"Bearer {KEY}"} if key else {})


def test_the_key_is_required_except_for_health() -> None:
    http = client("embedding")
    assert http.get("/health", headers={"Authorization": ""}).status_code == 200
    for wrong in ("", "Bearer nope", f"Basic {KEY}"):
        reply = http.post("/v1/embeddings", json={"input": "x"}, headers={"Authorization": wrong})
        assert reply.status_code == 401, wrong
        assert reply.json()["error"]["code"] == "invalid_api_key"
    assert http.get("/v1/models", headers={"Authorization": "Bearer no"}).status_code == 401
    assert http.post("/v1/embeddings", json={"input": "x"}).status_code == 200
    # No key asked for: everyone is served.
    assert client("embedding", key=None).post("/v1/embeddings", json={"input": "x"}).is_success


def test_models_lists_the_served_name() -> None:
    data = client("rerank").get("/v1/models").json()["data"]
    assert [(m["id"], m["kind"]) for m in data] == [("m", "rerank")]


def test_embeddings_answer_in_openai_shape() -> None:
    model = FakeModel()
    reply = client("embedding", model).post("/v1/embeddings", json={"input": ["a", "b"]})
    body = reply.json()
    assert body["object"] == "list" and body["model"] == "m"
    assert [(d["object"], d["index"]) for d in body["data"]] == [("embedding", 0), ("embedding", 1)]
    assert body["data"][1]["embedding"] == [2.0, 1.0, 0.5, 0.25]
    assert body["usage"] == {"prompt_tokens": 14, "total_tokens": 14}
    # One string is one input; token ids go to the model as ids.
    single = client("embedding", model).post("/v1/embeddings", json={"input": "a", "model": "m"})
    assert len(single.json()["data"]) == 1
    client("embedding", model).post("/v1/embeddings", json={"input": [[5, 6], [7]]})
    assert model.calls[-1].token_ids == ((5, 6), (7,)) and model.calls[-1].texts is None
    client("embedding", model).post("/v1/embeddings", json={"input": [5, 6]})
    assert model.calls[-1].token_ids == ((5, 6),)


def test_base64_is_little_endian_float32_of_the_same_vector() -> None:
    http = client("embedding")
    floats = http.post("/v1/embeddings", json={"input": "a"}).json()["data"][0]["embedding"]
    packed = http.post("/v1/embeddings", json={"input": "a", "encoding_format": "base64"})
    raw = base64.b64decode(packed.json()["data"][0]["embedding"])
    assert list(struct.unpack(f"<{len(raw) // 4}f", raw)) == floats


def test_dimensions_cut_and_renormalize_or_are_refused() -> None:
    http = client("embedding")
    cut = http.post("/v1/embeddings", json={"input": "a", "dimensions": 2}).json()
    vector = cut["data"][0]["embedding"]
    assert vector == pytest.approx([1 / math.sqrt(2), 1 / math.sqrt(2)])
    full = http.post("/v1/embeddings", json={"input": "a", "dimensions": 4}).json()
    assert len(full["data"][0]["embedding"]) == 4
    refused = http.post("/v1/embeddings", json={"input": "a", "dimensions": 3})
    assert refused.status_code == 400
    assert refused.json()["error"]["message"] == (
        "model 'm' cannot give 3-dimensional vectors; 'dimensions' may be 4, 2"
    )
    assert refused.json()["error"]["param"] == "dimensions"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"input": []}, "'input' is an empty list"),
        ({}, "'input' is required"),
        ({"input": [1, "a"]}, "'input' must be a string, a list of strings"),
        ({"input": [[]]}, "empty list of token ids"),
        ({"input": "a", "encoding_format": "int8"}, "'encoding_format' must be 'float' or"),
        ({"input": "a", "dimensions": 0}, "'dimensions' must be a positive integer"),
        ({"input": "a", "dimensions": True}, "'dimensions' must be a positive integer"),
        ({"input": ["a"] * 2049}, "at most 2048 per request"),
    ],
)
def test_bad_embedding_requests_are_400_with_one_line(body: object, message: str) -> None:
    reply = client("embedding").post("/v1/embeddings", json=body)
    assert reply.status_code == 400
    assert message in reply.json()["error"]["message"]


def test_another_model_name_is_404() -> None:
    reply = client("embedding").post("/v1/embeddings", json={"input": "a", "model": "other"})
    assert reply.status_code == 404
    assert reply.json()["error"]["code"] == "model_not_found"


def test_not_json_is_400() -> None:
    reply = client("embedding").post("/v1/embeddings", content=b"{nope")
    assert reply.status_code == 400 and "not valid JSON" in reply.json()["error"]["message"]


def test_a_route_of_another_kind_names_the_right_one() -> None:
    chat = client("embedding").post("/v1/chat/completions", json={"messages": []})
    assert chat.status_code == 404
    assert chat.json()["error"]["message"] == (
        "model 'm' is an embedding model: send it to /v1/embeddings, not /v1/chat/completions"
    )
    rerank = client("embedding").post("/v1/rerank", json={"query": "q", "documents": ["d"]})
    assert "send it to /v1/embeddings" in rerank.json()["error"]["message"]
    embed = client("rerank").post("/v1/embeddings", json={"input": "a"})
    assert embed.status_code == 404
    assert "is a reranker: send it to /v1/rerank" in embed.json()["error"]["message"]
    unknown = client("rerank").get("/nowhere")
    assert unknown.status_code == 404 and "error" in unknown.json()


DOCS = ["tiny", "a much longer document", {"text": "medium text"}]


@pytest.mark.parametrize("path", ["/v1/rerank", "/rerank", "/v2/rerank"])
def test_rerank_sorts_by_score_with_the_original_index(path: str) -> None:
    body = client("rerank").post(path, json={"query": "q", "documents": DOCS}).json()
    assert [r["index"] for r in body["results"]] == [1, 2, 0]
    assert [r["relevance_score"] for r in body["results"]] == [22.0, 11.0, 4.0]
    assert body["results"][1]["document"] == {"text": "medium text"}
    assert body["usage"] == {"total_tokens": 9} and body["model"] == "m"


def test_rerank_honours_top_n_and_return_documents() -> None:
    http = client("rerank")
    top = http.post("/v1/rerank", json={"query": "q", "documents": DOCS, "top_n": 2}).json()
    assert [r["index"] for r in top["results"]] == [1, 2]
    bare = http.post(
        "/v1/rerank", json={"query": "q", "documents": DOCS, "return_documents": False}
    ).json()
    assert all("document" not in r for r in bare["results"]) and len(bare["results"]) == 3
    everything = http.post("/v1/rerank", json={"query": "q", "documents": DOCS, "top_n": 10})
    assert len(everything.json()["results"]) == 3


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"documents": ["d"]}, "'query' is required"),
        ({"query": "q", "documents": []}, "'documents' must be a non-empty list"),
        ({"query": "q", "documents": [{"txt": "d"}]}, "each document must be a string"),
        ({"query": "q", "documents": ["d"], "top_n": -1}, "'top_n' must be a non-negative"),
        ({"query": "q", "documents": ["d"], "return_documents": "yes"}, "true or false"),
    ],
)
def test_bad_rerank_requests_are_400(body: object, message: str) -> None:
    reply = client("rerank").post("/v1/rerank", json=body)
    assert reply.status_code == 400
    assert message in reply.json()["error"]["message"]


# --- the spec's truncate ---


def test_truncate_false_in_the_spec_starts_the_server_refusing_long_inputs(
    engines: dict[str, Engine],
) -> None:
    engine = engines["transformers"]
    cut = parse_args(command(engine, family("embedding", embedding=EmbeddingFacts(4))).argv[3:])
    assert cut.no_truncate is False and cut.max_tokens == 256
    strict = EmbeddingFacts(4, truncate=False)
    refused = parse_args(command(engine, family("embedding", embedding=strict)).argv[3:])
    assert refused.no_truncate is True
    ranker = family("rerank", rerank=RerankFacts(truncate=False))
    assert parse_args(command(engine, ranker).argv[3:]).no_truncate is True


class WordTokenizer:
    """One token per word plus two special ones, like a BERT tokenizer's [CLS] ... [SEP]."""

    def __call__(
        self, texts: list[str], pairs: list[str] | None = None, **options: object
    ) -> dict[str, list[list[int]]]:
        words = [
            t.split() + (p.split() if pairs else [])
            for t, p in zip(texts, pairs or texts, strict=True)
        ]
        rows = [[0, *range(1, len(w) + 1), 9] for w in words]
        if options.get("truncation"):
            most = int(options["max_length"])  # type: ignore[call-overload]
            rows = [[*r[: most - 1], 9] if len(r) > most else r for r in rows]
        return {"input_ids": rows}


class FakeSentenceModel:
    max_seq_length = 8

    def encode(self, texts: list[str], **options: object) -> object:
        import numpy

        return numpy.ones((len(texts), 4), dtype="float32")


def backend(truncate: bool) -> pooling_server.SentenceTransformersBackend:
    # The real backend's request handling, with a tokenizer and model that need no torch.
    made = object.__new__(pooling_server.SentenceTransformersBackend)
    made.__dict__.update(
        tokenizer=WordTokenizer(),
        model=FakeSentenceModel(),
        max_tokens=8,
        truncate=truncate,
        served_name="m",
        lock=threading.Lock(),
        kind="embedding",
        batch_size=32,
    )
    return made


def test_truncate_false_is_one_400_naming_the_limit_and_true_cuts() -> None:
    long_text = " ".join(["word"] * 20)  # 22 tokens with the special ones
    strict = client("embedding", backend(truncate=False))  # type: ignore[arg-type]
    answer = strict.post("/v1/embeddings", json={"model": "m", "input": ["a b", long_text]})
    assert answer.status_code == 400
    assert answer.json()["error"]["message"] == (
        "an input has 22 tokens: m takes at most 8 tokens per input"
    )
    ids = strict.post("/v1/embeddings", json={"model": "m", "input": [list(range(9))]})
    assert ids.status_code == 400 and "takes at most 8 tokens" in ids.text
    fits = strict.post("/v1/embeddings", json={"model": "m", "input": ["a b c"]})
    assert fits.status_code == 200 and fits.json()["usage"]["prompt_tokens"] == 5
    cut = client("embedding", backend(truncate=True))  # type: ignore[arg-type]
    kept = cut.post("/v1/embeddings", json={"model": "m", "input": [long_text]})
    assert kept.status_code == 200 and kept.json()["usage"]["prompt_tokens"] == 8
