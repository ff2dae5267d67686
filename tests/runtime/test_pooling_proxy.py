"""``zoo launch`` of an embedding model or reranker: zoo's one-model proxy stands in front of
every engine and answers as the gateway does (zoo.serve.pooling), whatever the engine does.

The engine is tests/serve/gateway_engine.py, a real process that behaves like llama.cpp does
here: full-length float vectors whatever ``dimensions``/``encoding_format`` say, rerank
results in document order with their documents, only ``/v1/rerank``, and a check of the key
it is given.
"""

from __future__ import annotations

import base64
import json
import math
import sys
import threading
from array import array
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from runtime_helpers import make_plan

from zoo.catalog.model import family_from_data
from zoo.engine import Engine, LaunchContext, ServerCommand
from zoo.plan import LaunchOptions, Plan
from zoo.runtime import launcher, process
from zoo.runtime.invocation import ModelFiles, invocation
from zoo.serve.single import ProxyConfig, SingleProxy

GATEWAY_ENGINE = Path(__file__).parents[1] / "serve" / "gateway_engine.py"
KEY = "k-pool-1"
DIMS = 8


class PoolingEngine(Engine):
    """gateway_engine.py in embedding or rerank mode; it checks the key it is given (in its
    environment), as llama.cpp does."""

    name = "fake-pooling"
    display_name = "Fake pooling engine"

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.contexts: list[LaunchContext] = []

    def server_command(self, ctx: LaunchContext) -> ServerCommand:
        self.contexts.append(ctx)
        argv = [ctx.python, str(GATEWAY_ENGINE), "--port", str(ctx.port), "--kind", self.kind]
        argv += ["--dims", str(DIMS), "--name", ctx.served_name]
        return ServerCommand(
            argv=tuple(argv), env={"GW_API_KEY": ctx.api_key or ""}, api_key_enforced=True
        )


def pooling_plan(kind: str, **options: Any) -> Plan:
    facts: dict[str, Any] = {"kind": kind}
    if kind == "embedding":
        facts["embedding"] = {"dimensions": DIMS, "matryoshka_dimensions": [4, 2]}
    family = family_from_data(
        {
            "name": f"tiny-{kind}",
            "description": "test",
            "context_length": 512,
            "languages": ["en"],
            **facts,
            "specs": [
                {
                    "format": "pytorch",
                    "size": 0.001,
                    "quantizations": ["none"],
                    "sources": {"huggingface": {"model_id": f"test/tiny-{kind}"}},
                }
            ],
        }
    )
    options.setdefault("detach", True)
    options.setdefault("ready_timeout", 20)
    base = make_plan(options=LaunchOptions(**options), context_length=512)
    return Plan(**{**base.__dict__, "family": family, "spec": family.specs[0]})


