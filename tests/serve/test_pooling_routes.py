"""Embeddings and rerank through the gateway on real processes: the official ``openai`` and
``ollama`` clients, routing by model name beside a chat model within a memory budget, the
answers made uniform (base64, Matryoshka ``dimensions``, sorted and cut rerank results), and
bodies or routes that do not fit the model refused before anything starts."""

from __future__ import annotations

import base64
import json
import math
import struct
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import ollama
import pytest
from openai import BadRequestError, OpenAI

from zoo.catalog.catalog import Catalog, load_catalog
from zoo.engine import LaunchContext, ServerCommand
from zoo.host import GIB
from zoo.kinds import KINDS, RERANK
from zoo.runtime import process
from zoo.serve.types import ModelEntry
from zoo.testing.hubserver import HubServer

from .gateway_engine import vector
from .gateway_helpers import ENGINE_SCRIPT, GatewayEngine, Running, running_gateway, serve_files

DIMS = 8
POOLING_FAMILY = """\
name: {name}
description: A tiny {kind} family for gateway tests.
kind: {kind}
context_length: 256
languages: [en]
{facts}specs:
  - format: ggufv2
    size: 0.001
    quantizations: [Q8_0]
    sources:
      huggingface:
        model_id: test/{name}-GGUF
        file: {name}.{{quantization}}.gguf
"""
EMBEDDING_FACTS = f"""\
embedding:
  dimensions: {DIMS}
  matryoshka_dimensions: [4, 2]
  pooling: mean
  normalized: true
"""
CHAT_FAMILY = """\
name: {name}
description: A tiny chat family for gateway tests.
context_length: 2048
languages: [en]
abilities: [chat]
specs:
  - format: ggufv2
    size: 0.001
    quantizations: [Q8_0]
    sources:
      huggingface:
        model_id: test/{name}-GGUF
        file: {name}.{{quantization}}.gguf
"""
FAMILIES = {"chat": "llm", "emb": "embedding", "emb2": "embedding", "rr": "rerank"}
PAGE = Path(__file__).resolve().parents[2] / "docs" / "serve.rst"
DOCS_URL = "http://127.0.0.1:11435"


class PoolingEngine(GatewayEngine):
    """The gateway test engine, serving every kind: started in the family's kind's mode."""

    capabilities = replace(GatewayEngine.capabilities, kinds=("llm", "embedding", "rerank"))

    def server_command(self, ctx: LaunchContext) -> ServerCommand:
        command = super().server_command(ctx)
        dims = ctx.family.embedding.dimensions if ctx.family.embedding else DIMS
        argv = (*command.argv, "--kind", ctx.family.kind, "--dims", str(dims))
        return replace(command, argv=argv)


def write_families(folder: Path, families: dict[str, str], dims: int = DIMS) -> Catalog:
    folder.mkdir()
    for name, kind in families.items():
        if kind == "llm":
            text = CHAT_FAMILY.format(name=name)
        else:
            facts = EMBEDDING_FACTS.replace(f"dimensions: {DIMS}", f"dimensions: {dims}")
            if kind == "rerank":
                facts = "rerank:\n  type: cross-encoder\n"
            text = POOLING_FAMILY.format(name=name, kind=kind, facts=facts)
        (folder / f"{name}.yaml").write_text(text)
    return load_catalog([folder], use_cache=False)


@pytest.fixture
def catalog(tmp_path: Path, hub_server: HubServer) -> Catalog:
    serve_files(hub_server, list(FAMILIES))
    return write_families(tmp_path / "specs", FAMILIES)


def entries(*names: str) -> dict[str, ModelEntry]:
    return {n: ModelEntry(name=n, family=n, download=True) for n in names}


@pytest.fixture
def gw(catalog: Catalog) -> Iterator[Running]:
    with running_gateway(catalog, entries(*FAMILIES), engine=PoolingEngine()) as running:
        yield running


def unit(values: list[float]) -> list[float]:
    norm = math.sqrt(sum(v * v for v in values))
    return [v / norm for v in values]


def close(got: list[float], want: list[float]) -> bool:
    """Equal as float32 (what base64 carries)."""
    return len(got) == len(want) and all(abs(a - b) < 1e-6 for a, b in zip(got, want, strict=True))


