"""The gateway's Prometheus metrics (``/metrics``), in a registry of its own.

Requests and their latency are counted as they finish; residency (loaded models, queue depth,
loads, load time, evictions) is read from the scheduler when scraped, so the two can never
disagree. The same events also go into a short ``History`` of fixed time buckets, which the
web UI plots and reads tokens per second from (Prometheus counters keep totals only).
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

    from zoo.serve.scheduler import Scheduler


class Metrics:
    """Counters for one gateway."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "zoo_requests",
            "Requests answered, by model, route and HTTP status.",
            ["model", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "zoo_request_seconds",
            "Time from a request's arrival to its last byte, by model and route.",
            ["model", "route"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
            registry=self.registry,
        )
        self.tokens = Counter(
            "zoo_tokens",
            "Tokens in and out, from the engines' usage reports, by model and direction.",
            ["model", "direction"],
            registry=self.registry,
        )
        self._residency = _Residency()
        self.registry.register(self._residency)
        self.history = History()

    def request_done(self, model: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(model, route, str(status)).inc()
        self.latency.labels(model, route).observe(seconds)
        self.history.request(model, status, seconds)

    def tokens_used(self, model: str, prompt: int, completion: int) -> None:
        if prompt:
            self.tokens.labels(model, "in").inc(prompt)
        if completion:
            self.tokens.labels(model, "out").inc(completion)
        self.history.tokens(model, prompt, completion)

    def render(self, scheduler: Scheduler) -> tuple[bytes, str]:
        self._residency.scheduler = scheduler
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class _Residency(Collector):
    def __init__(self) -> None:
        self.scheduler: Scheduler | None = None

    def collect(self) -> Iterator[Metric]:
        scheduler = self.scheduler
        if scheduler is None:
            return
        loaded = GaugeMetricFamily(
            "zoo_model_loaded", "1 while a model is loaded.", labels=["model"]
        )
        queued = GaugeMetricFamily(
            "zoo_queue_depth", "Requests waiting for a model.", labels=["model"]
        )
        in_flight = GaugeMetricFamily("zoo_in_flight", "Requests being answered.", labels=["model"])
        for state in scheduler.snapshot():
            loaded.add_metric([state.name], 1.0 if state.status == "ready" else 0.0)
            queued.add_metric([state.name], float(state.queued))
            in_flight.add_metric([state.name], float(state.in_flight))
        counters = scheduler.counters
        loads = CounterMetricFamily("zoo_loads", "Model loads started.", labels=["model"])
        failures = CounterMetricFamily(
            "zoo_load_failures", "Model loads that failed.", labels=["model"]
        )
        seconds = CounterMetricFamily(
            "zoo_load_seconds", "Seconds spent loading models.", labels=["model"]
        )
        evictions = CounterMetricFamily(
            "zoo_evictions", "Models unloaded to make room.", labels=["model"]
        )
        for name, c in counters.items():
            loads.add_metric([name], float(c.loads))
            failures.add_metric([name], float(c.load_failures))
            seconds.add_metric([name], float(c.load_seconds_total))
            evictions.add_metric([name], float(c.evictions))
        yield from (loaded, queued, in_flight, loads, failures, seconds, evictions)


@dataclass
class Bucket:
    """What happened in one time bucket (``start``: Unix seconds)."""

    start: float
    requests: int = 0
    errors: int = 0  # answered with a status of 400 or more (499: the client went away)
    latency_sum: float = 0.0
    latency_max: float = 0.0
    tokens_in: int = 0
    tokens_out: int = 0
    tokens_out_by_model: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        return {
            "start": self.start,
            "requests": self.requests,
            "errors": self.errors,
            "latency_mean": self.latency_sum / self.requests if self.requests else None,
            "latency_max": self.latency_max if self.requests else None,
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
        }


class History:
    """The last ``keep`` buckets of ``bucket_s`` seconds each (an hour by default).

    Written from the event loop and read from request handlers; a lock keeps a bucket whole
    for readers in threads (the docs tests, the bench)."""

    def __init__(
        self,
        *,
        bucket_s: float = 10.0,
        keep: int = 360,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.bucket_s = bucket_s
        self.keep = keep
        self._clock = clock
        self._buckets: deque[Bucket] = deque(maxlen=keep)
        self._lock = threading.Lock()

    def _current(self) -> Bucket:
        start = self._clock() // self.bucket_s * self.bucket_s
        if not self._buckets or self._buckets[-1].start < start:
            self._buckets.append(Bucket(start))
        return self._buckets[-1]

    def request(self, model: str, status: int, seconds: float) -> None:
        with self._lock:
            bucket = self._current()
            bucket.requests += 1
            bucket.errors += status >= 400
            bucket.latency_sum += seconds
            bucket.latency_max = max(bucket.latency_max, seconds)

    def tokens(self, model: str, prompt: int, completion: int) -> None:
        with self._lock:
            bucket = self._current()
            bucket.tokens_in += prompt
            bucket.tokens_out += completion
            by_model = bucket.tokens_out_by_model
            by_model[model] = by_model.get(model, 0) + completion

    def series(self, *, last_s: float | None = None) -> list[Bucket]:
        """Every bucket of the last ``last_s`` seconds (default: all kept), oldest first, the
        quiet ones included as empty buckets so that a plot's time axis is even."""
        with self._lock:
            now = self._clock() // self.bucket_s * self.bucket_s
            if last_s is not None and not math.isfinite(last_s):
                last_s = None  # nan or inf: everything kept
            span = self.keep if last_s is None else max(1, int(last_s // self.bucket_s))
            span = min(span, self.keep)
            held = {b.start: b for b in self._buckets}
            starts = [now - i * self.bucket_s for i in range(span - 1, -1, -1)]
            return [_copy(held[s]) if s in held else Bucket(s) for s in starts]

    def tokens_per_second(self, model: str, *, window_s: float = 60.0) -> float:
        """Tokens ``model`` generated per second over the last ``window_s`` seconds."""
        with self._lock:
            # Whole buckets that start inside the window: one that only overlaps its start
            # would count up to a bucket's worth of tokens from before it.
            since = self._clock() - window_s
            out = sum(
                b.tokens_out_by_model.get(model, 0) for b in self._buckets if b.start >= since
            )
        return out / window_s


def _copy(bucket: Bucket) -> Bucket:
    return Bucket(
        bucket.start,
        bucket.requests,
        bucket.errors,
        bucket.latency_sum,
        bucket.latency_max,
        bucket.tokens_in,
        bucket.tokens_out,
        dict(bucket.tokens_out_by_model),
    )
