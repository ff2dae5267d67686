"""The gateway's cluster backend against a fake cluster: ``zoo.cluster.instances`` replaced by
an in-memory one, nodes and placement by fixed answers. Budgets per node, placement with the
gateway's private key, failover followed (the restarted instance adopted, never stopped by the
dead address's cleanup), and the ``zoo serve --cluster`` wiring."""

from __future__ import annotations

import asyncio
import dataclasses
import sys
import threading
from collections.abc import AsyncIterator, Callable
from types import SimpleNamespace
from typing import Any

import pytest

import zoo.cluster
from zoo.cluster import nodes as cluster_nodes
from zoo.cluster import placement as cluster_placement
from zoo.cluster.instances import ClusterInstance
from zoo.cluster.nodes import Node
from zoo.cluster.placement import NoNodeFits, Placement
from zoo.host import BUILTIN_PROFILES
from zoo.plan import MemoryBreakdown
from zoo.resolve import memory_budget
from zoo.serve.cluster_backend import ALIVE_WAIT_S, ClusterBackend, node_budgets
from zoo.serve.errors import DoesNotFit, LoadFailed, NotDownloaded
from zoo.serve.scheduler import Scheduler
from zoo.serve.types import ModelEntry, Upstream

pytestmark = pytest.mark.timeout(30)

GB = 10**9
H100 = BUILTIN_PROFILES["h100-80g"]
CPU = BUILTIN_PROFILES["cpu-24g"]


def node(name: str, host: Any = H100, *, alive: bool = True, models: tuple[str, ...] = ()) -> Node:
    n = int(name[1:]) if name[1:].isdigit() else 9
    return Node(
        node_id=f"{name}-id-0000",
        name=name,
        address=f"10.0.0.{n}",
        alive=alive,
        host=dataclasses.replace(host, name=name) if host is not None else None,
        problem=None if host is not None else "zoo is not installed on this node",
        models=models,
    )


class FakeInstances:
    """Stands in for ``zoo.cluster.instances``: instances in a dict, every call recorded.

    ``move(name, node)`` is a node's death: Ray restarted the actor on ``node``, its engine
    serving under a new address (``silent`` calls first answer "unreachable", as while Ray
    notices the death)."""

    def __init__(self) -> None:
        self.instances: dict[str, ClusterInstance] = {}
        self.calls: list[tuple[str, Any]] = []
        self.started: list[dict[str, Any]] = []
        self.silent: dict[str, int] = {}
        self.fail_start: Exception | None = None
        self._port = 9000
        self._lock = threading.Lock()

    def _url(self, address: str) -> str:
        with self._lock:
            self._port += 1
            return f"http://{address}:{self._port}"

    def start(self, placement: Placement, **kw: Any) -> ClusterInstance:
        self.calls.append(("start", placement.plan.family.name))
        self.started.append({"placement": placement, **kw})
        if self.fail_start is not None:
            raise self.fail_start
        plan = placement.plan
        name = f"{plan.family.name}@{len(self.started):04x}"
        inst = ClusterInstance(
            name=name,
            model=plan.family.name,
            engine="gw",
            kind="llm",
            format="ggufv2",
            quantization="Q8_0",
            size=0.001,
            served_name=plan.options.served_name,
            node_id=placement.node.node_id,
            node_address=placement.node.address,
            url=self._url(placement.node.address),
            state="running",
            detached=kw["detached"],
            memory_bytes=plan.memory.total_bytes,
            place=plan.memory.place,
            owner=kw.get("owner", "zoo launch"),
        )
        self.instances[name] = inst
        return inst

    def current(self, name: str, *, wait: float) -> ClusterInstance | None:
        self.calls.append(("current", (name, wait)))
        inst = self.instances.get(name)
        if inst is None:
            return None
        if self.silent.get(name, 0) > 0:
            self.silent[name] -= 1
            return dataclasses.replace(inst, url=None, state="unreachable")
        return inst

    def stop(self, name: str, *, grace: float = 10.0) -> bool:
        self.calls.append(("stop", name))
        return self.instances.pop(name, None) is not None

    def log_tail(self, name: str, lines: int = 15) -> str:
        return f"last lines of {name}"

    # -- what the tests do to the cluster ----------------------------------------------------

    def move(self, name: str, to: Node, *, silent: int = 0, state: str = "running") -> str:
        inst = self.instances[name]
        url = self._url(to.address) if state == "running" else None
        self.instances[name] = dataclasses.replace(
            inst, node_id=to.node_id, node_address=to.address, url=url, state=state
        )
        self.silent[name] = silent
        return url or ""

    def count(self, what: str) -> int:
        return sum(1 for c in self.calls if c[0] == what)


