"""`zoo pull` and `zoo rm` by zoo model name, through the real Hugging Face client against the
local hub server (catalog and repositories in cache_catalog.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from zoo.testing.hubserver import HubServer

from .cache_catalog import MB, blobs, hf_storage, install, invoke, run


@pytest.fixture
def toys(hub_server: HubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> HubServer:
    install(hub_server, tmp_path, monkeypatch)
    return hub_server


def _cached() -> dict[str, list[str]]:
    """repo -> cached files, from `zoo cache list --json`."""
    listed = json.loads(run("cache", "list", "--json"))
    return {e["repo"]: e["files"] for e in listed["entries"]}


def test_pull_downloads_what_launch_would_and_download_is_the_same_command(
    toys: HubServer,
) -> None:
    out = run("pull", "toy-gguf", "-q", "Q8_0", "--min-speed", "0")
    assert "org/toy-GGUF from huggingface" in out and "downloaded 2.1 MB" in out
    assert toys.bytes_sent["org/toy-GGUF/toy-Q8_0.gguf"] == 2 * MB
    # `zoo download` is `zoo pull`: the same plan, served from the cache now.
    assert "nothing downloaded (cached)" in run("download", "toy-gguf", "-q", "Q8_0")
    assert _cached() == {"org/toy-GGUF": ["toy-Q8_0.gguf"]}


def test_rm_removes_every_cached_quantization_and_leaves_other_families(toys: HubServer) -> None:
    run("pull", "toy-gguf", "-q", "Q8_0")
    run("pull", "toy-other")
    out = run("rm", "toy-gguf", "--yes")
    assert "org/toy-GGUF/toy-Q8_0.gguf" in out and "removed 1 file (2.1 MB)" in out
    assert _cached() == {"org/other-GGUF": ["other-Q4_0.gguf"]}
    assert not hf_storage("org/toy-GGUF").exists()  # the hub dropped the whole repository
    assert blobs("org/other-GGUF") == [3 * MB]
    assert "nothing downloaded (cached)" in run("pull", "toy-other")


def test_rm_of_one_quantization_deletes_its_file_and_blob_only(toys: HubServer) -> None:
    run("pull", "toy-gguf", "-q", "Q4_0")
    run("pull", "toy-gguf", "-q", "Q8_0")
    assert blobs("org/toy-GGUF") == [MB, 2 * MB]
    out = run("rm", "toy-gguf", "-q", "q8_0", "--yes")
    assert "removed 1 file (2.1 MB)" in out
    assert _cached() == {"org/toy-GGUF": ["toy-Q4_0.gguf"]}
    assert blobs("org/toy-GGUF") == [MB]  # the space is freed, not only the link
    assert "nothing downloaded (cached)" in run("pull", "toy-gguf", "-q", "Q4_0")


def test_rm_keeps_a_file_another_cached_family_needs_unless_asked(toys: HubServer) -> None:
    run("pull", "toy-gguf", "-q", "Q4_0")  # toy-twin's Q4_0 is the same file
    run("pull", "toy-gguf", "-q", "Q8_0")
    out = run("rm", "toy-gguf", "--yes")
    assert "removed 1 file (2.1 MB)" in out
    assert "toy-GGUF/toy-Q4_0.gguf  (needed by toy-twin)" in out
    assert _cached() == {"org/toy-GGUF": ["toy-Q4_0.gguf"]}
    # Only the shared file left: refused, naming the way to remove it anyway.
    refused = invoke("rm", "toy-gguf", "--yes")
    assert refused.exit_code == 2
    assert "nothing to remove: every cached file of toy-gguf is needed by another" in (
        refused.output
    )
    assert "--include-shared" in refused.output
    assert "removed 1 file (1.0 MB)" in run("rm", "toy-gguf", "--yes", "--include-shared")
    assert _cached() == {}


def test_rm_with_nothing_cached_and_of_an_unknown_model(toys: HubServer) -> None:
    run("pull", "toy-gguf", "-q", "Q8_0")
    nothing = invoke("rm", "toy-other", "--yes")
    assert nothing.exit_code == 1
    assert "nothing to remove: no cached files of toy-other" in nothing.output
    unknown = invoke("rm", "toy-gguff", "--yes")
    assert unknown.exit_code == 1 and "unknown model 'toy-gguff'" in unknown.output
    assert "did you mean toy-gguf" in unknown.output
    bad = invoke("rm", "toy-gguf", "-q", "Q5_K_M", "--yes")
    assert bad.exit_code == 2 and "no quantization Q5_K_M" in bad.output
    assert "(has: Q4_0, Q8_0)" in bad.output
    assert _cached() == {"org/toy-GGUF": ["toy-Q8_0.gguf"]}


def test_rm_off_a_terminal_without_yes_refuses_and_keeps_the_files(toys: HubServer) -> None:
    run("pull", "toy-gguf", "-q", "Q8_0")
    refused = invoke("rm", "toy-gguf")  # CliRunner's stdin is not a terminal
    assert refused.exit_code == 2
    assert "org/toy-GGUF/toy-Q8_0.gguf" in refused.output  # what it would remove, listed
    assert "not removing without confirmation: stdin is not a terminal" in refused.output
    assert "--yes" in refused.output
    assert _cached() == {"org/toy-GGUF": ["toy-Q8_0.gguf"]}
    assert "to remove: 1 file, 2.1 MB" in run("rm", "toy-gguf", "--dry-run")
    assert _cached() == {"org/toy-GGUF": ["toy-Q8_0.gguf"]}


def test_rm_asks_on_a_terminal(toys: HubServer) -> None:
    """Through a real pseudo-terminal: the question, a "n" keeps the files, a "y" removes."""
    import pty

    run("pull", "toy-gguf", "-q", "Q8_0")

    def answer(reply: bytes) -> tuple[int, str]:
        leader, follower = pty.openpty()
        proc = subprocess.Popen(
            [sys.executable, "-m", "zoo", "rm", "toy-gguf"],
            stdin=follower,
            stdout=follower,
            stderr=follower,
            env={**os.environ, "NO_COLOR": "1"},
        )
        os.close(follower)
        seen = b""
        deadline = time.monotonic() + 60
        while b"Remove these files?" not in seen and time.monotonic() < deadline:
            seen += os.read(leader, 4096)
        os.write(leader, reply)
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
        os.close(leader)
        return proc.wait(timeout=60), seen.decode(errors="replace")

    code, out = answer(b"n\n")
    assert code == 1 and "nothing removed" in out
    assert _cached() == {"org/toy-GGUF": ["toy-Q8_0.gguf"]}
    code, out = answer(b"y\n")
    assert code == 0 and "removed 1 file (2.1 MB)" in out
    assert _cached() == {}


def test_rm_refuses_the_files_of_a_running_instance(toys: HubServer) -> None:
    from zoo.runtime import process, state

    run("pull", "toy-gguf", "-q", "Q8_0")
    run("pull", "toy-other")
    server = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        # The record the launcher writes for a server started on toy-gguf Q8_0.
        record = state.add(
            state.Instance(
                id=state.new_id(),
                model="toy-gguf",
                engine="llama.cpp",
                quantization="Q8_0",
                format="ggufv2",
                served_name="toy-gguf",
                host="127.0.0.1",
                port=8011,
                pid=server.pid,
                pid_start=process.process_start_time(server.pid),
                pgid=server.pid,
                log_path=str(state.logs_dir() / "toy.log"),
                started_at=time.time(),
                detached=True,
                api_key=False,
            )
        )
        refused = invoke("rm", "toy-gguf", "--yes")
        assert refused.exit_code == 2
        assert f"in use by instance {record.id} (toy-gguf, running" in refused.output
        assert f"zoo stop {record.id}" in refused.output
        assert _cached()["org/toy-GGUF"] == ["toy-Q8_0.gguf"]
        # Another model's files are not held by it.
        assert "removed 1 file" in run("rm", "toy-other", "--yes")
    finally:
        server.kill()
        server.wait()
    # Stopped (its process gone): the files can go.
    assert "removed 1 file (2.1 MB)" in run("rm", "toy-gguf", "--yes")
    assert _cached() == {}


def test_pull_says_the_plan_in_one_line_before_downloading(toys: HubServer) -> None:
    out = run("pull", "toy-other")
    first = out.splitlines()[0]
    assert first.startswith("zoo: toy-other Q4_0 on ") and "download 3.1 MB to " in first
    assert "tok/s" in first
    assert "zoo: toy-other Q4_0 on " not in run("pull", "toy-other", "--quiet")


def test_rm_of_a_model_folder_takes_the_files_no_model_names_with_it(toys: HubServer) -> None:
    from zoo.hubs.base import FetchRequest
    from zoo.plugins import get_hubs

    files = ("config.json", "model.safetensors", "README.md")
    get_hubs()["huggingface"].fetch(FetchRequest("org/toy-folder", files=files))
    out = run("rm", "toy-folder", "--yes")
    assert "org/toy-folder/README.md" in out and "removed 3 files" in out
    assert _cached() == {}
    assert not hf_storage("org/toy-folder").exists()


def test_rm_by_model_reference(toys: HubServer) -> None:
    run("pull", "toy-gguf", "-q", "Q4_0")
    run("pull", "toy-gguf", "-q", "Q8_0")
    assert "removed 1 file (2.1 MB)" in run("rm", "toy-gguf:q8_0", "--yes")
    assert _cached() == {"org/toy-GGUF": ["toy-Q4_0.gguf"]}
    clash = invoke("rm", "toy-gguf:q8_0", "-q", "Q4_0", "--yes")
    assert clash.exit_code == 2 and "--quantization says Q4_0" in clash.output


def test_pull_and_rm_take_the_fast_path() -> None:
    """Only their own module is loaded for them (the CLI's start-up time)."""
    from zoo.cli.app import _needs_plugin_commands, modules_for

    for word in ("pull", "download", "rm", "cache"):
        assert modules_for([word, "x"]) == ("zoo.cli.hub_cmds",)
        assert not _needs_plugin_commands([word, "x"])
