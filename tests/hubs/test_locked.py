"""Lock files in use: a plan fetches the commit the lock pinned, the dry run states the
recorded sizes with no hub to ask, the download is checked against the lock, and a lock made
for another revision than the spec's is ignored."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from zoo.catalog.lock import FamilyLock, LockedFile, LockedRepo, lock_path, write_lock
from zoo.cli.app import build_app
from zoo.testing.hubserver import GeneratedFile, HubServer

MB = 1024 * 1024
SPEC = """\
name: toy
description: A toy model for lock tests.
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
        revision: REVISION
        file: toy-{quantization}.gguf
  - format: pytorch
    size: 0.1
    quantizations: [none]
    sources:
      huggingface:
        model_id: org/toy
        revision: REVISION
"""
WEIGHTS = ["config.json", "model.safetensors", "tokenizer.json"]


def _lock(server: HubServer, repo_id: str, paths: list[str], asked: str = "main") -> LockedRepo:
    """What `zoo catalog check --fix` records for ``repo_id``: its commit, sizes, sha256
    (Hugging Face gives a sha256 for LFS files only)."""
    repo = server.repos[repo_id]
    files = {
        p: LockedFile(repo.files[p].size, repo.files[p].sha256 if repo.is_lfs(p) else None)
        for p in paths
    }
    return LockedRepo("huggingface", repo_id, asked, repo.commit, "2026-12-01", files)


@pytest.fixture
def catalog(hub_server: HubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    hub_server.add_repo(
        "org/toy-GGUF",
        {"toy-Q4_0.gguf": GeneratedFile(MB, 1), "toy-Q8_0.gguf": GeneratedFile(2 * MB, 2)},
    )
    hub_server.add_repo(
        "org/toy",
        {
            "config.json": '{"model_type": "llama"}',
            "tokenizer.json": "{}",
            "model.safetensors": GeneratedFile(MB + 7, 3),
            "README.md": "# toy",
        },
    )
    folder = tmp_path / "specs"
    folder.mkdir()
    (folder / "toy.yaml").write_text(SPEC.replace("REVISION", "main"))
    repos = (
        _lock(hub_server, "org/toy-GGUF", ["toy-Q4_0.gguf"]),
        _lock(hub_server, "org/toy", WEIGHTS),
    )
    write_lock(lock_path(folder, "toy"), FamilyLock("toy", repos))
    monkeypatch.setenv("ZOO_CATALOG_PATH", str(folder))
    return folder


def _run(*args: str) -> str:
    result = CliRunner().invoke(build_app(), list(args))
    assert result.exit_code == 0, result.output
    return result.output


def _error(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """The one line a failing command prints (the real entry point: stderr, exit 1)."""
    from zoo.cli.app import main

    with pytest.raises(SystemExit) as exited:
        main(list(args))
    assert exited.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def _dry_run(*args: str) -> dict[str, object]:
    data = json.loads(_run("download", "toy", *args, "--dry-run", "--json"))
    assert isinstance(data, dict)
    return data


@pytest.mark.parametrize("how", ["stopped", "offline"])
def test_the_dry_run_states_the_locked_commit_and_sizes_with_no_hub(
    catalog: Path, hub_server: HubServer, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    commit = hub_server.repos["org/toy-GGUF"].commit
    if how == "stopped":
        monkeypatch.setenv("ZOO_HUB_TIMEOUT", "2")
        hub_server.stop()
    else:
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hub_server.reset_counters()
    data = _dry_run("-q", "Q4_0")
    assert (data["hub"], data["repo"], data["revision"], data["bytes"]) == (
        "huggingface",
        "org/toy-GGUF",
        commit,
        MB,
    )
    [entry] = data["files"]  # type: ignore[misc]
    assert entry["sha256"] == hub_server.repos["org/toy-GGUF"].files["toy-Q4_0.gguf"].sha256
    assert "recorded them on 2026-12-01" in str(data["reason"])
    # Listing-based: the weight selection comes out of the lock's files.
    data = _dry_run("-f", "pytorch")
    assert [f["path"] for f in data["files"]] == WEIGHTS  # type: ignore[attr-defined]
    assert data["bytes"] == hub_server.repos["org/toy"].files["model.safetensors"].size + 25
    assert hub_server.requests == []
    # The launch's dry run shows the same commit (one plan: what it shows is what runs).
    shown = _run("launch", "toy", "-q", "Q4_0", "--dry-run")
    assert f"huggingface: org/toy-GGUF @ {commit}" in shown
    assert "toy-Q4_0.gguf (1.0 MB, as `zoo catalog check` recorded it)" in shown


def test_a_reachable_hub_is_not_asked_what_the_lock_knows(
    catalog: Path, hub_server: HubServer
) -> None:
    hub_server.reset_counters()
    data = _dry_run("-q", "Q4_0")
    assert data["revision"] == hub_server.repos["org/toy-GGUF"].commit and data["bytes"] == MB
    # The reachability probe only (HEAD /api/models): no revision, no listing.
    assert hub_server.requests == ["HEAD /api/models"]
    # The lock has no Q8_0 file (same repository, pinned): its size is the hub's listing's.
    hub_server.reset_counters()
    data = _dry_run("-q", "Q8_0")
    commit = hub_server.repos["org/toy-GGUF"].commit
    assert (data["revision"], data["bytes"]) == (commit, 2 * MB)
    assert any(
        r.startswith(f"GET /api/models/org/toy-GGUF/tree/{commit}") for r in hub_server.requests
    )


def test_the_download_fetches_the_pinned_commit(catalog: Path, hub_server: HubServer) -> None:
    commit = hub_server.repos["org/toy"].commit
    out = _run("download", "toy", "-f", "pytorch", "--json")
    data = json.loads(out)
    assert data["revision"] == commit
    assert sorted(Path(p).name for p in data["files"]) == WEIGHTS
    assert not any("/revision/main" in r for r in hub_server.requests)


def test_a_file_that_differs_from_the_lock_fails_the_download(
    catalog: Path, hub_server: HubServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """The hub gives no sha256 for config.json (a git file): the lock's is checked."""
    locked = _lock(hub_server, "org/toy", WEIGHTS)
    size = locked.files["config.json"].size
    wrong = replace(locked, files={**locked.files, "config.json": LockedFile(size, "0" * 64)})
    write_lock(lock_path(catalog, "toy"), FamilyLock("toy", (wrong,)))
    err = _error(capsys, "download", "toy", "-f", "pytorch", "--quiet")
    assert "org/toy/config.json has sha256" in err
    assert "recorded by `zoo catalog check` on 2026-12-01" in err


