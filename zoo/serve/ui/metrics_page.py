"""The Metrics page: the gateway's requests, errors, latency and tokens over time, as plots.

``GET /ui/metrics[?window=5m|15m|1h]`` renders the totals since the gateway started (read from
the same Prometheus counters ``/metrics`` exports, so the two never disagree) and, over the
chosen window, plots drawn from ``gateway.metrics.history`` (10 s buckets, the last hour).
The plots are inline SVG rendered here, on the server: no chart library, nothing to build,
and the page reads without JavaScript. ``GET /ui/metrics/plots?window=`` is the same plots
alone, which ``static/metrics.js`` swaps in every 10 s; ``GET /ui/api/metrics?window=`` is the
series as JSON for scripts.

Scope: the numbers are the gateway's, summed over every model, and ``/metrics`` gives them to
any valid key, scoped or not. This page shows the same sums and never a model's name, so a
key scoped to some models learns nothing here that ``/metrics`` would not tell it.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import BaseRoute

    from zoo.serve.metrics import Bucket, Metrics
    from zoo.serve.ui.site import Ui

PATH = "/ui/metrics"
PLOTS_PATH = "/ui/metrics/plots"
API_PATH = "/ui/api/metrics"


@dataclass(frozen=True)
class Window:
    """A time window the page can show: its query value, length, label and tick spacing."""

    key: str
    seconds: float
    label: str
    tick_s: float


WINDOWS = (
    Window("5m", 300.0, "5 min", 60.0),
    Window("15m", 900.0, "15 min", 300.0),
    Window("1h", 3600.0, "1 hour", 900.0),
)
DEFAULT_WINDOW = WINDOWS[1]

# The plots' drawing area, in SVG user units (CSS scales the SVG to its column's width).
WIDTH, HEIGHT = 480.0, 180.0
LEFT, RIGHT, TOP, BOTTOM = 58.0, 10.0, 10.0, 26.0
MINUS = "\u2212"  # a real minus sign in "−5 min", not a hyphen


def routes(ui: Ui) -> list[BaseRoute]:
    from starlette.routing import Route

    async def index(request: Request) -> Response:
        return _index(ui, request)

    async def plots(request: Request) -> Response:
        return _plots(ui, request)

    async def api(request: Request) -> Response:
        return _api(ui, request)

    return [
        Route(PATH, index, methods=["GET"]),
        Route(PLOTS_PATH, plots, methods=["GET"]),
        Route(API_PATH, api, methods=["GET"]),
    ]


def window_of(value: str | None) -> Window:
    """The window ``?window=`` names (absent or empty: the default); anything else is a 400
    that says which values there are."""
    from zoo.serve.errors import InvalidRequest

    if not value:
        return DEFAULT_WINDOW
    for window in WINDOWS:
        if value == window.key:
            return window
    names = ", ".join(w.key for w in WINDOWS)
    shown = value if len(value) <= 40 else value[:40] + "…"
    raise InvalidRequest(f"window must be one of {names}, not {shown!r}")


# --- the numbers ---


@dataclass(frozen=True)
class Totals:
    """What the gateway's counters hold since it started (the ``/metrics`` totals, summed
    over models and routes)."""

    requests: int
    errors: int
    tokens_in: int
    tokens_out: int
    started_at: float

    def to_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "errors": self.errors,
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "started_at": self.started_at,
        }


def totals(metrics: Metrics, started_at: float) -> Totals:
    """The sums of ``zoo_requests_total`` (errors: a status of 400 or more, as the history
    counts them) and ``zoo_tokens_total`` by direction."""
    requests = errors = tokens_in = tokens_out = 0
    for family in metrics.requests.collect():
        for sample in family.samples:
            if sample.name != "zoo_requests_total":
                continue  # the *_created samples are timestamps
            count = int(sample.value)
            requests += count
            status = sample.labels.get("status", "")
            if status.isdigit() and int(status) >= 400:
                errors += count
    for family in metrics.tokens.collect():
        for sample in family.samples:
            if sample.name != "zoo_tokens_total":
                continue
            if sample.labels.get("direction") == "in":
                tokens_in += int(sample.value)
            else:
                tokens_out += int(sample.value)
    return Totals(requests, errors, tokens_in, tokens_out, started_at)


@dataclass(frozen=True)
class Summary:
    """The window's numbers in a few words: sums, the mean and worst latency, tokens/s."""

    requests: int
    errors: int
    latency_mean: float | None
    latency_max: float | None
    tokens_in: int
    tokens_out: int
    tokens_per_second: float  # generated (out) per second over the whole window

    def to_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "errors": self.errors,
            "latency_mean": self.latency_mean,
            "latency_max": self.latency_max,
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "tokens_per_second": self.tokens_per_second,
        }


