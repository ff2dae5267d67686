"""zoo ps / stop / logs / engines install through the real command line (CliRunner)."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

from runtime_helpers import FakeEngine, start
from typer.testing import CliRunner

from zoo.cli.app import build_app
from zoo.hubs.base import FetchResult
from zoo.runtime import launcher, process


def _zoo(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(build_app(with_plugins=False), list(args))
    return result.exit_code, result.output


def _start(fetched: FetchResult, name: str = "tiny-model") -> launcher.Running:
    return start(FakeEngine(), fetched, name)


def test_ps_lists_live_and_dead_instances_and_stop_all_cleans_up(fetched: FetchResult) -> None:
    first = _start(fetched, "model-a")
    second = _start(fetched, "model-b")
    code, out = _zoo("ps")
    assert code == 0
    assert out.splitlines()[0].split() == [
        "ID",
        "MODEL",
        "ENGINE",
        "QUANT",
        "ENDPOINT",
        "PID",
        "UPTIME",
        "STATUS",
    ]
    assert f"{first.instance.id}  model-a" in out and out.count("running") == 2

    os.kill(second.instance.pid, signal.SIGKILL)
    assert second.server is not None
    second.server.wait()
    code, out = _zoo("ps", "--json")
    data = json.loads(out)
    assert data["version"] == 1
    status = {i["model"]: i["status"] for i in data["instances"]}
    assert status == {"model-a": "running", "model-b": "dead"}
    first_json = next(i for i in data["instances"] if i["model"] == "model-a")
    assert first_json["endpoint"] == first.instance.endpoint
    assert {"engine", "quantization", "pid", "uptime_s"} <= set(first_json)

    code, out = _zoo("stop", "--all")
    assert code == 0 and "Stopped" in out and "already exited" in out
    assert not process.pid_alive(first.instance.pid)
    assert json.loads(_zoo("ps", "--json")[1])["instances"] == []


def test_stop_by_model_name_and_logs(fetched: FetchResult) -> None:
    running = _start(fetched, "named-model")
    code, out = _zoo("logs", running.instance.id[:4])
    assert code == 0 and "fake engine starting" in out
    code, out = _zoo("stop", "named-model")
    assert code == 0 and f"Stopped {running.instance.id}" in out
    assert not process.pid_alive(running.instance.pid)


def test_unknown_instance_is_one_line_error() -> None:
    import subprocess

    done = subprocess.run(
        [sys.executable, "-m", "zoo", "stop", "nope"], capture_output=True, text=True
    )
    assert done.returncode == 1
    assert done.stderr == "zoo: error: no instance 'nope'; instances: none are recorded\n"


def test_logs_follow_prints_new_lines_and_ends_when_the_instance_stops(
    fetched: FetchResult,
) -> None:
    import queue
    import subprocess
    import threading

    running = _start(fetched)
    proc = subprocess.Popen(
        [sys.executable, "-m", "zoo", "logs", running.instance.id, "-f"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    lines: queue.Queue[str | None] = queue.Queue()

    def read_all() -> None:
        for line in proc.stdout or ():
            lines.put(line)
        lines.put(None)  # the follower closed its output

    reader = threading.Thread(target=read_all)
    reader.start()

    def read_until(text: str) -> None:
        # Each step waits for what the follower printed, not for a clock: load cannot race it.
        while True:
            line = lines.get(timeout=60)
            assert line is not None, f"zoo logs -f ended before printing {text!r}"
            if text in line:
                return

    try:
        read_until("listening on")  # the tail is printed; following starts right after it
        with Path(running.instance.log_path).open("a") as log:
            log.write("a line written while following\n")
        read_until("a line written while following")
        launcher.stop(running.instance)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        reader.join(30)
        if running.server is not None and running.server.poll() is None:
            launcher.stop(running.instance, reap=running.server)  # a failed step leaks nothing


def test_what_logs_shows_and_what_it_follows_meet_exactly(tmp_path: Path) -> None:
    """The tail ends where following starts: a line written between the two (which the CLI
    cannot time) is printed once, neither lost nor repeated."""
    log = tmp_path / "server.log"
    log.write_bytes(b"first\nsecond\n")
    shown_until = log.stat().st_size
    with log.open("ab") as writer:
        writer.write(b"written in between\n")
    assert process.tail(log, 50, until=shown_until) == ["first", "second"]
    followed = b"".join(process.follow(log, lambda: False, offset=shown_until))
    assert followed == b"written in between\n"
