"""`zoo download` and `zoo cache` through the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from zoo.cli.app import build_app
from zoo.testing.hubserver import GeneratedFile, HubServer

MB = 1024 * 1024
SPEC = """\
name: toy-gguf
description: A toy model for download tests.
context_length: 2048
languages: [en]
abilities: [chat]
specs:
  - format: ggufv2
    size: 0.1
    quantizations: [Q4_0, Q8_0]
    sources:
      huggingface:
        model_id: org/toy-GGUF
        file: toy-{quantization}.gguf
"""


@pytest.fixture
def toy(hub_server: HubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> HubServer:
    hub_server.add_repo(
        "org/toy-GGUF",
        {"toy-Q4_0.gguf": GeneratedFile(MB, 1), "toy-Q8_0.gguf": GeneratedFile(2 * MB, 2)},
    )
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "toy-gguf.yaml").write_text(SPEC)
    monkeypatch.setenv("ZOO_CATALOG_PATH", str(tmp_path / "specs"))
    return hub_server


def _run(*args: str) -> str:
    result = CliRunner().invoke(build_app(), list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_dry_run_lists_hub_repo_files_and_bytes_without_fetching(toy: HubServer) -> None:
    data = json.loads(_run("download", "toy-gguf", "-q", "Q8_0", "--dry-run", "--json"))
    assert data["version"] == 1
    assert (data["hub"], data["repo"], data["bytes"], data["cached"]) == (
        "huggingface",
        "org/toy-GGUF",
        2 * MB,
        False,
    )
    assert [f["path"] for f in data["files"]] == ["toy-Q8_0.gguf"]
    assert toy.total_bytes_sent == 0


def test_download_then_cache_list_and_remove(toy: HubServer) -> None:
    out = _run("download", "toy-gguf", "-q", "Q4_0")
    assert "org/toy-GGUF from huggingface" in out and "downloaded 1.0 MB" in out
    assert "nothing downloaded (cached)" in _run("download", "toy-gguf", "-q", "Q4_0")
    listed = json.loads(_run("cache", "list", "--json"))
    [entry] = listed["entries"]
    assert (entry["hub"], entry["repo"], entry["files"], entry["bytes"]) == (
        "huggingface",
        "org/toy-GGUF",
        ["toy-Q4_0.gguf"],
        MB,
    )
    assert "removed org/toy-GGUF from huggingface" in _run("cache", "remove", "org/toy-GGUF")
    assert _run("cache", "list").strip() == "no cached models"


def test_failures_are_one_line_naming_the_hub(
    toy: HubServer, capsys: pytest.CaptureFixture[str]
) -> None:
    from zoo.cli.app import main

    toy.fault("missing", "toy-Q4_0.gguf")
    with pytest.raises(SystemExit) as exited:
        main(["download", "toy-gguf", "-q", "Q4_0", "--quiet"])
    assert exited.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("zoo: error: huggingface: ")