def summary(buckets: list[Bucket], seconds: float) -> Summary:
    requests = sum(b.requests for b in buckets)
    latency_sum = sum(b.latency_sum for b in buckets)
    tokens_out = sum(b.tokens_out for b in buckets)
    return Summary(
        requests=requests,
        errors=sum(b.errors for b in buckets),
        latency_mean=latency_sum / requests if requests else None,
        latency_max=max(b.latency_max for b in buckets) if requests else None,
        tokens_in=sum(b.tokens_in for b in buckets),
        tokens_out=tokens_out,
        tokens_per_second=tokens_out / seconds,
    )


def _busy(bucket: Bucket) -> bool:
    return bool(bucket.requests or bucket.tokens_in or bucket.tokens_out)


# --- the words ---


def ago(seconds: float) -> str:
    """``−2 min 30 s``, ``−40 s``, or ``now``: how long before now, for ticks and rows."""
    whole = round(seconds)
    if whole <= 0:
        return "now"
    minutes, rest = divmod(whole, 60)
    if minutes >= 60 and not whole % 3600:
        return f"{MINUS}{whole // 3600} h"
    if not minutes:
        return f"{MINUS}{rest} s"
    return f"{MINUS}{minutes} min" + (f" {rest} s" if rest else "")


def seconds_text(value: float | None) -> str:
    """A latency as people read it: ``850 ms``, ``1.25 s``, ``—`` for none."""
    if value is None:
        return "—"
    if value < 1:
        return f"{value * 1000:.0f} ms"
    return f"{value:.3g} s" if value < 100 else f"{value:.0f} s"


def number_text(value: float) -> str:
    """A count or rate with at most three significant digits (``0.5``, ``12``, ``1.2k``)."""
    if value == 0:
        return "0"
    if abs(value) >= 10_000:
        return f"{value / 1000:.0f}k"
    if abs(value) >= 1000:
        return f"{value / 1000:.1f}k"
    if float(value).is_integer():
        return f"{value:.0f}"
    return f"{value:.3g}"


def plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


# --- the plots ---


@dataclass(frozen=True)
class Tick:
    at: float  # x or y in SVG units
    label: str
    anchor: str = "middle"  # text-anchor of an x tick's label


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    css: str
    title: str


@dataclass(frozen=True)
class Dot:
    x: float
    y: float
    css: str
    title: str


@dataclass
class Plot:
    """One plot, in SVG units, ready for the template to write out (every text escaped)."""

    id: str
    title: str
    description: str  # the text alternative: what the plot shows, in one sentence
    legend: list[tuple[str, str]]  # (css class, label)
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    bars: list[Bar] = field(default_factory=list)
    lines: list[tuple[str, str]] = field(default_factory=list)  # (path data, css class)
    dots: list[Dot] = field(default_factory=list)

    @property
    def plot_left(self) -> float:
        return LEFT

    @property
    def plot_right(self) -> float:
        return WIDTH - RIGHT

    @property
    def plot_bottom(self) -> float:
        return HEIGHT - BOTTOM


def nice_ticks(top: float, most: int = 4) -> list[float]:
    """Round values from 0 up to at least ``top`` (steps of 1, 2 or 5 times a power of ten),
    at most ``most`` steps: the y axis' ticks; its scale ends at the last one."""
    if not math.isfinite(top) or top <= 0:
        top = 1.0
    raw = top / most
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    count = math.ceil(top / step - 1e-9)
    return [round(i * step, 12) for i in range(count + 1)]