def loaded(gw: Running) -> set[str]:
    return {s.name for s in gw.gateway.scheduler.snapshot() if s.status == "ready"}


# ---- embeddings ----------------------------------------------------------------------------


def test_openai_client_embeddings_float_base64_lists_and_dimensions(gw: Running) -> None:
    client = OpenAI(base_url=gw.v1, api_key="none")
    # The official client asks for base64 when no format is given, and decodes it.
    default = client.embeddings.create(model="emb", input="a cat sat")
    assert default.model == "emb"
    assert close(default.data[0].embedding, vector("a cat sat", DIMS))
    assert default.usage.prompt_tokens == 3

    floats = client.embeddings.create(
        model="emb", input=["one", "two words", "three more words"], encoding_format="float"
    )
    assert [d.index for d in floats.data] == [0, 1, 2]
    for item, text in zip(floats.data, ["one", "two words", "three more words"], strict=True):
        assert item.embedding == vector(text, DIMS)  # passed through as the engine sent them

    # Matryoshka: cut to 4 and made length 1 again, though the engine ignores `dimensions`.
    cut = client.embeddings.create(model="emb", input="a cat sat", dimensions=4)
    assert close(cut.data[0].embedding, unit(vector("a cat sat", DIMS)[:4]))
    cut = client.embeddings.create(
        model="emb", input="a cat sat", dimensions=4, encoding_format="float"
    )
    assert close(cut.data[0].embedding, unit(vector("a cat sat", DIMS)[:4]))
    # Asked for base64 itself, the client hands over the string: float32 little-endian.
    packed = client.embeddings.create(
        model="emb", input="a cat sat", dimensions=4, encoding_format="base64"
    )
    raw = base64.b64decode(str(packed.data[0].embedding))
    assert close(list(struct.unpack("<4f", raw)), unit(vector("a cat sat", DIMS)[:4]))
    full = client.embeddings.create(model="emb", input="x", dimensions=DIMS)
    assert close(full.data[0].embedding, vector("x", DIMS))


def test_base64_is_float32_little_endian_and_the_engine_gets_a_plain_request(gw: Running) -> None:
    body = {"model": "emb", "input": ["hello"], "encoding_format": "base64", "dimensions": 2}
    answer = httpx.post(gw.v1 + "/embeddings", json=body, timeout=30).json()
    raw = base64.b64decode(answer["data"][0]["embedding"])
    assert len(raw) == 2 * 4
    assert close(list(struct.unpack("<2f", raw)), unit(vector("hello", DIMS)[:2]))
    # The engine was asked for full-length floats: no `dimensions`, no `encoding_format`.
    assert answer["seen"]["fields"] == ["input", "model"]
    assert answer["seen"]["model"] == "emb"
    # Token ids pass through to the engine as one input.
    ids = httpx.post(gw.v1 + "/embeddings", json={"model": "emb", "input": [1, 2, 3]}).json()
    assert ids["data"][0]["embedding"] == vector([1, 2, 3], DIMS)


def test_usage_is_counted_in_the_metrics(gw: Running) -> None:
    client = OpenAI(base_url=gw.v1, api_key="none")
    client.embeddings.create(model="emb", input=["a b c", "d e"])  # 5 prompt tokens
    reranked = httpx.post(
        gw.v1 + "/rerank", json={"model": "rr", "query": "q w", "documents": ["q", "w x"]}
    )
    assert reranked.json()["usage"] == {"total_tokens": 5}
    metrics = httpx.get(gw.url + "/metrics").text
    assert 'zoo_tokens_total{direction="in",model="emb"} 5.0' in metrics
    assert 'zoo_tokens_total{direction="in",model="rr"} 5.0' in metrics
    assert 'zoo_requests_total{model="emb",route="embedding",status="200"} 1.0' in metrics
    assert 'zoo_requests_total{model="rr",route="rerank",status="200"} 1.0' in metrics


# ---- rerank --------------------------------------------------------------------------------


DOCS = ["pandas eat bamboo", "paris is in france", "what pandas eat is bamboo shoots"]


