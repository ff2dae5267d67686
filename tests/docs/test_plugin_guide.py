"""The plugin guide (docs/plugins.rst) works as written: every example in it runs.

The two tutorial packages (docs/examples/zoo-parrot, docs/examples/zoo-mirror) are the very
files the guide includes; they are installed with pip the way a user would, found through their
entry points, and driven through zoo's own launch path: the engine serves a real chat
completion to the official ``openai`` client behind zoo's key-checking proxy, and the hub
downloads from a plain ``http.server`` mirror. Every other Python block of the guide is
executed, and the reference tables list exactly the fields of the dataclasses they describe.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from zoo import launch
from zoo.catalog.catalog import load_catalog
from zoo.engine import LaunchContext
from zoo.plan import LaunchOptions
from zoo.plugins import (
    add_plugin_commands,
    get_catalog_paths,
    get_engines,
    get_hubs,
    new_plugin_manager,
    plugin_records,
)
from zoo.resolve import Request
from zoo.runtime import launcher, state
from zoo.testing.hubserver import HubServer

DOCS = Path(__file__).resolve().parents[2] / "docs"
GUIDE = DOCS / "plugins.rst"
EXAMPLES = DOCS / "examples"
GGUF = b"GGUF" + bytes(28)  # enough of a GGUF file for the Parrot server


def _guide() -> str:
    return GUIDE.read_text(encoding="utf-8")


def _blocks(language: str) -> list[str]:
    """The guide's ``.. code-block:: <language>`` bodies, dedented, in order."""
    found = []
    lines = _guide().splitlines()
    for index, line in enumerate(lines):
        if line.strip() != f".. code-block:: {language}":
            continue
        body: list[str] = []
        for following in lines[index + 1 :]:
            if following.strip() and not following.startswith("   "):
                break
            if following.strip().startswith(":") and not body:
                continue  # a directive option such as :caption:
            body.append(following[3:])
        found.append("\n".join(body).strip("\n") + "\n")
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- the tutorial packages, installed ------------------------------------------------------


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Both tutorial packages, built and installed with pip into a folder (offline)."""
    target = tmp_path_factory.mktemp("site")
    sources = tmp_path_factory.mktemp("src")
    copies = []
    for name in ("zoo-parrot", "zoo-mirror"):
        # From copies: setuptools writes build/ and *.egg-info beside the sources.
        copy = sources / name
        shutil.copytree(EXAMPLES / name, copy, ignore=shutil.ignore_patterns("build", "*.egg-*"))
        copies.append(str(copy))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",  # setuptools is a dev dependency already installed
            "--no-index",
            "--target",
            str(target),
            *copies,
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


def _zoo(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The real command line, in a fresh process that finds the plugins by entry point."""
    return subprocess.run(
        [sys.executable, "-m", "zoo", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "200"},
    )


def test_the_tutorial_packages_register_through_their_entry_points(on_path: Path) -> None:
    pm = new_plugin_manager()
    records = {r.name: r for r in plugin_records(pm)}
    assert (records["parrot"].distribution, records["parrot"].error) == ("zoo-parrot", None)
    assert (records["mirror"].distribution, records["mirror"].error) == ("zoo-mirror", None)
    assert get_engines(pm)["parrot"].display_name == "Parrot"
    assert get_hubs(pm)["mirror"].display_name == "Model mirror"
    # The spec folder ships inside the installed package, and its family is valid.
    shipped = [p for p in get_catalog_paths(pm) if on_path in p.parents]
    assert [p.relative_to(on_path).as_posix() for p in shipped] == ["zoo_parrot/specs"]
    catalog = load_catalog(shipped)
    assert [str(p) for p in catalog.problems] == []
    assert "parrot-tiny" in catalog.families


