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
    assert flag(argv, "--middleware") == "zoo_vllm.auth.RequireKey"
    assert command.api_key_enforced and command.health_path == "/health"


def test_the_cpu_build_gets_the_same_pooling_flags(engines) -> None:
    fam = family()
    cpu = engines["vllm"].server_command(ctx(fam, variant="cpu", device="cpu"))
    assert cpu.argv[:4] == ("/envs/e/bin/python", "-m", "zoo_vllm.cpu_shim", "serve")
    assert flag(cpu.argv, "--runner") == "pooling" and flag(cpu.argv, "--convert") == "embed"
    assert "--enforce-eager" in cpu.argv
    assert "--middleware" not in cpu.argv  # no key asked: nothing to check


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
    assert flag(argv, "--middleware") == "zoo_vllm.auth.RequireKey"


def test_a_language_model_gets_no_pooling_flags(engines) -> None:
    llm = family(kind="llm", embedding=None, abilities=["chat"], architectures=["LlamaForCausalLM"])
    argv = engines["vllm"].server_command(ctx(llm)).argv
    assert "--runner" not in argv and "--convert" not in argv and "--pooler-config" not in argv


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
