"""Every hook has a test (datasette's rule): a plugin installed as a distribution implements
it, and zoo uses what it returns through the command line a user types."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from plugin_helpers import InstallPlugin

from zoo.docs.hooks_ref import hook_specs
from zoo.plugins import plugin_manager

TESTS = Path(__file__).resolve().parents[1]


def test_every_hook_has_a_test() -> None:
    """Fails when a hook spec is added without a ``test_hook_<name>`` test beside it."""
    sources = "\n".join(p.read_text(encoding="utf-8") for p in TESTS.rglob("test_*.py"))
    tested = set(re.findall(r"^def test_hook_(\w+)\(", sources, flags=re.MULTILINE))
    specs = set(hook_specs())
    assert specs, "no hook specs found"
    assert sorted(specs - tested) == [], "hooks without a test_hook_<name> test"
    assert sorted(tested - specs) == [], "test_hook_<name> tests of hooks that do not exist"


def _zoo(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run ``zoo ARGS`` through its entry function, as a fresh process (new plugin manager)."""
    from zoo.cli.app import main

    plugin_manager.cache_clear()
    capsys.readouterr()
    try:
        main(list(args))
        code = 0
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


TINY = """\
name: tiny-plugin-model
description: A tiny family a plugin ships.
context_length: 2048
languages: [en]
abilities: [chat]
specs:
  - format: ggufv2
    size: 0.001
    quantizations: [Q8_0]
    sources:
      SOURCES
"""


