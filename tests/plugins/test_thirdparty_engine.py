"""The public API is enough to write an engine: a distribution from tests/ is installed with
pip, found through its entry point, chosen by resolution, and its server launched from the plan.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from zoo.catalog.catalog import load_catalog
from zoo.host import BUILTIN_PROFILES
from zoo.plan import LaunchOptions
from zoo.plugins import get_engines, new_plugin_manager, plugin_records
from zoo.resolve import Request, launch_context, resolve

SOURCE = Path(__file__).parent / "thirdparty_engine"

FAMILY = """\
name: tiny-echo
description: A tiny family for the third-party engine test.
context_length: 2048
languages: [en]
abilities: [chat]
specs:
  - format: ggufv2
    size: 0.001
    quantizations: [Q4_1, Q8_0]
    sources:
      huggingface:
        model_id: example/tiny-echo-GGUF
        file: tiny-echo.{quantization}.gguf
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("site")
    # Built from a copy: setuptools writes build/ and *.egg-info beside the sources.
    source = tmp_path_factory.mktemp("src") / SOURCE.name
    shutil.copytree(SOURCE, source, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    # A real install (build backend, entry-point metadata), into a folder put on sys.path.
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            # Offline: the build backend (setuptools) is a dev dependency already installed.
            "--no-build-isolation",
            "--no-index",
            "--target",
            str(target),
            str(source),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return target


@pytest.fixture
def on_path(installed: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.syspath_prepend(str(installed))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(installed), *sys.path]))
    return installed


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_entry_point_registers_the_engine(on_path: Path) -> None:
    pm = new_plugin_manager()
    record = next(r for r in plugin_records(pm) if r.name == "echo")
    assert (record.distribution, record.version, record.error) == ("zoo-echo-engine", "0.3.0", None)
    engines = get_engines(pm)
    assert engines["echo"].display_name == "Echo"


def test_a_plan_with_the_thirdparty_engine_launches(on_path: Path, tmp_path: Path) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "tiny-echo.yaml").write_text(FAMILY)
    catalog = load_catalog([specs])
    engines = get_engines(new_plugin_manager())
    host = BUILTIN_PROFILES["cpu-8g"]
    plan = resolve(catalog, Request("tiny-echo"), engines, host)
    assert (plan.engine, plan.quantization) == ("echo", "Q8_0")
    assert plan.requirements == ()  # nothing to install: it runs on zoo's own Python
    assert plan.files == ("tiny-echo.Q8_0.gguf",)

    # Its own check rule (not expressible as data) is applied too.
    small = BUILTIN_PROFILES["cpu-8g"].__class__(os="linux", arch="x86_64", ram_bytes=2**29)
    tiny = resolve(catalog, Request("tiny-echo"), engines, small)
    assert tiny.engine == "llamacpp"
    echo = next(c for c in tiny.candidates if c.engine == "echo")
    assert echo.reason == "needs at least 1 GiB of RAM"

    model = tmp_path / plan.files[0]
    model.write_bytes(b"GGUF" + bytes(16))
    port = _free_port()
    ctx = launch_context(plan, str(model), LaunchOptions(api_key="s3cret"), host, port=port)
    command = engines["echo"].server_command(ctx)
    env = {**os.environ, **command.env}
    server = subprocess.Popen(command.argv, env=env)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(base + str(command.health_path), timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.1)
        body = json.dumps(
            {"model": "tiny-echo", "messages": [{"role": "user", "content": "hello"}]}
        ).encode()
        request = urllib.request.Request(
            base + "/v1/chat/completions",
            data=body,
            headers={"Authorization": "Bearer s3cret", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            answer = json.loads(response.read())
        assert answer["model"] == "tiny-echo"
        assert answer["choices"][0]["message"]["content"] == "echo(GGUF): hello"
    finally:
        server.terminate()
        server.wait(timeout=10)
