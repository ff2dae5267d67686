"""Which recorded instance `zoo launch` calls "already running": the rules, on real records in
zoo's instance database whose process is alive (a `sleep` standing in for the server, so the
record reads "running" as a real one does)."""

from __future__ import annotations

import http.server
import subprocess
import threading
import time
from collections.abc import Iterator

import pytest

from zoo import launch
from zoo.host import load_host_profile
from zoo.plan import LaunchOptions
from zoo.resolve import Request
from zoo.runtime import state
from zoo.runtime.process import process_start_time


@pytest.fixture
def server() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(["sleep", "300"])
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def record(
    proc: subprocess.Popen[bytes],
    model: str,
    quantization: str,
    port: int,
    size: float | None = None,
    api_key: bool = False,
) -> None:
    state.add(
        state.Instance(
            id=state.new_id(),
            model=model,
            engine="llamacpp",
            quantization=quantization,
            format="ggufv2",
            served_name=model,
            host="127.0.0.1",
            port=port,
            pid=proc.pid,
            pgid=proc.pid,
            pid_start=process_start_time(proc.pid),
            log_path="/dev/null",
            started_at=time.time(),
            detached=True,
            api_key=api_key,
            size=size,
        )
    )


def running(request: Request, port: int | None = None) -> state.Instance | None:
    plan = launch.plan(request, LaunchOptions(port=port), host=load_host_profile("cpu-24g"))
    return launch.running_instance(plan, request)


def test_what_was_asked_must_match_what_runs(server: subprocess.Popen[bytes]) -> None:
    record(server, "qwen3", "Q4_K_M", 8100)
    assert running(Request(model="smollm2-135m-instruct")) is None  # another family
    found = running(Request(model="qwen3"))  # nothing asked: whatever runs
    assert found is not None and found.port == 8100 and found.status == "running"
    assert running(Request(model="qwen3", quantization="q4_k_m")) == found  # any case
    assert running(Request(model="qwen3", quantization="Q8_0")) is None
    assert running(Request(model="qwen3", engine="llamacpp")) == found
    assert running(Request(model="qwen3", engine="transformers")) is None
    assert running(Request(model="qwen3"), port=8100) == found
    assert running(Request(model="qwen3"), port=8101) is None
    # Qwen3 comes in several sizes and this record (as an older zoo wrote it) does not say
    # which: a size asked is started.
    assert running(Request(model="qwen3", size=0.6)) is None


def test_the_recorded_size_must_be_the_size_asked(server: subprocess.Popen[bytes]) -> None:
    record(server, "qwen3", "Q4_K_M", 8100, size=8.0)
    found = running(Request(model="qwen3", size=8.0))
    assert found is not None and found.size == 8.0
    assert running(Request(model="qwen3", size=0.6)) is None
    assert running(Request(model="qwen3")) == found


def test_a_dead_instance_is_not_running(server: subprocess.Popen[bytes]) -> None:
    record(server, "qwen3", "Q4_K_M", 8100)
    server.kill()
    server.wait()
    assert running(Request(model="qwen3")) is None


def test_the_launch_options_must_match_how_it_serves(server: subprocess.Popen[bytes]) -> None:
    record(server, "qwen3", "Q4_K_M", 8100)
    asked = Request(model="qwen3")

    def with_options(**options: object) -> state.Instance | None:
        profile = load_host_profile("cpu-24g")
        plan = launch.plan(asked, LaunchOptions(**options), host=profile)  # type: ignore[arg-type]
        return launch.running_instance(plan, asked)

    assert with_options() is not None
    assert with_options(host="0.0.0.0") is None  # asked public, it listens on loopback
    assert with_options(api_key="k") is None  # asked for a key, it wants none
    assert with_options(served_name="other") is None
    assert with_options(extra_args=("--threads", "1")) is None
    # A context asked is not recorded, so it cannot be told: a new one is started.
    assert running(Request(model="qwen3", context_length=2048)) is None


class _KeyedModels(http.server.BaseHTTPRequestHandler):
    """/v1/models that answers 200 to the key "right" only, as a keyed engine does."""

    def do_GET(self) -> None:
        ok = self.headers.get("Authorization") == "Bearer right"
        self.send_response(200 if ok else 401)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_a_keyed_instance_is_the_same_only_for_the_key_it_takes(
    server: subprocess.Popen[bytes],
) -> None:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _KeyedModels)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        port = httpd.server_address[1]
        record(server, "qwen3", "Q4_K_M", port, api_key=True)
        asked = Request(model="qwen3")
        profile = load_host_profile("cpu-24g")

        def with_key(key: str | None) -> state.Instance | None:
            plan = launch.plan(asked, LaunchOptions(api_key=key), host=profile)
            return launch.running_instance(plan, asked)

        assert with_key("right") is not None
        assert with_key("wrong") is None
        assert with_key(None) is None  # it wants a key the launch would not give clients
    finally:
        httpd.shutdown()
        httpd.server_close()
