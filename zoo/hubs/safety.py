"""Reject ids, revisions and paths that would make a download write outside its cache folder.

Repository ids, revisions, file names and file templates come from spec files (anyone can add
a catalog folder) and from hub servers (which we do not control). Each one is checked before it
is joined onto a cache path, so a hostile ``../../.ssh/authorized_keys`` fails with a clear
error instead of writing anywhere. The rules themselves live in ``zoo.names``, which
``zoo validate`` uses too: what validates is exactly what downloads.
"""

from __future__ import annotations

from pathlib import Path

from zoo import names
from zoo.hubs.base import UnsafePathError


def check_repo_id(repo: str, hub: str = "hub") -> str:
    """Return ``repo`` if it is a safe id on ``hub``, else raise UnsafePathError.

    Hugging Face and hubs named like it (``zoo.names.ORG_NAME_HUBS``): exactly ``org/name``,
    as ``zoo validate`` checks their ids; other hubs: ``name`` or ``org/name``.
    """
    problem = names.repo_id_problem(repo, hub)
    if problem:
        raise UnsafePathError(f"{hub}: repository id {repo!r} is not a plain id: {problem}")
    return repo


def check_revision(revision: str, hub: str = "hub") -> str:
    """Return ``revision`` if it is a safe branch, tag or commit, else raise UnsafePathError.

    It becomes a folder name (``snapshots/<revision>``, ``refs/<revision>``), so ``..``,
    absolute paths, backslashes and control characters are refused; ``feature/x`` is fine.
    """
    problem = names.revision_problem(revision)
    if problem:
        raise UnsafePathError(
            f"{hub}: revision {revision!r} {problem}: it could write outside the cache"
        )
    return revision


def check_package(name: str, version: str | None) -> None:
    """Reject PyPI names and versions that are not plain names (they become folder names)."""
    if names.package_problem(name):
        raise UnsafePathError(f"pypi: package name {name!r} is not a valid project name")
    if version is not None and names.version_problem(version):
        raise UnsafePathError(f"pypi: version {version!r} of {name} is not a version")


def check_relative_path(path: str, what: str = "file name") -> str:
    """Return ``path`` if it is a relative POSIX path that stays inside its folder, else raise.

    Rejected: empty paths, absolute paths, drive letters, backslashes, NUL, newlines and other
    control characters, and ``.``/``..`` segments (even ones that would cancel out).
    """
    problem = names.relative_path_problem(path)
    if problem:
        raise UnsafePathError(f"{what} {path!r} {problem}: it could write outside the cache")
    return path


def safe_join(root: Path, relative: str, what: str = "file name") -> Path:
    """``root / relative`` after checking ``relative``; also guards against symlinked escapes."""
    check_relative_path(relative, what)
    joined = root.joinpath(*relative.split("/"))
    base = root.resolve()
    parent = joined.parent.resolve()
    if parent != base and base not in parent.parents:
        raise UnsafePathError(f"{what} {relative!r} resolves outside {root}")
    return joined