def test_hook_zoo_catalog_paths(
    install_plugin: InstallPlugin, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "shipped-specs"
    folder.mkdir()
    spec = TINY.replace("SOURCES", "huggingface: {model_id: team/tiny, file: tiny.Q8_0.gguf}")
    (folder / "tiny-plugin-model.yaml").write_text(spec)
    install_plugin(
        "shipspecs",
        f"from pathlib import Path\nfrom zoo import hookimpl\n\n"
        f"@hookimpl\ndef zoo_catalog_paths():\n    return [Path({str(folder)!r})]\n",
    )
    code, out, err = _zoo(capsys, "list", "--json")
    assert code == 0, err
    names = {f["name"] for f in json.loads(out)["families"]}
    assert "tiny-plugin-model" in names and "qwen2.5-instruct" in names


ENGINE_PLUGIN = """\
from zoo import hookimpl
from zoo.engine import Capabilities, Engine, ServerCommand

class PlugEngine(Engine):
    name = "plug"
    display_name = "Plug"
    capabilities = Capabilities(formats={"ggufv2": ("Q8_0",)}, preferred_on=("cpu",))

    def server_command(self, ctx):
        return ServerCommand(
            argv=(ctx.python, "-m", "plug.server", ctx.model_path, "--port", str(ctx.port)),
        )

@hookimpl
def zoo_register_engines():
    return [PlugEngine()]
"""


def test_hook_zoo_register_engines(
    install_plugin: InstallPlugin,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    install_plugin("plug", ENGINE_PLUGIN)
    folder = tmp_path / "specs"
    folder.mkdir()
    spec = TINY.replace("SOURCES", "huggingface: {model_id: team/tiny, file: tiny.Q8_0.gguf}")
    (folder / "tiny-plugin-model.yaml").write_text(spec)
    monkeypatch.setenv("ZOO_CATALOG_PATH", str(folder))
    code, out, err = _zoo(capsys, "engines", "--host-profile", "cpu-8g", "--json")
    assert code == 0, err
    plug = next(e for e in json.loads(out)["engines"] if e["name"] == "plug")
    assert (
        plug["display_name"] == "Plug"
        and plug["runs_here"]
        and plug["formats"] == {"ggufv2": ["Q8_0"]}
    )
    # Chosen by resolution when named, and its server command is what the launch would run.
    code, out, err = _zoo(
        capsys,
        "launch",
        "tiny-plugin-model",
        "--engine",
        "plug",
        "--dry-run",
        "--json",
        "--host-profile",
        "cpu-8g",
    )
    assert code == 0, err
    plan = json.loads(out)
    assert plan["engine"] == "plug"
    assert plan["command"][1:3] == ["-m", "plug.server"]


HUB_PLUGIN = """\
import os
import shutil
from pathlib import Path

from zoo import hookimpl
from zoo.hubs.base import FetchResult, Hub, HubError, RemoteFile
from zoo.hubs.safety import safe_join
from zoo.paths import cache_dir


class FolderHub(Hub):
    '''A mirror that is a folder of <org>/<name>/<files> (FOLDER_HUB_ROOT).'''

    name = "folder"
    display_name = "Folder mirror"

    def _source(self, repo):
        self.check_repo_id(repo)
        return Path(os.environ["FOLDER_HUB_ROOT"]) / repo

    def _cache(self, repo):
        return cache_dir() / "folder" / repo

    def reachable(self, timeout=2.0):
        return Path(os.environ.get("FOLDER_HUB_ROOT", "/nonexistent")).is_dir()

    def list_files(self, repo, revision=None):
        root = self._source(repo)
        return [
            RemoteFile(p.relative_to(root).as_posix(), p.stat().st_size)
            for p in sorted(root.rglob("*")) if p.is_file()
        ]

    def fetch(self, request, progress=None):
        source, cache = self._source(request.repo), self._cache(request.repo)
        files = []
        for name in request.files:
            if not (source / name).is_file():
                raise HubError(f"folder: {request.repo} has no file {name}")
            target = safe_join(cache, name)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source / name, target)
            files.append(target)
        return FetchResult("folder", request.repo, "local", cache, tuple(files))

    def cached(self, request):
        cache = self._cache(request.repo)
        files = [safe_join(cache, name) for name in request.files]
        if not files or not all(f.is_file() for f in files):
            return None
        return FetchResult("folder", request.repo, "local", cache, tuple(files), reason="cached")


@hookimpl
def zoo_register_hubs():
    return [FolderHub()]
"""


def test_hook_zoo_register_hubs(
    install_plugin: InstallPlugin,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    install_plugin("folderhub", HUB_PLUGIN)
    mirror = tmp_path / "mirror"
    (mirror / "team" / "tiny").mkdir(parents=True)
    (mirror / "team" / "tiny" / "tiny.Q8_0.gguf").write_bytes(b"GGUF" + bytes(60))
    monkeypatch.setenv("FOLDER_HUB_ROOT", str(mirror))
    folder = tmp_path / "specs"
    folder.mkdir()
    spec = TINY.replace("SOURCES", "folder: {model_id: team/tiny, file: tiny.Q8_0.gguf}")
    (folder / "tiny-plugin-model.yaml").write_text(spec)
    monkeypatch.setenv("ZOO_CATALOG_PATH", str(folder))
    code, out, err = _zoo(
        capsys, "download", "tiny-plugin-model", "--host-profile", "cpu-8g", "--json"
    )
    assert code == 0, err
    from zoo.paths import cache_dir

    fetched = cache_dir() / "folder" / "team" / "tiny" / "tiny.Q8_0.gguf"
    assert fetched.read_bytes() == b"GGUF" + bytes(60)
    result = json.loads(out)
    assert (result["hub"], result["repo"]) == ("folder", "team/tiny")
    # The second time it comes from the hub's cache, without reading the mirror.
    (mirror / "team" / "tiny" / "tiny.Q8_0.gguf").unlink()
    code, out, err = _zoo(
        capsys, "download", "tiny-plugin-model", "--host-profile", "cpu-8g", "--json"
    )
    assert code == 0, err
    assert json.loads(out)["hub"] == "folder"


COMMANDS_PLUGIN = """\
from zoo import hookimpl


@hookimpl
def zoo_register_commands(app):
    @app.command("hello-plugin")
    def hello(name: str = "world") -> None:
        '''Say hello from a plugin.'''
        print(f"hello {name} from a plugin")
"""


def test_hook_zoo_register_commands(
    install_plugin: InstallPlugin, capsys: pytest.CaptureFixture[str]
) -> None:
    install_plugin("hello", COMMANDS_PLUGIN)
    code, out, err = _zoo(capsys, "hello-plugin", "--name", "zoo")
    assert (code, out) == (0, "hello zoo from a plugin\n"), err
    code, out, _ = _zoo(capsys, "--help")
    assert code == 0 and "hello-plugin" in out
