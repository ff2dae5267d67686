"""Embeddings and rerank against hostile engines and odd catalogs: a 200 whose vectors or
scores are not ones (a multi-vector model's lists, a null, NaN, broken base64, a vector
shorter than the spec's size) is a 502 of one line, never a 500 or invalid JSON; a served
model whose family left the catalog is the usual 404; Ollama's routes check the kind before
anything loads and name their own routes; the Ollama capabilities come from the schema."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from zoo.catalog.catalog import Catalog
from zoo.engine import LaunchContext, ServerCommand
from zoo.serve.errors import BadEngineAnswer
from zoo.serve.ollama import capabilities
from zoo.serve.pooling import EmbeddingsPlan, RerankPlan, finish_embeddings, finish_rerank
from zoo.serve.types import ModelEntry
from zoo.testing.hubserver import HubServer

from .gateway_helpers import Running, running_gateway, serve_files
from .test_pooling_routes import FAMILIES, PoolingEngine, entries, loaded, write_families

SCHEMA = Path(__file__).resolve().parents[2] / "zoo" / "catalog" / "spec.schema.json"

# An engine that answers every POST 200 with the bytes of a file the test rewrites (or another
# status, when the file starts with one: "500 {...}").
CANNED_ENGINE = """\
import argparse, http.server
parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int)
parser.add_argument("--host", default="127.0.0.1")
parser.add_argument("--answer")
args, _ = parser.parse_known_args()

class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def _send(self, data, status=200):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self._send(b'{"status": "ok", "object": "list", "data": []}')

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with open(args.answer, "rb") as answer:
            data = answer.read()
        # "500 {...}": the answer with that status instead of 200.
        status, _, rest = data.partition(b" ")
        if status.isdigit() and len(status) == 3:
            self._send(rest, int(status))
        else:
            self._send(data)

