"""zoo on a real 3-node Ray cluster (head: T4 16 GB, w1 and w2: H100 80 GB, all fake GPUs):
``zoo cluster status``, placement by GPU kind and memory explained per node, a request no
node fits, ``zoo launch --cluster --detach`` of SmolLM2 on llama.cpp seen by ``zoo ps`` from
another process and answering the openai client, and a head restart with persistent GCS
storage that keeps a detached instance.

The tests share the module's cluster and run in file order.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

import httpx
import pytest
from conftest import QUESTION, cluster_instances, node_of, wait_for, zoo, zoo_lines
from openai import OpenAI
from raycluster import RayCluster

KEY = "cluster-test-key"
SMOLLM2 = ("smollm2-135m-instruct", "--engine", "llamacpp", "--hub", "huggingface")
# vLLM on unquantised weights: 18.0 GiB of GPU memory, more than a T4's 14.4 GiB usable.
BIG = ("qwen3:8b", "--engine", "vllm", "--format", "pytorch")
# No node has the 113 GiB of GPU memory even the smallest 235B plan needs.
HUGE = ("qwen3:235b-a22b", "--engine", "vllm")


@pytest.fixture
def env(driver_env: dict[str, str]) -> dict[str, str]:
    return driver_env


def test_status_lists_the_three_nodes_with_their_gpus(
    cluster: RayCluster, env: dict[str, str]
) -> None:
    shown = zoo("cluster", "status", "--address", cluster.address, env=env)
    text = shown.stdout
    assert f"cluster {cluster.address}: 3 nodes, 3 alive" in text, text
    lines = {line.split()[0]: line for line in text.splitlines()[1:] if line.strip()}
    assert {"head", "w1", "w2"} <= set(lines), text
    assert re.search(r"1 x Tesla T4 \(16(\.0)? GiB\)", lines["head"]), text
    for worker in ("w1", "w2"):
        assert re.search(r"1 x NVIDIA H100 \S+ \S+ \(80(\.0)? GiB\)", lines[worker]), text
        assert "llamacpp" in lines[worker], text  # the shared engine environment is ready
    document = json.loads(
        zoo("cluster", "status", "--cluster", cluster.address, "--json", env=env).stdout
    )
    nodes = {node["name"]: node for node in document["nodes"]}
    assert set(nodes) == {"head", "w1", "w2"}
    assert all(node["alive"] and node["gpus"] == 1 for node in nodes.values()), nodes
    assert all(node["address"] == "127.0.0.1" for node in nodes.values()), nodes


def test_a_plan_bigger_than_a_t4_lands_on_an_h100_explained_per_node(
    cluster: RayCluster, env: dict[str, str]
) -> None:
    common = ("--cluster", cluster.address, "--api-key", KEY)
    shown = zoo("launch", *BIG, *common, "--dry-run", env=env).stdout
    block = shown.split("placement:\n", 1)[1].split("\n\n", 1)[0]
    marks = {words[0]: words[1:] for words in (line.split() for line in block.splitlines())}
    assert set(marks) == {"head", "w1", "w2"}, shown
    assert marks["head"][:2] == ["no", "fit"], shown
    assert "14.4 GiB" in " ".join(marks["head"]), shown  # why: the T4's usable GPU memory
    assert sorted(m[0] for n, m in marks.items() if n != "head") == ["chosen", "fits"], shown
    assert shown.splitlines()[0].startswith(("node:         w1", "node:         w2")), shown
    assert "18.0 GiB" in shown and "vllm" in shown, shown
    document = json.loads(zoo("launch", *BIG, *common, "--json", env=env).stdout)
    placed = document["placement"]
    verdicts = {v["node"]: v for v in placed.get("verdicts") or placed["nodes"]}
    assert not verdicts["head"]["fits"] and verdicts["w1"]["fits"] and verdicts["w2"]["fits"]
    assert placed["node"] in ("w1", "w2")
    assert document["plan"]["memory"]["gpus"] >= 1, document["plan"]["memory"]
    # Pinned to the T4 node it cannot run: one line, naming that node's reason.
    pinned = zoo("launch", *BIG, *common, "--node", "head", "--dry-run", env=env, check=False)
    assert pinned.returncode != 0
    assert len(zoo_lines(pinned.stderr)) == 1, pinned.stderr
    assert "head" in pinned.stderr and "14.4 GiB" in pinned.stderr, pinned.stderr


def test_a_request_no_node_fits_fails_in_one_line_naming_what_would_fit(
    cluster: RayCluster, env: dict[str, str]
) -> None:
    started = time.monotonic()
    done = zoo(
        "launch",
        *HUGE,
        "--cluster",
        cluster.address,
        "--api-key",
        KEY,
        "--detach",
        env=env,
        check=False,
    )
    assert done.returncode != 0
    assert time.monotonic() - started < 60  # zoo's own verdict, not a pending actor
    [message] = zoo_lines(done.stderr)
    assert "fits no node" in message, message
    for node in ("head", "w1", "w2"):
        assert f"{node}:" in message, message
    # What would fit there, as a local launch names it ("on this machine: ...").
    assert "32B" in message, message
    assert cluster_instances(cluster.address, env) == []


def _launch_smollm2(cluster: RayCluster, env: dict[str, str], *extra: str) -> str:
    """``zoo launch`` of SmolLM2 on the cluster, detached. With no ``extra``, the engine gets
    ``--threads 1`` (the fake H100 profile has 32 cores; this machine 2)."""
    engine_args = ("--", "--threads", "1") if not extra else ()
    done = zoo(
        "launch",
        *SMOLLM2,
        "--cluster",
        cluster.address,
        "--api-key",
        KEY,
        "--detach",
        *extra,
        *engine_args,
        env=env,
    )
    assert KEY not in done.stdout + done.stderr  # never echoed
    return done.stdout


def _ask(url: str) -> str:
    client = OpenAI(base_url=url.rstrip("/") + "/v1", api_key=KEY, max_retries=0, timeout=120)
    reply = client.chat.completions.create(
        model="smollm2-135m-instruct",
        messages=QUESTION,  # type: ignore[arg-type]
        max_tokens=24,
        temperature=0,
    )
    return reply.choices[0].message.content or ""


def _only(instances: list[dict[str, Any]]) -> dict[str, Any]:
    assert len(instances) == 1, instances
    return instances[0]


def test_launch_detached_is_seen_by_ps_from_another_process(
    cluster: RayCluster, env: dict[str, str], hub: Any
) -> None:
    started = time.monotonic()
    out = _launch_smollm2(cluster, env)
    took = time.monotonic() - started
    assert "is ready on node w1" in out, out  # the fastest plan; w1 before w2 by name
    print(f"zoo launch --cluster to ready: {took:.1f} s")
    # The node fetched the file itself, from the hub (not through the driver).
    assert any(r.startswith("GET ") and r.endswith(".gguf") for r in hub.requests)
    assert list((cluster.home("w1") / "hf" / "hub").glob("models--QuantFactory--*")), "w1's cache"
    assert not list((cluster.home("w2") / "hf" / "hub").glob("models--*"))
    # Another process, with another ZOO_HOME of its own, sees it on its node.
    other = {**env, "ZOO_HOME": env["ZOO_HOME"] + "-other"}
    shown = zoo("ps", "--cluster", cluster.address, env=other).stdout
    assert "smollm2-135m-instruct" in shown and "w1" in shown, shown
    inst = _only(cluster_instances(cluster.address, env))
    assert node_of(inst) == "w1" and inst["state"] == "running", inst
    assert inst["engine"] == "llamacpp" and inst["detached"], inst
    assert str(inst["url"]).startswith("http://127.0.0.1:"), inst
    assert "Paris" in _ask(str(inst["url"]))
    # The engine checks the key.
    no_key = httpx.get(str(inst["url"]) + "/v1/models", trust_env=False, timeout=10)
    assert no_key.status_code == 401, no_key.text
    # Its log comes from the node.
    logs = zoo("logs", str(inst["name"]), "--cluster", cluster.address, env=other).stdout
    assert logs.strip(), "an empty log"
    # zoo launch again prints the running one instead of a second engine (the rule of a
    # local launch: not when engine arguments are given, as the first launch's were).
    again = _launch_smollm2(cluster, env, "--served-name", "smollm2-135m-instruct")
    assert "already running on node w1" in again, again
    zoo("stop", str(inst["name"]), "--cluster", cluster.address, env=other)
    wait_for(
        "the instance to go", lambda: cluster_instances(cluster.address, env) == [], timeout=30
    )


def test_a_head_restart_with_persistent_gcs_keeps_a_detached_instance(
    cluster: RayCluster, env: dict[str, str]
) -> None:
    out = _launch_smollm2(cluster, env, "--node", "w2", "--", "--threads", "1")
    assert "is ready on node w2" in out, out
    before = _only(cluster_instances(cluster.address, env))
    assert before["pinned"] and node_of(before) == "w2", before
    engine_pids = cluster.engine_pids("w2")
    assert engine_pids, "no llama.cpp engine among w2's processes"
    killed = cluster.kill_node("head")
    assert killed and not (killed & engine_pids)
    # Meanwhile the engine on w2 keeps serving: only the control plane is gone.
    assert "Paris" in _ask(str(before["url"]))
    started = time.monotonic()
    cluster.restart_node("head")
    cluster.wait_alive({"head", "w1", "w2"}, timeout=60)
    print(f"head restarted and w1, w2 back in {time.monotonic() - started:.1f} s")
    after = wait_for(
        "zoo ps to list the instance again",
        lambda: cluster_instances(cluster.address, env),
        timeout=60,
    )
    inst = _only(after)
    assert inst["name"] == before["name"] and inst["url"] == before["url"], (before, inst)
    assert node_of(inst) == "w2" and inst["state"] == "running", inst
    assert cluster.engine_pids("w2") == engine_pids  # the same engine process, never restarted
    assert "Paris" in _ask(str(inst["url"]))
    zoo("stop", str(inst["name"]), "--cluster", cluster.address, env=env)
    wait_for(
        "the instance to go", lambda: cluster_instances(cluster.address, env) == [], timeout=30
    )


def test_kill_9_of_a_detached_instances_node_moves_it_to_the_other_worker(
    cluster: RayCluster, env: dict[str, str]
) -> None:
    """Last in the module: w1 stays dead."""
    out = _launch_smollm2(cluster, env)
    assert "is ready on node w1" in out, out
    before = _only(cluster_instances(cluster.address, env))
    engines = cluster.engine_pids("w1")
    assert engines, "no llama.cpp engine among w1's processes"
    killed_at = time.monotonic()
    assert engines <= cluster.kill_node("w1")

    def moved() -> dict[str, Any] | None:
        [inst] = cluster_instances(cluster.address, env)
        return inst if inst["state"] == "running" and inst["url"] != before["url"] else None

    after = wait_for("the instance to run on another node", moved, timeout=90, every=0.5)
    print(
        f"kill -9 of w1 to the instance running on {node_of(after)}: "
        f"{time.monotonic() - killed_at:.1f} s"
    )
    # Another node where the request fitted (w2, or the T4 head: SmolLM2 fits there too).
    moved_to = node_of(after)
    assert moved_to in ("w2", "head") and after["name"] == before["name"], after
    assert cluster.engine_pids(moved_to), f"no engine on {moved_to}"
    assert "Paris" in _ask(str(after["url"]))
    zoo("stop", str(after["name"]), "--cluster", cluster.address, env=env)
    wait_for(
        "the instance to go", lambda: cluster_instances(cluster.address, env) == [], timeout=30
    )
