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
import urllib.request
from pathlib import Path

import pytest

from zoo import launch
from zoo.catalog.catalog import load_catalog
from zoo.host import BUILTIN_PROFILES
from zoo.plan import LaunchOptions
from zoo.plugins import get_engines, new_plugin_manager, plugin_records
from zoo.resolve import Request, resolve
from zoo.runtime import launcher, state
from zoo.testing.hubserver import HubServer

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


def test_a_plan_with_the_thirdparty_engine_launches(
    on_path: Path, tmp_path: Path, hub_server: HubServer
) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "tiny-echo.yaml").write_text(FAMILY)
    catalog = load_catalog([specs])
    engines = get_engines(new_plugin_manager())
    host = BUILTIN_PROFILES["cpu-8g"]
    plan = resolve(catalog, Request("tiny-echo"), engines, host)
    assert (plan.engine, plan.quantization) == ("echo", "Q8_0")
    assert plan.requirements == ()  # nothing to install: it runs on zoo's own Python
    assert plan.source.selection.exact == ("tiny-echo.Q8_0.gguf",)

    # Its own check rule (not expressible as data) is applied too.
    small = BUILTIN_PROFILES["cpu-8g"].__class__(os="linux", arch="x86_64", ram_bytes=2**29)
    tiny = resolve(catalog, Request("tiny-echo"), engines, small)
    assert tiny.engine == "llamacpp"
    echo = next(c for c in tiny.candidates if c.engine == "echo")
    assert echo.reason == "needs at least 1 GiB of RAM"


def test_the_thirdparty_engine_runs_through_zoos_runtime(
    on_path: Path, tmp_path: Path, hub_server: HubServer
) -> None:
    """Resolve, download from the (local) hub, start, check readiness and the key, stop: all
    through zoo.launch, the path `zoo launch` takes; the dry run's command is what started."""
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "tiny-echo.yaml").write_text(FAMILY)
    hub_server.add_repo("example/tiny-echo-GGUF", {"tiny-echo.Q8_0.gguf": b"GGUF" + bytes(16)})
    catalog = load_catalog([specs])
    engines = get_engines(new_plugin_manager())
    port = _free_port()
    options = LaunchOptions(port=port, api_key="s3cret", detach=True, ready_timeout=30)
    request = Request("tiny-echo", hub="huggingface")
    launch.fetch(launch.plan(request, options, catalog=catalog, engines=engines), progress=False)
    # Planned once the files are cached: the dry run shows the real model path.
    plan = launch.plan(request, options, catalog=catalog, engines=engines)
    said: list[str] = []
    instance = launch.run(plan, engines=engines, say=said.append, out=said.append)
    try:
        started = next(line for line in said if line.startswith("Starting echo: "))
        # Behind the proxy the engine takes a private port chosen at launch (0 in the plan).
        assert instance.engine_port is not None
        ran = started.removeprefix("Starting echo: ").split(" ")
        private = str(instance.engine_port)
        assert [("0" if a == private else a) for a in ran] == list(plan.command)
        assert "s3cret" not in " ".join(said)
        if Path("/proc/self/environ").exists():
            # The process itself: the planned argv, and the planned environment on top.
            raw = Path(f"/proc/{instance.pid}/cmdline").read_bytes().decode().split("\0")[:-1]
            assert [("0" if a == private else a) for a in raw] == list(plan.command)
            pairs = Path(f"/proc/{instance.pid}/environ").read_bytes().decode().split("\0")
            environ = dict(p.split("=", 1) for p in pairs if "=" in p)
            assert plan.command_env and dict(plan.command_env).items() <= environ.items()
        # The echo engine says nothing about checking keys, so zoo's proxy checks it.
        assert instance.proxy_pid is not None
        base = f"http://127.0.0.1:{port}"
        body = json.dumps(
            {"model": "tiny-echo", "messages": [{"role": "user", "content": "hello"}]}
        ).encode()

        def chat(key: str) -> urllib.request.Request:
            return urllib.request.Request(
                base + "/v1/chat/completions",
                data=body,
                headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
            )

        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(chat("wrong"), timeout=5)
        assert refused.value.code == 401
        with urllib.request.urlopen(chat("s3cret"), timeout=5) as response:
            answer = json.loads(response.read())
        assert answer["model"] == "tiny-echo"
        assert answer["choices"][0]["message"]["content"] == "echo(GGUF): hello"
    finally:
        launcher.stop(instance)
    assert state.list_instances() == []