http.server.ThreadingHTTPServer((args.host, args.port), Handler).serve_forever()
"""


class CannedEngine(PoolingEngine):
    """The pooling test engine's command, run by CANNED_ENGINE: it answers ``answer``'s bytes."""

    def __init__(self, script: Path, answer: Path) -> None:
        super().__init__("--answer", str(answer))
        self.script = script

    def server_command(self, ctx: LaunchContext) -> ServerCommand:
        command = super().server_command(ctx)
        assert command.argv[0] == sys.executable
        # The key is not checked: these tests are about answers, not keys.
        return replace(command, argv=(sys.executable, str(self.script), *command.argv[2:]))


def _strict(text: str) -> Any:
    """JSON as strict parsers read it: NaN and Infinity are not JSON."""

    def refuse(constant: str) -> Any:
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


# ---- the finishing functions ---------------------------------------------------------------

AS_SENT = EmbeddingsPlan({}, False, None, True)
BASE64 = EmbeddingsPlan({}, True, None, True)
CUT = EmbeddingsPlan({}, False, 2, True)

ODD_EMBEDDINGS = [
    ("multi-vector", AS_SENT, [[1.0, 2.0], [3.0, 4.0]], "with a list at [0] (a multi-vector"),
    ("multi-vector, base64", BASE64, [[1.0, 2.0]], "multi-vector model?"),
    ("null", CUT, [1.0, None, 2.0], "with null at [1]"),
    ("string", CUT, ["1.0", "2.0"], "with a string at [0]"),
    ("boolean", AS_SENT, [True, 0.5], "with a boolean at [0]"),
    ("NaN", BASE64, [math.nan, 1.0], "NaN or infinite"),
    ("NaN passed as sent", AS_SENT, [0.5, math.nan], "NaN or infinite"),
    ("infinity", CUT, [math.inf, 1.0, 2.0], "NaN or infinite"),
    ("huge integer", CUT, [10**400, 1, 2], "out of range"),
    ("empty", AS_SENT, [], "empty"),
    ("an object", AS_SENT, {"values": [1.0]}, "as an object"),
    ("base64 of a wrong length", CUT, "AAA", "not base64"),
    ("base64 with bad characters", CUT, "!!!!", "not base64"),
    ("base64 of 5 bytes", CUT, "AAAAAAA=", "5 bytes of base64"),
    ("shorter than dimensions", CUT, [1.0], "1-dimensional vector, too short for `dimensions` 2"),
]


@pytest.mark.parametrize(
    ("plan", "vector", "message"),
    [c[1:] for c in ODD_EMBEDDINGS],
    ids=[c[0] for c in ODD_EMBEDDINGS],
)
def test_odd_vectors_are_a_502_of_one_line(plan: EmbeddingsPlan, vector: Any, message: str) -> None:
    with pytest.raises(BadEngineAnswer) as caught:
        finish_embeddings({"data": [{"index": 0, "embedding": vector}]}, plan)
    assert caught.value.status == 502 and caught.value.code == "bad_engine_answer"
    text = caught.value.message
    assert text.startswith("the engine answered") and "\n" not in text
    assert message in text, text


@pytest.mark.parametrize(
    "data", [None, {"data": None}, {"data": [5]}, {"data": [{"index": 0}]}, [1]]
)
def test_an_answer_without_vectors_is_a_502(data: Any) -> None:
    with pytest.raises(BadEngineAnswer, match=r"^the engine answered"):
        finish_embeddings(data, AS_SENT)


def test_good_vectors_pass_checked_and_valid_json() -> None:
    data = {"data": [{"index": 0, "embedding": [3, 4.0]}]}  # whole numbers are numbers
    assert finish_embeddings(data, AS_SENT)["data"][0]["embedding"] == [3, 4.0]
    cut = finish_embeddings({"data": [{"embedding": [3, 4.0, 9.0]}]}, CUT)
    assert cut["data"][0]["embedding"] == [0.6, 0.8]
    _strict(json.dumps(cut))


TEXTS = ("a", "b", "c")
ODD_RESULTS = [
    ("NaN score", [{"index": 0, "relevance_score": math.nan}], "relevance_score` nan"),
    ("infinite score", [{"index": 0, "relevance_score": -math.inf}], "not a finite number"),
    ("string score", [{"index": 0, "relevance_score": "0.9"}], "relevance_score` '0.9'"),
    ("boolean score", [{"index": 0, "relevance_score": True}], "not a finite number"),
    ("no score", [{"index": 0}], "relevance_score` None"),
    ("huge score", [{"index": 0, "relevance_score": 10**400}], "not a finite number"),
    ("string index", [{"index": "1", "relevance_score": 0.5}], "index` '1': not one of the 3"),
    ("index out of range", [{"index": 3, "relevance_score": 0.5}], "index` 3: not one of"),
    ("negative index", [{"index": -1, "relevance_score": 0.5}], "index` -1"),
    (
        "index twice",
        [{"index": 1, "relevance_score": 0.5}, {"index": 1, "relevance_score": 0.2}],
        "`results[1].index` 1: twice",
    ),
    ("a result that is not an object", [0.5], "`results[0]` as a number"),
]


@pytest.mark.parametrize(
    ("results", "message"), [c[1:] for c in ODD_RESULTS], ids=[c[0] for c in ODD_RESULTS]
)
def test_odd_rerank_results_are_a_502_of_one_line(results: list[Any], message: str) -> None:
    with pytest.raises(BadEngineAnswer) as caught:
        finish_rerank({"results": results}, RerankPlan({}, TEXTS, None, True))
    text = caught.value.message
    assert caught.value.status == 502
    assert text.startswith("the engine answered") and "\n" not in text
    assert message in text, text


def test_rerank_results_sort_with_whole_number_scores_and_no_results_is_a_502() -> None:
    data = {"results": [{"index": 0, "relevance_score": 0.5}, {"index": 2, "relevance_score": 1}]}
    done = finish_rerank(data, RerankPlan({}, TEXTS, None, False))
    assert [r["index"] for r in done["results"]] == [2, 0]
    with pytest.raises(BadEngineAnswer, match="no `results` list"):
        finish_rerank({"data": []}, RerankPlan({}, TEXTS, None, False))


# ---- through the gateway ---------------------------------------------------------------------


@dataclass
class Canned:
    running: Running
    answer: Path
    catalog: Catalog

    def answers(self, text: str) -> None:
        self.answer.write_text(text)


@pytest.fixture
def canned(tmp_path: Path, catalog: Catalog) -> Iterator[Canned]:
    script, answer = tmp_path / "canned_engine.py", tmp_path / "answer.json"
    script.write_text(CANNED_ENGINE)
    # A good answer while the models start (the readiness probe needs a 200).
    answer.write_text(json.dumps({"data": [{"index": 0, "embedding": [1.0] * 8}]}))
    engine = CannedEngine(script, answer)
    with running_gateway(catalog, entries("emb", "rr"), engine=engine) as running:
        yield Canned(running, answer, catalog)


@pytest.fixture
def catalog(tmp_path: Path, hub_server: HubServer) -> Catalog:
    serve_files(hub_server, list(FAMILIES))
    return write_families(tmp_path / "specs", FAMILIES)


def _vectors(*vectors: str) -> str:
    items = ", ".join(f'{{"index": {n}, "embedding": {v}}}' for n, v in enumerate(vectors))
    return f'{{"object": "list", "data": [{items}], "usage": {{"prompt_tokens": 1}}}}'


GATEWAY_CASES = [
    # (route, body beyond the model, the engine's raw answer, in the message)
    ("/v1/embeddings", {"input": "x"}, _vectors("[[1.0, 2.0], [3.0, 4.0]]"), "multi-vector"),
    ("/v1/embeddings", {"input": "x"}, _vectors("[0.5, NaN]"), "NaN or infinite"),
    ("/v1/embeddings", {"input": ["x", "y"]}, _vectors("[0.5]", "[1.0, null]"), "`data[1]"),
    ("/v1/embeddings", {"input": "x", "encoding_format": "base64"}, _vectors('"AAA"'), "base64"),
    ("/v1/embeddings", {"input": "x", "dimensions": 4}, _vectors("[0.6, 0.8]"), "too short"),
    ("/v1/embeddings", {"input": "x"}, "not json at all", "not JSON"),
    ("/v1/embeddings", {"input": "x"}, '{"object": "list"}', "no `data` list"),
    (
        "/v1/rerank",
        {"query": "q", "documents": ["a", "b"]},
        '{"results": [{"index": 0, "relevance_score": NaN}, {"index": 1, "relevance_score": 1}]}',
        "relevance_score` nan",
    ),
    (
        "/v2/rerank",
        {"query": "q", "documents": ["a"]},
        '{"results": [{"index": "0", "relevance_score": 0.1}]}',
        "index` '0'",
    ),
]


def test_odd_engine_answers_are_a_502_json_error_on_every_route(canned: Canned) -> None:
    with httpx.Client(base_url=canned.running.url, timeout=60) as http:
        for path, body, raw, message in GATEWAY_CASES:
            canned.answers(raw)
            model = "rr" if "rerank" in path else "emb"
            answer = http.post(path, json={"model": model, **body})
            assert answer.status_code == 502, (path, raw, answer.text)
            error = _strict(answer.text)["error"]
            assert error["code"] == "bad_engine_answer"
            assert error["message"].startswith("the engine answered"), error
            assert message in error["message"], (raw, error)
        # Ollama's routes: its own error shape, the same status and line.
        canned.answers(_vectors("[1.0, null]"))
        for path, body in (("/api/embed", {"input": "x"}), ("/api/embeddings", {"prompt": "x"})):
            answer = http.post(path, json={"model": "emb", **body})
            assert answer.status_code == 502, answer.text
            assert _strict(answer.text) == {
                "error": "the engine answered `data[0].embedding` with null at [1]: "
                "an embedding is one list of numbers"
            }
        canned.answers(_vectors("[0.5, NaN]"))
        answer = http.post("/api/embed", json={"model": "emb", "input": "x"})
        assert answer.status_code == 502 and "NaN" in _strict(answer.text)["error"]
        # A good answer still passes as the engine sent it.
        canned.answers(_vectors("[0.6, 0.8]"))
        answer = http.post("/v1/embeddings", json={"model": "emb", "input": "x"})
        assert answer.status_code == 200
        assert answer.json()["data"][0]["embedding"] == [0.6, 0.8]


def test_a_served_model_whose_family_left_the_catalog_is_a_404_everywhere(
    catalog: Catalog,
) -> None:
    served = {**entries(*FAMILIES), "ghost": ModelEntry(name="ghost", family="ghost")}
    with running_gateway(catalog, served, engine=PoolingEngine()) as gw:
        with httpx.Client(base_url=gw.url, timeout=60) as http:
            for path, body in [
                ("/v1/embeddings", {"input": "x"}),
                ("/v1/rerank", {"query": "q", "documents": ["d"]}),
                ("/v2/rerank", {"query": "q", "documents": ["d"]}),
                ("/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}]}),
            ]:
                answer = http.post(path, json={"model": "ghost", **body})
                assert answer.status_code == 404, (path, answer.text)
                error = answer.json()["error"]
                assert error["code"] == "model_not_found"
                assert error["message"] == "ghost: unknown model 'ghost' (see `zoo list`)"
            for path, body in [
                ("/api/embed", {"input": "x"}),
                ("/api/embed", {"input": []}),
                ("/api/chat", {"messages": []}),
            ]:
                answer = http.post(path, json={"model": "ghost", **body})
                assert answer.status_code == 404, (path, answer.text)
                assert "unknown model 'ghost'" in answer.json()["error"]
        assert loaded(gw) == set()


def test_an_empty_ollama_embed_loads_only_an_embedding_model(catalog: Catalog) -> None:
    with (
        running_gateway(catalog, entries(*FAMILIES), engine=PoolingEngine()) as gw,
        httpx.Client(base_url=gw.url, timeout=60) as http,
    ):
        for model, use in (("chat", "/api/chat"), ("rr", "/v1/rerank")):
            for path, body in (("/api/embed", {"input": []}), ("/api/embeddings", {})):
                answer = http.post(path, json={"model": model, **body})
                assert answer.status_code == 400, answer.text
                assert answer.json()["error"].endswith(f"send it to {use}, not {path}")
        # Nor does an empty chat or generate load an embedding model or a reranker.
        for model, use in (("emb", "/api/embed"), ("rr", "/v1/rerank")):
            for path in ("/api/chat", "/api/generate"):
                answer = http.post(path, json={"model": model})
                assert answer.status_code == 400, answer.text
                assert answer.json()["error"].endswith(f"send it to {use}, not {path}")
        assert loaded(gw) == set()
        # An embedding model is loaded by one, as Ollama does.
        answer = http.post("/api/embed", json={"model": "emb", "input": ""})
        assert answer.json() == {"model": "emb", "embeddings": []}
        assert loaded(gw) == {"emb"}
        # /api/show still reports an embedding model's capability (from its kind).
        shown = http.post("/api/show", json={"model": "emb"}).json()
        assert shown["capabilities"] == ["embedding"]
        assert http.post("/api/show", json={"model": "rr"}).json()["capabilities"] == []


def test_ollama_capabilities_map_only_the_schemas_abilities() -> None:
    # Abilities are a language model's; "embedding" comes from the kind, never an ability.
    schema = json.loads(SCHEMA.read_text())
    found: list[list[str]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "array" and "enum" in node.get("items", {}):
                enum = node["items"]["enum"]
                if "chat" in enum:
                    found.append(enum)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    (abilities,) = {tuple(e) for e in found}
    assert "embed" not in abilities
    for ability in ("embed", "rerank"):
        assert capabilities({"kind": "llm", "abilities": [ability]}) == []
    every = capabilities({"kind": "llm", "abilities": list(abilities)})
    assert "embedding" not in every and "completion" in every
    assert capabilities({"kind": "embedding", "abilities": []}) == ["embedding"]


# An engine that, like llama.cpp, refuses an input over the context (its 500 "too large"),
# tokenizes on /tokenize (a word a token, [CLS]=101 and [SEP]=102 with add_special) and
# detokenizes on /detokenize; an embedding's first number is the token count it was given.
LLAMA_LIKE_ENGINE = """\
import argparse, http.server, json
parser = argparse.ArgumentParser()
parser.add_argument("--port", type=int)
parser.add_argument("--host", default="127.0.0.1")
parser.add_argument("--log")
args, _ = parser.parse_known_args()
LIMIT = 256
WORDS = {}

