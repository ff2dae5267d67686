"""Which models are loaded: joining loads, queueing behind swaps, evicting, keep-alive, crashes.

One owner of state, without a lock to forget: the scheduler lives on one event loop, and every
decision (grant, begin a load, pick victims, expire) is made in one synchronous step between
awaits, so no decision is taken from a snapshot an await has made stale (llama-swap bug #946:
a request that saw ``stopping`` skipped the start and hung). Whoever waits re-decides from
scratch after every change, woken by ``_notify``. Blocking backend calls run in threads, and a
load runs in a task of its own so that a client going away never abandons a half-started engine
that other clients are waiting for. From another thread, call in with
``loop.call_soon_threadsafe``.

Memory is planned per place (RAM, GPU memory...): a model loads once its planned bytes fit next
to what is resident, after evicting idle unpinned models, least recently used first (not
Ollama's shortest keep-alive first: the model used longest ago is the one least likely to be
asked for next). Busy models are drained rather than cut: new requests for them wait, so a
swap cannot be starved by a client that keeps one model busy. Only one load runs at a time.
Times (``last_used``, ``expires_at``) are in the scheduler's ``clock``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from zoo.errors import ZooError
from zoo.serve.errors import DoesNotFit, GatewayError, LoadFailed, ModelNotFound, TooBusy
from zoo.serve.types import Backend, ModelEntry, Upstream

logger = logging.getLogger(__name__)
T = TypeVar("T")

Status = Literal["idle", "loading", "ready", "unloading", "failed"]
RESIDENT = ("loading", "ready", "unloading")  # states that hold their place's memory
# Fields a reload can take without restarting the engine (the rest change what is launched).
_LIVE_FIELDS = ("aliases", "keep_alive", "pinned", "preload", "concurrency", "download")


@dataclass(frozen=True)
class ModelState:
    """One model as /v1/models, /api/ps, /status and the metrics see it."""

    name: str
    status: Status
    in_flight: int
    queued: int
    last_used: float | None
    keep_alive_s: float
    expires_at: float | None
    memory_bytes: int | None
    place: str | None
    pinned: bool
    load_seconds: float | None
    last_error: str | None
    # The zoo instance serving it while resident (its log, its process): None when idle.
    instance_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class Counters:
    """Monotonic per-model totals for Prometheus counters (kept after a model is removed)."""

    loads: int = 0
    load_failures: int = 0
    evictions: int = 0
    load_seconds_total: float = 0.0


@dataclass(eq=False)
class _Model:
    entry: ModelEntry
    keep_alive_s: float
    status: Status = "idle"
    upstream: Upstream | None = None
    in_flight: int = 0
    queued: int = 0
    last_used: float | None = None
    use_order: int = 0  # for least-recently-used order: clocks can tie, a counter cannot
    expires_at: float | None = None
    plan: tuple[int, str] | None = None  # planned (bytes, place) of the current entry
    memory_bytes: int | None = None
    place: str | None = None
    load_seconds: float | None = None
    last_error: str | None = None
    last_tail: str = ""
    load_gen: int = 0  # loads begun; waiters that joined load N fail if load N failed
    failed_gen: int = 0
    epoch: int = 0  # times it left memory (stopped or died): what unload() waits for
    drainers: set[object] = field(default_factory=set)  # waiters that need it evicted
    # Waiters owed this residency (they joined its load, or found it ready): it is not evicted
    # before they are served, or a swap could evict a model before its waiters get it, forever.
    claims: set[object] = field(default_factory=set)
    unload_requested: int = 0
    removed: bool = False  # gone from the config: unload once idle, then forget
    stale: bool = False  # launch fields changed: restart once idle

    @property
    def blocked(self) -> bool:
        """New requests must wait: it is about to leave memory."""
        return bool(self.drainers) or self.unload_requested > 0 or self.stale or self.removed

    @property
    def busy(self) -> bool:
        return self.in_flight > 0 or bool(self.claims)


class Scheduler:
    """The one owner of model residency for a gateway (see the module docstring)."""

    def __init__(
        self,
        backend: Backend,
        entries: Mapping[str, ModelEntry],
        *,
        budgets: Mapping[str, int],
        default_keep_alive: float = 300.0,
        default_concurrency: int = 10,
        clock: Callable[[], float] = time.monotonic,
        tick_interval: float = 1.0,
    ) -> None:
        self._backend = backend
        # A place with no budget is not limited (nothing is known about it to enforce).
        self._budgets = dict(budgets)
        self._default_keep_alive = default_keep_alive
        self._default_concurrency = default_concurrency
        self.clock = clock
        self._tick_interval = tick_interval
        self._models: dict[str, _Model] = {}
        self._counters: dict[str, Counters] = {}
        self._loading: _Model | None = None
        self._uses = 0
        self._changed = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._ticker: asyncio.Task[None] | None = None
        self._started = False
        self._closed = False
        for name, entry in entries.items():
            self._models[name] = _Model(entry, self._keep_alive_of(entry))

    # -- public API ------------------------------------------------------------------------

    async def start(self, *, wait: bool = False) -> None:
        """Start the keep-alive ticker and preload; ``wait``: return once preloads ended."""
        self._started = True
        self._ticker = asyncio.create_task(self._tick_loop())
        task = self._spawn(self._preload([n for n, m in self._models.items() if m.entry.preload]))
        if wait:
            await task

    async def close(self) -> None:
        """Stop every loaded model: the gateway is exiting, so in-flight requests end too."""
        self._closed = True
        self._notify()
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        while True:
            # A load in a thread cannot be interrupted: wait for it, then stop what it started.
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
                continue
            loaded = [m for m in self._models.values() if m.status == "ready"]
            if not loaded:
                return
            for m in loaded:
                self._begin_unload(m, evicted=False)

    @contextlib.asynccontextmanager
    async def lease(self, name: str, *, keep_alive: float | None = None) -> AsyncIterator[Upstream]:
        """Hold ``name`` loaded for one request; its keep-alive is armed when the last ends."""
        model, upstream = await self._acquire(name)
        try:
            yield upstream
        finally:
            self._release(model, keep_alive)

    async def unload(self, name: str) -> bool:
        """Stop ``name`` once its requests have ended (never cutting one); False: not loaded."""
        m = self._models.get(name)
        if m is None or m.status not in RESIDENT:
            return False
        epoch = m.epoch
        m.unload_requested += 1
        try:
            self._reap()
            while m.epoch == epoch:
                await self._wait()
            return True
        finally:
            m.unload_requested -= 1
            self._notify()

    def snapshot(self) -> list[ModelState]:
        return [
            ModelState(
                name=name,
                status=m.status,
                in_flight=m.in_flight,
                queued=m.queued,
                last_used=m.last_used,
                keep_alive_s=m.keep_alive_s,
                expires_at=m.expires_at if m.status == "ready" else None,
                memory_bytes=m.memory_bytes or (m.plan[0] if m.plan else None),
                place=m.place or (m.plan[1] if m.plan else None),
                pinned=m.entry.pinned,
                load_seconds=m.load_seconds,
                last_error=m.last_error,
                instance_id=m.upstream.instance_id if m.upstream is not None else None,
            )
            for name, m in self._models.items()
        ]

    @property
    def budgets(self) -> dict[str, int]:
        """The memory budget of each place (RAM, GPU memory...) models are planned against."""
        return dict(self._budgets)

    @property
    def counters(self) -> dict[str, Counters]:
        """A copy of the per-model totals, by model name."""
        return {name: dataclasses.replace(c) for name, c in self._counters.items()}

    def update_entries(self, entries: Mapping[str, ModelEntry]) -> None:
        """A config reload: new models become servable, removed or relaunched ones leave once
        idle (their waiting requests get 404, or the new launch, respectively)."""
        for name, m in self._models.items():
            new = entries.get(name)
            if new is None:
                m.removed = True
                continue
            m.removed = False
            if new == m.entry:
                continue
            live = {f: getattr(new, f) for f in _LIVE_FIELDS}
            if dataclasses.replace(m.entry, **live) != new:
                m.plan = None
                m.stale = m.status in RESIDENT
            m.entry = new
            m.keep_alive_s = self._keep_alive_of(new)
            if m.status == "ready" and m.in_flight == 0:
                m.expires_at = self._expiry(m)
        added = [name for name in entries if name not in self._models]
        for name in added:
            self._models[name] = _Model(entries[name], self._keep_alive_of(entries[name]))
        if self._started and not self._closed:
            self._spawn(self._preload([n for n in added if entries[n].preload]))
        self._reap()
        self._notify()

    async def tick(self) -> None:
        """One pass of the ticker: find engines that died, unload expired models."""
        for m in list(self._models.values()):
            up = m.upstream
            if m.status == "ready" and up is not None and not await self._alive(up):
                await self._died(m, up)
        self._reap()

    # -- acquiring and releasing -----------------------------------------------------------

    async def _acquire(self, name: str) -> tuple[_Model, Upstream]:
        m = self._models.get(name)
        if m is None or m.removed:
            raise ModelNotFound(f"This gateway does not serve a model named {name!r}.")
        limit = m.entry.concurrency
        limit = self._default_concurrency if limit is None else limit
        if m.queued + m.in_flight >= limit:
            raise TooBusy(
                f"{name} already has {limit} requests queued or in flight, its limit; retry later."
            )
        m.queued += 1
        token = object()  # this waiter, in the models' drain and claim sets
        joined: int | None = None  # the load this waiter is waiting on
        checked: Upstream | None = None  # the upstream found alive (re-checked if replaced)
        granted = False
        try:
            while True:
                if self._closed:
                    raise GatewayError("The gateway is shutting down.", status=503)
                if m.removed:
                    raise ModelNotFound(f"{name} was removed from the gateway's configuration.")
                if joined is not None and m.failed_gen >= joined:
                    raise LoadFailed(m.last_error or f"{name} failed to start.", m.last_tail)
                if m.status == "ready" and m.upstream and (token in m.claims or not m.blocked):
                    m.claims.add(token)
                    if m.upstream is not checked:
                        # Decided again after the await: the model may have changed meanwhile.
                        up = m.upstream
                        if await self._alive(up):
                            checked = up
                            continue
                        await self._died(m, up)
                        if joined is not None:  # died just after its start: no restart loop
                            raise LoadFailed(m.last_error or f"{name} stopped.", m.last_tail)
                        continue
                    m.claims.discard(token)
                    m.queued -= 1
                    m.in_flight += 1
                    m.expires_at = None
                    granted = True
                    return m, checked
                if m.status == "loading":
                    joined = m.load_gen
                    m.claims.add(token)
                elif m.status in ("idle", "failed"):
                    if m.plan is None:
                        entry = m.entry
                        plan = await self._plan(entry)
                        if m.entry is entry:
                            m.plan = plan
                        continue
                    victims = self._make_room(m, token)
                    if victims is not None:
                        self._begin_load(m, victims)
                        continue
                await self._wait()
        finally:
            if not granted:
                m.queued -= 1
            m.claims.discard(token)
            self._set_drains(token, [])
            self._reap()
            self._notify()

    def _release(self, m: _Model, keep_alive: float | None) -> None:
        m.in_flight -= 1
        m.last_used = self.clock()
        m.use_order = self._uses = self._uses + 1
        # A request's keep_alive wins until the model's next request (Ollama's semantics).
        m.keep_alive_s = keep_alive if keep_alive is not None else self._keep_alive_of(m.entry)
        if m.in_flight == 0 and m.status == "ready":
            m.expires_at = self._expiry(m)
        self._reap()
        self._notify()

    # -- room, loads and unloads -----------------------------------------------------------

    def _make_room(self, m: _Model, token: object) -> list[_Model] | None:
        """The idle models to evict so that ``m`` fits (None: wait for busy ones to drain).

        Raises DoesNotFit when no eviction could ever make room. Marks the busy models in the
        way as drained by ``token`` while this waiter is next in line to load.
        """
        assert m.plan is not None
        need, place = m.plan
        budget = self._budgets.get(place)
        if budget is None:
            return [] if self._loading is None else None
        if need > budget:
            raise DoesNotFit(
                f"{m.entry.name} needs {_gb(need)} of {place}, more than the gateway's whole "
                f"budget of {_gb(budget)}."
            )
        resident = [o for o in self._models.values() if o is not m and o.place == place]
        resident = [o for o in resident if o.status in RESIDENT]
        pinned = [o for o in resident if o.entry.pinned and o.status != "unloading"]
        held = sum(o.memory_bytes or 0 for o in pinned)
        if need + held > budget:
            names = ", ".join(o.entry.name for o in pinned)
            raise DoesNotFit(
                f"{m.entry.name} needs {_gb(need)} of {place} but pinned models ({names}) hold "
                f"{_gb(held)} of its {_gb(budget)} budget, and pinned models are never evicted."
            )
        if self._loading is not None:
            self._set_drains(token, [])
            return None
        over = sum(o.memory_bytes or 0 for o in resident) + need - budget
        # Memory already on its way out counts as freed; then idle models, least recently used
        # first; then busy ones, which are drained (new requests wait) until they are idle.
        soon = sum(o.memory_bytes or 0 for o in resident if o.status == "unloading")
        movable = sorted(
            (o for o in resident if o.status == "ready" and not o.entry.pinned),
            key=lambda o: (o.busy, o.use_order),
        )
        victims: list[_Model] = []
        drain: list[_Model] = []
        freed = soon
        for o in movable:
            if freed >= over:
                break
            (drain if o.busy else victims).append(o)
            freed += o.memory_bytes or 0
        self._set_drains(token, drain)
        if drain or sum(o.memory_bytes or 0 for o in victims) < over:
            return None  # wait for the drained ones to go idle, or the unloading ones to end
        return victims

    def _begin_load(self, m: _Model, victims: list[_Model]) -> None:
        self._loading = m
        m.status = "loading"
        m.load_gen += 1
        assert m.plan is not None
        m.memory_bytes, m.place = m.plan
        for v in victims:
            v.status = "unloading"
        self._spawn(self._load(m, m.entry, victims))

    async def _load(self, m: _Model, entry: ModelEntry, victims: list[_Model]) -> None:
        counters = self._counters.setdefault(entry.name, Counters())
        try:
            for v in victims:
                assert v.upstream is not None
                await self._stop(v, v.upstream, evicted=True)
            began = self.clock()
            try:
                up = await asyncio.to_thread(self._backend.start, entry)
            except Exception as exc:  # every waiter must hear of it, whatever it was
                if not isinstance(exc, ZooError):
                    logger.exception("starting %s failed", entry.name)
                self._gone(m, "failed")
                m.last_error = f"{entry.name} failed to start: {exc}"
                m.last_tail = str(getattr(exc, "log_tail", "") or "")
                m.failed_gen = m.load_gen
                counters.load_failures += 1
                return
            m.load_seconds = self.clock() - began
            counters.loads += 1
            counters.load_seconds_total += m.load_seconds
            m.status, m.upstream, m.last_error = "ready", up, None
            m.memory_bytes, m.place = up.memory_bytes, up.place
            m.last_used = self.clock()
            m.use_order = self._uses = self._uses + 1
            m.expires_at = self._expiry(m)
        finally:
            self._loading = None
            self._reap()
            self._notify()

    def _begin_unload(self, m: _Model, *, evicted: bool) -> None:
        assert m.upstream is not None
        m.status = "unloading"
        self._spawn(self._stop(m, m.upstream, evicted=evicted))

    async def _stop(self, m: _Model, up: Upstream, *, evicted: bool) -> None:
        try:
            await _guarded(self._backend.stop, up, default=None)
        finally:
            self._gone(m, "idle")
            m.stale = False
            if evicted:
                self._counters.setdefault(m.entry.name, Counters()).evictions += 1
            self._reap()
            self._notify()

    async def _died(self, m: _Model, up: Upstream) -> None:
        """``up`` was found dead: fail the model (the next request restarts it)."""
        tail = await _guarded(self._backend.log_tail, up, default="")
        if m.upstream is not up or m.status != "ready":
            return  # someone else already dealt with it
        self._gone(m, "failed")
        m.last_error = f"The engine serving {m.entry.name} stopped unexpectedly."
        m.last_tail = tail
        self._spawn(_guarded(self._backend.stop, up, default=None))  # drop its state record
        self._notify()

    @staticmethod
    def _gone(m: _Model, status: Status) -> None:
        """``m`` no longer holds memory (stopped, died, or never started)."""
        m.status, m.upstream, m.expires_at = status, None, None
        m.memory_bytes = m.place = None
        m.claims.clear()
        m.epoch += 1

    def _reap(self) -> None:
        """Start the unloads that are due: expired, zero keep-alive, unloaded, removed, stale."""
        now = self.clock()
        for name, m in list(self._models.items()):
            if m.status == "ready" and not m.busy:
                due = m.expires_at is not None and m.expires_at <= now and m.queued == 0
                if due or m.unload_requested or m.stale or m.removed:
                    self._begin_unload(m, evicted=False)
            elif m.removed and m.status in ("idle", "failed") and m.queued == 0:
                del self._models[name]

    def _set_drains(self, token: object, drain: list[_Model]) -> None:
        """Make ``drain`` the models ``token`` holds drained, waking others only if one is freed
        (a wake-up for an unchanged set would have every waiter re-decide forever)."""
        for o in self._models.values():
            if token in o.drainers and o not in drain:
                o.drainers.discard(token)
                self._notify()
        for o in drain:
            o.drainers.add(token)

    # -- small helpers ---------------------------------------------------------------------

    def _keep_alive_of(self, entry: ModelEntry) -> float:
        return self._default_keep_alive if entry.keep_alive is None else entry.keep_alive

    def _expiry(self, m: _Model) -> float | None:
        return None if m.keep_alive_s < 0 else self.clock() + m.keep_alive_s

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def _wait(self) -> None:
        await self._changed.wait()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(self._tick_interval)
            try:
                await self.tick()
            except Exception:  # the ticker must outlive one bad pass
                logger.exception("scheduler tick failed")

    async def _preload(self, names: list[str]) -> None:
        for name in names:
            try:
                async with self.lease(name):
                    pass
            except (GatewayError, ZooError) as exc:
                logger.warning("preloading %s failed: %s", name, exc)

    async def _plan(self, entry: ModelEntry) -> tuple[int, str]:
        try:
            return await asyncio.to_thread(self._backend.plan_memory, entry)
        except GatewayError:
            raise
        except ZooError as exc:
            raise LoadFailed(f"{entry.name} cannot be planned: {exc}") from exc

    async def _alive(self, up: Upstream) -> bool:
        # Cannot tell: let the request try (the proxy reports an engine that is really dead).
        return await _guarded(self._backend.alive, up, default=True)


async def _guarded(call: Callable[[Upstream], T], up: Upstream, *, default: T) -> T:
    """``call(up)`` in a thread; a failure is logged and read as ``default``: the scheduler's
    books must stay right whatever a backend does."""
    try:
        return await asyncio.to_thread(call, up)
    except Exception:
        logger.exception("%s(%s) failed", getattr(call, "__name__", "backend call"), up.instance_id)
        return default


def _gb(n: int) -> str:
    return f"{n / 1e9:.1f} GB"