@pytest.mark.parametrize("path", KINDS[RERANK].routes)
def test_rerank_sorted_cut_and_with_documents_on_every_route(gw: Running, path: str) -> None:
    body = {"model": "rr", "query": "what do pandas eat", "documents": DOCS}
    answer = httpx.post(gw.url + path, json=body, timeout=30)
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert data["model"] == "rr"
    # The engine answers in document order; the gateway sorts by score, highest first.
    assert [r["index"] for r in data["results"]] == [2, 0, 1]
    scores = [r["relevance_score"] for r in data["results"]]
    assert scores == sorted(scores, reverse=True)
    assert data["results"][0]["document"] == {"text": DOCS[2]}
    # top_n and return_documents are the gateway's: the engine scored every document.
    cut = httpx.post(
        gw.url + path,
        json={
            **body,
            "top_n": 2,
            "return_documents": False,
            "documents": [{"text": d} for d in DOCS],
        },
    ).json()
    assert [r["index"] for r in cut["results"]] == [2, 0]
    assert all("document" not in r for r in cut["results"])
    assert cut["seen"]["fields"] == ["documents", "model", "query"]
    many = httpx.post(gw.url + path, json={**body, "top_n": 50}).json()
    assert len(many["results"]) == 3


# ---- ollama --------------------------------------------------------------------------------


def test_ollama_client_embed_and_embeddings(gw: Running) -> None:
    client = ollama.Client(host=gw.url)
    one = client.embed(model="emb", input="a cat sat")
    assert one.model == "emb"
    assert len(one.embeddings) == 1 and close(list(one.embeddings[0]), vector("a cat sat", DIMS))
    assert one.prompt_eval_count == 3
    assert one.load_duration is not None and one.total_duration is not None
    assert one.total_duration >= one.load_duration
    several = client.embed(model="emb:latest", input=["one", "two"], dimensions=4)
    assert [len(v) for v in several.embeddings] == [4, 4]
    assert close(list(several.embeddings[1]), unit(vector("two", DIMS)[:4]))
    old = client.embeddings(model="emb", prompt="hello there")
    assert close(list(old.embedding), vector("hello there", DIMS))
    # Ollama's preload: nothing to embed loads the model.
    assert client.embed(model="emb2", input=[]).embeddings == []
    assert "emb2" in loaded(gw)
    with pytest.raises(ollama.ResponseError) as error:
        client.embed(model="emb", input="x", dimensions=3)
    assert error.value.status_code == 400 and "one of 2, 4, 8" in str(error.value)
    # Wrong routes name the Ollama route to use and the one the client asked.
    with pytest.raises(ollama.ResponseError) as error:
        client.embed(model="chat", input="x")
    assert error.value.error == (
        "model 'chat' is a language model: send it to /api/chat, not /api/embed"
    )
    with pytest.raises(ollama.ResponseError) as error:
        client.chat(model="emb", messages=[{"role": "user", "content": "hi"}])
    assert error.value.status_code == 400
    assert error.value.error.endswith("send it to /api/embed, not /api/chat")
    with pytest.raises(ollama.ResponseError) as error:
        client.generate(model="rr", prompt="hi")
    assert error.value.error.endswith("is a reranker: send it to /v1/rerank, not /api/generate")
    # Nothing to embed loads an embedding model only: not a chat model, not a reranker.
    for model in ("chat", "rr"):
        with pytest.raises(ollama.ResponseError) as error:
            client.embed(model=model, input=[])
        assert error.value.status_code == 400 and "not /api/embed" in error.value.error
        with pytest.raises(ollama.ResponseError) as error:
            client.embeddings(model=model, prompt="")
        assert "not /api/embeddings" in error.value.error
    assert "chat" not in loaded(gw) and "rr" not in loaded(gw)


def test_model_lists_show_each_kind(gw: Running) -> None:
    listed = {m["id"]: m for m in httpx.get(gw.v1 + "/models").json()["data"]}
    assert {n: m["kind"] for n, m in listed.items()} == FAMILIES
    assert all(m["object"] == "model" for m in listed.values())  # OpenAI's shape kept
    tags = {m["name"]: m["kind"] for m in httpx.get(gw.url + "/api/tags").json()["models"]}
    assert tags == FAMILIES
    # The official client still reads the list.
    assert {m.model for m in ollama.Client(host=gw.url).list().models} == set(FAMILIES)
    shown = httpx.post(gw.url + "/api/show", json={"model": "emb"}).json()
    assert shown["capabilities"] == ["embedding"]


# ---- side by side --------------------------------------------------------------------------


