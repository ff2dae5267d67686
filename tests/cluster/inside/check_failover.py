"""``zoo serve --cluster``: the openai client answered by SmolLM2 on llama.cpp on a worker node
of a real 3-node Ray cluster, through the gateway; kill -9 of that node's "machine" (its
raylet and every process under it): the engine serves again from the other worker under a
new address and the gateway's next requests succeed. When the gateway stops, its engines
(job-scoped actors) go with it.

The tests share the module's cluster and gateway and run in file order.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import QUESTION, cluster_instances, node_of, wait_for
from openai import OpenAI
from raycluster import RayCluster, free_port

NAME = "smollm2"
ENTRY = {
    "family": "smollm2-135m-instruct",
    "engine": "llamacpp",
    "hub": "huggingface",
    # The fake H100 node's profile has 32 cores; this machine has 2.
    "engine_args": ["--threads", "1"],
}


@dataclass
class Gateway:
    proc: subprocess.Popen[bytes]
    url: str
    log: Path
    env: dict[str, str]  # the gateway's; `zoo ps --cluster` runs with it too

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def client(self, timeout: float = 180) -> OpenAI:
        # No retry: a request the gateway failed must fail the test.
        return OpenAI(base_url=self.url + "/v1", api_key="none", max_retries=0, timeout=timeout)

    def ask(self, timeout: float = 180) -> str:
        reply = self.client(timeout).chat.completions.create(
            model=NAME,
            messages=QUESTION,  # type: ignore[arg-type]
            max_tokens=24,
            temperature=0,
        )
        assert reply.model == NAME
        return reply.choices[0].message.content or ""


@pytest.fixture(scope="module")
def gateway(cluster: RayCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    import os

    folder = tmp_path_factory.mktemp("gateway")
    config = folder / "gateway.yaml"
    config.write_text(f"keep_alive: -1\nmodels:\n  {NAME}: {json.dumps(ENTRY)}\n")
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "ZOO_CLUSTER")}
    env.update(cluster.driver_env(), ZOO_HOME=str(folder / "zoo-home"), HOME=str(folder))
    port = free_port()
    log = folder / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "zoo",
                "serve",
                "--cluster",
                cluster.address,
                "--config",
                str(config),
                "--port",
                str(port),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    served = Gateway(proc, f"http://127.0.0.1:{port}", log, env)

    def up() -> bool:
        assert proc.poll() is None, f"zoo serve exited ({proc.returncode}):\n{served.log_text()}"
        with contextlib.suppress(httpx.HTTPError):
            return httpx.get(served.url + "/health", trust_env=False).status_code == 200
        return False

    try:
        wait_for("zoo serve --cluster to answer /health", up, timeout=90)
        yield served
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        print(f"--- zoo serve's log (last 3000 characters):\n{served.log_text()[-3000:]}")


def _served(address: str, gateway: Gateway) -> dict[str, Any]:
    found = [i for i in cluster_instances(address, gateway.env) if i.get("served_name") == NAME]
    assert len(found) == 1, found
    return found[0]


def test_the_openai_client_is_answered_from_a_worker_node(
    cluster: RayCluster, gateway: Gateway
) -> None:
    started = time.monotonic()
    assert "Paris" in gateway.ask()
    cold = time.monotonic() - started
    print(f"first answer through the gateway (cold: place, fetch, start) in {cold:.1f} s")
    inst = _served(cluster.address, gateway)
    assert node_of(inst) in ("w1", "w2"), inst  # an H100 node: the fastest plan
    assert inst["state"] == "running" and not inst["detached"], inst
    assert inst["owner"] == "zoo serve", inst
    assert str(inst["url"]).startswith("http://127.0.0.1:"), inst
    # Direct, without the gateway's private key, the engine refuses.
    refused = httpx.get(str(inst["url"]) + "/v1/models", trust_env=False, timeout=10)
    assert refused.status_code == 401, refused.text
    # Warm: the gateway's routing to a remote node, a few requests.
    started = time.monotonic()
    for _ in range(3):
        assert "Paris" in gateway.ask()
    print(f"warm requests through the gateway: {(time.monotonic() - started) / 3:.2f} s each")


def test_kill_9_of_the_node_moves_the_engine_and_the_gateway_follows(
    cluster: RayCluster, gateway: Gateway
) -> None:
    before = _served(cluster.address, gateway)
    node = str(node_of(before))
    engines = cluster.engine_pids(node)
    assert engines, "no llama.cpp engine among the node's processes"
    killed_at = time.monotonic()
    killed = cluster.kill_node(node)
    assert engines <= killed
    # The next request waits (bounded) for the engine to come back on the other node.
    answer = gateway.ask(timeout=120)
    back = time.monotonic() - killed_at
    assert "Paris" in answer, answer
    print(f"kill -9 of {node} to the first answer through the gateway: {back:.1f} s")
    after = _served(cluster.address, gateway)
    # Another node where it fitted: the other H100 worker, or the T4 head (SmolLM2 fits).
    moved_to = node_of(after)
    assert moved_to != node and moved_to in ("head", "w1", "w2"), after
    assert after["name"] == before["name"] and after["url"] != before["url"], (before, after)
    assert after["state"] == "running" and after["restarted"], after
    for _ in range(3):
        assert "Paris" in gateway.ask(timeout=60)
    alive = cluster.alive_nodes()
    assert node not in alive and moved_to in alive, alive


def test_stopping_the_gateway_stops_its_engines(cluster: RayCluster, gateway: Gateway) -> None:
    gateway.proc.send_signal(signal.SIGTERM)
    code = gateway.proc.wait(timeout=60)
    # As the local gateway (tests/e2e/test_serve_e2e.py): 0, or killed by the SIGTERM itself.
    assert code in (0, -signal.SIGTERM), (code, gateway.log_text()[-3000:])
    wait_for(
        "the gateway's engine to go",
        lambda: (
            not [
                i
                for i in cluster_instances(cluster.address, gateway.env)
                if i.get("served_name") == NAME
            ]
        ),
        timeout=30,
    )
    # And the engine process itself is gone from the node (no orphan on any node).
    wait_for(
        "no llama.cpp engine left on any node",
        lambda: not any(cluster.engine_pids(spec.name) for spec in cluster.nodes),
        timeout=30,
    )