def test_a_lock_made_for_another_revision_is_ignored(
    catalog: Path,
    hub_server: HubServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The spec now asks for master: the lock (made for main) pins nothing and sizes nothing.
    (catalog / "toy.yaml").write_text(SPEC.replace("REVISION", "master"))
    data = _dry_run("-q", "Q4_0")
    assert (data["revision"], data["bytes"]) == ("master", MB)
    assert any("/api/models/org/toy-GGUF" in r for r in hub_server.requests)
    # Offline, nothing cached: no size to state, as with no lock at all.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert "no hub can serve toy" in _error(capsys, "download", "toy", "-q", "Q4_0", "--dry-run")


def test_zoo_show_states_the_recorded_sizes_and_commits(
    catalog: Path, hub_server: HubServer
) -> None:
    hub_server.stop()  # nothing is asked: the lock is read with the catalog
    out = _run("show", "toy")
    assert "Checked against the hubs" in out
    gguf = hub_server.repos["org/toy-GGUF"].commit[:12]
    weights = hub_server.repos["org/toy"].commit[:12]
    rows = [line.split() for line in out.splitlines() if gguf in line or weights in line]
    assert rows == [
        ["ggufv2", "0.1", "Q4_0", "huggingface", "1.0", "MB", gguf, "2026-12-01"],
        # Pinned (one repository for both), but its file was not recorded.
        ["ggufv2", "0.1", "Q8_0", "huggingface", "not", "recorded", gguf, "2026-12-01"],
        ["pytorch", "0.1", "none", "huggingface", "1.0", "MB", weights, "2026-12-01"],
    ]


def test_a_family_never_checked_shows_no_recorded_facts(catalog: Path) -> None:
    (catalog / "locks" / "toy.json").unlink()
    assert "Checked against the hubs" not in _run("show", "toy")


def test_the_docs_page_states_the_recorded_sizes_and_commit(catalog: Path) -> None:
    from zoo.catalog.catalog import load_catalog
    from zoo.docs.context import DocsContext
    from zoo.docs.family_page import render_family

    family = load_catalog([catalog], use_cache=False).get("toy")
    page = render_family(family, DocsContext(hub_names={"huggingface": "Hugging Face"}))
    gguf = page.split("Spec 1:", 1)[1].split("Spec 2:", 1)[0]
    commit = family.specs[0].sources[0].locked_repo("Q4_0").commit  # type: ignore[union-attr]
    assert (
        f":Hugging Face download: ``Q4_0`` 1.0 MB; commit ``{commit}`` (checked 2026-12-01)" in gguf
    )
    stale = replace(family.specs[0].sources[0], locked={})
    page = render_family(
        replace(family, specs=(replace(family.specs[0], sources=(stale,)),)), DocsContext()
    )
    assert "download:" not in page.split("Spec 2:", 1)[0]
