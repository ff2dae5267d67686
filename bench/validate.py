"""Validation throughput: `zoo validate` over a generated catalog of 1,000 families.

The families are copies of the real catalog in specs/ (hand-written and imported from
Xinference, with their chat templates and long quantization lists) under new names, so the
files have real sizes and shapes. Each run is a fresh `zoo validate DIR` process with nothing
cached, timed end to end (start-up, reading, schema, lint, duplicate check). Target: < 2 s.

    .venv/bin/python bench/validate.py [--families 1000] [--repeat 3] [--no-record]
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from results import record
from startup import HEADING, ROOT

BIN = Path(sys.executable).parent
TARGET_S = 2.0


def generate(folder: Path, count: int) -> int:
    sources = sorted((ROOT / "specs").glob("*.yaml"))
    total = 0
    for index in range(count):
        text = sources[index % len(sources)].read_text(encoding="utf-8")
        name = re.search(r"^name: (\S+)", text, re.M)
        assert name is not None
        new_name = f"{name.group(1)}-{index:04d}"
        text = text.replace(f"name: {name.group(1)}", f"name: {new_name}", 1)
        (folder / f"{new_name}.yaml").write_text(text, encoding="utf-8")
        total += len(text.encode())
    return total


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--families", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-record", action="store_true")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        folder = Path(work) / "specs"
        folder.mkdir()
        size = generate(folder, options.families)
        env = dict(os.environ, ZOO_HOME=str(Path(work) / "home"))
        times, cpus = [], []
        for _ in range(options.repeat):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            done = subprocess.run(
                [str(BIN / "zoo"), "validate", str(folder)], env=env, capture_output=True, text=True
            )
            times.append(time.perf_counter() - start)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        summary = done.stdout.strip().splitlines()[-1]
        if f"{options.families} file(s) checked" not in summary:
            raise SystemExit(f"unexpected output: {summary}\n{done.stderr[-1500:]}")
    best, median = min(times), statistics.median(times)
    load = os.getloadavg()[0]
    machine = (
        f"{platform.node()} ({platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}), load average {load:.1f} at the end"
    )
    verdict = "meets" if median < TARGET_S else "misses"
    text = "\n".join(
        [
            f"### Validation of {options.families} families, {time.strftime('%Y-%m-%d %H:%M')}",
            "",
            (
                f"`.venv/bin/python bench/validate.py --families {options.families} --repeat "
                f"{options.repeat}` on {machine}."
            ),
            "",
            (
                f"- generated catalog: {options.families} files, {size / 1e6:.1f} MB "
                "(copies of the real specs/)"
            ),
            (
                f"- `zoo validate DIR`, fresh process, nothing cached: median {median:.2f} s, best "
                f"{best:.2f} s ({options.families / median:.0f} families/s, "
                f"{size / 1e6 / median:.1f} MB/s); CPU (user + system) median "
                f"{statistics.median(cpus):.2f} s, best {min(cpus):.2f} s"
            ),
            f"- result line: `{summary}`",
            f"- the median {verdict} the {TARGET_S:.0f} s target",
            "",
        ]
    )
    print(text)
    if not options.no_record:
        record(HEADING, text)


if __name__ == "__main__":
    main()
