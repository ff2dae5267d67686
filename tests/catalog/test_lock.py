"""Lock files (zoo.catalog.lock): written atomically, read strictly, applied to a source only
while the spec still asks for the revision they were made for."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from zoo.catalog.catalog import load_catalog
from zoo.catalog.lock import (
    FamilyLock,
    LockedFile,
    LockedRepo,
    LockError,
    lock_path,
    read_lock,
    write_lock,
)

COMMIT = "c66f9522f5401a7b09ac87e78e3ee93ce482f670"
SHA = "a" * 64
SPEC = """\
# yaml-language-server: $schema=../zoo/catalog/spec.schema.json
name: tiny
description: A tiny model.
context_length: 2048
languages: [en]
abilities: [chat]
specs:
  - format: ggufv2
    size: 0.1
    quantizations: [Q4_0, Q8_0]
    sources:
      huggingface:
        model_id: org/tiny-{quantization}-GGUF
        revision: REVISION
        file: tiny.{quantization}.gguf
"""


def _lock(asked: str | None) -> FamilyLock:
    return FamilyLock(
        "tiny",
        (
            LockedRepo(
                "huggingface",
                "org/tiny-Q4_0-GGUF",
                asked,
                COMMIT,
                "2026-12-01",
                {"tiny.Q4_0.gguf": LockedFile(1234, SHA)},
            ),
        ),
    )


def _catalog(tmp_path: Path, revision: str, lock: FamilyLock | None) -> Path:
    folder = tmp_path / "specs"
    folder.mkdir()
    text = SPEC.replace("REVISION", revision)
    (folder / "tiny.yaml").write_text(text)
    if lock is not None:
        write_lock(lock_path(folder, "tiny"), lock)
    return folder


def test_a_lock_round_trips_and_is_plain_sorted_json(tmp_path: Path) -> None:
    path = lock_path(tmp_path, "tiny")
    write_lock(path, _lock("main"))
    assert read_lock(path) == _lock("main")
    data = json.loads(path.read_text())
    assert data["version"] == 1 and data["repositories"][0]["commit"] == COMMIT
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind


def test_a_missing_lock_is_none(tmp_path: Path) -> None:
    assert read_lock(tmp_path / "locks" / "nothing.json") is None


def test_the_lock_pins_the_repository_it_was_made_for(tmp_path: Path) -> None:
    folder = _catalog(tmp_path, "main", _lock("main"))
    source = load_catalog([folder], use_cache=False).get("tiny").specs[0].sources[0]
    assert source.revision_for("Q4_0") == COMMIT
    locked = source.locked_repo("Q4_0")
    assert locked is not None and locked.bytes_of(["tiny.Q4_0.gguf"]) == 1234
    assert locked.bytes_of(["tiny.Q4_0.gguf", "other.gguf"]) is None
    # Q8_0 lives in another repository that was never checked: the spec's revision stands.
    assert source.revision_for("Q8_0") == "main" and source.locked_repo("Q8_0") is None


def test_a_lock_made_for_another_revision_is_ignored(tmp_path: Path) -> None:
    folder = _catalog(tmp_path, "v2", _lock("main"))
    source = load_catalog([folder], use_cache=False).get("tiny").specs[0].sources[0]
    assert source.revision_for("Q4_0") == "v2" and not source.locked


def test_a_broken_lock_leaves_the_family_loadable(tmp_path: Path) -> None:
    folder = _catalog(tmp_path, "main", None)
    (folder / "locks").mkdir()
    (folder / "locks" / "tiny.json").write_text("{not json")
    family = load_catalog([folder], use_cache=False).get("tiny")
    assert family.specs[0].sources[0].revision_for("Q4_0") == "main"
    with pytest.raises(LockError, match="not JSON"):
        read_lock(folder / "locks" / "tiny.json")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"version": 9}, "not a version 1 lock"),
        ({"repositories": "x"}, "needs 'family' and 'repositories'"),
        ({"repositories": [{"hub": "huggingface"}]}, "needs 'hub' and 'repo'"),
        ({"commit": "../../etc"}, "commit is not a revision"),
        ({"asked": "a\nb"}, "asked is not a revision"),
        ({"checked": "yesterday"}, "checked is not a date"),
        ({"files": {"../escape.gguf": {"size": 1}}}, "not a file path inside"),
        ({"files": {"a.gguf": {"size": -1}}}, "has no size"),
        ({"files": {"a.gguf": {"size": True}}}, "has no size"),
        ({"files": {"a.gguf": {"size": 1, "sha256": "beef"}}}, "not 64 hex digits"),
    ],
)
def test_a_lock_of_the_wrong_shape_is_refused(
    tmp_path: Path, change: dict[str, object], message: str
) -> None:
    data = _lock("main").to_json()
    entry = data["repositories"][0]
    for key, value in change.items():
        (data if key in ("version", "repositories") else entry)[key] = value
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(data))
    with pytest.raises(LockError, match=message):
        read_lock(path)


def test_a_family_name_cannot_name_a_path_outside_the_locks_folder(tmp_path: Path) -> None:
    for name in ("../x", "a/b", ".hidden", ""):
        with pytest.raises(LockError):
            lock_path(tmp_path, name)
