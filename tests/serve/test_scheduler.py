"""The scheduler against a fake backend that records every call: joins, swaps, evictions,
keep-alive, concurrency, cancellation, crashes, unload, close and config reloads."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from zoo.errors import ZooError
from zoo.runtime.process import ServerError
from zoo.serve.errors import DoesNotFit, GatewayError, LoadFailed, ModelNotFound, TooBusy
from zoo.serve.scheduler import ModelState, Scheduler
from zoo.serve.types import ModelEntry, Upstream

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]

GB = 10**9
PLACE = "GPU memory"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class FakeBackend:
    """Records calls; ``gates[name]`` makes start block until set, ``fail[name]`` makes the next
    start raise, ``dead`` holds instance ids whose engine "crashed"."""

    def __init__(self, memory: dict[str, int] | None = None) -> None:
        self.memory = memory or {}
        self.calls: list[tuple[str, str]] = []
        self.gates: dict[str, threading.Event] = {}
        self.fail: dict[str, ZooError] = {}
        self.dead: set[str] = set()
        self.all_dead = False  # every engine dies right after its start
        self.starting = 0
        self.most_starting = 0
        self.started_entries: list[ModelEntry] = []
        self._lock = threading.Lock()
        self._n = 0

    def plan_memory(self, entry: ModelEntry) -> tuple[int, str]:
        return self.memory.get(entry.name, GB), PLACE

    def start(self, entry: ModelEntry) -> Upstream:
        with self._lock:
            self.calls.append(("start", entry.name))
            self.started_entries.append(entry)
            self.starting += 1
            self.most_starting = max(self.most_starting, self.starting)
        try:
            gate = self.gates.get(entry.name)
            if gate is not None:
                assert gate.wait(10), "test gate never opened"
            if entry.name in self.fail:
                raise self.fail.pop(entry.name)
            with self._lock:
                self._n += 1
                n = self._n
            memory = self.memory.get(entry.name, GB)
            url = f"http://127.0.0.1:{9000 + n}"
            return Upstream(url, entry.name, None, f"{entry.name}-{n}", memory, PLACE)
        finally:
            with self._lock:
                self.starting -= 1
                self.calls.append(("started", entry.name))

    def alive(self, upstream: Upstream) -> bool:
        return not self.all_dead and upstream.instance_id not in self.dead

    def stop(self, upstream: Upstream) -> None:
        with self._lock:
            self.calls.append(("stop", upstream.instance_id))

    def log_tail(self, upstream: Upstream, lines: int = 15) -> str:
        return f"last lines of {upstream.instance_id}"

    def count(self, what: str, name: str) -> int:
        return sum(1 for c in self.calls if c[0] == what and c[1].split("-")[0] == name)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def entries(*items: ModelEntry) -> dict[str, ModelEntry]:
    return {e.name: e for e in items}


def entry(name: str, **kw: Any) -> ModelEntry:
    return ModelEntry(name=name, family=name, **kw)


@pytest.fixture
def backend() -> Iterator[FakeBackend]:
    b = FakeBackend()
    yield b
    for gate in b.gates.values():  # never leave a worker thread blocked
        gate.set()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def make(backend: FakeBackend, clock: Clock) -> AsyncIterator[Callable[..., Scheduler]]:
    made: list[Scheduler] = []

    def _make(*items: ModelEntry, budget: int = 100 * GB, **kw: Any) -> Scheduler:
        kw.setdefault("clock", clock)
        s = Scheduler(backend, entries(*items), budgets={PLACE: budget}, **kw)
        made.append(s)
        return s

    yield _make
    for gate in backend.gates.values():
        gate.set()
    for s in made:
        await s.close()


def state(s: Scheduler, name: str) -> ModelState:
    return next(m for m in s.snapshot() if m.name == name)


async def until(pred: Callable[[], bool], within: float = 3.0) -> None:
    """Poll: the state changes in worker threads and in tasks the test does not own."""
    for _ in range(int(within / 0.002)):
        if pred():
            return
        await asyncio.sleep(0.002)
    raise AssertionError("the condition never became true")


async def hold(s: Scheduler, name: str, release: asyncio.Event, got: list[str], **kw: Any) -> None:
    async with s.lease(name, **kw) as up:
        got.append(up.instance_id)
        await release.wait()


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0.002)


# -- joining and one load at a time -------------------------------------------------------------


async def test_concurrent_requests_join_one_load(make: Any, backend: FakeBackend) -> None:
    s = make(entry("a"))
    backend.gates["a"] = threading.Event()
    release, got = asyncio.Event(), []
    tasks = [asyncio.create_task(hold(s, "a", release, got)) for _ in range(5)]
    await until(lambda: backend.count("start", "a") == 1)
    await settle()
    assert state(s, "a").status == "loading" and state(s, "a").queued == 5
    backend.gates["a"].set()
    await until(lambda: len(got) == 5)
    assert set(got) == {"a-1"} and backend.count("start", "a") == 1
    assert state(s, "a").in_flight == 5 and state(s, "a").queued == 0
    release.set()
    await asyncio.gather(*tasks)
    assert state(s, "a").in_flight == 0 and s.counters["a"].loads == 1


async def test_only_one_load_runs_at_a_time(make: Any, backend: FakeBackend) -> None:
    s = make(entry("a"), entry("b"))
    backend.gates["a"] = threading.Event()
    release, got = asyncio.Event(), []
    ta = asyncio.create_task(hold(s, "a", release, got))
    await until(lambda: backend.count("start", "a") == 1)
    tb = asyncio.create_task(hold(s, "b", release, got))
    await settle()
    assert backend.count("start", "b") == 0 and state(s, "b").queued == 1
    backend.gates["a"].set()
    await until(lambda: len(got) == 2)
    assert backend.most_starting == 1
    assert backend.calls.index(("started", "a")) < backend.calls.index(("start", "b"))
    release.set()
    await asyncio.gather(ta, tb)


# -- memory budget ------------------------------------------------------------------------------


async def test_alternating_models_over_budget_swap_and_count_evictions(
    make: Any, backend: FakeBackend
) -> None:
    backend.memory = {"a": 6 * GB, "b": 6 * GB}
    s = make(entry("a"), entry("b"), budget=10 * GB)
    for name in "abab":
        async with s.lease(name) as up:
            assert up.instance_id.startswith(name)
            others = [m for m in s.snapshot() if m.name != name]
            assert all(m.status == "idle" for m in others)
    assert [c for c in backend.calls if c[0] != "started"] == [
        ("start", "a"),
        ("stop", "a-1"),
        ("start", "b"),
        ("stop", "b-2"),
        ("start", "a"),
        ("stop", "a-3"),
        ("start", "b"),
    ]
    counters = s.counters
    assert (counters["a"].evictions, counters["b"].evictions) == (2, 1)
    assert (counters["a"].loads, counters["b"].loads) == (2, 2)


async def test_models_that_fit_stay_side_by_side(make: Any, backend: FakeBackend) -> None:
    backend.memory = {"a": 4 * GB, "b": 4 * GB, "c": 4 * GB}
    s = make(entry("a"), entry("b"), entry("c"), budget=10 * GB)
    for name in "ab":
        async with s.lease(name):
            pass
    assert {m.name: m.status for m in s.snapshot()} == {"a": "ready", "b": "ready", "c": "idle"}
    async with s.lease("a"):  # a is now the most recently used: b goes first
        pass
    async with s.lease("c"):
        pass
    assert {m.name: m.status for m in s.snapshot()} == {"a": "ready", "b": "idle", "c": "ready"}
    assert s.counters["b"].evictions == 1 and s.counters["a"].evictions == 0


async def test_a_busy_model_is_never_evicted_the_request_waits(
    make: Any, backend: FakeBackend
) -> None:
    backend.memory = {"a": 6 * GB, "b": 6 * GB}
    s = make(entry("a"), entry("b"), budget=10 * GB)
    release_a, got = asyncio.Event(), []
    ta = asyncio.create_task(hold(s, "a", release_a, got))
    await until(lambda: got == ["a-1"])
    release_b = asyncio.Event()
    tb = asyncio.create_task(hold(s, "b", release_b, got))
    await settle()
    assert backend.count("stop", "a") == 0 and backend.count("start", "b") == 0
    assert state(s, "b").queued == 1 and state(s, "a").status == "ready"
    # A new request for the busy model waits behind the swap instead of starving it.
    ta2 = asyncio.create_task(hold(s, "a", release_a, got))
    await settle()
    assert state(s, "a").queued == 1 and got == ["a-1"]
    release_a.set()
    await until(lambda: "b-2" in got)
    assert backend.calls.index(("stop", "a-1")) < backend.calls.index(("start", "b"))
    assert s.counters["a"].evictions == 1
    release_b.set()
    await asyncio.gather(ta, tb, ta2)
    assert got == ["a-1", "b-2", "a-3"]


async def test_a_pinned_model_is_never_evicted(make: Any, backend: FakeBackend) -> None:
    backend.memory = {"a": 6 * GB, "b": 6 * GB}
    s = make(entry("a", pinned=True), entry("b"), budget=10 * GB)
    async with s.lease("a"):
        pass
    with pytest.raises(DoesNotFit, match=r"pinned models \(a\).*never evicted") as caught:
        async with s.lease("b"):
            pass
    assert caught.value.status == 507
    assert state(s, "a").status == "ready" and backend.count("stop", "a") == 0
    assert backend.count("start", "b") == 0 and state(s, "b").queued == 0


async def test_a_model_bigger_than_the_budget_does_not_fit(make: Any, backend: FakeBackend) -> None:
    backend.memory = {"big": 12 * GB}
    s = make(entry("big"), budget=10 * GB)
    with pytest.raises(DoesNotFit, match=r"12\.0 GB of GPU memory.*whole budget of 10\.0 GB"):
        async with s.lease("big"):
            pass
    assert backend.calls == []


async def test_a_place_without_a_budget_is_not_limited(backend: FakeBackend) -> None:
    backend.memory = {"a": 6 * GB, "b": 6 * GB}
    s = Scheduler(backend, entries(entry("a"), entry("b")), budgets={"RAM": 1})
    async with s.lease("a"), s.lease("b"):
        pass
    assert {m.status for m in s.snapshot()} == {"ready"}
    await s.close()


# -- keep-alive ---------------------------------------------------------------------------------


async def test_keep_alive_counts_from_the_end_of_the_last_request(
    make: Any, backend: FakeBackend, clock: Clock
) -> None:
    s = make(entry("a"))
    async with s.lease("a"):
        clock.now += 1000  # a long request: the timer does not run while it is in flight
        await s.tick()
        assert state(s, "a").status == "ready" and state(s, "a").expires_at is None
    assert state(s, "a").expires_at == clock.now + 300
    clock.now += 299
    await s.tick()
    assert state(s, "a").status == "ready"
    clock.now += 1
    await s.tick()
    await until(lambda: state(s, "a").status == "idle")
    assert backend.count("stop", "a") == 1 and s.counters["a"].evictions == 0


async def test_negative_keep_alive_never_unloads(
    make: Any, backend: FakeBackend, clock: Clock
) -> None:
    s = make(entry("a", keep_alive=-1))
    async with s.lease("a"):
        pass
    clock.now += 10**9
    await s.tick()
    await settle()
    assert state(s, "a").status == "ready" and state(s, "a").expires_at is None


async def test_zero_keep_alive_unloads_when_the_response_ends(
    make: Any, backend: FakeBackend
) -> None:
    s = make(entry("a", keep_alive=0))
    release, got = asyncio.Event(), []
    tasks = [asyncio.create_task(hold(s, "a", release, got)) for _ in range(2)]
    await until(lambda: len(got) == 2)
    release.set()
    await asyncio.gather(*tasks)
    await until(lambda: state(s, "a").status == "idle")
    assert backend.count("stop", "a") == 1 and backend.count("start", "a") == 1


async def test_a_requests_keep_alive_wins_until_the_next_request(
    make: Any, backend: FakeBackend, clock: Clock
) -> None:
    s = make(entry("a", keep_alive=600))
    async with s.lease("a", keep_alive=10):
        pass
    assert state(s, "a").keep_alive_s == 10 and state(s, "a").expires_at == clock.now + 10
    async with s.lease("a"):
        pass
    assert state(s, "a").keep_alive_s == 600 and state(s, "a").expires_at == clock.now + 600
    async with s.lease("a", keep_alive=-1):
        pass
    clock.now += 10**6
    await s.tick()
    assert state(s, "a").status == "ready"
    async with s.lease("a", keep_alive=0):
        pass
    await until(lambda: state(s, "a").status == "idle")


async def test_the_ticker_unloads_on_its_own(make: Any, backend: FakeBackend) -> None:
    import time

    s = make(entry("a", keep_alive=0.05), clock=time.monotonic, tick_interval=0.01)
    await s.start()
    async with s.lease("a"):
        pass
    assert state(s, "a").status == "ready"
    await until(lambda: state(s, "a").status == "idle", within=2)


# -- concurrency and cancellation ---------------------------------------------------------------


async def test_past_the_concurrency_limit_is_too_busy_at_once(
    make: Any, backend: FakeBackend
) -> None:
    s = make(entry("a", concurrency=2))
    backend.gates["a"] = threading.Event()
    release, got = asyncio.Event(), []
    first = asyncio.create_task(hold(s, "a", release, got))
    second = asyncio.create_task(hold(s, "a", release, got))
    await until(lambda: state(s, "a").queued == 2)
    with pytest.raises(TooBusy) as caught:
        async with s.lease("a"):
            pass
    assert caught.value.status == 429
    # A client that goes away frees its place.
    second.cancel()
    await until(lambda: state(s, "a").queued == 1)
    third = asyncio.create_task(hold(s, "a", release, got))
    backend.gates["a"].set()
    await until(lambda: len(got) == 2)
    assert state(s, "a").in_flight == 2
    with pytest.raises(TooBusy):  # in flight counts too
        async with s.lease("a"):
            pass
    release.set()
    await asyncio.gather(first, third)
    assert second.cancelled()


async def test_the_default_concurrency_applies(make: Any, backend: FakeBackend) -> None:
    s = make(entry("a"), default_concurrency=1)
    async with s.lease("a"):
        with pytest.raises(TooBusy, match="1 requests"):
            async with s.lease("a"):
                pass


async def test_cancelled_during_a_load_the_load_still_serves_others(
    make: Any, backend: FakeBackend
) -> None:
    s = make(entry("a"))
    backend.gates["a"] = threading.Event()
    release, got = asyncio.Event(), []
    leaver = asyncio.create_task(hold(s, "a", release, got))
    stayer = asyncio.create_task(hold(s, "a", release, got))
    await until(lambda: backend.count("start", "a") == 1)
    leaver.cancel()
    await until(lambda: state(s, "a").queued == 1)
    assert state(s, "a").status == "loading"
    backend.gates["a"].set()
    await until(lambda: got == ["a-1"])
    release.set()
    await stayer
    assert state(s, "a").in_flight == 0 and state(s, "a").queued == 0
    assert backend.count("start", "a") == 1


async def test_everyone_gone_the_load_still_finishes(
    make: Any, backend: FakeBackend, clock: Clock
) -> None:
    s = make(entry("a"))
    backend.gates["a"] = threading.Event()
    release, got = asyncio.Event(), []
    tasks = [asyncio.create_task(hold(s, "a", release, got)) for _ in range(3)]
    await until(lambda: backend.count("start", "a") == 1)
    for t in tasks:
        t.cancel()
    await until(lambda: state(s, "a").queued == 0)
    backend.gates["a"].set()
    await until(lambda: state(s, "a").status == "ready")
    assert state(s, "a").expires_at == clock.now + 300  # armed: it does not stay forever
    async with s.lease("a") as up:
        assert up.instance_id == "a-1"


async def test_a_waiter_cancelled_behind_a_busy_model_releases_its_drain(
    make: Any, backend: FakeBackend
) -> None:
    backend.memory = {"a": 6 * GB, "b": 6 * GB}
    s = make(entry("a"), entry("b"), budget=10 * GB)
    release, got = asyncio.Event(), []
    ta = asyncio.create_task(hold(s, "a", release, got))
    await until(lambda: got == ["a-1"])
    tb = asyncio.create_task(hold(s, "b", release, got))
    await settle()
    tb.cancel()
    await until(lambda: state(s, "b").queued == 0)
    async with s.lease("a") as up:  # granted at once: nobody needs a evicted any more
        assert up.instance_id == "a-1"
    release.set()
    await ta
    assert backend.count("start", "b") == 0 and backend.count("stop", "a") == 0


# -- crashes ------------------------------------------------------------------------------------


async def test_a_failed_start_reaches_every_waiter_and_the_next_request_retries(
    make: Any, backend: FakeBackend
) -> None:
    s = make(entry("a"))
    backend.gates["a"] = threading.Event()
    backend.fail["a"] = ServerError("llama-server exited before it was ready\nCUDA out of memory")
    results: list[BaseException | None] = []

    async def one() -> None:
        try:
            async with s.lease("a"):
                results.append(None)
        except LoadFailed as error:
            results.append(error)

    tasks = [asyncio.create_task(one()) for _ in range(3)]
    await until(lambda: state(s, "a").queued == 3)
    backend.gates["a"].set()
    await asyncio.gather(*tasks)
    assert len(results) == 3 and all(isinstance(r, LoadFailed) for r in results)
    assert all("CUDA out of memory" in str(r) and r.status == 503 for r in results)  # type: ignore[union-attr]
    snap = state(s, "a")
    assert snap.status == "failed" and "CUDA out of memory" in (snap.last_error or "")
    assert s.counters["a"].load_failures == 1 and s.counters["a"].loads == 0
    async with s.lease("a") as up:
        assert up.instance_id == "a-1"
    assert backend.count("start", "a") == 2 and state(s, "a").last_error is None


async def test_a_log_tail_the_backend_attaches_is_passed_on(
    make: Any, backend: FakeBackend
) -> None:
    error = ServerError("the engine exited")
    error.log_tail = "line 1\nline 2"  # type: ignore[attr-defined]
    backend.fail["a"] = error
    s = make(entry("a"))
    with pytest.raises(LoadFailed) as caught:
        async with s.lease("a"):
            pass
    assert caught.value.log_tail == "line 1\nline 2" and "line 2" in caught.value.message


async def test_an_engine_found_dead_at_a_request_is_restarted(
    make: Any, backend: FakeBackend
) -> None:
    s = make(entry("a"))
    async with s.lease("a"):
        pass
    backend.dead.add("a-1")
    async with s.lease("a") as up:
        assert up.instance_id == "a-2"
    assert ("stop", "a-1") in backend.calls  # its record is cleaned up


async def test_an_engine_that_dies_at_once_fails_the_request_not_loops(
    make: Any, backend: FakeBackend
) -> None:
    s = make(entry("a"))
    backend.all_dead = True
    with pytest.raises(LoadFailed, match="stopped unexpectedly") as caught:
        async with s.lease("a"):
            pass
    assert caught.value.log_tail == "last lines of a-1" and backend.count("start", "a") == 1
    backend.all_dead = False
    async with s.lease("a") as up:
        assert up.instance_id == "a-2"


async def test_the_ticker_finds_a_dead_engine(make: Any, backend: FakeBackend) -> None:
    s = make(entry("a"))
    async with s.lease("a"):
        pass
    backend.dead.add("a-1")
    await s.tick()
    snap = state(s, "a")
    assert snap.status == "failed" and "stopped unexpectedly" in (snap.last_error or "")
    assert snap.memory_bytes == GB  # the plan's figure, no longer counted as resident
    async with s.lease("a") as up:
        assert up.instance_id == "a-2"


async def test_a_dead_engine_frees_its_memory_for_others(make: Any, backend: FakeBackend) -> None:
    backend.memory = {"a": 6 * GB, "b": 6 * GB}
    s = make(entry("a"), entry("b"), budget=10 * GB)
    async with s.lease("a"):
        pass
    backend.dead.add("a-1")
    await s.tick()
    async with s.lease("b"):
        pass
    assert s.counters.get("a") is None or s.counters["a"].evictions == 0


# -- unload, close, reload ----------------------------------------------------------------------


async def test_unload_waits_for_the_request_in_flight(make: Any, backend: FakeBackend) -> None:
    s = make(entry("a"))
    assert await s.unload("a") is False
    release, got = asyncio.Event(), []
    ta = asyncio.create_task(hold(s, "a", release, got))
    await until(lambda: got == ["a-1"])
    unloading = asyncio.create_task(s.unload("a"))
    await settle()
    assert not unloading.done() and backend.count("stop", "a") == 0
    late = asyncio.create_task(hold(s, "a", release, got))  # waits, then gets a fresh engine
    await settle()
    assert got == ["a-1"]
    release.set()
    assert await unloading is True
    await asyncio.gather(ta, late)
    assert got == ["a-1", "a-2"] and backend.calls.index(("stop", "a-1")) < len(backend.calls)


async def test_close_stops_everything_and_refuses_new_requests(
    make: Any, backend: FakeBackend
) -> None:
    s = make(entry("a"), entry("b"))
    await s.start()
    async with s.lease("a"), s.lease("b"):
        pass
    await s.close()
    assert {c for c in backend.calls if c[0] == "stop"} == {("stop", "a-1"), ("stop", "b-2")}
    assert {m.status for m in s.snapshot()} == {"idle"}
    with pytest.raises(GatewayError, match="shutting down") as caught:
        async with s.lease("a"):
            pass
    assert caught.value.status == 503


async def test_close_waits_for_a_load_and_stops_it(make: Any, backend: FakeBackend) -> None:
    s = make(entry("a"))
    backend.gates["a"] = threading.Event()
    waiter = asyncio.create_task(hold(s, "a", asyncio.Event(), []))
    await until(lambda: backend.count("start", "a") == 1)
    closing = asyncio.create_task(s.close())
    await settle()
    backend.gates["a"].set()
    await closing
    assert ("stop", "a-1") in backend.calls
    with pytest.raises(GatewayError, match="shutting down"):
        await waiter


async def test_preload_loads_at_start_and_on_reload(make: Any, backend: FakeBackend) -> None:
    s = make(entry("a", preload=True), entry("b"))
    await s.start(wait=True)
    assert state(s, "a").status == "ready" and state(s, "b").status == "idle"
    s.update_entries(entries(entry("a", preload=True), entry("b"), entry("c", preload=True)))
    await until(lambda: state(s, "c").status == "ready")
    assert backend.count("start", "a") == 1 and backend.count("start", "b") == 0


async def test_reload_adds_removes_and_relaunches(make: Any, backend: FakeBackend) -> None:
    s = make(entry("a"), entry("b"))
    with pytest.raises(ModelNotFound):
        async with s.lease("c"):
            pass
    release, got = asyncio.Event(), []
    ta = asyncio.create_task(hold(s, "a", release, got))
    await until(lambda: got == ["a-1"])
    async with s.lease("b"):
        pass
    s.update_entries(entries(entry("b", engine="vllm", keep_alive=5), entry("c")))
    async with s.lease("c") as up:
        assert up.instance_id == "c-3"
    with pytest.raises(ModelNotFound, match="does not serve"):
        async with s.lease("a"):
            pass
    assert state(s, "a").status == "ready"  # removed, but its request is still running
    release.set()
    await ta
    await until(lambda: "a" not in {m.name for m in s.snapshot()})
    assert ("stop", "a-1") in backend.calls
    # b's launch changed: restarted with the new entry; keep-alive alone needs no restart.
    await until(lambda: state(s, "b").status == "idle")
    async with s.lease("b") as up:
        assert up.instance_id == "b-4" and backend.started_entries[-1].engine == "vllm"
    s.update_entries(entries(entry("b", engine="vllm", keep_alive=50), entry("c")))
    async with s.lease("b") as up:
        assert up.instance_id == "b-4"
    assert state(s, "b").keep_alive_s == 50


async def test_snapshot_shape(make: Any, backend: FakeBackend, clock: Clock) -> None:
    backend.memory = {"a": 2 * GB}
    s = make(entry("a", pinned=True))
    assert state(s, "a").to_json() == {
        "name": "a",
        "status": "idle",
        "in_flight": 0,
        "queued": 0,
        "last_used": None,
        "keep_alive_s": 300.0,
        "expires_at": None,
        "memory_bytes": None,
        "place": None,
        "pinned": True,
        "load_seconds": None,
        "last_error": None,
        "instance_id": None,
    }
    async with s.lease("a") as upstream:
        snap = state(s, "a")
        assert (snap.status, snap.in_flight, snap.memory_bytes, snap.place) == (
            "ready",
            1,
            2 * GB,
            PLACE,
        )
        assert snap.instance_id == upstream.instance_id
        assert snap.load_seconds == 0.0 and s.counters["a"].loads == 1
    assert state(s, "a").last_used == clock.now


async def test_two_clients_alternating_over_budget_all_get_answers(
    make: Any, backend: FakeBackend
) -> None:
    backend.memory = {"a": 6 * GB, "b": 6 * GB}
    s = make(entry("a"), entry("b"), budget=10 * GB)
    served: list[str] = []

    async def client(name: str) -> None:
        for _ in range(3):
            async with s.lease(name) as up:
                await asyncio.sleep(0.01)  # a stream in progress
                assert ("stop", up.instance_id) not in backend.calls  # never cut
                served.append(name)

    async with asyncio.timeout(5):  # a swap that evicts before serving never ends
        await asyncio.gather(client("a"), client("b"))
    assert sorted(served) == ["a"] * 3 + ["b"] * 3
    # Each swap serves its waiters before the next one (no load evicted before it served).
    assert backend.count("start", "a") + backend.count("start", "b") <= 6
    counters = s.counters
    assert counters["a"].evictions + counters["b"].evictions >= 1


async def test_planning_errors_reach_the_client(make: Any, backend: FakeBackend) -> None:
    from zoo.serve.errors import NotDownloaded

    s = make(entry("a"), entry("b"))
    raised: dict[str, Exception] = {
        "a": NotDownloaded("a is not downloaded"),
        "b": ServerError("no engine can run b here"),
    }

    def plan(e: ModelEntry) -> tuple[int, str]:
        raise raised[e.name]

    backend.plan_memory = plan  # type: ignore[method-assign]
    with pytest.raises(NotDownloaded):
        async with s.lease("a"):
            pass
    with pytest.raises(LoadFailed, match="no engine can run b here"):
        async with s.lease("b"):
            pass
    assert backend.calls == [] and {m.queued for m in s.snapshot()} == {0}