@pytest.fixture(scope="module")
def launched(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One embedding model and one reranker launched with a key, as ``zoo launch`` does."""
    import os

    home = tmp_path_factory.mktemp("zoo-home")
    saved = os.environ.get("ZOO_HOME")
    os.environ["ZOO_HOME"] = str(home)
    started: dict[str, Any] = {}
    try:
        for kind in ("embedding", "rerank"):
            engine = PoolingEngine(kind)
            port = process.free_port()
            plan = pooling_plan(kind, api_key=KEY, port=port)
            files = ModelFiles(str(home))
            running = launcher.start_instance(plan, engine, files, say=lambda _: None)
            started[kind] = {"running": running, "engine": engine, "plan": plan, "files": files}
        yield started
    finally:
        for item in started.values():
            running = item["running"]
            launcher.stop(running.instance, reap=running.server, reap_proxy=running.proxy)
        if saved is None:
            os.environ.pop("ZOO_HOME", None)
        else:
            os.environ["ZOO_HOME"] = saved


def _post(item: dict[str, Any], path: str, body: dict[str, Any], key: str | None = KEY) -> Any:
    inst = item["running"].instance
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.post(
        f"http://127.0.0.1:{inst.port}{path}",
        json={"model": inst.served_name, **body},
        headers=headers,
        timeout=10,
        trust_env=False,
    )


def test_the_engine_runs_without_the_key_behind_the_proxy(launched: dict[str, Any]) -> None:
    for item in launched.values():
        running = item["running"]
        assert running.proxy is not None and running.instance.engine_port is not None
        assert item["engine"].contexts[-1].api_key is None  # the proxy checks it
        assert item["engine"].contexts[-1].host == "127.0.0.1"
        for path in ("/v1/embeddings", "/v1/rerank", "/v2/rerank", "/v1/chat/completions"):
            denied = _post(item, path, {"input": "x"}, key=None)
            assert denied.status_code == 401, (path, denied.text)
            assert _post(item, path, {"input": "x"}, key="wrong").status_code == 401


def test_dimensions_are_cut_and_renormalized_and_base64_decodes(
    launched: dict[str, Any],
) -> None:
    item = launched["embedding"]
    full = _post(item, "/v1/embeddings", {"input": ["a cat", "a dog"]})
    assert full.status_code == 200, full.text
    vectors = [d["embedding"] for d in full.json()["data"]]
    assert [len(v) for v in vectors] == [DIMS, DIMS]
    cut = _post(item, "/v1/embeddings", {"input": ["a cat", "a dog"], "dimensions": 4}).json()
    for got, whole in zip((d["embedding"] for d in cut["data"]), vectors, strict=True):
        norm = math.sqrt(sum(v * v for v in whole[:4]))
        assert got == pytest.approx([v / norm for v in whole[:4]], abs=1e-6)
    assert cut["model"] == "tiny-embedding"
    packed = _post(
        item, "/v1/embeddings", {"input": "a cat", "encoding_format": "base64", "dimensions": 2}
    ).json()["data"][0]["embedding"]
    floats = array("f")
    floats.frombytes(base64.b64decode(packed))
    if sys.byteorder == "big":
        floats.byteswap()
    norm = math.sqrt(sum(v * v for v in vectors[0][:2]))
    assert floats.tolist() == pytest.approx([v / norm for v in vectors[0][:2]], abs=1e-6)
    # The engine was asked for the plain thing: no dimensions, no encoding_format.
    assert "dimensions" not in cut["seen"]["fields"]


def test_a_size_the_model_was_not_trained_for_is_a_400_naming_the_sizes(
    launched: dict[str, Any],
) -> None:
    refused = _post(launched["embedding"], "/v1/embeddings", {"input": "x", "dimensions": 3})
    assert refused.status_code == 400
    message = refused.json()["error"]["message"]
    assert "may be one of 2, 4, 8, not 3" in message and "tiny-embedding" in message
    empty = _post(launched["embedding"], "/v1/embeddings", {"input": []})
    assert empty.status_code == 400 and "empty list" in empty.json()["error"]["message"]
    inst = launched["embedding"]["running"].instance
    garbage = httpx.post(
        f"http://127.0.0.1:{inst.port}/v1/embeddings",
        content=b"[1,",
        headers={"Authorization": f"Bearer {KEY}"},
        trust_env=False,
    )
    assert garbage.status_code == 400 and "not JSON" in garbage.json()["error"]["message"]


def test_rerank_is_sorted_cut_and_documents_as_asked_on_every_route(
    launched: dict[str, Any],
) -> None:
    item = launched["rerank"]
    documents = ["paris is in france", {"text": "pandas eat bamboo"}, "pandas sleep"]
    body = {"query": "what do pandas eat", "documents": documents, "top_n": 2}
    for path in ("/v1/rerank", "/rerank", "/v2/rerank"):
        answer = _post(item, path, body)
        assert answer.status_code == 200, (path, answer.text)
        results = answer.json()["results"]
        assert [r["index"] for r in results] == [1, 2]
        assert results[0]["document"] == {"text": "pandas eat bamboo"}
        assert answer.json()["model"] == "tiny-rerank"
    bare = _post(item, "/v2/rerank", {**body, "return_documents": False}).json()["results"]
    assert [r["index"] for r in bare] == [1, 2] and all("document" not in r for r in bare)
    # The engine got plain strings ({"text"} unwrapped), and neither top_n nor the flag.
    seen = _post(item, "/v1/rerank", body).json()["seen"]["fields"]
    assert "top_n" not in seen and "return_documents" not in seen


def test_a_route_of_another_kind_is_a_400_naming_the_right_one(launched: dict[str, Any]) -> None:
    chat = {"messages": [{"role": "user", "content": "hi"}]}
    asked = _post(launched["embedding"], "/v1/chat/completions", chat)
    assert asked.status_code == 400
    assert asked.json()["error"]["message"] == (
        "model 'tiny-embedding' is an embedding model: send it to /v1/embeddings, "
        "not /v1/chat/completions"
    )
    vector = _post(launched["rerank"], "/v1/embeddings", {"input": "x"})
    assert vector.status_code == 400
    assert "is a reranker: send it to /v1/rerank" in vector.json()["error"]["message"]
    assert _post(launched["embedding"], "/v2/rerank", {"query": "q"}).status_code == 400


def test_models_shows_the_kind(launched: dict[str, Any]) -> None:
    for kind, item in launched.items():
        inst = item["running"].instance
        listed = httpx.get(
            f"http://127.0.0.1:{inst.port}/v1/models",
            headers={"Authorization": f"Bearer {KEY}"},
            trust_env=False,
        ).json()["data"]
        assert [(m["id"], m["kind"]) for m in listed] == [(f"tiny-{kind}", kind)]


def _cmdline(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="reads /proc")
def test_the_dry_run_shows_the_proxy_as_it_runs(launched: dict[str, Any]) -> None:
    from zoo.cli.launch_cmd import render_plan
    from zoo.launch import with_command

    for item in launched.values():
        running = item["running"]
        call = running.invocation
        assert _cmdline(running.proxy.pid) == list(call.proxy_argv)
        # The dry run: the same invocation before the private port is chosen (0 then).
        dry = with_command(item["plan"], item["engine"], hubs={})
        shown = list(dry.proxy_command)
        text = render_plan(dry)
        assert "proxy argv:   ZOO_PROXY_API_KEY=*** " + shown[0] in text and KEY not in text
        ran = list(call.proxy_argv)
        at = ran.index("--upstream-port") + 1
        assert shown[at] == "0" and shown[:at] + shown[at + 1 :] == ran[:at] + ran[at + 1 :]
        assert KEY not in " ".join(shown)
        if item["plan"].family.kind == "embedding":
            assert ran[ran.index("--matryoshka-dimensions") + 1] == "4,2"


def test_an_llm_gets_no_proxy_only_for_its_kind(tmp_path: Path) -> None:
    from runtime_helpers import FakeEngine

    call = invocation(make_plan(), FakeEngine(), ModelFiles(str(tmp_path)), port=8000)
    assert not call.proxied and call.proxy_argv == ()
    # zoo serve shapes answers itself: no extra hop before its embedding models.
    plan = pooling_plan("embedding")
    served = invocation(plan, PoolingEngine("embedding"), ModelFiles(str(tmp_path)), port=1)
    assert served.proxied
    gateway = invocation(
        plan, PoolingEngine("embedding"), ModelFiles(str(tmp_path)), port=1, pooling=False
    )
    assert not gateway.proxied


# ---- an engine's "input too large" error ---------------------------------------------------


@pytest.fixture
def too_large_engine() -> Iterator[int]:
    """An engine that answers every POST as llama.cpp answers an over-long input."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, fmt: str, *a: object) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            message = (
                "input (700 tokens) is too large to process. increase the physical batch "
                "size (current batch size: 512)"
            )
            body = json.dumps({"error": {"code": 500, "message": message}}).encode()
            self.send_response(500)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["embedding", "rerank"])