def test_chat_embedding_and_reranker_side_by_side_then_one_evicted(catalog: Catalog) -> None:
    # Each model plans to about 1 GiB: three fit in 3.5 GiB, a fourth evicts the least
    # recently used.
    budget = int(3.5 * GIB)
    with running_gateway(catalog, entries(*FAMILIES), engine=PoolingEngine(), budget=budget) as gw:
        client = OpenAI(base_url=gw.v1, api_key="none")
        client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "hi"}])
        client.embeddings.create(model="emb", input="hi")
        reranked = httpx.post(
            gw.v1 + "/rerank", json={"model": "rr", "query": "hi", "documents": ["hi"]}
        )
        assert reranked.status_code == 200
        assert loaded(gw) == {"chat", "emb", "rr"}
        # Each went to its own engine process.
        pids = {
            httpx.post(gw.v1 + "/embeddings", json={"model": "emb", "input": "x"}).json()["seen"][
                "pid"
            ],
            reranked.json()["seen"]["pid"],
        }
        assert len(pids) == 2
        client.embeddings.create(model="emb", input="again")  # emb used after chat and rr
        client.embeddings.create(model="emb2", input="hi")
        assert loaded(gw) == {"emb", "rr", "emb2"}  # chat was the least recently used
        evictions = httpx.get(gw.url + "/metrics").text
        assert 'zoo_evictions_total{model="chat"} 1.0' in evictions


def test_concurrency_429_and_keep_alive_hold_for_these_routes_too(catalog: Catalog) -> None:
    limited = {n: replace(e, concurrency=1) for n, e in entries("emb", "rr").items()}
    engine = PoolingEngine("--delay", "1.0")
    with running_gateway(catalog, limited, engine=engine) as gw:
        body = {"model": "rr", "query": "q", "documents": ["q"]}
        assert httpx.post(gw.v1 + "/rerank", json=body, timeout=30).status_code == 200
        first = threading.Thread(
            target=lambda: httpx.post(gw.v1 + "/rerank", json=body, timeout=30)
        )
        first.start()
        time.sleep(0.3)
        busy = httpx.post(gw.url + "/v2/rerank", json=body, timeout=30)
        first.join()
        assert busy.status_code == 429
        assert busy.json()["error"]["code"] == "too_many_requests"
        # A request's own keep_alive (Ollama's semantics): 0 unloads once it is answered.
        once = {"model": "emb", "input": "x", "keep_alive": 0}
        answer = httpx.post(gw.v1 + "/embeddings", json=once, timeout=30).json()
        assert "keep_alive" not in answer["seen"]["fields"]  # the gateway's, not the engine's
        deadline = time.monotonic() + 10
        while "emb" in loaded(gw) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "emb" not in loaded(gw) and "rr" in loaded(gw)


# ---- refusals --------------------------------------------------------------------------------


def test_wrong_routes_are_one_clear_error_and_start_nothing(gw: Running) -> None:
    client = OpenAI(base_url=gw.v1, api_key="none", max_retries=0)
    with pytest.raises(BadRequestError) as error:
        client.chat.completions.create(model="emb", messages=[{"role": "user", "content": "hi"}])
    assert error.value.code == "wrong_route"
    assert error.value.message.endswith(
        "model 'emb' is an embedding model: send it to /v1/embeddings, not /v1/chat/completions"
    )
    with pytest.raises(BadRequestError) as error:
        client.completions.create(model="rr", prompt="hi")
    assert "model 'rr' is a reranker: send it to /v1/rerank" in error.value.message
    with pytest.raises(BadRequestError) as error:
        client.embeddings.create(model="chat", input="hi")
    assert error.value.message.endswith(
        "model 'chat' is a language model: send it to /v1/chat/completions, not /v1/embeddings"
    )
    for path, model in (("/v1/rerank", "emb"), ("/v2/rerank", "chat"), ("/v1/fim", "emb")):
        body = {"model": model, "query": "q", "documents": ["d"], "prompt": "p", "suffix": "s"}
        answer = httpx.post(gw.url + path, json=body)
        assert answer.status_code == 400, (path, answer.text)
        assert answer.json()["error"]["code"] == "wrong_route"
        # The path the client asked, not the one the gateway would send upstream.
        assert answer.json()["error"]["message"].endswith(f", not {path}"), answer.text
    assert loaded(gw) == set()