def ids(text, special):
    words = [WORDS.setdefault(w, 1000 + len(WORDS)) for w in text.split()]
    return [101, *words, 102] if special else words

def too_large(n):
    return 500, {"error": {"code": 500, "type": "server_error", "message":
        f"input ({n} tokens) is too large to process. increase the physical batch size"}}

def answer(path, body):
    if path == "/tokenize":
        return 200, {"tokens": ids(body["content"], body.get("add_special", False))}
    if path == "/detokenize":
        names = {v: k for k, v in WORDS.items()}
        return 200, {"content": " ".join(names[t] for t in body["tokens"])}
    if path == "/v1/rerank":
        pairs = [len(ids(body["query"], False)) + len(ids(d, False)) + 4 for d in body["documents"]]
        if max(pairs) > LIMIT:
            return too_large(max(pairs))
        return 200, {"results": [{"index": n, "relevance_score": -float(len(d.split()))}
                                 for n, d in enumerate(body["documents"])]}
    items = body["input"]
    if isinstance(items, str) or (items and isinstance(items[0], int)):
        items = [items]
    counts = [len(ids(i, True)) if isinstance(i, str) else len(i) for i in items]
    if max(counts) > LIMIT:
        return too_large(max(counts))
    return 200, {"object": "list", "usage": {"prompt_tokens": sum(counts)}, "data": [
        {"index": n, "embedding": [float(c)] + [0.0] * 7} for n, c in enumerate(counts)]}