class FakeCluster:
    """The nodes Ray lists and where each family is placed (``where[family]``: a node name,
    or absent: it fits no node)."""

    def __init__(self, nodes: list[Node]) -> None:
        self.nodes = nodes
        self.where: dict[str, str] = {}
        self.memory: dict[str, tuple[int, str]] = {}
        self.placed: list[dict[str, Any]] = []

    def list_nodes(self, *, probe: bool = True, timeout: float = 30.0) -> list[Node]:
        return list(self.nodes)

    def place(self, request: Any, options: Any, *, nodes: Any = None, **kw: Any) -> Placement:
        among = list(nodes if nodes is not None else self.nodes)
        self.placed.append({"request": request, "options": options, "nodes": among})
        want = self.where.get(request.model)
        chosen = [n for n in among if n.name == want and n.alive]
        if not chosen:
            raise NoNodeFits(f"{request.model} fits no node of the cluster")
        size, place = self.memory.get(request.model, (40 * GB, "GPU memory"))
        plan = SimpleNamespace(
            family=SimpleNamespace(name=request.model),
            memory=MemoryBreakdown(weights_bytes=size, place=place),
            options=options,
        )
        return Placement(chosen[0], plan, ())  # type: ignore[arg-type]


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeInstances:
    instances = FakeInstances()
    monkeypatch.setitem(sys.modules, "zoo.cluster.instances", instances)
    monkeypatch.setattr(zoo.cluster, "instances", instances, raising=False)
    return instances


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch) -> FakeCluster:
    c = FakeCluster([node("w1", models=("alpha", "gamma")), node("w2", models=("beta",))])
    c.where.update(alpha="w1", beta="w2", gamma="w1")
    monkeypatch.setattr(cluster_nodes, "list_nodes", c.list_nodes)
    monkeypatch.setattr(cluster_placement, "place", c.place)
    return c


def entry(name: str, **kw: Any) -> ModelEntry:
    return ModelEntry(name=name, family=name, **kw)


@pytest.fixture
def backend(fake: FakeInstances, cluster: FakeCluster) -> ClusterBackend:
    return ClusterBackend({}, {}, CPU, cluster.nodes, address="10.0.0.1:6379", failover_wait=7.0)


# -- budgets and plans ------------------------------------------------------------------------


def test_each_node_with_a_profile_is_three_places_of_its_own() -> None:
    nodes = [
        node("w1"),
        node("w2", CPU),
        node("w3", None),  # no profile: nothing can be placed there
        node("w4", alive=False),
    ]
    nodes.append(node("m5", BUILTIN_PROFILES["m2-32g"]))
    budgets = node_budgets(nodes)
    # Only the places each node has: no plan there could use another.
    assert budgets == {
        "w1: RAM": memory_budget(H100, "cpu"),
        "w1: GPU memory": memory_budget(H100, "cuda"),
        "w2: RAM": memory_budget(CPU, "cpu"),
        "m5: RAM": memory_budget(BUILTIN_PROFILES["m2-32g"], "cpu"),
        "m5: unified memory": memory_budget(BUILTIN_PROFILES["m2-32g"], "metal"),
    }
    capped = node_budgets(nodes, 12 * GB)
    assert capped["w1: GPU memory"] == 12 * GB
    assert capped["w2: RAM"] == 12 * GB


def test_plan_memory_places_once_with_a_private_key_and_names_the_node(
    backend: ClusterBackend, cluster: FakeCluster
) -> None:
    e = entry("alpha", quantization="Q8_0", context_length=4096, engine_args=("--flash-attn",))
    assert backend.plan_memory(e) == (40 * GB, "w1: GPU memory")
    assert backend.plan_memory(e) == (40 * GB, "w1: GPU memory")
    assert len(cluster.placed) == 1  # cached per entry, like LocalBackend's plans
    asked = cluster.placed[0]
    request, options = asked["request"], asked["options"]
    assert (request.model, request.quantization, request.context_length) == ("alpha", "Q8_0", 4096)
    assert options.served_name == "alpha"
    assert options.extra_args == ("--flash-attn",)
    assert options.api_key and len(options.api_key) >= 24
    assert backend.plan(e) is backend.placement(e).plan


