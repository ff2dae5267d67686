"""Reject ids and paths that would make a download write outside its cache folder.

Repository ids, file names and file templates come from spec files (anyone can add a catalog
folder) and from hub servers (which we do not control). Each one is checked before it is
joined onto a cache path, so a hostile ``../../.ssh/authorized_keys`` fails with a clear error
instead of writing anywhere.
"""

from __future__ import annotations

import re
from pathlib import Path

from zoo.hubs.base import UnsafePathError

# Hugging Face and ModelScope ids: "name" or "org/name", each part a plain name.
_ID_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
# PyPI project names and versions (PEP 508 names; versions are letters, digits, ._+!-).
_PACKAGE = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?")
_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+!-]*")


def _describe(value: str) -> str:
    return repr(value)


def check_repo_id(repo: str, hub: str = "hub") -> str:
    """Return ``repo`` if it is a safe ``org/name`` (or ``name``) id, else raise."""
    parts = repo.split("/")
    if (
        not repo
        or len(parts) > 2
        or any(not _ID_PART.fullmatch(p) or p in (".", "..") or ".." in p for p in parts)
    ):
        raise UnsafePathError(
            f"{hub}: repository id {_describe(repo)} is not a plain 'org/name' id "
            "(no '..', slashes at the ends, backslashes or control characters)"
        )
    return repo


def check_package(name: str, version: str | None) -> None:
    """Reject PyPI names and versions that are not plain names (they become folder names)."""
    if not _PACKAGE.fullmatch(name):
        raise UnsafePathError(f"pypi: package name {_describe(name)} is not a valid project name")
    if version is not None and (not _VERSION.fullmatch(version) or ".." in version):
        raise UnsafePathError(f"pypi: version {_describe(version)} of {name} is not a version")


def check_relative_path(path: str, what: str = "file name") -> str:
    """Return ``path`` if it is a relative POSIX path that stays inside its folder.

    Rejected: empty paths, absolute paths, drive letters, backslashes, NUL and other control
    characters, and ``.``/``..`` segments (even ones that would cancel out).
    """
    problem = None
    if not path:
        problem = "is empty"
    elif any(ord(c) < 32 or ord(c) == 127 for c in path):
        problem = "contains a control character"
    elif "\\" in path:
        problem = "contains a backslash"
    elif path.startswith("/") or re.match(r"[A-Za-z]:", path):
        problem = "is absolute"
    elif any(seg in ("", ".", "..") for seg in path.split("/")):
        problem = "has an empty, '.' or '..' segment"
    if problem:
        raise UnsafePathError(
            f"{what} {_describe(path)} {problem}: it could write outside the cache"
        )
    return path


def safe_join(root: Path, relative: str, what: str = "file name") -> Path:
    """``root / relative`` after checking ``relative``; also guards against symlinked escapes."""
    check_relative_path(relative, what)
    joined = root.joinpath(*relative.split("/"))
    base = root.resolve()
    parent = joined.parent.resolve()
    if parent != base and base not in parent.parents:
        raise UnsafePathError(f"{what} {_describe(relative)} resolves outside {root}")
    return joined
