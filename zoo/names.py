"""What a repository id, a revision, a file name in a repository and a package name may be.

These names come from spec files (anyone can add a catalog folder) and from hub servers (which
we do not control), and each one ends up in a cache path. ``zoo validate`` (the catalog's lint)
and the hubs (at download time) ask the same functions here, so a name that validates is a
name the download accepts, and a name the download refuses never validates.

Each function returns None for a good name, else the reason in words ("contains a control
character"). A leaf module on purpose (stdlib only): the catalog imports it without pulling in
any hub code, and the hubs wrap it in their own error type.

Every check is a full match on the whole string: Python's ``$`` also matches before a final
newline, which is how ``org/name\\n`` and ``x\\n.gguf`` used to pass.
"""

from __future__ import annotations

import re
import unicodedata

# "org/name", each part 1-96 characters: Hugging Face's rule for repository ids (ModelScope,
# OpenMind and CSGHub ids have the same shape), ASCII only.
_REPO_PART = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9_])?")
# Branches, tags and commits: git's characters, less the ones that are never in a hub's refs.
# The spec schema's revision pattern is this one (a test keeps them equal).
REVISION_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._+/-]*"
_REVISION = re.compile(REVISION_PATTERN)
MAX_REVISION = 200
# PEP 508 distribution names and PEP 440-ish versions (epochs '!' and local '+' included).
_PACKAGE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?")
_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+!-]*")
_DRIVE = re.compile(r"[A-Za-z]:")


def _control(text: str) -> str | None:
    """The first control character (C0, DEL, C1), line separator, invisible formatting
    character or undecodable byte in ``text``, in words.

    Formatting characters (category Cf: bidi overrides like U+202E, zero-width spaces and
    joiners, the BOM) are invisible, so a name holding one is not the name it looks like:
    ``model\\u202enosj.exe`` shows as ``modelexe.json``. Lone surrogates (Cs) are bytes that
    were not UTF-8 (a tar member's name, decoded with surrogateescape): such a name cannot
    be printed or written to a JSON record as text.
    """
    for c in text:
        category = unicodedata.category(c)
        if category in ("Cc", "Zl", "Zp"):
            if c == "\0":
                return "contains a NUL character"
            if c in "\r\n":
                return "contains a line break"
            return f"contains the control character U+{ord(c):04X}"
        if category == "Cf":
            return f"contains the invisible formatting character U+{ord(c):04X}"
        if category == "Cs":
            return f"contains a byte that is not UTF-8 (U+{ord(c):04X})"
    return None


# Hubs whose ids are exactly "org/name" with Hugging Face's naming rules (ModelScope, OpenMind
# and CSGHub follow the same shape). Other hubs (plugins) take "name" or "org/name".
ORG_NAME_HUBS = ("huggingface", "modelscope", "openmind_hub", "csghub")


def repo_id_problem(repo_id: str, hub: str | None = None) -> str | None:
    """Why ``repo_id`` is not a plain repository id on ``hub``, or None.

    On the ``ORG_NAME_HUBS`` (and with no hub named): exactly ``org/name``. On other hubs:
    ``name`` or ``org/name``. Each part is a plain name either way, so an id is one or two
    folder names and nothing more.
    """
    control = _control(repo_id)
    if control:
        return control
    parts = repo_id.split("/")
    strict = hub is None or hub in ORG_NAME_HUBS
    if len(parts) != 2 if strict else len(parts) not in (1, 2):
        return "expected 'org/name'" if strict else "expected 'name' or 'org/name'"
    for part in parts:
        if not _REPO_PART.fullmatch(part):
            return (
                f"{part!r} must be 1-96 letters, digits, '.', '_' or '-', starting with a "
                "letter or digit and not ending with '.' or '-'"
            )
        if ".." in part or (strict and "--" in part):
            # '--' joins org and name in the caches' folder names (models--org--name).
            return f"{part!r} contains '--' or '..'" if strict else f"{part!r} contains '..'"
    return None


def revision_problem(revision: str) -> str | None:
    """Why ``revision`` is not a branch, tag or commit a cache path can be made from, or None.

    Slashes are allowed (``feature/x``, ``refs/pr/1``): each part must be a plain name, so the
    revision stays one folder (or a few) below the cache's refs or snapshots folder.
    """
    if not revision:
        return "is empty"
    control = _control(revision)
    if control:
        return control
    if len(revision) > MAX_REVISION:
        return f"is longer than {MAX_REVISION} characters"
    if not _REVISION.fullmatch(revision):
        return (
            "must be letters, digits, '.', '_', '+', '-' and '/', starting with a letter or digit"
        )
    if ".." in revision:
        return "contains '..'"
    if any(not part or part.startswith(".") for part in revision.split("/")):
        return "has an empty part or a part starting with '.'"
    return None


def relative_path_problem(path: str) -> str | None:
    """Why ``path`` is not a relative POSIX path that stays inside its folder, or None.

    Refused: empty paths, absolute paths, drive letters, backslashes, control and invisible
    formatting characters (newlines and bidi overrides included) and empty, ``.`` or ``..``
    segments (even ones that would cancel out).
    """
    if not path:
        return "is empty"
    control = _control(path)
    if control:
        return control
    if "\\" in path:
        return "contains a backslash (use '/')"
    if path.startswith("/") or _DRIVE.match(path):
        return "is an absolute path"
    if any(part in ("", ".", "..") for part in path.split("/")):
        return "has '..', '.' or empty path segments"
    return None


def package_problem(name: str) -> str | None:
    """Why ``name`` is not a PyPI project name (PEP 508), or None."""
    if _PACKAGE.fullmatch(name):
        return None
    return "is not a PyPI project name (letters, digits, '.', '_', '-')"


def version_problem(version: str) -> str | None:
    """Why ``version`` is not a package version a folder can be named after, or None."""
    if not _VERSION.fullmatch(version) or ".." in version:
        return "is not a version (letters, digits, '.', '_', '+', '!', '-')"
    return None
