"""The gateway's Prometheus metrics (``/metrics``), in a registry of its own.

Requests and their latency are counted as they finish; residency (loaded models, queue depth,
loads, load time, evictions) is read from the scheduler when scraped, so the two can never
disagree.
"""

from __future__ import annotations

from collections.abc import Iterator
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

    def request_done(self, model: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(model, route, str(status)).inc()
        self.latency.labels(model, route).observe(seconds)

    def tokens_used(self, model: str, prompt: int, completion: int) -> None:
        if prompt:
            self.tokens.labels(model, "in").inc(prompt)
        if completion:
            self.tokens.labels(model, "out").inc(completion)

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