def test_the_cli_steps_of_the_engine_tutorial(on_path: Path) -> None:
    plugins = _zoo("plugins")
    assert plugins.returncode == 0, plugins.stderr
    assert re.search(
        r"^parrot +zoo-parrot 0\.1\.0 +zoo_catalog_paths, zoo_register_engines$",
        plugins.stdout,
        re.M,
    ), plugins.stdout
    engines = _zoo("engines")
    assert re.search(r"^parrot +yes +ggufv2 ", engines.stdout, re.M), engines.stdout
    dry = _zoo("launch", "parrot-tiny", "--engine", "parrot", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "engine:       parrot on cpu" in dry.stdout
    assert "-m zoo_parrot.server --model" in dry.stdout
    assert "--served-name parrot-tiny --ctx-size 2048" in dry.stdout


def test_the_tutorial_engine_serves_openai_clients_through_zoo(
    on_path: Path, hub_server: HubServer
) -> None:
    """`zoo launch parrot-tiny --engine parrot --api-key ... --detach`, as zoo.launch runs it:
    download from the (local) hub, build the engine's venv, start, readiness, proxy, stop."""
    import openai

    hub_server.add_repo("example/parrot-tiny-GGUF", {"parrot-tiny.Q8_0.gguf": GGUF})
    pm = new_plugin_manager()
    engines = get_engines(pm)
    catalog = load_catalog(get_catalog_paths(pm))
    port = _free_port()
    options = LaunchOptions(port=port, api_key="s3cret", detach=True, ready_timeout=60)
    request = Request("parrot-tiny", engine="parrot", hub="huggingface")
    launch.fetch(launch.plan(request, options, catalog=catalog, engines=engines), progress=False)
    plan = launch.plan(request, options, catalog=catalog, engines=engines)
    assert plan.environment is not None and plan.environment.requirements == ()
    said: list[str] = []
    instance = launch.run(plan, engines=engines, say=said.append, out=said.append)
    try:
        started = next(line for line in said if line.startswith("Starting parrot: "))
        private = str(instance.engine_port)
        ran = started.removeprefix("Starting parrot: ").split(" ")
        assert [("0" if a == private else a) for a in ran] == list(plan.command)
        # It runs in its own venv, where zoo made the plugin's package importable.
        assert ran[:3] == [plan.python, "-m", "zoo_parrot.server"]
        assert plan.python != sys.executable
        # ServerCommand says nothing about checking keys: zoo's proxy checks it.
        assert instance.proxy_pid is not None
        assert "s3cret" not in " ".join(said)

        base = f"http://127.0.0.1:{port}/v1"
        wrong = openai.OpenAI(base_url=base, api_key="wrong", max_retries=0)
        with pytest.raises(openai.AuthenticationError):
            wrong.chat.completions.create(
                model="parrot-tiny", messages=[{"role": "user", "content": "hello"}]
            )
        client = openai.OpenAI(base_url=base, api_key="s3cret", max_retries=0)
        answer = client.chat.completions.create(
            model="parrot-tiny", messages=[{"role": "user", "content": "pretty polly"}]
        )
        assert answer.model == "parrot-tiny"
        assert answer.choices[0].message.content == "pretty polly"
        stream = client.chat.completions.create(
            model="parrot-tiny",
            messages=[{"role": "user", "content": "squawk"}],
            stream=True,
        )
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "squawk"
    finally:
        launcher.stop(instance)
    assert state.list_instances() == []


# -- the hub tutorial: a plain HTTP mirror -------------------------------------------------


class _Mirror:
    """A static file server over a folder laid out the way the mirror hub expects."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.requests: list[str] = []
        mirror = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args: object, **kwargs: object) -> None:
                super().__init__(*args, directory=str(root), **kwargs)  # type: ignore[arg-type]

            def log_message(self, format: str, *args: object) -> None:
                mirror.requests.append(f"{self.command} {self.path}")

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def add(self, repo: str, files: dict[str, bytes], revision: str = "main") -> None:
        folder = self.root / repo / revision
        lines = []
        for path, data in files.items():
            (folder / path).parent.mkdir(parents=True, exist_ok=True)
            (folder / path).write_bytes(data)
            lines.append(f"{hashlib.sha256(data).hexdigest()}  {path}\n")
        (folder / "SHA256SUMS").write_text("".join(lines))

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def mirror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[_Mirror]:
    served = _Mirror(tmp_path / "mirror")
    monkeypatch.setenv("ZOO_MIRROR_URL", served.url)
    monkeypatch.delenv("ZOO_HUB", raising=False)
    try:
        yield served
    finally:
        served.close()


def _mirror_catalog(tmp_path: Path) -> Path:
    """The guide's spec file for the mirror, as written there."""
    (spec,) = [b for b in _blocks("yaml") if "mirror:" in b]
    folder = tmp_path / "specs"
    folder.mkdir()
    (folder / "parrot-mirror.yaml").write_text(spec)
    return folder


def test_zoo_download_fetches_from_the_mirror_into_its_cache(
    on_path: Path, mirror: _Mirror, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mirror.add("team/parrot-mirror-GGUF", {"parrot-mirror.Q8_0.gguf": GGUF})
    specs = _mirror_catalog(tmp_path)
    monkeypatch.setenv("ZOO_CATALOG_PATH", str(specs))
    dry = _zoo("download", "parrot-mirror", "--hub", "mirror", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "parrot-mirror.Q8_0.gguf" in dry.stdout
    got = _zoo("download", "parrot-mirror", "--hub", "mirror", "--quiet")
    assert got.returncode == 0, got.stderr
    hub = get_hubs(new_plugin_manager())["mirror"]
    root = Path(hub.cache_root())  # type: ignore[attr-defined]
    (cached,) = list(root.rglob("*.gguf"))
    assert cached.read_bytes() == GGUF
    assert root in cached.parents
    # A second download is served by the cache: no request reaches the mirror.
    mirror.requests.clear()
    again = _zoo("download", "parrot-mirror", "--hub", "mirror", "--quiet")
    assert again.returncode == 0, again.stderr
    assert mirror.requests == []
    listed = _zoo("cache", "list")
    assert "team/parrot-mirror-GGUF" in listed.stdout, listed.stdout + listed.stderr


def test_the_mirror_hub_through_fetch_plan_and_its_failures(
    on_path: Path, mirror: _Mirror, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from zoo.hubs.base import FetchRequest, HubError, HubUnreachableError, UnsafePathError
    from zoo.hubs.download import fetch_plan

    mirror.add("team/parrot-mirror-GGUF", {"parrot-mirror.Q8_0.gguf": GGUF})
    pm = new_plugin_manager()
    hubs, engines = get_hubs(pm), get_engines(pm)
    catalog = load_catalog([_mirror_catalog(tmp_path)])
    request = Request("parrot-mirror", engine="parrot", hub="mirror")
    plan = launch.plan(request, catalog=catalog, engines=engines, hubs=hubs)
    progress: list[tuple[str, int, int | None]] = []
    hub = hubs["mirror"]
    fetched = hub.fetch(
        FetchRequest("team/parrot-mirror-GGUF", files=("parrot-mirror.Q8_0.gguf",)),
        lambda path, done, total: progress.append((path, done, total)),
    )
    assert progress[-1] == ("parrot-mirror.Q8_0.gguf", len(GGUF), len(GGUF))
    result = fetch_plan(plan, progress=False, hubs=hubs)
    assert result.files == fetched.files and result.hub == "mirror"
    assert [f.path for f in hub.list_files("team/parrot-mirror-GGUF")] == [
        "parrot-mirror.Q8_0.gguf"
    ]

    # A file whose bytes do not match SHA256SUMS is refused and leaves nothing behind.
    mirror.add("team/bad", {"x.gguf": GGUF})
    (mirror.root / "team/bad/main/x.gguf").write_bytes(b"GGUF tampered")
    with pytest.raises(HubError, match="does not match its sha256"):
        hub.fetch(FetchRequest("team/bad", files=("x.gguf",)))
    assert hub.cached(FetchRequest("team/bad", files=("x.gguf",))) is None
    # Names from the mirror or the spec cannot leave the cache.
    (mirror.root / "team/evil/main").mkdir(parents=True)
    (mirror.root / "team/evil/main/SHA256SUMS").write_text(f"{'0' * 64}  ../../../escape\n")
    with pytest.raises(UnsafePathError):
        hub.list_files("team/evil")
    with pytest.raises(UnsafePathError):
        hub.fetch(FetchRequest("team/parrot-mirror-GGUF", revision="../../x", files=("a",)))
    # A mirror that accepts and never answers times out; a closed port is unreachable.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        monkeypatch.setenv("ZOO_MIRROR_URL", f"http://127.0.0.1:{silent.getsockname()[1]}")
        hub.read_timeout = 0.5  # type: ignore[attr-defined]
        started = time.monotonic()
        with pytest.raises(HubError, match=r"no answer within 0\.5 s"):
            hub.list_files("team/parrot-mirror-GGUF")
        assert time.monotonic() - started < 10
    monkeypatch.setenv("ZOO_MIRROR_URL", f"http://127.0.0.1:{_free_port()}")
    assert hub.reachable() is False
    with pytest.raises(HubUnreachableError):
        hub.list_files("team/parrot-mirror-GGUF")


# -- every other example of the guide ------------------------------------------------------


def _context() -> LaunchContext:
    """A LaunchContext as zoo builds it for the tutorial's family (with a key to pass on)."""
    family = load_catalog([EXAMPLES / "zoo-parrot" / "zoo_parrot" / "specs"]).families[
        "parrot-tiny"
    ]
    return LaunchContext(
        family=family,
        spec=family.specs[0],
        quantization="Q8_0",
        model_path="/models/parrot-tiny.Q8_0.gguf",
        served_name="parrot-tiny",
        port=8000,
        context_length=2048,
        api_key="s3cret",
        python="/envs/x/bin/python",
        threads=4,
    )


_SIGNATURE = re.compile(r"def zoo_\w+\(.*\)( -> .+)?\n")


def _runnable_blocks() -> list[str]:
    """Python blocks that are programs (hook signatures alone are not)."""
    return [b for b in _blocks("python") if not _SIGNATURE.fullmatch(b)]


def test_every_python_block_of_the_guide_compiles_and_there_are_examples() -> None:
    blocks = _blocks("python")
    assert len(_runnable_blocks()) >= 5, "the guide lost its examples"
    for block in blocks:
        if not _SIGNATURE.fullmatch(block):
            compile(block, str(GUIDE), "exec")


@pytest.mark.parametrize("index", range(len(_runnable_blocks()) if GUIDE.exists() else 0))
def test_each_python_example_of_the_guide_runs_as_a_plugin(
    index: int, on_path: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Each block is executed as a module; one that implements hooks is registered as a
    plugin with a fresh manager, its hooks are called, and zoo records no problem for it."""
    import typer
    from typer.testing import CliRunner

    monkeypatch.setenv("ZOO_STRICT_PLUGINS", "1")  # any contract problem raises
    block = _runnable_blocks()[index]
    module = types.ModuleType(f"guide_example_{index}")
    module.__file__ = str(tmp_path / f"guide_example_{index}.py")
    # The guide's own text, executed on purpose: that is what this test is for.
    exec(compile(block, module.__file__, "exec"), module.__dict__)  # noqa: S102
    hooks = {name for name, value in vars(module).items() if hasattr(value, "zoo_impl")}
    if not hooks:
        return  # configuration (conf.py) or a helper: executing it is the check
    pm = new_plugin_manager(load_entry_points=False)
    pm.register(module, name=module.__name__)
    if "zoo_register_engines" in hooks:
        engines = get_engines(pm)
        assert engines
        for engine in engines.values():  # its server command builds for a real plan's context
            command = engine.server_command(_context())
            assert command.argv and "s3cret" not in " ".join(command.argv)
    if "zoo_register_hubs" in hooks:
        assert get_hubs(pm)
    if "zoo_catalog_paths" in hooks:
        assert get_catalog_paths(pm)
    if "zoo_register_commands" in hooks:
        app = typer.Typer()

        @app.callback()
        def root() -> None:
            """The root command, so plugin commands are subcommands."""

        add_plugin_commands(app, pm)
        result = CliRunner().invoke(app, ["hello", "--name", "guide"])
        assert result.exit_code == 0, result.output
        assert "hello guide" in result.output
    record = next(r for r in plugin_records(pm) if r.name == module.__name__)
    assert record.error is None


# -- the reference tables -------------------------------------------------------------------


def _documented_fields(title: str) -> list[str]:
    """Field names in the ``.. list-table:: <title>`` of the guide, in order."""
    text = _guide()
    marker = f".. list-table:: {title}\n"
    assert marker in text, f"the guide has no reference table {title!r}"
    table = text.split(marker, 1)[1].split("\n\n.. ", 1)[0]
    return re.findall(r"^   \* - ``(\w+)``", table, re.M)


REFERENCED = {
    "LaunchContext": ("zoo.engine", "LaunchContext"),
    "ServerCommand": ("zoo.engine", "ServerCommand"),
    "Capabilities": ("zoo.engine", "Capabilities"),
    "Match": ("zoo.engine", "Match"),
    "Host": ("zoo.host", "Host"),
    "FetchRequest": ("zoo.hubs.base", "FetchRequest"),
    "FetchResult": ("zoo.hubs.base", "FetchResult"),
    "RemoteFile": ("zoo.hubs.base", "RemoteFile"),
    "CacheEntry": ("zoo.hubs.base", "CacheEntry"),
}


@pytest.mark.parametrize("name", sorted(REFERENCED))
def test_each_reference_table_lists_exactly_the_dataclass_fields(name: str) -> None:
    import importlib

    module, attr = REFERENCED[name]
    cls = getattr(importlib.import_module(module), attr)
    assert _documented_fields(name) == [f.name for f in dataclasses.fields(cls)]


def test_the_hub_and_engine_tables_list_every_public_member() -> None:
    from zoo.engine import Engine
    from zoo.hubs.base import Hub

    for cls in (Engine, Hub):
        public = [n for n in vars(cls) if not n.startswith("_")]
        assert sorted(_documented_fields(cls.__name__)) == sorted(public), cls.__name__
