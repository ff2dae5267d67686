"""The launch path stays fast: what a dry run (and a launch, before its engine starts) must not
import, and what a launch must not wait for, because every `zoo launch` pays for it (the fixed
part in bench/RESULTS.md, "Launch and run")."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from zoo.runtime import process

# Each costs ~10-20 ms of a fixed part of ~0.3 s; none is needed before the engine runs.
HEAVY = ("http.client", "ssl", "packaging.requirements")


def _imported_after(code: str, envs_dir: Path) -> list[str]:
    """Which of HEAVY a fresh interpreter has imported after running ``code``."""
    script = (
        "import json, sys\n"
        f"{code}\n"
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))\n"
    )
    env_code = f"import os; os.environ['ZOO_ENVS_DIR'] = {str(envs_dir)!r}\n"
    done = subprocess.run(
        [sys.executable, "-c", env_code + script], capture_output=True, text=True, check=True
    )
    return list(json.loads(done.stdout.strip().splitlines()[-1]))


def test_a_dry_run_imports_no_http_client_and_no_packaging(tmp_path: Path) -> None:
    code = (
        "from zoo.cli.app import main\n"
        "try:\n"
        "    main(['launch', 'smollm2-135m-instruct', '--hub', 'pypi', '--engine', 'llamacpp',"
        " '--dry-run'])\n"
        "except SystemExit as done:\n"
        "    assert done.code == 0, done.code\n"
    )
    assert _imported_after(code, tmp_path) == []


def test_a_requirement_that_is_not_installed_is_answered_without_packaging(
    tmp_path: Path,
) -> None:
    code = (
        "from zoo.runtime.envs import satisfied_here\n"
        "assert not satisfied_here(['pyyaml', 'zoo-no-such-dist[extra]==1.0'])\n"
    )
    assert _imported_after(code, tmp_path) == []


def test_the_quick_check_leaves_markers_and_versions_to_packaging() -> None:
    from importlib.metadata import version

    from zoo.runtime.envs import satisfied_here

    # A missing distribution behind a marker that does not apply is not needed here.
    assert satisfied_here(["pyyaml", "zoo-no-such-dist==1.0; python_version < '3'"])
    assert not satisfied_here(["pyyaml", "zoo-no-such-dist==1.0; python_version >= '3'"])
    # Installed, but not in the asked version.
    assert not satisfied_here(["pyyaml==0.0.1"])
    assert satisfied_here([f"PyYAML=={version('pyyaml')}"])
    assert not satisfied_here(["not a requirement!"])


def test_keeping_a_server_does_not_wait_for_the_watchdog_to_exit() -> None:
    """keep() hands the watchdog its byte and returns; close() still waits for it."""
    slow = "import os, time; os.read(0, 1); time.sleep(30)"  # a watchdog slow to leave
    for word, waits in (("keep", False), ("close", True)):
        read_fd, write_fd = os.pipe()
        watchdog = subprocess.Popen([sys.executable, "-c", slow], stdin=read_fd)
        os.close(read_fd)
        try:
            started = time.monotonic()
            getattr(process.Guard(watchdog, write_fd), word)()
            took = time.monotonic() - started
        finally:
            watchdog.kill()
            watchdog.wait()
        assert (took >= 1.5) is waits, (word, took)


def test_readiness_is_asked_often_while_a_fast_engine_loads(tmp_path: Path) -> None:
    """An engine ready after ~0.6 s is seen soon: /health is asked every ~20 ms at first."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    ready_at = time.monotonic() + 0.6
    asked: list[float] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # /health: 503 while "loading"
            asked.append(time.monotonic())
            self._answer(200 if time.monotonic() >= ready_at else 503)

        def do_POST(self) -> None:  # the one-token completion
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self._answer(200)

        def _answer(self, status: int) -> None:
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        process.wait_ready(
            f"http://127.0.0.1:{server.server_address[1]}",
            health_path="/health",
            model=None,
            api_key=None,
            alive=lambda: True,
            timeout=30,
            log_path=tmp_path / "log",
            what="the fake engine",
        )
    finally:
        server.shutdown()
        server.server_close()
    before = [t for t in asked if t < ready_at]
    # Every 100 ms (as before) would be 6 or 7 questions; every 20 ms about 30.
    assert len(before) >= 12, len(before)