class _Frame:
    """The mapping from time and value to SVG units for one window of buckets."""

    def __init__(self, buckets: list[Bucket], bucket_s: float, now: float) -> None:
        self.buckets = buckets
        self.bucket_s = bucket_s
        self.start = buckets[0].start
        self.end = buckets[-1].start + bucket_s
        self.now = now
        self.width = WIDTH - LEFT - RIGHT
        self.height = HEIGHT - TOP - BOTTOM
        self.slot = self.width / len(buckets)

    def x(self, t: float) -> float:
        return LEFT + (t - self.start) / (self.end - self.start) * self.width

    def middle(self, bucket: Bucket) -> float:
        return self.x(bucket.start + self.bucket_s / 2)

    def when(self, bucket: Bucket) -> str:
        """A bucket's time, as before now (its end: the newest bucket is ``now``)."""
        return ago(self.now - min(self.now, bucket.start + self.bucket_s))

    def x_ticks(self, window: Window) -> list[Tick]:
        ticks: list[Tick] = []
        steps = int(window.seconds // window.tick_s)
        for i in range(steps + 1):
            t = self.end - i * window.tick_s
            if t < self.start - 1e-6:
                break
            label = "now" if i == 0 else ago(i * window.tick_s)
            anchor = "end" if i == 0 else "start" if i == steps else "middle"
            ticks.append(Tick(_r(self.x(t)), label, anchor))
        return ticks

    def y(self, value: float, top: float) -> float:
        return TOP + self.height - value / top * self.height

    def y_ticks(self, values: list[float], text: Callable[[float], str]) -> list[Tick]:
        top = values[-1]
        return [Tick(_r(self.y(v, top)), text(v)) for v in values]


def _r(value: float) -> float:
    return round(value, 1)


def _path(points: list[tuple[float, float] | None]) -> str:
    """SVG path data through ``points``, broken where one is None (a gap, not a zero)."""
    parts: list[str] = []
    pen_down = False
    for i, point in enumerate(points):
        if point is None:
            pen_down = False
            continue
        before = points[i - 1] if i else None
        after = points[i + 1] if i + 1 < len(points) else None
        if pen_down and before and after and before[1] == point[1] == after[1]:
            continue  # the middle of a flat run: the line from its start to its end says it
        parts.append(f"{'L' if pen_down else 'M'}{_r(point[0])} {_r(point[1])}")
        pen_down = True
    return " ".join(parts)


def requests_plot(frame: _Frame, window: Window, total: Summary) -> Plot:
    """Requests per bucket as bars, with the errors among them drawn over them."""
    ticks = nice_ticks(max(b.requests for b in frame.buckets))
    top = ticks[-1]
    bars: list[Bar] = []
    gap = min(1.0, frame.slot * 0.15)
    for b in frame.buckets:
        if not b.requests:
            continue
        x, width = frame.x(b.start) + gap, max(frame.slot - 2 * gap, 0.5)
        title = f"{frame.when(b)}: {plural(b.requests, 'request')}, {plural(b.errors, 'error')}"
        y = frame.y(b.requests, top)
        bars.append(Bar(_r(x), _r(y), _r(width), _r(frame.y(0, top) - y), "mx-requests", title))
        if b.errors:
            ye = frame.y(b.errors, top)
            bars.append(Bar(_r(x), _r(ye), _r(width), _r(frame.y(0, top) - ye), "mx-errors", title))
    busiest = max(b.requests for b in frame.buckets)
    description = (
        f"Requests per {frame.bucket_s:g} s over the last {window.label}: "
        f"{plural(total.requests, 'request')}, {plural(total.errors, 'error')}; "
        f"at most {busiest} in {frame.bucket_s:g} s."
    )
    return Plot(
        id="requests",
        title=f"Requests per {frame.bucket_s:g} s",
        description=description,
        legend=[("mx-requests", "requests"), ("mx-errors", "errors")],
        x_ticks=frame.x_ticks(window),
        y_ticks=frame.y_ticks(ticks, number_text),
        bars=bars,
    )


def latency_plot(frame: _Frame, window: Window, total: Summary) -> Plot:
    """The mean and the slowest request's latency per bucket, as lines with gaps where no
    request was answered."""
    ticks = nice_ticks(max(b.latency_max for b in frame.buckets))
    top = ticks[-1]
    lines: list[tuple[str, str]] = []
    dots: list[Dot] = []
    series: tuple[tuple[str, str, Callable[[Bucket], float]], ...] = (
        ("mx-latency-max", "slowest", lambda b: b.latency_max),
        ("mx-latency-mean", "mean", lambda b: b.latency_sum / b.requests),
    )
    for css, name, value in series:
        points = [
            (frame.middle(b), frame.y(value(b), top)) if b.requests else None for b in frame.buckets
        ]
        lines.append((_path(points), css))
        # A point with no neighbour draws no line: a dot shows it (and says its value).
        for i, (b, point) in enumerate(zip(frame.buckets, points, strict=True)):
            before = points[i - 1] if i else None
            after = points[i + 1] if i + 1 < len(points) else None
            if point is not None and before is None and after is None:
                title = f"{frame.when(b)}: {name} {seconds_text(value(b))}"
                dots.append(Dot(_r(point[0]), _r(point[1]), css, title))
    if total.requests:
        description = (
            f"Latency over the last {window.label}: mean {seconds_text(total.latency_mean)}, "
            f"slowest request {seconds_text(total.latency_max)}."
        )
    else:
        description = f"Latency: no request was answered in the last {window.label}."
    return Plot(
        id="latency",
        title="Latency",
        description=description,
        legend=[("mx-latency-mean", "mean"), ("mx-latency-max", "slowest")],
        x_ticks=frame.x_ticks(window),
        y_ticks=frame.y_ticks(ticks, seconds_text),
        lines=lines,
        dots=dots,
    )


def tokens_plot(frame: _Frame, window: Window, total: Summary) -> Plot:
    """Tokens per second in (prompts) and out (generated), averaged over each bucket."""
    per_s = frame.bucket_s
    ticks = nice_ticks(max(max(b.tokens_in, b.tokens_out) / per_s for b in frame.buckets))
    top = ticks[-1]
    lines: list[tuple[str, str]] = []
    series: tuple[tuple[str, Callable[[Bucket], int]], ...] = (
        ("mx-tokens-in", lambda b: b.tokens_in),
        ("mx-tokens-out", lambda b: b.tokens_out),
    )
    for css, count in series:
        points: list[tuple[float, float] | None] = [
            (frame.middle(b), frame.y(count(b) / per_s, top)) for b in frame.buckets
        ]
        lines.append((_path(points), css))
    description = (
        f"Tokens per second over the last {window.label}: "
        f"{number_text(total.tokens_per_second)} generated on average "
        f"({number_text(total.tokens_out)} out, {number_text(total.tokens_in)} in)."
    )
    return Plot(
        id="tokens",
        title="Tokens per second",
        description=description,
        legend=[("mx-tokens-out", "out (generated)"), ("mx-tokens-in", "in (prompt)")],
        x_ticks=frame.x_ticks(window),
        y_ticks=frame.y_ticks(ticks, number_text),
        lines=lines,
    )


# --- the answers ---


def view(ui: Ui, window: Window, *, now: float | None = None) -> dict[str, Any]:
    from zoo.serve.ui.render import duration

    """What the page and its fragment show for ``window``: totals, the window's summary, its
    plots and the rows of its busy buckets (the plots' numbers, as a table)."""
    metrics = ui.gateway.metrics
    history = metrics.history
    now = time.time() if now is None else now
    buckets = history.series(last_s=window.seconds)
    frame = _Frame(buckets, history.bucket_s, now)
    total = summary(buckets, window.seconds)
    rows = [
        {
            "when": frame.when(b),
            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(b.start)),
            "requests": b.requests,
            "errors": b.errors,
            "latency_mean": seconds_text(b.latency_sum / b.requests if b.requests else None),
            "latency_max": seconds_text(b.latency_max if b.requests else None),
            "tokens_in": b.tokens_in,
            "tokens_out": b.tokens_out,
        }
        for b in reversed(buckets)  # newest first: what a reader of the table wants first
        if _busy(b)
    ]
    counted = totals(metrics, ui.gateway.started_at)
    return {
        "window": window,
        "windows": WINDOWS,
        "totals": counted,
        "uptime": duration(now - counted.started_at),
        "summary": total,
        "plots": [
            requests_plot(frame, window, total),
            latency_plot(frame, window, total),
            tokens_plot(frame, window, total),
        ],
        "rows": rows,
        "bucket_s": history.bucket_s,
        "size": (WIDTH, HEIGHT),
        "seconds_text": seconds_text,
        "number_text": number_text,
        "plural": plural,
    }


