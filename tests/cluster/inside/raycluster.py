"""A real multi-node Ray cluster on this machine: one ``ray start`` process tree per "machine".

Only for use inside the test namespace (``tests/cluster/test_cluster_suite.py`` enters it): Ray
binds 127.0.0.1 only when loopback is the one interface, and the pid namespace reaps whatever a
test leaves behind.

How a node's processes are found (to kill one "machine"): every node is started with its own
marker in the environment, ``ZOO_TEST_NODE=<name>``. Everything that node runs inherits it: the
raylet and the head's GCS (daemonised by ``ray start``, re-parented to the namespace's pid 1),
the log monitor, the agents and the workers the raylet spawns, and zoo's engines under them. A
node's processes are those whose ``/proc/PID/environ`` carries the marker, plus every
descendant of its raylet (an engine started with a cleaned environment is still one of those).
Nothing else on the machine can match: other sessions' processes live in other pid
namespaces, invisible here. Never ``ray stop``: it kills every Ray process on the host.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

MARKER = "ZOO_TEST_NODE"
RAY = str(Path(sys.executable).with_name("ray"))
# Dead nodes are noticed in about 1.5 s instead of 15 s (Ray's default 3 s x 5).
TUNED_HEALTH_CHECKS = {
    "health_check_period_ms": 500,
    "health_check_failure_threshold": 3,
    "health_check_timeout_ms": 500,
}
OBJECT_STORE = 80_000_000  # zoo passes no big objects; Ray's minimum is 75 MB


@dataclass(frozen=True)
class NodeSpec:
    """One fake machine: its zoo.node name, host profile, fake GPUs and accelerator kind."""

    name: str
    profile: str
    gpus: int = 1
    accelerator: str = ""
    cpus: int = 1

    def args(self) -> list[str]:
        labels = f"zoo.node={self.name},zoo.host-profile={self.profile}"
        args = [
            f"--num-cpus={self.cpus}",
            f"--num-gpus={self.gpus}",
            f"--labels={labels}",
            f"--object-store-memory={OBJECT_STORE}",
            "--disable-usage-stats",
        ]
        if self.accelerator:
            args.append(f"--resources={json.dumps({f'accelerator_type:{self.accelerator}': 1})}")
        return args


def _environ(pid: int) -> bytes:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/environ").read_bytes()
    return b""


def _comm(pid: int) -> str:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/comm").read_text().strip()
    return ""


def cmdline(pid: int) -> bytes:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    return b""


def _zombie_or_gone(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def all_pids() -> list[int]:
    return [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()]


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (children, grandchildren, ...)."""
    children: dict[int, list[int]] = {}
    for child in all_pids():
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = Path(f"/proc/{child}/stat").read_text()
            children.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(child)
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RayCluster:
    """``ray start`` head + workers, each node with its own environment (ZOO_HOME, hub cache).

    ``env`` is what every node (and the test's drivers: ``driver_env()``) runs with; each node
    adds its own ZOO_HOME, HOME and HF_HOME under ``root/<name>`` and its marker.
    """

    root: Path
    head: NodeSpec
    workers: tuple[NodeSpec, ...]
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    token: str = field(default_factory=lambda: secrets.token_hex(16))
    system_config: Mapping[str, object] = field(default_factory=lambda: TUNED_HEALTH_CHECKS)
    persistent_gcs: bool = True
    started: dict[str, float] = field(default_factory=dict)  # node name -> seconds to start
    # Every Ray node id seen alive -> its zoo.node name (a dead node's id stays known).
    names: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Unix socket paths must stay short (108 bytes): Ray's sockets live under temp_dir.
        parent = os.environ.get("ZOO_TEST_RAY_TMP") or tempfile.gettempdir()
        self.temp_dir = Path(parent) / f"zr{self.port}"
        self.temp_dir.mkdir(parents=True, exist_ok=True)
        self.gcs_dir = self.root / "gcs"

    # -- addresses and environments ---------------------------------------------------------
    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def nodes(self) -> tuple[NodeSpec, ...]:
        return (self.head, *self.workers)

    def ray_env(self) -> dict[str, str]:
        return {
            "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN": self.token,
            "RAY_USAGE_STATS_ENABLED": "0",
            "RAY_SCHEDULER_EVENTS": "0",
        }

    def driver_env(self) -> dict[str, str]:
        """What a process that talks to the cluster (zoo's CLI) needs on top of its own."""
        return self.ray_env()

    def home(self, name: str) -> Path:
        return self.root / name

    def node_env(self, spec: NodeSpec) -> dict[str, str]:
        home = self.home(spec.name)
        env = {
            k: v
            for k, v in {**os.environ, **self.env}.items()
            if k not in ("RAY_ADDRESS", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HUB_OFFLINE")
        }
        env.update(self.ray_env())
        env.update(
            ZOO_HOME=str(home / "zoo"),
            HF_HOME=str(home / "hf"),
            MODELSCOPE_CACHE=str(home / "modelscope"),
            HOME=str(home),
            **{MARKER: spec.name},
        )
        if spec is self.head and self.persistent_gcs:
            env.update(RAY_gcs_storage="rocksdb", RAY_gcs_storage_path=str(self.gcs_dir))
        return env

    # -- starting ---------------------------------------------------------------------------
    def _ray_start(self, spec: NodeSpec) -> None:
        self.home(spec.name).mkdir(parents=True, exist_ok=True)
        if spec is self.head:
            args = [
                "--head",
                f"--port={self.port}",
                "--include-dashboard=false",
                f"--system-config={json.dumps(dict(self.system_config))}",
            ]
            # One machine, many nodes: `ray start --head` refuses a port it believes in use
            # when a previous head's address is recorded (the notes' restart workaround).
            (self.temp_dir / "ray_current_cluster").unlink(missing_ok=True)
        else:
            args = [f"--address={self.address}"]
        log = self.root / f"ray-start-{spec.name}.log"
        started = time.monotonic()
        with log.open("ab") as out:
            done = subprocess.run(
                [RAY, "start", *args, f"--temp-dir={self.temp_dir}", *spec.args()],
                env=self.node_env(spec),
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=120,
                check=False,
            )
        self.started[spec.name] = time.monotonic() - started
        if done.returncode != 0:
            raise RuntimeError(
                f"ray start of {spec.name} failed ({done.returncode}):\n{log.read_text()[-4000:]}"
            )

    def start(self) -> RayCluster:
        self._ray_start(self.head)
        for spec in self.workers:
            self._ray_start(spec)
        self.wait_alive({spec.name for spec in self.nodes})
        return self

    def restart_node(self, name: str) -> None:
        spec = next(spec for spec in self.nodes if spec.name == name)
        self._ray_start(spec)

    # -- looking at it ----------------------------------------------------------------------
    def node_pids(self, name: str) -> set[int]:
        """Every process of node ``name``: its marker's, and all under its raylet."""
        marker = f"{MARKER}={name}\0".encode()
        marked = {pid for pid in all_pids() if marker in _environ(pid) + b"\0"}
        found = set(marked)
        for pid in marked:
            if _comm(pid) == "raylet":
                found |= descendants(pid)
        return {pid for pid in found if pid != os.getpid() and not _zombie_or_gone(pid)}

    def engine_pids(self, name: str, needle: bytes = b"zoo_llamacpp") -> set[int]:
        """The node's processes whose command line has ``needle`` (its engines)."""
        return {pid for pid in self.node_pids(name) if needle in cmdline(pid)}

    def raylet_pid(self, name: str) -> int | None:
        for pid in self.node_pids(name):
            if _comm(pid) == "raylet":
                return pid
        return None

    def alive_nodes(self) -> dict[str, str]:
        """Node name (zoo.node label) -> Ray node id, for the nodes the GCS says are alive.

        Asked in a child process, so the test process itself never joins the cluster."""
        code = (
            "import json, ray\n"
            f"ray.init(address={self.address!r}, logging_level='ERROR', log_to_driver=False)\n"
            "print(json.dumps({n['Labels'].get('zoo.node', n['NodeID']): n['NodeID']"
            " for n in ray.nodes() if n['Alive']}))\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", code],
            env={**self.node_env(self.head), MARKER: "driver"},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"ray.nodes() failed:\n{done.stderr[-3000:]}")
        alive = dict(json.loads(done.stdout.strip().splitlines()[-1]))
        self.names.update({node_id: name for name, node_id in alive.items()})
        return alive

    def node_name(self, node_id: str) -> str:
        """The zoo.node name of the Ray node ``node_id`` (dead or alive)."""
        if node_id not in self.names:
            self.alive_nodes()
        return self.names.get(node_id, f"unknown node {node_id}")

    def wait_alive(self, names: set[str], timeout: float = 60) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        while True:
            alive = self.alive_nodes()
            if set(alive) == names:
                return alive
            if time.monotonic() > deadline:
                raise AssertionError(f"nodes alive: {sorted(alive)}, wanted {sorted(names)}")
            time.sleep(0.5)

    # -- killing ----------------------------------------------------------------------------
    def kill_node(self, name: str, sig: int = signal.SIGKILL) -> set[int]:
        """Kill one "machine": its raylet and every process of that node, at once (SIGKILL).

        Returns the pids killed; waits until every one of them is gone (reaped by the
        namespace's pid 1), as a dead machine's processes are."""
        pids = self.node_pids(name)
        raylet = self.raylet_pid(name)
        if raylet is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(raylet, sig)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        # Anything the raylet's workers started in the meantime goes too.
        deadline = time.monotonic() + 20
        while True:
            left = self.node_pids(name)
            for pid in left:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            if not left and all(_zombie_or_gone(pid) for pid in pids):
                return pids
            if time.monotonic() > deadline:
                raise AssertionError(f"processes of {name} still alive: {sorted(left)}")
            time.sleep(0.1)

    def stop(self) -> None:
        """Kill every node by pid (never ``ray stop``)."""
        for spec in reversed(self.nodes):
            with contextlib.suppress(AssertionError):
                self.kill_node(spec.name)
        # alive_nodes()' drivers carry the marker "driver" (no node's) and have exited.