class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def _send(self, status, data):
        raw = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_GET(self):
        self._send(200, {"status": "ok", "object": "list", "data": []})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        with open(args.log, "a") as log:
            log.write(self.path + "\\n")
        self._send(*answer(self.path, body))

http.server.ThreadingHTTPServer((args.host, args.port), Handler).serve_forever()
"""


class LlamaLikeEngine(PoolingEngine):
    def __init__(self, script: Path, log: Path) -> None:
        super().__init__("--log", str(log))
        self.script = script

    def server_command(self, ctx: LaunchContext) -> ServerCommand:
        command = super().server_command(ctx)
        return replace(command, argv=(sys.executable, str(self.script), *command.argv[2:]))


def test_an_input_over_the_context_is_cut_by_the_engines_tokenizer_or_is_a_400(
    tmp_path: Path, catalog: Catalog
) -> None:
    """llama.cpp refuses an over-long input with a 500 naming its batch size. The spec's
    truncate (default true) says cut: the gateway cuts with the engine's /tokenize and asks
    once more; the client's documents come back as sent. When nothing can be cut, one 400
    names the model's limit."""
    script, log = tmp_path / "llama_like.py", tmp_path / "requests.log"
    script.write_text(LLAMA_LIKE_ENGINE)
    limit = catalog.get("emb").context_length
    long_text = " ".join(f"w{n}" for n in range(400))
    engine = LlamaLikeEngine(script, log)
    with (
        running_gateway(catalog, entries("emb", "rr"), engine=engine) as running,
        httpx.Client(base_url=running.url, timeout=60) as http,
    ):
        answer = http.post("/v1/embeddings", json={"model": "emb", "input": [long_text, "a b"]})
        assert answer.status_code == 200, answer.text
        counts = [item["embedding"][0] for item in answer.json()["data"]]
        assert counts == [limit, 4]  # [CLS] + 254 words + [SEP]; the short one as it was
        assert "/tokenize" in log.read_text().split()
        documents = ["a b", long_text]
        answer = http.post("/v1/rerank", json={"model": "rr", "query": "q", "documents": documents})
        assert answer.status_code == 200, answer.text
        results = answer.json()["results"]
        assert [r["index"] for r in results] == [0, 1]
        assert [r["document"]["text"] for r in results] == documents
        # A query that leaves no room for a document cannot be cut: one 400 naming the limit.
        answer = http.post(
            "/v1/rerank", json={"model": "rr", "query": long_text, "documents": ["a"]}
        )
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"]["message"] == (
            f"an input has 405 tokens: rr takes at most {limit} tokens per input"
        )
