"""The gateway's short metrics history (zoo.serve.metrics.History), on an injected clock:
which bucket an event lands in, the even time axis of ``series``, the window of
``tokens_per_second``, and that it stays bounded."""

from __future__ import annotations

import math

import pytest

from zoo.serve.metrics import History, Metrics


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_events_land_in_the_bucket_of_their_time() -> None:
    clock = Clock(1_000_003.0)
    history = History(clock=clock)
    history.request("a", 200, 0.5)
    history.request("a", 503, 1.5)
    history.tokens("a", 7, 11)
    clock.now = 1_000_009.9  # still the same 10 s bucket
    history.tokens("b", 1, 2)
    clock.now = 1_000_010.0  # the next one starts exactly here
    history.request("a", 200, 0.25)
    first, second = history.series(last_s=20)
    assert first.start == 1_000_000.0 and second.start == 1_000_010.0
    assert (first.requests, first.errors) == (2, 1)
    assert first.latency_sum == pytest.approx(2.0) and first.latency_max == 1.5
    assert (first.tokens_in, first.tokens_out) == (8, 13)
    assert first.tokens_out_by_model == {"a": 11, "b": 2}
    assert (second.requests, second.errors, second.latency_max) == (1, 0, 0.25)
    assert first.to_json()["latency_mean"] == pytest.approx(1.0)


def test_status_below_400_is_no_error_and_499_is_one() -> None:
    history = History(clock=Clock())
    for status in (200, 302, 399, 400, 499):
        history.request("a", status, 0.1)
    (bucket,) = history.series(last_s=10)
    assert (bucket.requests, bucket.errors) == (5, 2)


def test_series_is_an_even_axis_of_the_window_with_quiet_buckets_empty() -> None:
    clock = Clock(1_000_000.0)
    history = History(clock=clock)
    history.request("a", 200, 0.1)
    clock.now += 45  # four buckets later, three of them quiet
    history.request("a", 200, 0.2)
    series = history.series(last_s=60)
    assert len(series) == 6
    starts = [b.start for b in series]
    assert starts == [999_990.0 + 10 * i for i in range(6)]
    assert [b.requests for b in series] == [0, 1, 0, 0, 0, 1]
    quiet = series[2].to_json()
    assert quiet["latency_mean"] is None and quiet["latency_max"] is None
    # The window filters: 10 s is the current bucket only, 20 s the two newest.
    assert [b.requests for b in history.series(last_s=10)] == [1]
    assert [b.requests for b in history.series(last_s=20)] == [0, 1]
    # Everything kept, by default: an hour of 10 s buckets.
    assert len(history.series()) == 360


def test_series_hands_out_copies() -> None:
    history = History(clock=Clock())
    history.request("a", 200, 0.1)
    (bucket,) = history.series(last_s=10)
    bucket.requests = 99
    bucket.tokens_out_by_model["a"] = 99
    (again,) = history.series(last_s=10)
    assert again.requests == 1 and again.tokens_out_by_model == {}


@pytest.mark.parametrize("last_s", [math.nan, math.inf, -math.inf])
def test_a_non_finite_window_means_everything_kept(last_s: float) -> None:
    history = History(clock=Clock(), keep=12)
    history.request("a", 200, 0.1)
    series = history.series(last_s=last_s)
    assert len(series) == 12 and series[-1].requests == 1


def test_windows_shorter_than_a_bucket_or_longer_than_kept_are_clamped() -> None:
    history = History(clock=Clock(), keep=6)
    assert len(history.series(last_s=0)) == 1
    assert len(history.series(last_s=3)) == 1
    assert len(history.series(last_s=10_000)) == 6


def test_tokens_per_second_counts_whole_buckets_of_the_window_for_one_model() -> None:
    clock = Clock(1_000_000.0)
    history = History(clock=clock)
    history.tokens("a", 5, 600)  # bucket 1_000_000: 65 s before "now" below
    clock.now = 1_000_030.0
    history.tokens("a", 5, 120)
    history.tokens("b", 5, 999)  # another model's tokens do not count for "a"
    clock.now = 1_000_050.0
    history.tokens("a", 0, 60)
    clock.now = 1_000_065.0
    # The window [1_000_005, 1_000_065]: the first bucket starts before it and is left out
    # (it would count up to a bucket's worth of tokens from before the window).
    assert history.tokens_per_second("a") == pytest.approx(180 / 60)
    assert history.tokens_per_second("a", window_s=40) == pytest.approx(180 / 40)
    assert history.tokens_per_second("a", window_s=30) == pytest.approx(60 / 30)
    assert history.tokens_per_second("b") == pytest.approx(999 / 60)
    assert history.tokens_per_second("nobody") == 0.0
    clock.now = 1_000_000.0 + 3600
    assert history.tokens_per_second("a") == 0.0


def test_it_holds_at_most_keep_buckets() -> None:
    clock = Clock(0.0)
    history = History(clock=clock, keep=5)
    for i in range(50):
        clock.now = i * 10.0
        history.request("a", 200, 0.1)
    assert len(history._buckets) == 5
    series = history.series()
    assert len(series) == 5 and [b.start for b in series] == [450.0, 460.0, 470.0, 480.0, 490.0]
    assert all(b.requests == 1 for b in series)


def test_metrics_feed_the_history_and_the_counters_alike() -> None:
    metrics = Metrics()
    metrics.history = History(clock=Clock())
    metrics.request_done("a", "chat", 200, 0.3)
    metrics.request_done("a", "chat", 404, 0.1)
    metrics.tokens_used("a", 3, 5)
    (bucket,) = metrics.history.series(last_s=10)
    assert (bucket.requests, bucket.errors, bucket.tokens_in, bucket.tokens_out) == (2, 1, 3, 5)
    # The Prometheus side counted the same events.
    requests = {
        s.labels["status"]: s.value
        for f in metrics.registry.collect()
        for s in f.samples
        if s.name == "zoo_requests_total"
    }
    assert requests == {"200": 1.0, "404": 1.0}