async def test_an_engines_too_large_error_is_one_400_naming_the_limit(
    too_large_engine: int, kind: str
) -> None:
    config = ProxyConfig("127.0.0.1", too_large_engine, "tiny", kind=kind, context_length=512)
    app = SingleProxy(config)
    body = {"input": "long " * 700} if kind == "embedding" else {"query": "q", "documents": ["d"]}
    path = "/v1/embeddings" if kind == "embedding" else "/v1/rerank"
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://proxy") as client:
            answer = await client.post(path, json=body)
    finally:
        await app.client.aclose()
    assert answer.status_code == 400
    assert answer.json()["error"]["message"] == (
        "an input has 700 tokens: tiny takes at most 512 tokens per input"
    )


@pytest.fixture
def llama_like_engine() -> Iterator[tuple[int, list[tuple[str, Any]]]]:
    """An engine that, like llama.cpp, refuses an input over 8 tokens (its "too large" 500),
    tokenizes on /tokenize (a word a token, [CLS]=101 and [SEP]=102 with add_special) and
    embeds token ids as given: the vector is the ids' count and sum."""
    seen: list[tuple[str, Any]] = []

    def tokens(text: str, special: bool) -> list[int]:
        words = [len(w) for w in text.split()]
        return [101, *words, 102] if special else words

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, fmt: str, *a: object) -> None:
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            seen.append((self.path, body))
            status, answer = 200, {}
            if self.path == "/tokenize":
                answer = {"tokens": tokens(body["content"], body.get("add_special", False))}
            elif self.path == "/detokenize":
                answer = {"content": " ".join("abcdefghij"[:n] for n in body["tokens"])}
            elif self.path == "/v1/rerank":  # [BOS] query [EOS] [SEP] document [EOS]
                pairs = [4 + len(body["query"].split()) + len(d.split()) for d in body["documents"]]
                if max(pairs) > 8:
                    status = 500
                    message = f"input ({max(pairs)} tokens) is too large to process. increase"
                    answer = {"error": {"code": 500, "message": message}}
                else:
                    results = [{"index": n, "relevance_score": p} for n, p in enumerate(pairs)]
                    answer = {"model": "m", "results": results, "usage": {}}
            else:
                items = body["input"]
                items = [items] if isinstance(items, str) else items
                ids = [tokens(i, True) if isinstance(i, str) else i for i in items]
                longest = max(len(i) for i in ids)
                if longest > 8:
                    status = 500
                    message = f"input ({longest} tokens) is too large to process. increase the"
                    answer = {"error": {"code": 500, "message": message + " physical batch"}}
                else:
                    data = [
                        {"object": "embedding", "index": n, "embedding": [len(i), sum(i)]}
                        for n, i in enumerate(ids)
                    ]
                    answer = {"object": "list", "data": data, "model": "m", "usage": {}}
            raw = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], seen
    finally:
        server.shutdown()
        server.server_close()


