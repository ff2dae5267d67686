"""zoo against olah, a third-party Hugging Face mirror (PyPI ``olah``), serving offline from a
folder of committed git repositories: a server that is not the project's own.

olah runs in its own virtual environment (never zoo's), built once by zoo's environment
builder in the test environment cache (``ZOO_TEST_ENV_CACHE``, default ``.venv/zoo-test-envs``,
as the engine tests keep theirs) and reused while its requirement stays the same: the first
run installs it from PyPI (about half a minute), later runs start it at once.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from zoo.cli.app import build_app
from zoo.hubs.base import HubError, HubUnreachableError
from zoo.hubs.huggingface import HuggingFaceHub

REPO = Path(__file__).resolve().parents[2]
OLAH = "olah==0.5.4"
GGUF = bytes(range(256)) * 1200  # 300 KiB of "weights"
CONFIG = '{"model_type": "llama"}\n'
SPEC = """\
name: toy-olah
description: A toy model served by olah.
context_length: 2048
languages: [en]
abilities: [chat]
specs:
  - format: ggufv2
    size: 0.1
    quantizations: [Q4_0]
    sources:
      huggingface:
        model_id: org/toy-GGUF
        revision: main
        file: toy-{quantization}.gguf
"""


@dataclass(frozen=True)
class Olah:
    url: str
    commit: str  # what main names in the mirrored repository
    folder: Path


def _olah_python() -> Path:
    """olah's interpreter: its own venv in the test environment cache (built once)."""
    from zoo.plan import Environment
    from zoo.runtime.envs import ensure_env

    cache = Path(os.environ.get("ZOO_TEST_ENV_CACHE") or REPO / ".venv" / "zoo-test-envs")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ZOO_ENVS_DIR", str(cache))
        status = ensure_env(Environment(engine="olah", requirements=(OLAH,)))
    assert status.ready and status.python is not None, status.reason
    return Path(status.python)


def _git_repository(folder: Path, files: dict[str, bytes]) -> str:
    """A committed git repository holding ``files``; returns its commit."""
    folder.mkdir(parents=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "zoo",
        "GIT_AUTHOR_EMAIL": "zoo@localhost",
        "GIT_COMMITTER_NAME": "zoo",
        "GIT_COMMITTER_EMAIL": "zoo@localhost",
        "GIT_CONFIG_GLOBAL": os.devnull,
    }
    for argv in (["init", "-q", "-b", "main"], ["add", "."], ["commit", "-q", "-m", "weights"]):
        subprocess.run(["git", *argv], cwd=folder, env=env, check=True, capture_output=True)
    done = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=folder, env=env, check=True, capture_output=True
    )
    return done.stdout.decode().strip()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def olah(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Olah]:
    python = _olah_python()
    folder = tmp_path_factory.mktemp("olah")
    commit = _git_repository(
        folder / "mirrors" / "models" / "org" / "toy-GGUF",
        {"config.json": CONFIG.encode(), "toy-Q4_0.gguf": GGUF, "README.md": b"# toy\n"},
    )
    port = _free_port()
    (folder / "olah.toml").write_text(
        "[basic]\n"
        'host = "127.0.0.1"\n'
        f"port = {port}\n"
        f'repos-path = "{folder / "repos"}"\n'
        f'mirrors-path = ["{folder / "mirrors"}"]\n'
        "[accessibility]\n"
        "offline = true\n"
    )
    log = (folder / "olah.log").open("wb")
    # Its own session: olah starts a child process, and the whole group is ended below.
    server = subprocess.Popen(
        [str(python), "-m", "olah.server", "-c", str(folder / "olah.toml")],
        cwd=folder,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if server.poll() is not None:
                raise AssertionError(f"olah exited: {(folder / 'olah.log').read_text()[-2000:]}")
            try:
                if httpx.get(f"{url}/api/models/org/toy-GGUF/revision/main", timeout=2).is_success:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"olah not up: {(folder / 'olah.log').read_text()[-2000:]}")
            time.sleep(0.3)
        yield Olah(url, commit, folder)
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # the group of the process this test started
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


@pytest.fixture
def against_olah(olah: Olah, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Olah, Path]:
    """The huggingface hub pointed at olah, a private HF cache, a catalog with the toy."""
    monkeypatch.setenv("HF_ENDPOINT", olah.url)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HUB_OFFLINE", "ZOO_HUB"):
        monkeypatch.delenv(name, raising=False)
    catalog = tmp_path / "specs"
    catalog.mkdir()
    (catalog / "toy-olah.yaml").write_text(SPEC)
    monkeypatch.setenv("ZOO_CATALOG_PATH", str(catalog))
    return olah, catalog


def _run(*args: str) -> str:
    result = CliRunner().invoke(build_app(), list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_revision_commit_against_olah(against_olah: tuple[Olah, Path]) -> None:
    olah, _ = against_olah
    hub = HuggingFaceHub()
    assert hub.revision_commit("org/toy-GGUF") == olah.commit
    assert hub.revision_commit("org/toy-GGUF", "main") == olah.commit
    with pytest.raises(HubError) as missing:
        hub.revision_commit("org/not-mirrored")
    assert not isinstance(missing.value, HubUnreachableError)


def test_zoo_downloads_a_family_file_through_olah(against_olah: tuple[Olah, Path]) -> None:
    olah, _ = against_olah
    listing = json.loads(_run("download", "toy-olah", "--dry-run", "--json"))
    assert (listing["revision"], listing["bytes"]) == ("main", len(GGUF))
    data = json.loads(_run("download", "toy-olah", "--json"))
    assert data["revision"] == olah.commit
    [path] = data["files"]
    assert Path(path).name == "toy-Q4_0.gguf" and Path(path).read_bytes() == GGUF
    # A second download is a cache hit: olah's files verified, nothing fetched again.
    again = json.loads(_run("download", "toy-olah", "--json"))
    assert again["bytes_downloaded"] == 0


def _check(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(build_app(), ["catalog", "check", *args, "--hub", "huggingface"])
    return result.exit_code, result.output


def test_zoo_catalog_check_against_olah(
    against_olah: tuple[Olah, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    olah, catalog = against_olah
    missing = SPEC.replace("toy-olah", "toy-olah-missing").replace("Q4_0", "Q8_0")
    (catalog / "toy-olah-missing.yaml").write_text(missing)
    code, out = _check("toy-olah")
    assert code == 0, out
    code, out = _check("toy-olah-missing")
    assert code == 1, out
    [line] = [x for x in out.splitlines() if "toy-Q8_0.gguf" in x]
    # file:line:col of the source, the code, and what olah lacks.
    assert line.endswith("not on the hub: toy-Q8_0.gguf") and "error[E403]" in line, out
    assert line.split(":")[0].endswith("toy-olah-missing.yaml"), line
    # --fix pins main to olah's commit and records the file: then no hub is needed to plan.
    code, out = _check("toy-olah", "--fix")
    assert code == 0, out
    lock = json.loads((catalog / "locks" / "toy-olah.json").read_text())
    [entry] = lock["repositories"]
    assert (entry["commit"], entry["files"]["toy-Q4_0.gguf"]["size"]) == (olah.commit, len(GGUF))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    listing = json.loads(_run("download", "toy-olah", "--dry-run", "--json"))
    assert (listing["revision"], listing["bytes"]) == (olah.commit, len(GGUF))
