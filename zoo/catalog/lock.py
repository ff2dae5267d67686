"""Lock files: what the hubs said about a family's repositories when they were last checked.

``zoo catalog check --fix`` writes ``<catalog folder>/locks/<family>.json`` next to the spec
files. Spec files stay what people (or the importer) wrote; the lock is machine-written, like a
package manager's lock file, so re-importing a registry or editing a spec by hand never fights
with it. Per (hub, repository id) it records:

- ``asked``: the spec's revision when the check ran (None: the hub's default branch);
- ``commit``: the revision that name pointed to then (what a download fetches);
- ``checked``: the date of the check (ISO 8601);
- ``files``: path -> size in bytes and sha256 (None where the hub gives none), the files zoo
  downloads from that repository for the spec's quantizations.

An entry applies to a source only while the spec still asks for the revision it was made for:
change ``revision:`` in the spec and the old entry is ignored (and reported stale by the next
check) instead of pinning something the spec no longer says.

Leaf module (stdlib only): the family is built with it on every ``zoo launch``.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo import names
from zoo.errors import ZooError

LOCK_DIR = "locks"
LOCK_VERSION = 1
_SHA256 = re.compile(r"[0-9a-f]{64}")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}([T ][0-9:.+Z-]*)?")
# Lock files are small (a 72B model in 42 shards is a few KiB): a bigger one is not ours.
MAX_LOCK_BYTES = 8 * 1024 * 1024


class LockError(ZooError):
    """A lock file that cannot be read or does not have the lock's shape."""


@dataclass(frozen=True)
class LockedFile:
    """One file of a repository as the hub listed it."""

    size: int
    sha256: str | None = None


@dataclass(frozen=True)
class LockedRepo:
    """What one hub said about one repository (a spec source, its quantization filled in)."""

    hub: str
    repo: str
    asked: str | None
    commit: str
    checked: str
    files: Mapping[str, LockedFile] = field(default_factory=dict)

    def bytes_of(self, paths: Iterable[str]) -> int | None:
        """The total size of ``paths``, or None when one of them is not recorded."""
        total = 0
        for path in paths:
            locked = self.files.get(path)
            if locked is None:
                return None
            total += locked.size
        return total

    def to_json(self) -> dict[str, Any]:
        return {
            "hub": self.hub,
            "repo": self.repo,
            "asked": self.asked,
            "commit": self.commit,
            "checked": self.checked,
            "files": {
                path: {"size": f.size, "sha256": f.sha256} for path, f in sorted(self.files.items())
            },
        }


@dataclass(frozen=True)
class FamilyLock:
    """A family's lock file: every repository checked, in (hub, repo) order."""

    family: str
    repos: tuple[LockedRepo, ...] = ()

    def find(self, hub: str, repo: str) -> LockedRepo | None:
        return next((r for r in self.repos if r.hub == hub and r.repo == repo), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": LOCK_VERSION,
            "family": self.family,
            "comment": "Written by `zoo catalog check --fix`; do not edit by hand.",
            "repositories": [r.to_json() for r in sorted(self.repos, key=_key)],
        }


def _key(repo: LockedRepo) -> tuple[str, str]:
    return (repo.hub, repo.repo)


def lock_path(folder: Path, family: str) -> Path:
    """Where the lock of ``family`` lives for the catalog folder ``folder``.

    Family names are checked by the schema (lower-case letters, digits, ``.``, ``_``, ``-``),
    so the name is a plain file name; a name that is not is refused rather than joined.
    """
    if not family or "/" in family or "\\" in family or family.startswith("."):
        raise LockError(f"no lock file for the family name {family!r}")
    return folder / LOCK_DIR / f"{family}.json"


def read_lock(path: Path) -> FamilyLock | None:
    """The lock at ``path``; None when there is none. Raises LockError when it is malformed."""
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_LOCK_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise LockError(f"{path}: cannot read the lock file: {error.strerror or error}") from None
    if len(raw) > MAX_LOCK_BYTES:
        raise LockError(f"{path}: a lock file over {MAX_LOCK_BYTES // 2**20} MiB is not a lock")
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as error:
        raise LockError(
            f"{path}: not JSON ({error}); delete it and run `zoo catalog check --fix`"
        ) from None
    return lock_from_json(data, str(path))


def load_lock(folder: Path, family: str) -> FamilyLock | None:
    """The lock of ``family`` in ``folder``, or None when there is none or it is unusable.

    Building a family must never fail because of its lock: a broken one is ignored here (the
    family plans as if it were never checked) and reported by ``zoo catalog check``.
    """
    try:
        return read_lock(lock_path(folder, family))
    except LockError:
        return None


def lock_from_json(data: Any, where: str) -> FamilyLock:
    """Check the shape of parsed lock data; every value a consumer reads is type-checked."""

    def bad(what: str) -> LockError:
        return LockError(f"{where}: {what}; delete it and run `zoo catalog check --fix`")

    if not isinstance(data, dict) or data.get("version") != LOCK_VERSION:
        raise bad(f"not a version {LOCK_VERSION} lock file")
    family = data.get("family")
    entries = data.get("repositories")
    if not isinstance(family, str) or not isinstance(entries, list):
        raise bad("a lock needs 'family' and 'repositories'")
    repos = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise bad(f"repositories[{index}] is not an object")
        hub, repo, asked = entry.get("hub"), entry.get("repo"), entry.get("asked")
        commit, checked, files = entry.get("commit"), entry.get("checked"), entry.get("files")
        if not (isinstance(hub, str) and hub and isinstance(repo, str) and repo):
            raise bad(f"repositories[{index}] needs 'hub' and 'repo'")
        # Checked as the hubs check revisions before a download: a lock pins what downloads.
        if asked is not None and (
            not isinstance(asked, str) or names.revision_problem(asked) is not None
        ):
            raise bad(f"repositories[{index}].asked is not a revision")
        if not isinstance(commit, str) or names.revision_problem(commit) is not None:
            raise bad(f"repositories[{index}].commit is not a revision")
        if not isinstance(checked, str) or not _DATE.fullmatch(checked):
            raise bad(f"repositories[{index}].checked is not a date")
        if not isinstance(files, dict):
            raise bad(f"repositories[{index}].files is not an object")
        locked: dict[str, LockedFile] = {}
        for path, facts in files.items():
            size = facts.get("size") if isinstance(facts, dict) else None
            sha256 = facts.get("sha256") if isinstance(facts, dict) else None
            if not isinstance(path, str) or names.relative_path_problem(path) is not None:
                raise bad(f"{repo}: {path!r} is not a file path inside the repository")
            if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                raise bad(f"{repo}: {path!r} has no size in bytes")
            if sha256 is not None and not (isinstance(sha256, str) and _SHA256.fullmatch(sha256)):
                raise bad(f"{repo}: {path!r} has a sha256 that is not 64 hex digits")
            locked[path] = LockedFile(size, sha256)
        repos.append(LockedRepo(hub, repo, asked, commit, checked, locked))
    return FamilyLock(family, tuple(repos))


def write_lock(path: Path, lock: FamilyLock) -> None:
    """Write ``lock`` to ``path`` atomically (a reader sees the old file or the new one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(lock.to_json(), indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