async def _embed_through(
    port: int, body: dict[str, Any], *, truncate: bool, kind: str = "embedding"
) -> httpx.Response:
    config = ProxyConfig("127.0.0.1", port, "tiny", kind=kind, context_length=8, truncate=truncate)
    app = SingleProxy(config)
    path = "/v1/rerank" if kind == "rerank" else "/v1/embeddings"
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://proxy") as client:
            return await client.post(path, json=body)
    finally:
        await app.client.aclose()


@pytest.mark.anyio
async def test_truncate_cuts_an_input_the_engine_refuses_keeping_its_special_tokens(
    llama_like_engine: tuple[int, list[tuple[str, Any]]],
) -> None:
    port, seen = llama_like_engine
    long_text = "a bb ccc dddd eeeee ffffff ggggggg hhhhhhhh"  # 10 tokens with [CLS], [SEP]
    answer = await _embed_through(port, {"input": ["a bb", long_text]}, truncate=True)
    assert answer.status_code == 200, answer.text
    # [CLS] + the first 6 words + [SEP]: what a Hugging Face tokenizer's truncation keeps.
    assert [d["embedding"] for d in answer.json()["data"]] == [
        [4, 101 + 1 + 2 + 102],
        [8, 101 + sum(range(1, 7)) + 102],
    ]
    # One refusal, the tokenizer asked, one retry with the ids.
    assert [path for path, _ in seen].count("/v1/embeddings") == 2
    assert seen[-1][1]["input"][1] == [101, 1, 2, 3, 4, 5, 6, 102]
    ids = await _embed_through(port, {"input": [[7] * 9, [5]]}, truncate=True)
    assert [d["embedding"] for d in ids.json()["data"]] == [[8, 7 * 8], [1, 5]]  # cut as given
    # A mixed list is still refused before anything reaches the engine.
    mixed = await _embed_through(port, {"input": ["a", [7] * 9]}, truncate=True)
    assert mixed.status_code == 400 and "all alike" in mixed.json()["error"]["message"]


