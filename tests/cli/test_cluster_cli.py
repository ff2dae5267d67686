"""The cluster side of the CLI without a Ray cluster: `zoo cluster status`, `zoo launch
--cluster`, and `zoo ps|stop|logs` spanning a cluster.

What needs no cluster is checked as a user meets it (one-line refusals, the install hint when
ray is missing, help texts, nothing of zoo.cluster or ray imported by the CLI itself); the
rest runs against zoo.cluster's functions replaced by fakes (connect, the nodes, placement and
the instances), so the tables, JSON documents and the foreground contract are checked here
and the Ray side is left to the cluster tests.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from zoo.cli.app import main

SMOL = "smollm2-135m-instruct"
ADDRESS = "127.0.0.1:6379"


@pytest.fixture(autouse=True)
def no_cluster_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    # A developer's own $ZOO_CLUSTER must not decide a test (conftest clears the others).
    monkeypatch.delenv("ZOO_CLUSTER", raising=False)
    monkeypatch.delenv("ZOO_API_KEY", raising=False)


def _zoo(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as done:
        main(list(args))
    out, err = capsys.readouterr()
    return int(done.value.code or 0), out, err


def _one_error_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("zoo: error: "), err
    assert "Traceback" not in err
    return lines[0]


# --- refusals that need no cluster ----------------------------------------------------------


def test_launch_on_a_cluster_without_a_key_is_refused_in_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = _zoo(capsys, "launch", SMOL, "--cluster", ADDRESS, "--dry-run")
    assert code == 2 and out == ""
    line = _one_error_line(err)
    assert "reached over the network" in line
    assert "--api-key" in line and "$ZOO_API_KEY" in line and "api_key_file" in line


@pytest.mark.usefixtures("ray_missing")  # the step after the key check needs ray
def test_a_key_from_the_environment_is_enough(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZOO_API_KEY", "k" * 16)
    code, _, err = _zoo(capsys, "launch", SMOL, "--cluster", ADDRESS, "--dry-run")
    assert code == 1
    assert "Ray is not installed" in _one_error_line(err)


def test_node_without_cluster_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _zoo(capsys, "launch", SMOL, "--node", "w1", "--dry-run")
    assert code == 2
    line = _one_error_line(err)
    assert "--node" in line and "add --cluster" in line


def test_host_and_host_profile_are_refused_with_a_cluster(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = _zoo(
        capsys, "launch", SMOL, "--cluster", ADDRESS, "--api-key", "k" * 16, "--host", "0.0.0.0"
    )
    assert code == 2 and "node's cluster address" in _one_error_line(err)
    code, _, err = _zoo(
        capsys, "launch", SMOL, "--cluster", ADDRESS, "--host-profile", "cpu-8g", "--dry-run"
    )
    assert code == 2 and "each node plans for its own hardware" in _one_error_line(err)


@pytest.mark.parametrize("bad", ["nohost", "host:port", "host:0", "host:70000", "ray://:1"])
def test_a_bad_address_is_refused(capsys: pytest.CaptureFixture[str], bad: str) -> None:
    code, _, err = _zoo(capsys, "launch", SMOL, "--cluster", bad, "--api-key", "k" * 16)
    assert code == 2
    assert "is not a Ray cluster address" in _one_error_line(err)
    code, _, err = _zoo(capsys, "cluster", "status", "--address", bad)
    assert code == 2 and "is not a Ray cluster address" in _one_error_line(err)


def test_a_bad_address_in_the_environment_names_the_variable(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZOO_CLUSTER", "not an address")
    code, _, err = _zoo(capsys, "cluster", "status")
    assert code == 2 and "$ZOO_CLUSTER" in _one_error_line(err)


def test_status_without_an_address_says_how_to_give_one(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = _zoo(capsys, "cluster", "status")
    assert code == 2 and out == ""
    line = _one_error_line(err)
    assert "--cluster HOST:PORT" in line and "$ZOO_CLUSTER" in line and "settings file" in line


def test_a_bare_cluster_flag_without_a_configured_cluster(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = _zoo(capsys, "launch", SMOL, "--cluster", "--api-key", "k" * 16)
    assert code == 2
    assert "--cluster has no address" in _one_error_line(err)
    code, _, err = _zoo(capsys, "stop", "x", "--cluster")
    assert code == 2 and "--cluster has no address" in _one_error_line(err)


def test_bare_cluster_spelling() -> None:
    from zoo.cli.cluster_cmd import bare_cluster

    assert bare_cluster(["qwen3", "--cluster"]) == ["qwen3", "--cluster="]
    assert bare_cluster(["--cluster", "--node", "w1"]) == ["--cluster=", "--node", "w1"]
    assert bare_cluster(["--cluster", "h:1", "x"]) == ["--cluster", "h:1", "x"]


def test_a_cluster_flag_after_the_double_dash_is_the_engines(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = _zoo(capsys, "launch", SMOL, "--json", "--hub", "pypi", "--", "--cluster")
    assert code == 0, err
    assert json.loads(out)["options"]["extra_args"] == ["--cluster"]


# --- ray missing --------------------------------------------------------------------------


@pytest.fixture
def ray_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    """`import ray` fails as it does where the zoo[ray] extra is not installed."""
    monkeypatch.setitem(sys.modules, "ray", None)
    for name in [m for m in sys.modules if m == "zoo.cluster.actor" or m.startswith("ray.")]:
        monkeypatch.delitem(sys.modules, name)


@pytest.mark.usefixtures("ray_missing")
def test_ray_missing_gives_the_install_hint(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _zoo(capsys, "cluster", "status", "--address", ADDRESS)
    assert code == 1 and out == ""
    line = _one_error_line(err)
    assert "Ray is not installed" in line and "zoo-launcher[ray]" in line
    code, _, err = _zoo(capsys, "ps", "--cluster", ADDRESS)
    assert code == 1 and "zoo-launcher[ray]" in _one_error_line(err)
    # --json: the error is the one JSON document on stdout.
    code, out, _ = _zoo(capsys, "cluster", "status", "--address", ADDRESS, "--json")
    assert code == 1
    assert "zoo-launcher[ray]" in json.loads(out)["error"]["hint"]


@pytest.mark.usefixtures("ray_missing")
def test_ps_with_a_configured_cluster_still_lists_this_machine(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZOO_CLUSTER", ADDRESS)
    code, out, err = _zoo(capsys, "ps")
    assert code == 0
    assert out.startswith("No instances")
    assert "zoo: note:" in err and "zoo-launcher[ray]" in err
    code, out, _ = _zoo(capsys, "ps", "--json")
    assert code == 0
    document = json.loads(out)
    assert document["version"] == 1 and document["instances"] == []
    assert document["cluster"]["address"] == ADDRESS
    assert document["cluster"]["instances"] == []
    assert "Ray is not installed" in document["cluster"]["error"]


def test_ps_json_says_a_bad_cluster_setting_and_still_lists_this_machine(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZOO_CLUSTER", "evil host:1")
    code, out, _ = _zoo(capsys, "ps", "--json")
    document = json.loads(out)
    assert code == 0 and document["instances"] == []
    assert document["cluster"]["address"] is None and document["cluster"]["instances"] == []
    assert "is not a Ray cluster address" in document["cluster"]["error"]


def test_ps_without_a_cluster_is_unchanged(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _zoo(capsys, "ps", "--json")
    assert code == 0
    assert json.loads(out) == {"version": 1, "instances": []}


# --- help and import cost -------------------------------------------------------------------


def test_help_texts(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _zoo(capsys, "launch", "--help")
    assert code == 0
    assert "--cluster" in out and "--node" in out and "API key" in out
    code, out, _ = _zoo(capsys, "ps", "--help")
    assert code == 0 and "--cluster" in out and '"local"' in out
    code, out, _ = _zoo(capsys, "stop", "--help")
    assert code == 0 and "--cluster" in out
    code, out, _ = _zoo(capsys, "logs", "--help")
    assert code == 0 and "--cluster" in out
    code, out, _ = _zoo(capsys, "cluster", "status", "--help")
    assert code == 0 and "--address" in out and "ZOO_CLUSTER" in out
    code, out, _ = _zoo(capsys, "--help")
    assert code == 0 and "cluster" in out


def test_the_cli_imports_nothing_of_the_cluster_or_ray() -> None:
    code = (
        "import sys\n"
        "from zoo.cli.app import COMMAND_MODULES, build_app\n"
        "from typer.main import get_command\n"
        "get_command(build_app(with_plugins=False, modules=COMMAND_MODULES))\n"
        "bad = sorted(m for m in sys.modules if m == 'ray' or m.startswith(('ray.', "
        "'zoo.cluster')))\n"
        "assert not bad, bad\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_cluster_commands_are_registered_alone() -> None:
    from zoo.cli.app import modules_for

    assert modules_for(["cluster", "status"]) == ("zoo.cli.cluster_cmd",)


# --- against fakes of zoo.cluster -----------------------------------------------------------


def _node(name: str, node_id: str, *, gpu: bool = True, problem: str | None = None) -> Any:
    from zoo.cluster.nodes import Node
    from zoo.host import load_host_profile

    host = None if problem else load_host_profile("h100-80g" if gpu else "cpu-8g")
    return Node(
        node_id=node_id,
        name=name,
        address=f"10.0.0.{len(name)}",
        alive=problem is None,
        cpus=8.0,
        gpus=1.0 if gpu else 0.0,
        memory_bytes=8 << 30,
        labels=(("zoo.node", name),),
        host=host,
        problem=problem,
        engines_ready=("llamacpp",) if host else (),
        models=(SMOL,) if gpu and host else (),
    )


NODES_IDS = ("a" * 32, "b" * 32, "c" * 32)


@dataclass
class FakeCluster:
    """What zoo.cluster would answer, recorded: nodes, instances, their logs, stops, starts."""

    nodes: list[Any]
    instances: list[Any] = field(default_factory=list)
    logs: dict[str, bytes] = field(default_factory=dict)
    stopped: list[str] = field(default_factory=list)
    started: list[Any] = field(default_factory=list)
    connected: list[str] = field(default_factory=list)


def _instance(name: str, node_id: str, **changes: Any) -> Any:
    from zoo.cluster.instances import ClusterInstance

    base = ClusterInstance(
        name=name,
        model=SMOL,
        engine="llamacpp",
        kind="llm",
        format="ggufv2",
        quantization="Q4_1",
        size=0.135,
        served_name=SMOL,
        node_id=node_id,
        node_address="10.0.0.2",
        url="http://10.0.0.2:41000",
        state="running",
        started_at=0.0,
    )
    return replace(base, **changes)


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch) -> FakeCluster:
    from zoo.cluster import connect, instances, nodes, placement

    fake = FakeCluster(
        nodes=[
            _node("w1", NODES_IDS[0]),
            _node("w2", NODES_IDS[1], gpu=False),
            _node("w3", NODES_IDS[2], problem="zoo is not installed on this node"),
        ]
    )
    monkeypatch.setattr(connect, "connect", lambda address, **_: fake.connected.append(address))

    def list_nodes(*, probe: bool = True, timeout: float = 30.0) -> list[Any]:
        return list(fake.nodes)

    monkeypatch.setattr(nodes, "list_nodes", list_nodes)

    def place(request: Any, options: Any, *, nodes: Any = None, pin: Any = None, **_: Any) -> Any:
        from zoo import launch
        from zoo.host import load_host_profile

        plan = launch.plan(request, options, host=load_host_profile("cpu-8g"))
        verdicts = tuple(
            placement.Verdict(n, plan if n.host else None, "fits" if n.host else n.problem)
            for n in fake.nodes
        )
        chosen = fake.nodes[1] if pin in (None, "w2") else fake.nodes[0]
        return placement.Placement(chosen, plan, verdicts, pinned=pin is not None)

    monkeypatch.setattr(placement, "place", place)
    monkeypatch.setattr(instances, "list_instances", lambda **_: list(fake.instances))

    def find(ref: str, **_: Any) -> list[Any]:
        return [
            i
            for i in fake.instances
            if ref in (i.name, i.name.rpartition("@")[2], i.model, i.served_name)
        ]

    monkeypatch.setattr(instances, "find", find)

    def stop(name: str, *, grace: float = 10.0) -> bool:
        fake.stopped.append(name)
        before = len(fake.instances)
        fake.instances = [i for i in fake.instances if i.name != name]
        return len(fake.instances) < before

    monkeypatch.setattr(instances, "stop", stop)

    def read_log(name: str, offset: int = 0, limit: int = 1 << 20) -> tuple[bytes, int]:
        data = fake.logs.get(name, b"")[offset : offset + limit]
        return data, offset + len(data)

    monkeypatch.setattr(instances, "read_log", read_log)

    def log_tail(name: str, lines: int = 15) -> str:
        text = fake.logs.get(name, b"").decode().splitlines()
        return "\n".join(text[-lines:])

    monkeypatch.setattr(instances, "log_tail", log_tail)

    def current(name: str, *, wait: float) -> Any:
        return next((i for i in fake.instances if i.name == name), None)

    monkeypatch.setattr(instances, "current", current)

    def start(placed: Any, *, detached: bool = True, **_: Any) -> Any:
        fake.started.append(placed)
        made = _instance(f"{SMOL}@1234abcd", placed.node.node_id)
        fake.instances.append(made)
        return made

    monkeypatch.setattr(instances, "start", start)
    return fake


def test_status_table_and_json(cluster: FakeCluster, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _zoo(capsys, "cluster", "status", "--address", ADDRESS)
    assert code == 0, err
    assert cluster.connected == [ADDRESS]
    lines = out.splitlines()
    assert lines[0] == f"cluster {ADDRESS}: 3 nodes, 2 alive"
    header = lines[1].split()
    assert header[:6] == ["NODE", "ADDRESS", "ALIVE", "GPUS", "RAM", "CPUS"]
    assert "PROBLEM" in header
    w1 = next(line for line in lines if line.startswith("w1"))
    assert "1 x" in w1 and "GiB" in w1 and "llamacpp" in w1
    assert "zoo is not installed" in " ".join(" ".join(lines).split())  # the cell may wrap
    code, out, _ = _zoo(capsys, "cluster", "status", "--address", ADDRESS, "--json")
    document = json.loads(out)
    assert document["version"] == 1 and document["address"] == ADDRESS
    assert [n["name"] for n in document["nodes"]] == ["w1", "w2", "w3"]
    assert document["nodes"][2]["problem"] == "zoo is not installed on this node"


def test_status_uses_the_settings_file(
    cluster: FakeCluster, capsys: pytest.CaptureFixture[str], config_file: Path
) -> None:
    config_file.write_text('cluster = "10.1.2.3:6380"\n')
    code, _, err = _zoo(capsys, "cluster", "status")
    assert code == 0, err
    assert cluster.connected == ["10.1.2.3:6380"]


def test_launch_dry_run_prints_the_placement_and_the_plan(
    cluster: FakeCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    key = ("--api-key", "k" * 16)
    code, out, err = _zoo(capsys, "launch", SMOL, "--cluster", ADDRESS, *key, "--dry-run")
    assert code == 0, err
    assert out.startswith("node:         w2 (")
    assert "placement:" in out
    assert "w3" in out and "zoo is not installed" in out
    assert "engine:" in out and "memory:" in out  # the local dry run's plan lines
    assert "k" * 16 not in out
    code, out, _ = _zoo(capsys, "launch", SMOL, "--cluster", ADDRESS, *key, "--explain")
    assert code == 0 and "why:" in out and "candidates:" in out
    code, out, _ = _zoo(
        capsys, "launch", SMOL, "--cluster", ADDRESS, *key, "--json", "--node", "w1"
    )
    document = json.loads(out)
    assert document["placement"]["node"] == "w1" and document["placement"]["pinned"] is True
    assert {n["node"] for n in document["placement"]["nodes"]} == {"w1", "w2", "w3"}
    assert document["plan"]["model"] == SMOL
    assert "k" * 16 not in out
    assert cluster.started == []


def test_launch_detached_prints_the_banner(
    cluster: FakeCluster, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZOO_CLUSTER", ADDRESS)
    code, out, err = _zoo(capsys, "launch", SMOL, "--cluster", "--api-key", "k" * 16, "-d")
    assert code == 0, err
    assert len(cluster.started) == 1
    assert cluster.started[0].plan.options.api_key == "k" * 16
    assert "is ready on node w2" in out
    assert "endpoint: http://10.0.0.2:41000/v1" in out
    assert f"zoo stop {SMOL}@1234abcd --cluster {ADDRESS}" in out
    # Launched again as it runs: its endpoint, not a second instance (the key is asked).
    from zoo.cli import launch_cmd

    monkeypatch.setattr(launch_cmd, "_answers_with_key", lambda inst, key: True)
    code, out, err = _zoo(capsys, "launch", SMOL, "--cluster", "--api-key", "k" * 16, "-d")
    assert code == 0, err
    assert "is already running on node w2" in out and len(cluster.started) == 1


def test_launch_in_the_foreground_follows_then_stops(
    cluster: FakeCluster, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from zoo.cli import cluster_cmd
    from zoo.cluster import instances

    name = f"{SMOL}@1234abcd"
    cluster.logs[name] = b"loading\n"
    reads: list[int] = []
    real = instances.read_log

    def read_log(ref: str, offset: int = 0, limit: int = 1 << 20) -> tuple[bytes, int]:
        reads.append(offset)
        if len(reads) == 3:
            cluster.logs[name] += b"serving\n"
        if len(reads) > 4:
            raise KeyboardInterrupt  # Ctrl-C
        return real(ref, offset, limit)

    monkeypatch.setattr(instances, "read_log", read_log)
    monkeypatch.setattr(cluster_cmd, "POLL_S", 0.0)
    code, out, err = _zoo(capsys, "launch", SMOL, "--cluster", ADDRESS, "--api-key", "k" * 16)
    assert code == 0, err
    assert "serving" in err and "loading" not in err  # the log from the banner on
    assert out.rstrip().endswith("Stopped.")
    assert cluster.stopped == [name]


def test_launch_in_the_foreground_reports_a_failure(
    cluster: FakeCluster, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from zoo.cli import cluster_cmd
    from zoo.cluster import instances

    monkeypatch.setattr(cluster_cmd, "POLL_S", 0.0)
    monkeypatch.setattr(cluster_cmd, "STATE_EVERY_S", 0.0)
    monkeypatch.setattr(
        instances,
        "current",
        lambda name, wait: _instance(name, NODES_IDS[1], state="failed", error="engine exited"),
    )
    code, _, err = _zoo(capsys, "launch", SMOL, "--cluster", ADDRESS, "--api-key", "k" * 16)
    assert code == 1
    assert "failed on the cluster" in err and "engine exited" in err
    assert "Traceback" not in err
    assert cluster.stopped == [f"{SMOL}@1234abcd"]  # it does not outlive the command


def test_no_node_fits_is_one_line(
    cluster: FakeCluster, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from zoo.cluster import placement

    def place(*args: Any, **kwargs: Any) -> Any:
        raise placement.NoNodeFits(f"{SMOL} fits no node of the cluster: w1: too small")

    monkeypatch.setattr(placement, "place", place)
    code, _, err = _zoo(
        capsys, "launch", SMOL, "--cluster", ADDRESS, "--api-key", "k" * 16, "--dry-run"
    )
    assert code == 1 and "fits no node" in _one_error_line(err)


def test_an_unknown_node_is_refused(
    cluster: FakeCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _zoo(
        capsys, "launch", SMOL, "--cluster", ADDRESS, "--api-key", "k" * 16, "--node", "w9"
    )
    assert code == 2
    line = _one_error_line(err)
    assert "w9" in line and "w1" in line


def test_ps_spans_the_cluster(
    cluster: FakeCluster, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster.instances = [
        _instance(f"{SMOL}@aaaa1111", NODES_IDS[0]),
        _instance("other@bbbb2222", "gone", model="other", url=None, state="unreachable"),
    ]
    code, out, err = _zoo(capsys, "ps", "--cluster", ADDRESS)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == [
        "ID", "MODEL", "ENGINE", "QUANT", "NODE", "ENDPOINT", "PID", "UPTIME", "STATUS"
    ]  # fmt: skip
    assert f"{SMOL}@aaaa1111" in lines[1] and " w1 " in lines[1] and "running" in lines[1]
    assert "unreachable" in lines[2] and " - " in lines[2]
    assert any(line.startswith("unreachable (cluster):") for line in lines)
    # $ZOO_CLUSTER: `zoo ps` alone lists this machine's and the cluster's.
    monkeypatch.setenv("ZOO_CLUSTER", ADDRESS)
    code, out, _ = _zoo(capsys, "ps", "--json")
    document = json.loads(out)
    assert document["version"] == 1 and document["instances"] == []
    assert [i["name"] for i in document["cluster"]["instances"]] == [
        f"{SMOL}@aaaa1111",
        "other@bbbb2222",
    ]
    assert document["cluster"]["error"] is None


def test_stop_on_the_cluster(cluster: FakeCluster, capsys: pytest.CaptureFixture[str]) -> None:
    cluster.instances = [
        _instance(f"{SMOL}@aaaa1111", NODES_IDS[0]),
        _instance(f"{SMOL}@bbbb2222", NODES_IDS[1]),
    ]
    # A name that fits two stops none.
    code, _, err = _zoo(capsys, "stop", SMOL, "--cluster", ADDRESS)
    assert code == 2 and "names 2 instances" in _one_error_line(err)
    assert cluster.stopped == []
    # Every name is checked before anything is stopped.
    code, _, err = _zoo(capsys, "stop", "aaaa1111", "typo", "--cluster", ADDRESS)
    assert code == 1 and "no instance 'typo' on the cluster" in _one_error_line(err)
    assert cluster.stopped == []
    code, out, err = _zoo(capsys, "stop", "aaaa1111", "--cluster", ADDRESS)
    assert code == 0, err
    assert out == f"Stopped {SMOL}@aaaa1111 ({SMOL}) on node w1.\n"
    code, out, _ = _zoo(capsys, "stop", "--all", "--cluster", ADDRESS)
    assert code == 0 and cluster.stopped == [f"{SMOL}@aaaa1111", f"{SMOL}@bbbb2222"]


def test_stop_and_logs_find_a_cluster_name_through_zoo_cluster(
    cluster: FakeCluster, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"{SMOL}@aaaa1111"
    cluster.instances = [_instance(name, NODES_IDS[0])]
    cluster.logs[name] = b"".join(f"line {n}\n".encode() for n in range(100))
    code, _, err = _zoo(capsys, "logs", name)
    assert code == 1 and "no instance" in err  # no cluster configured: this machine only
    monkeypatch.setenv("ZOO_CLUSTER", ADDRESS)
    code, out, err = _zoo(capsys, "logs", name, "-n", "3")
    assert code == 0, err
    assert out == "line 97\nline 98\nline 99\n"
    code, _, err = _zoo(capsys, "logs", "nothing-by-this-name")
    assert code == 1 and f"none on the cluster at {ADDRESS} either" in _one_error_line(err)
    code, out, err = _zoo(capsys, "stop", "aaaa1111")
    assert code == 0, err
    assert cluster.stopped == [name]


def test_logs_follow_on_the_cluster(
    cluster: FakeCluster, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from zoo.cli import cluster_cmd

    name = f"{SMOL}@aaaa1111"
    cluster.instances = [_instance(name, NODES_IDS[0])]
    cluster.logs[name] = b"one\ntwo\n"
    monkeypatch.setattr(cluster_cmd, "POLL_S", 0.0)
    monkeypatch.setattr(cluster_cmd, "STATE_EVERY_S", 0.0)
    polls = {"n": 0}

    def current(ref: str, *, wait: float) -> Any:
        polls["n"] += 1
        if polls["n"] == 1:
            cluster.logs[name] += b"three\n"
            return cluster.instances[0]
        return None  # stopped elsewhere: following ends

    from zoo.cluster import instances

    monkeypatch.setattr(instances, "current", current)
    code, out, err = _zoo(capsys, "logs", name, "--cluster", ADDRESS, "-f", "-n", "1")
    assert code == 0, err
    assert out == "two\nthree\n"