HOSTILE = [
    ("emb", "/v1/embeddings", {}, "`input` is required"),
    ("emb", "/v1/embeddings", {"input": ""}, "`input` is empty"),
    ("emb", "/v1/embeddings", {"input": []}, "empty list"),
    ("emb", "/v1/embeddings", {"input": ["ok", ""]}, "`input[1]` is empty"),
    ("emb", "/v1/embeddings", {"input": ["ok", 3]}, "`input[1]` is a number"),
    ("emb", "/v1/embeddings", {"input": ["ok", None]}, "`input[1]` is null"),
    ("emb", "/v1/embeddings", {"input": [["ok"]]}, "`input[0]` is a list"),
    ("emb", "/v1/embeddings", {"input": [[1], []]}, "`input[1]` is an empty list"),
    ("emb", "/v1/embeddings", {"input": [-1, 2]}, "`input[0]` is -1: token ids are whole"),
    ("emb", "/v1/embeddings", {"input": [[1], [2, -3]]}, "`input[1][1]` is -3: token ids"),
    ("emb", "/v1/embeddings", {"input": {"text": "x"}}, "a string or a list"),
    ("emb", "/v1/embeddings", {"input": ["x"] * 3000}, "at most 2048"),
    ("emb", "/v1/embeddings", {"input": "x", "dimensions": 0}, "at least 1"),
    ("emb", "/v1/embeddings", {"input": "x", "dimensions": -4}, "at least 1"),
    ("emb", "/v1/embeddings", {"input": "x", "dimensions": 3}, "may be one of 2, 4, 8, not 3"),
    ("emb", "/v1/embeddings", {"input": "x", "dimensions": 4096}, "8-dimensional"),
    ("emb", "/v1/embeddings", {"input": "x", "dimensions": "4"}, "whole number"),
    ("emb", "/v1/embeddings", {"input": "x", "dimensions": True}, "whole number"),
    ("emb", "/v1/embeddings", {"input": "x", "encoding_format": "int8"}, "encoding_format"),
    ("rr", "/v1/rerank", {"documents": ["d"]}, "`query` is required"),
    ("rr", "/v1/rerank", {"query": "", "documents": ["d"]}, "`query` is required"),
    ("rr", "/v1/rerank", {"query": "q"}, "`documents` is required"),
    ("rr", "/v1/rerank", {"query": "q", "documents": []}, "empty list"),
    ("rr", "/v1/rerank", {"query": "q", "documents": ["d", 7]}, "`documents[1]` is a number"),
    ("rr", "/rerank", {"query": "q", "documents": [{"txt": "d"}]}, "`documents[0]` has no `text`"),
    (
        "rr",
        "/v1/rerank",
        {"query": "q", "documents": [{"text": 5}]},
        "`documents[0].text` is a number",
    ),
    ("rr", "/v1/rerank", {"query": "q", "documents": ["d"] * 5000}, "at most 1000"),
    ("rr", "/v1/rerank", {"query": "q", "documents": ["d"], "top_n": -1}, "`top_n`"),
    ("rr", "/v1/rerank", {"query": "q", "documents": ["d"], "top_n": 0}, "`top_n`"),
    ("rr", "/v2/rerank", {"query": "q", "documents": ["d"], "top_n": 1.5}, "`top_n`"),
    ("rr", "/v1/rerank", {"query": "q", "documents": ["d"], "return_documents": 1}, "true or"),
]


def test_hostile_bodies_are_400_before_anything_starts(gw: Running) -> None:
    with httpx.Client(base_url=gw.url, timeout=30) as http:
        for model, path, body, message in HOSTILE:
            answer = http.post(path, json={"model": model, **body})
            assert answer.status_code == 400, (body, answer.text)
            error = answer.json()["error"]
            assert error["type"] == "invalid_request_error"
            assert message in error["message"], (body, error["message"])
        assert http.post("/v1/embeddings", content=b"[1, 2]").status_code == 400
        assert http.post("/v1/embeddings", json={"input": "x"}).json()["error"]["message"] == (
            "the request names no model: set `model`"
        )
        assert http.post("/api/embed", json={"model": "emb", "input": 5}).status_code == 400
        assert http.post("/api/embeddings", json={"model": "emb", "prompt": [1]}).status_code == 400
    assert loaded(gw) == set()