def test_a_model_that_may_not_download_is_placed_among_the_nodes_that_have_it(
    backend: ClusterBackend, cluster: FakeCluster
) -> None:
    cluster.where["alpha"] = "w1"
    backend.plan_memory(entry("alpha"))
    assert [n.name for n in cluster.placed[-1]["nodes"]] == ["w1"]
    # Allowed to download: every node is a candidate (the placement's own ranking decides).
    backend.plan_memory(entry("alpha", download=True))
    assert [n.name for n in cluster.placed[-1]["nodes"]] == ["w1", "w2"]


def test_nothing_fits_is_does_not_fit_and_a_broken_cluster_a_load_failure(
    backend: ClusterBackend, cluster: FakeCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(DoesNotFit, match="fits no node"):
        backend.plan_memory(entry("huge"))
    from zoo.cluster.connect import ClusterError

    def broken(**kw: Any) -> list[Node]:
        raise ClusterError("cannot list the cluster's nodes: the head is gone")

    monkeypatch.setattr(cluster_nodes, "list_nodes", broken)
    with pytest.raises(LoadFailed, match="head is gone"):
        backend.plan_memory(entry("alpha"))


def test_downloaded_reads_the_nodes_caches(backend: ClusterBackend) -> None:
    assert backend.downloaded(entry("beta"))
    assert not backend.downloaded(entry("delta"))
    assert backend.discovered() == {"alpha", "beta", "gamma"}
    assert backend.log_path("alpha@0001") is None  # the log is on its node


# -- start, stop ------------------------------------------------------------------------------


def test_start_runs_a_job_scoped_instance_reached_with_the_private_key(
    backend: ClusterBackend, fake: FakeInstances
) -> None:
    up = backend.start(entry("alpha"))
    [started] = fake.started
    assert started["detached"] is False  # ends with the gateway's Ray connection
    assert started["owner"] == "zoo serve"
    assert started["pooling"] is False
    key = started["placement"].plan.options.api_key
    inst = fake.instances[up.instance_id]
    assert up == Upstream(
        base_url=inst.url or "",
        request_model="alpha",
        api_key=key,
        instance_id=inst.name,
        memory_bytes=40 * GB,
        place="w1: GPU memory",
    )
    assert backend.alive(up)
    assert ("current", (up.instance_id, ALIVE_WAIT_S)) in fake.calls  # a quick check
    assert backend.log_tail(up) == f"last lines of {up.instance_id}"
    backend.stop(up)
    assert fake.instances == {}
    assert not backend.alive(up)


def test_not_downloaded_on_its_node_unless_downloads_are_allowed(
    backend: ClusterBackend, cluster: FakeCluster, fake: FakeInstances
) -> None:
    cluster.where["delta"] = "w2"
    with pytest.raises(NotDownloaded, match="not downloaded on w2"):
        backend.start(entry("delta"))
    assert fake.started == []
    up = backend.start(entry("delta", download=True))
    assert up.place == "w2: GPU memory"


def test_a_failed_start_is_placed_again_next_time(
    backend: ClusterBackend, cluster: FakeCluster, fake: FakeInstances
) -> None:
    from zoo.cluster.connect import ClusterError

    fake.fail_start = ClusterError("alpha@0001 failed on its node: out of memory")
    with pytest.raises(LoadFailed, match=r"could not start on w1: .*out of memory"):
        backend.start(entry("alpha"))
    fake.fail_start = None
    backend.start(entry("alpha"))
    assert len(cluster.placed) == 2


# -- failover ---------------------------------------------------------------------------------


def test_an_instance_restarted_elsewhere_is_followed_not_stopped(
    backend: ClusterBackend, cluster: FakeCluster, fake: FakeInstances
) -> None:
    up = backend.start(entry("alpha"))
    new_url = fake.move(up.instance_id, cluster.nodes[1])  # w1 died; Ray restarted it on w2
    assert not backend.alive(up)  # the scheduler's _died path runs
    backend.stop(up)  # ...and drops the dead address: the instance is not stopped
    assert fake.count("stop") == 0
    again = backend.start(entry("alpha"))  # the next load adopts it
    assert fake.count("start") == 1
    assert again.base_url == new_url
    assert again.instance_id == up.instance_id
    assert again.api_key == up.api_key  # the restarted engine checks the same key
    assert again.place == "w2: GPU memory"
    assert backend.alive(again)
    backend.stop(up)  # a late cleanup of the old address still stops nothing
    assert fake.count("stop") == 0
    backend.stop(again)  # stopping the current one does
    assert fake.instances == {}


def test_a_restarting_instance_is_kept_and_adopted_once_it_answers(
    backend: ClusterBackend, cluster: FakeCluster, fake: FakeInstances
) -> None:
    up = backend.start(entry("alpha"))
    new_url = fake.move(up.instance_id, cluster.nodes[1], silent=3)
    assert not backend.alive(up)  # still unreachable after the wait
    backend.stop(up)  # unreachable: Ray may be restarting it, so it is kept
    assert fake.count("stop") == 0
    again = backend.start(entry("alpha"))
    assert again.base_url == new_url
    assert fake.count("start") == 1


def test_a_restart_that_failed_is_stopped_and_started_afresh(
    backend: ClusterBackend, cluster: FakeCluster, fake: FakeInstances
) -> None:
    up = backend.start(entry("alpha"))
    fake.move(up.instance_id, cluster.nodes[1], state="failed")
    assert not backend.alive(up)
    backend.stop(up)
    assert fake.calls[-1] == ("stop", up.instance_id)
    again = backend.start(entry("alpha"))
    assert again.instance_id != up.instance_id
    assert fake.count("start") == 2


def test_an_instance_that_never_comes_back_is_given_up(
    fake: FakeInstances, cluster: FakeCluster
) -> None:
    backend = ClusterBackend({}, {}, CPU, cluster.nodes, failover_wait=0.0)
    up = backend.start(entry("alpha"))
    fake.move(up.instance_id, cluster.nodes[1], silent=1000)  # Ray finds no node for it
    assert not backend.alive(up)
    backend.stop(up)
    again = backend.start(entry("alpha"))  # stops the silent one, places and starts again
    assert ("stop", up.instance_id) in fake.calls
    assert again.instance_id != up.instance_id


def test_a_changed_entry_does_not_adopt_the_old_instance(
    backend: ClusterBackend, cluster: FakeCluster, fake: FakeInstances
) -> None:
    up = backend.start(entry("alpha"))
    fake.move(up.instance_id, cluster.nodes[1])
    backend.stop(up)
    again = backend.start(entry("alpha", quantization="Q4_K_M"))
    assert ("stop", up.instance_id) in fake.calls
    assert again.instance_id != up.instance_id


def test_stop_all_stops_restarted_instances_never_adopted(
    backend: ClusterBackend, cluster: FakeCluster, fake: FakeInstances
) -> None:
    up = backend.start(entry("alpha"))
    fake.move(up.instance_id, cluster.nodes[1])
    backend.stop(up)
    backend.stop_all()
    assert fake.instances == {}


# -- through the scheduler --------------------------------------------------------------------


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def scheduler(backend: ClusterBackend) -> AsyncIterator[Callable[..., Scheduler]]:
    made: list[Scheduler] = []

    def make(*names: str, budget: int | None = None) -> Scheduler:
        s = Scheduler(backend, {n: entry(n) for n in names}, budgets=backend.budgets(budget))
        made.append(s)
        return s

    yield make
    for s in made:
        await s.close()


async def use(s: Scheduler, name: str) -> Upstream:
    async with s.lease(name) as up:
        return up


@pytest.mark.anyio
async def test_eviction_is_per_node(
    scheduler: Callable[..., Scheduler], fake: FakeInstances
) -> None:
    s = scheduler("alpha", "beta", "gamma", budget=60 * GB)  # 40 GB each: one per node
    a = await use(s, "alpha")
    b = await use(s, "beta")  # on w2: alpha stays
    assert fake.count("stop") == 0
    await use(s, "gamma")  # on w1: alpha makes room, beta is untouched
    assert fake.calls.count(("stop", a.instance_id)) == 1
    assert b.instance_id in fake.instances
    states = {m.name: (m.status, m.place) for m in s.snapshot()}
    assert states["beta"] == ("ready", "w2: GPU memory")
    assert states["gamma"] == ("ready", "w1: GPU memory")
    assert states["alpha"][0] == "idle"


@pytest.mark.anyio
async def test_a_request_after_a_node_died_is_served_by_the_restarted_instance(
    scheduler: Callable[..., Scheduler], cluster: FakeCluster, fake: FakeInstances
) -> None:
    s = scheduler("alpha")
    first = await use(s, "alpha")
    new_url = fake.move(first.instance_id, cluster.nodes[1], silent=1)
    second = await asyncio.wait_for(use(s, "alpha"), 10)
    assert second.base_url == new_url
    assert second.instance_id == first.instance_id
    assert fake.count("start") == 1  # adopted, not started twice
    await asyncio.sleep(0.05)  # the died path's cleanup runs in a task of its own
    assert fake.count("stop") == 0
    assert new_url and fake.instances[first.instance_id].url == new_url
    [state] = s.snapshot()
    assert (state.status, state.place) == ("ready", "w2: GPU memory")


# -- the zoo serve wiring ---------------------------------------------------------------------


@pytest.fixture
def serve_cluster(
    cluster: FakeCluster, fake: FakeInstances, monkeypatch: pytest.MonkeyPatch
) -> list[str]:
    from zoo.cluster import connect as cluster_connect

    joined: list[str] = []
    monkeypatch.setattr(cluster_connect, "connect", lambda address, **kw: joined.append(address))
    cluster.nodes.append(node("w3", None))
    return joined


def test_build_gateway_on_a_cluster_budgets_each_node(serve_cluster: list[str]) -> None:
    from zoo.serve.server import ServeOptions, build_gateway, cluster_words

    lines: list[str] = []
    options = ServeOptions(cluster="10.0.0.1:6379", memory_budget=50 * GB, failover_wait=3.0)
    gateway, _ = build_gateway(options, say=lines.append)
    assert serve_cluster == ["10.0.0.1:6379"]
    backend = gateway.backend
    assert isinstance(backend, ClusterBackend)
    assert backend.failover_wait == 3.0
    assert gateway.scheduler.budgets["w2: GPU memory"] == 50 * GB
    assert gateway.scheduler.budgets["w1: RAM"] == 50 * GB
    assert "w3: RAM" not in gateway.scheduler.budgets  # no profile: nothing runs there
    assert any("node w3" in line and "not installed" in line for line in lines)
    assert cluster_words(backend) == "; cluster 10.0.0.1:6379, 2 nodes of 3 alive"
    assert gateway.bind_host == "127.0.0.1"


def test_serve_argv_passes_the_cluster_on() -> None:
    from zoo.serve.server import ServeOptions, serve_argv

    argv = serve_argv(ServeOptions(cluster="ray://head:10001", failover_wait=5.0))
    assert argv[-4:] == ["--cluster", "ray://head:10001", "--failover-wait", "5.0"]
    assert "--cluster" not in serve_argv(ServeOptions())


def test_zoo_serve_takes_the_cluster_from_the_flag_or_the_environment(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from zoo.cli.app import main
    from zoo.serve import server

    seen: list[server.ServeOptions] = []
    monkeypatch.setattr(server, "serve", lambda options, say: seen.append(options))

    def run(*args: str) -> int | str | None:
        with pytest.raises(SystemExit) as exited:
            main(["serve", *args])
        return exited.value.code

    assert run() == 0
    assert seen[-1].cluster is None  # no cluster configured: this machine
    monkeypatch.setenv("ZOO_CLUSTER", "10.0.0.1:6379")
    assert run() == 0
    assert run("--cluster", "head:7000", "--failover-wait", "5") == 0
    assert [o.cluster for o in seen[1:]] == ["10.0.0.1:6379", "head:7000"]
    assert seen[-1].failover_wait == 5.0
    assert seen[-1].host == "127.0.0.1"  # the gateway binds loopback unless --host says
    capsys.readouterr()
    assert run("--cluster", "not an address") != 0
    assert "not a Ray cluster address" in capsys.readouterr().err
