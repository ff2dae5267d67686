"""A full disk or a read-only cache is reported as such: never "cannot reach", never remembered.

Real failures where the machine allows them (a 1 MiB tmpfs for ENOSPC, a read-only one for
EROFS: mounting needs root, which these tests are usually given), and a simulated ENOSPC at the
lowest write the clients do (``open``) that always runs.
"""

from __future__ import annotations

import builtins
import errno
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from zoo.hubs import reachability
from zoo.hubs.base import Hub, HubUnreachableError
from zoo.hubs.download import fetch_plan
from zoo.hubs.failures import HubStorageError
from zoo.hubs.huggingface import HuggingFaceHub
from zoo.hubs.modelscope import ModelScopeHub
from zoo.paths import cache_dir
from zoo.testing.hubserver import GeneratedFile, HubServer

from .helpers import make_plan

MB = 1024 * 1024
HUBS: dict[str, Hub] = {"huggingface": HuggingFaceHub(), "modelscope": ModelScopeHub()}
CACHE_VARIABLE = {"huggingface": "HF_HOME", "modelscope": "MODELSCOPE_CACHE"}


def _mount(target: Path, options: str) -> None:
    target.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or 'mount failed'})")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB file system."""
    target = tmp_path / "small"
    _mount(target, "size=1m")
    try:
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False)


@pytest.fixture
def read_only_disk(tmp_path: Path) -> Iterator[Path]:
    target = tmp_path / "ro"
    _mount(target, "ro,size=1m")
    try:
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False)


def _repo(server: HubServer) -> None:
    server.add_repo("org/big-GGUF", {"big-Q4_0.gguf": GeneratedFile(3 * MB, 5)})


def _plan(hub: str):  # type: ignore[no-untyped-def]
    return make_plan({hub: {"model_id": "org/big-GGUF", "file": "big-{quantization}.gguf"}})


def _point_cache(monkeypatch: pytest.MonkeyPatch, hub: str, folder: Path) -> None:
    if hub == "huggingface":
        monkeypatch.setenv("HF_HOME", str(folder))
    else:
        monkeypatch.setenv("MODELSCOPE_CACHE", str(folder))


def _never_remembered_unreachable() -> None:
    try:
        store = json.loads((cache_dir() / "hub-reachability.json").read_text())
    except FileNotFoundError:
        return
    assert all(v.get("reachable") for v in store.values()), store


@pytest.mark.parametrize("hub", ["huggingface", "modelscope"])
def test_a_full_disk_says_so(
    hub_server: HubServer, small_disk: Path, monkeypatch: pytest.MonkeyPatch, hub: str
) -> None:
    _repo(hub_server)
    _point_cache(monkeypatch, hub, small_disk / "cache")
    with pytest.raises(HubStorageError) as caught:
        fetch_plan(_plan(hub), progress=False, hubs=HUBS)
    message = str(caught.value)
    assert "no space left on device writing " in message and str(small_disk) in message
    assert f"move the cache with {CACHE_VARIABLE[hub]}" in message
    assert "cannot reach" not in message and "\n" not in message
    assert not isinstance(caught.value, HubUnreachableError)
    _never_remembered_unreachable()


@pytest.mark.parametrize("hub", ["huggingface", "modelscope"])
def test_a_read_only_cache_says_so(
    hub_server: HubServer, read_only_disk: Path, monkeypatch: pytest.MonkeyPatch, hub: str
) -> None:
    _repo(hub_server)
    _point_cache(monkeypatch, hub, read_only_disk / "cache")
    with pytest.raises(HubStorageError, match="read-only file system") as caught:
        fetch_plan(_plan(hub), progress=False, hubs=HUBS)
    assert str(read_only_disk) in str(caught.value)
    assert "make the folder writable or move the cache" in str(caught.value)
    _never_remembered_unreachable()


def test_a_cache_under_a_file_says_so(
    hub_server: HubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Runs anywhere, root or not: a regular file where the cache folder should be.
    _repo(hub_server)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("HF_HOME", str(blocker / "hf"))
    with pytest.raises(HubStorageError, match="is a file, not a folder"):
        fetch_plan(_plan("huggingface"), progress=False, hubs=HUBS)
    _never_remembered_unreachable()


@pytest.mark.parametrize("hub", ["huggingface", "modelscope"])
@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EACCES])
def test_a_failing_write_in_the_clients_says_so(
    hub_server: HubServer, monkeypatch: pytest.MonkeyPatch, hub: str, code: int
) -> None:
    # The lowest write both clients and zoo make in Python: open() a file in the cache for
    # writing. Everything above it (the client's retries, its error wrapping) runs for real.
    _repo(hub_server)
    cache = HuggingFaceHub().cache_root() if hub == "huggingface" else ModelScopeHub().cache_root()
    real_open = builtins.open

    def failing_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if any(m in mode for m in "wax") and str(file).startswith(str(cache)):
            name = Path(str(file)).name
            if name.endswith((".gguf", ".incomplete", ".zoo-partial")) or ".incomplete" in name:
                raise OSError(code, errno.errorcode[code].lower(), str(file))
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", failing_open)
    with pytest.raises(HubStorageError) as caught:
        fetch_plan(_plan(hub), progress=False, hubs=HUBS)
    if code == errno.ENOSPC:
        assert f"{hub}: no space left on device writing {cache}" in str(caught.value)
    else:
        assert f"{hub}: cannot write {cache}" in str(caught.value)
        assert "(permission denied): make the folder writable" in str(caught.value)
    _never_remembered_unreachable()


def test_an_unreachable_verdict_is_not_written_to_a_read_only_zoo_cache(
    read_only_disk: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The verdict cache is only a cache: a read-only zoo cache costs a probe, not a crash.
    monkeypatch.setenv("ZOO_CACHE_DIR", str(read_only_disk / "zoo"))
    reachability.remember(HuggingFaceHub(), False)
    assert not (read_only_disk / "zoo").exists()