# ---- the launch path's one-model proxy -----------------------------------------------------


@pytest.mark.parametrize("kind", ["embedding", "rerank"])
def test_single_proxy_passes_the_routes_through_behind_its_key(tmp_path: Path, kind: str) -> None:
    engine_port, port = process.free_port(), process.free_port()
    engine = process.start(
        [sys.executable, str(ENGINE_SCRIPT), "--port", str(engine_port), "--kind", kind],
        log_path=tmp_path / "engine.log",
        foreground=True,
    )
    proxy = process.start(
        [
            sys.executable,
            "-m",
            "zoo.serve.single",
            "--port",
            str(port),
            "--upstream-port",
            str(engine_port),
            "--served-name",
            "served",
            "--request-model",
            "/models/dir",
        ],
        log_path=tmp_path / "proxy.log",
        env={"ZOO_PROXY_API_KEY": "k1"},
        foreground=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        probe_path, probe = KINDS[kind].probe
        body: dict[str, Any] = {"model": "served", **probe}
        deadline = time.monotonic() + 20
        while True:
            try:
                first = httpx.post(base + probe_path, json=body, trust_env=False)
                if first.status_code != 502:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "proxy.log").read_text()
            time.sleep(0.05)
        for path in KINDS[kind].routes:
            assert httpx.post(base + path, json=body, trust_env=False).status_code == 401
        answer = httpx.post(
            base + probe_path, json=body, headers={"Authorization": "Bearer k1"}, trust_env=False
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["model"] == "served"
        assert answer.json()["seen"]["model"] == "/models/dir"
    finally:
        for proc in (proxy, engine):
            process.stop_group(proc.pid, reap=proc)


# ---- docs/serve.rst ------------------------------------------------------------------------


def _section_blocks(language: str) -> list[str]:
    """The code blocks of ``language`` in docs/serve.rst's embeddings and rerank section."""
    text = PAGE.read_text()
    section = text[text.index(".. _serve-pooling:") : text.index("\nFill-in-the-middle\n")]
    lines = section.splitlines()
    found = []
    for index, line in enumerate(lines):
        if line.strip() == f".. code-block:: {language}":
            body = []
            for following in lines[index + 1 :]:
                if following.strip() and not following.startswith(" "):
                    break
                body.append(following)
            found.append(textwrap.dedent("\n".join(body)).strip() + "\n")
    return found


def test_the_docs_examples_run_against_a_gateway(
    tmp_path: Path,
    hub_server: HubServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from zoo.serve.config import ApiKey

    families = {"docs-chat": "llm", "docs-emb": "embedding", "docs-rr": "rerank"}
    serve_files(hub_server, list(families))
    catalog = write_families(tmp_path / "specs", families, dims=384)
    served = {
        "tiny": ModelEntry(name="tiny", family="docs-chat", download=True),
        "all-minilm-l6-v2": ModelEntry(name="all-minilm-l6-v2", family="docs-emb", download=True),
        "reranker": ModelEntry(name="reranker", family="docs-rr", download=True),
    }
    monkeypatch.setenv("ZOO_API_KEY", "docs-key-1")
    keys = (ApiKey("docs-key-1"),)
    with running_gateway(catalog, served, engine=PoolingEngine(), keys=keys) as gw:
        openai_block, ollama_block = _section_blocks("python")
        for block in (openai_block, ollama_block):
            assert DOCS_URL in block
            exec(compile(block.replace(DOCS_URL, gw.url), "serve.rst", "exec"), {})  # noqa: S102
        printed = capsys.readouterr().out.splitlines()
        # The test engine's vectors are hashes: the cosine line prints, true or not.
        assert printed[0] == "3 384" and printed[1] in ("True", "False")
        assert printed[-2:] == ["2", "384"]
        (curl,) = _section_blocks("shell")
        done = subprocess.run(
            ["bash", "-c", curl.replace(DOCS_URL, gw.url)],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        answer = json.loads(done.stdout)
        (shown,) = _section_blocks("json")
        expected = json.loads(shown)
        # The shape the page shows: its keys, one result (top_n 1), the pandas one first.
        assert set(answer) - {"seen"} == set(expected)  # "seen": the test engine's
        assert [(r["index"], r["document"]) for r in answer["results"]] == [
            (r["index"], r["document"]) for r in expected["results"]
        ]
