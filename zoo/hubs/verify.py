"""Checking downloaded files against what the hub says they are (size, sha256, git blob id).

Hashing a 20 GB file takes a while, so a successful check leaves a small stamp (size, mtime,
inode) in zoo's cache; later checks re-hash only when the file changed since (a corrupted
or rewritten file changes its mtime). ``verify_file(..., full=True)`` always re-hashes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path

from zoo.paths import cache_dir

_BLOCK = 4 * 1024 * 1024


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def git_blob_oid(path: Path) -> str:
    """The id git gives the file's content (Hugging Face's etag for files not in LFS)."""
    digest = hashlib.sha1(b"blob %d\0" % path.stat().st_size)
    with open(path, "rb") as handle:
        while block := handle.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def _stamp_path(path: Path) -> Path:
    key = hashlib.sha256(str(path.resolve()).encode()).hexdigest()
    return cache_dir() / "verified" / key[:2] / f"{key}.json"


def _fingerprint(path: Path, expected: str) -> dict[str, object]:
    stat = path.stat()
    return {
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "inode": stat.st_ino,
        "expected": expected,
    }


def _stamped(path: Path, expected: str) -> bool:
    try:
        saved = json.loads(_stamp_path(path).read_text())
    except (OSError, ValueError):
        return False
    return bool(saved == _fingerprint(path, expected))


def _stamp(path: Path, expected: str) -> None:
    target = _stamp_path(path)
    tmp = target.with_suffix(f".{os.getpid()}.tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(_fingerprint(path, expected)))
        os.replace(tmp, target)
    except OSError:
        # A stamp only saves re-hashing; a full or read-only zoo cache must not fail a
        # download that is complete and verified.
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def verify_file(
    path: Path,
    size: int | None = None,
    sha256: str | None = None,
    git_oid: str | None = None,
    *,
    full: bool = False,
) -> str | None:
    """Return None when ``path`` matches, else what is wrong (in words, for an error line)."""
    try:
        actual_size = path.stat().st_size
    except OSError:
        return "is missing"
    if size is not None and actual_size != size:
        return f"has {actual_size} bytes, expected {size}"
    if sha256 is None and git_oid is None:
        return None
    expected = f"sha256:{sha256}" if sha256 else f"git:{git_oid}"
    if not full and _stamped(path, expected):
        return None
    if sha256:
        actual = sha256_file(path)
        if actual != sha256.lower():
            return f"has sha256 {actual[:12]}…, expected {sha256[:12]}…"
    else:
        actual = git_blob_oid(path)
        if actual != str(git_oid).lower():
            return f"has git id {actual[:12]}…, expected {str(git_oid)[:12]}…"
    _stamp(path, expected)
    return None


def changed_since_verified(path: Path) -> bool:
    """True when ``path`` was verified once and has changed since (size, mtime or inode).

    Lets a cache check without hub metadata (offline) still notice a damaged file.
    """
    try:
        saved = json.loads(_stamp_path(path).read_text())
    except (OSError, ValueError):
        return False
    try:
        return bool(saved != _fingerprint(path, str(saved.get("expected"))))
    except OSError:
        return True


def mark_verified(path: Path, sha256: str) -> None:
    """Record that ``path`` was hashed while downloading (no second pass needed)."""
    _stamp(path, f"sha256:{sha256}")
