"""Start-up time: `zoo --version` and `zoo list` over the full catalog, against `python -c pass`.

Each command runs as a fresh process, interleaved with the others in every round so that load
from other work on the machine hits them alike. `zoo list` runs warm (its compiled-catalog cache
filled by one untimed run first), which is how a user meets it from the second run on; one cold
run (empty cache) is reported too. Prints median wall and CPU seconds and the ratio to a bare
interpreter start, and appends them to bench/RESULTS.md unless --no-record.

    .venv/bin/python bench/startup.py [--repeat 15] [--no-record]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from results import record

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
HEADING = "## Catalog start-up and validation"
TARGET_S = 0.2


def run(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one fresh process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(args, env=env, cwd=ROOT, capture_output=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{args} failed: {done.stderr.decode()[-1500:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--no-record", action="store_true")
    options = parser.parse_args()

    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "zoo --version": [str(BIN / "zoo"), "--version"],
        "zoo list": [str(BIN / "zoo"), "list"],
    }
    with tempfile.TemporaryDirectory() as home:
        env = dict(os.environ, ZOO_HOME=home)
        env.pop("ZOO_CATALOG_PATH", None)
        cold_wall, cold_cpu = run(commands["zoo list"], env)  # fills the compiled catalog
        samples: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
        for _ in range(options.repeat):
            for name, args in commands.items():
                samples[name].append(run(args, env))
        families = subprocess.run(
            [str(BIN / "zoo"), "list", "--json"], env=env, cwd=ROOT, capture_output=True, text=True
        ).stdout.count('"name":')

    base_wall = statistics.median(w for w, _ in samples["python -c pass"])
    base_cpu = statistics.median(c for _, c in samples["python -c pass"])
    rows = []
    for name, values in samples.items():
        wall = statistics.median(w for w, _ in values)
        cpu = statistics.median(c for _, c in values)
        rows.append(
            f"| `{name}` | {wall:.3f} | {wall / base_wall:.1f}x | {cpu:.3f} | "
            f"{cpu / base_cpu:.1f}x |"
        )
    rows.append(
        f"| `zoo list` (cold cache, 1 run) | {cold_wall:.3f} | "
        f"{cold_wall / base_wall:.1f}x | {cold_cpu:.3f} | {cold_cpu / base_cpu:.1f}x |"
    )
    load = os.getloadavg()[0]
    machine = (
        f"{platform.node()} ({platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}), load average {load:.1f} at the end"
    )
    warm_list = statistics.median(w for w, _ in samples["zoo list"])
    verdict = "meets" if warm_list < TARGET_S else "misses"
    text = "\n".join(
        [
            f"### Start-up ({families} families), {time.strftime('%Y-%m-%d %H:%M')}",
            "",
            (
                f"`.venv/bin/python bench/startup.py --repeat {options.repeat}` on {machine}; "
                f"medians of {options.repeat} interleaved runs."
            ),
            "",
            "| command | wall (s) | wall ratio | CPU (s) | CPU ratio |",
            "|---|---:|---:|---:|---:|",
            *rows,
            "",
            f"Warm `zoo list` {verdict} the {TARGET_S} s target ({warm_list:.3f} s).",
            "",
        ]
    )
    print(text)
    if not options.no_record:
        record(HEADING, text)


if __name__ == "__main__":
    main()
