"""Full-catalog timings: `zoo list`, `zoo validate`, `zoo docs render` and the site build.

Runs the real CLI as a user would (a fresh process each time) over the whole catalog in
specs/ (the hand-written families plus Xinference's imported registry). "cold" runs start
from an empty ZOO_HOME, so no cache helps; "warm" runs reuse the cache the cold run left.
Reports the median of --repeat runs and appends a section to bench/RESULTS.md.

    .venv/bin/python bench/full_catalog.py [--repeat 5] [--no-build] [--no-record]
"""

from __future__ import annotations

import argparse
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
ZOO = [sys.executable, "-m", "zoo"]


def timed(args: list[str], home: Path) -> float:
    env = dict(os.environ, ZOO_HOME=str(home))
    env.pop("ZOO_CATALOG_PATH", None)
    start = time.perf_counter()
    done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return elapsed


def measure(name: str, args: list[str], repeat: int, work: Path) -> list[tuple[str, float, float]]:
    cold, warm = [], []
    for i in range(repeat):
        home = work / f"{name}-{i}"
        home.mkdir()
        cold.append(timed(args, home))
        warm.append(timed(args, home))
    return [(name, statistics.median(cold), statistics.median(warm))]


def catalog_size() -> tuple[int, int, int]:
    sys.path.insert(0, str(ROOT))
    from zoo.catalog.catalog import load_catalog

    catalog = load_catalog([ROOT / "specs"])
    specs = [s for f in catalog for s in f.specs]
    return len(catalog), len(specs), sum(len(s.sources) for s in specs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-build", action="store_true", help="skip the Sphinx site build")
    parser.add_argument("--no-record", action="store_true", help="do not append to RESULTS.md")
    options = parser.parse_args()

    families, specs, sources = catalog_size()
    rows: list[tuple[str, float, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        rows += measure("zoo list", [*ZOO, "list"], options.repeat, work)
        rows += measure("zoo validate", [*ZOO, "validate"], options.repeat, work)
        rows += measure(
            "zoo docs render",
            [*ZOO, "docs", "render", "-o", str(work / "rst")],
            options.repeat,
            work,
        )
        if not options.no_build:
            # One run: a full Sphinx build takes minutes, and its second run is incremental.
            rows += measure(
                "zoo docs build", [*ZOO, "docs", "build", "-o", str(work / "site")], 1, work
            )

    machine = f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}"
    lines = [
        f"### Full catalog ({families} families, {specs} specs, {sources} hub sources)",
        "",
        (
            f"`{' '.join(['.venv/bin/python', 'bench/full_catalog.py', *sys.argv[1:]])}` on "
            f"{platform.node() or 'this machine'} ({machine}), "
            f"{time.strftime('%Y-%m-%d')}; median of {options.repeat} runs (build: 1 run)."
        ),
        "",
        "| command | cold (s) | warm (s) |",
        "|---|---:|---:|",
        *(f"| `{name}` | {cold:.2f} | {warm:.2f} |" for name, cold, warm in rows),
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if not options.no_record:
        record("## Catalog at full size (import of Xinference's registry)", text)


if __name__ == "__main__":
    main()