def _index(ui: Ui, request: Request) -> Response:
    from zoo.serve.errors import InvalidRequest
    from zoo.serve.ui.render import page

    try:
        window = window_of(request.query_params.get("window"))
    except InvalidRequest as error:
        # A page, not JSON: a person typed the URL. The form offers the windows there are.
        context = {
            "window": DEFAULT_WINDOW,
            "windows": WINDOWS,
            "bucket_s": ui.gateway.metrics.history.bucket_s,
            "error": error.message,
        }
        return page(request, "metrics.html", context, active=PATH, title="Metrics", status=400)
    context = view(ui, window) | {"error": ""}
    return page(request, "metrics.html", context, active=PATH, title="Metrics")


def _plots(ui: Ui, request: Request) -> Response:
    from zoo.serve.ui.render import page

    window = window_of(request.query_params.get("window"))
    return page(request, "metrics_plots.html", view(ui, window), active=PATH)


def _api(ui: Ui, request: Request) -> Response:
    from starlette.responses import JSONResponse

    from zoo.serve.ui.render import SECURITY_HEADERS

    window = window_of(request.query_params.get("window"))
    history = ui.gateway.metrics.history
    buckets = history.series(last_s=window.seconds)
    series = [b.to_json() | {"tokens_per_second": b.tokens_out / history.bucket_s} for b in buckets]
    body = {
        "window": window.key,
        "window_s": window.seconds,
        "bucket_s": history.bucket_s,
        "totals": totals(ui.gateway.metrics, ui.gateway.started_at).to_json(),
        "summary": summary(buckets, window.seconds).to_json(),
        "buckets": series,
    }
    return JSONResponse(body, headers=SECURITY_HEADERS)