@pytest.mark.anyio
async def test_truncate_false_is_one_400_naming_the_limit_and_nothing_is_cut(
    llama_like_engine: tuple[int, list[tuple[str, Any]]],
) -> None:
    port, seen = llama_like_engine
    answer = await _embed_through(port, {"input": "a b c d e f g h i"}, truncate=False)
    assert answer.status_code == 400
    assert answer.json()["error"]["message"] == (
        "an input has 11 tokens: tiny takes at most 8 tokens per input"
    )
    assert [path for path, _ in seen] == ["/v1/embeddings"]


@pytest.mark.anyio
async def test_truncate_cuts_a_rerank_document_to_fit_beside_the_query(
    llama_like_engine: tuple[int, list[tuple[str, Any]]],
) -> None:
    port, seen = llama_like_engine
    body = {"query": "q", "documents": ["hi", "a bb ccc dddd eeeee"]}  # pairs of 6 and 10
    answer = await _embed_through(port, body, truncate=True, kind="rerank")
    assert answer.status_code == 200, answer.text
    # 8 tokens: 4 specials, the query's 1, 3 of the document's; the client's text comes back.
    assert seen[-1] == ("/v1/rerank", {"query": "q", "documents": ["hi", "a ab abc"]})
    assert answer.json()["results"] == [
        {"index": 1, "relevance_score": 8, "document": {"text": "a bb ccc dddd eeeee"}},
        {"index": 0, "relevance_score": 6, "document": {"text": "hi"}},
    ]
    refused = await _embed_through(port, body, truncate=False, kind="rerank")
    assert refused.status_code == 400
    assert "an input has 10 tokens: tiny takes at most 8" in refused.json()["error"]["message"]


def test_the_spec_s_truncate_false_reaches_the_proxy(tmp_path: Path) -> None:
    from dataclasses import replace

    from zoo.serve import single

    files = ModelFiles(str(tmp_path))
    plan = pooling_plan("embedding")
    argv = invocation(plan, PoolingEngine("embedding"), files, port=1).proxy_argv
    assert "--no-truncate" not in argv  # the default: cut
    facts = replace(plan.family.embedding, truncate=False)  # type: ignore[type-var]
    strict = replace(plan, family=replace(plan.family, embedding=facts))
    argv = invocation(strict, PoolingEngine("embedding"), files, port=1).proxy_argv
    assert "--no-truncate" in argv
    seen: list[ProxyConfig] = []
    original = single.serve
    try:
        single.serve = lambda config, host, port: seen.append(config)  # type: ignore[assignment]
        single.main(list(argv[argv.index("--host") :]))
    finally:
        single.serve = original
    assert seen[0].truncate is False and seen[0].context_length == 512
