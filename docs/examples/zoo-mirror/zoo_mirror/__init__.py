"""zoo-mirror: a hub plugin for zoo that downloads model files from a plain HTTP mirror.

The mirror is any static file server (nginx, S3, ``python -m http.server``) laid out as::

    <ZOO_MIRROR_URL>/<repo>/<revision>/SHA256SUMS      # `sha256sum * > SHA256SUMS`
    <ZOO_MIRROR_URL>/<repo>/<revision>/<file path>

Spec files name it like any hub: ``sources: {mirror: {model_id: team/model, ...}}``.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote

from zoo import hookimpl
from zoo.hubs.base import (
    CacheEntry,
    FetchRequest,
    FetchResult,
    Hub,
    HubError,
    HubUnreachableError,
    ProgressCallback,
    RemoteFile,
)
from zoo.hubs.safety import check_relative_path, check_repo_id, check_revision, safe_join

if TYPE_CHECKING:
    import httpx  # imported inside the methods: zoo's start-up stays fast

DEFAULT_URL = "http://127.0.0.1:8000"
MANIFEST = "SHA256SUMS"
CHUNK = 1024 * 1024


class MirrorHub(Hub):
    name = "mirror"  # the key spec files use under `sources`
    display_name = "Model mirror"
    # Seconds to wait for a connection, and for each read of an answer: a mirror that
    # accepts and never answers fails with a clear line instead of hanging `zoo download`.
    connect_timeout = 10.0
    read_timeout = 60.0

    # -- where things are ----------------------------------------------------------------
    def endpoint(self) -> str:
        # Read at call time: tests and users change it without re-registering the hub.
        return os.environ.get("ZOO_MIRROR_URL", DEFAULT_URL).rstrip("/")

    def web_url(self, repo: str) -> str | None:
        return f"{self.endpoint()}/{quote(repo)}/"

    def cache_root(self) -> Path:
        from zoo.paths import cache_dir  # follows ZOO_HOME / ZOO_CACHE_DIR like zoo's caches

        return cache_dir() / "mirror"

    def _folder(self, repo: str, revision: str | None) -> tuple[Path, str]:
        """The cache folder of (repo, revision): one quoted folder name each, inside the root."""
        check_repo_id(repo, self.name)
        revision = check_revision(revision or "main", self.name)
        name = f"{quote(repo, safe='')}/{quote(revision, safe='')}"
        return safe_join(self.cache_root(), name, "cache folder"), revision

    def _url(self, repo: str, revision: str, path: str) -> str:
        return f"{self.endpoint()}/{quote(repo)}/{quote(revision)}/{quote(path)}"

    # -- talking to the mirror -----------------------------------------------------------
    def _client(self) -> httpx.Client:
        import httpx

        timeout = httpx.Timeout(self.read_timeout, connect=self.connect_timeout)
        return httpx.Client(timeout=timeout, follow_redirects=True)

    def _failure(self, error: Exception, what: str) -> HubError:
        """One line naming the hub and the cause; unreachable only when no connection came."""
        import httpx

        if isinstance(error, httpx.ConnectError | httpx.ConnectTimeout):
            return HubUnreachableError(f"{self.name}: cannot reach {self.endpoint()}: {error}")
        if isinstance(error, httpx.TimeoutException):
            return HubError(f"{self.name}: {what}: no answer within {self.read_timeout:g} s")
        if isinstance(error, httpx.HTTPStatusError):
            status = error.response.status_code
            return HubError(f"{self.name}: {what}: the mirror answered HTTP {status}")
        return HubError(f"{self.name}: {what}: {type(error).__name__}: {error}")

    def reachable(self, timeout: float = 2.0) -> bool:
        import httpx

        try:
            httpx.head(self.endpoint() + "/", timeout=timeout)  # any answer will do
        except httpx.HTTPError:
            return False
        return True

    def _manifest(self, repo: str, revision: str) -> str:
        import httpx

        try:
            with self._client() as client:
                response = client.get(self._url(repo, revision, MANIFEST))
                response.raise_for_status()
        except httpx.HTTPError as error:
            raise self._failure(error, f"{repo}@{revision}/{MANIFEST}") from error
        return response.text

    def _parse(self, manifest: str) -> list[RemoteFile]:
        files = []
        for line in manifest.splitlines():
            if not line.strip():
                continue
            digest, _, path = line.partition(" ")
            path = path.removeprefix(" ").removeprefix("*")  # "<hash>  name" or "<hash> *name"
            # The mirror is not trusted: its names must stay inside the cache folder.
            check_relative_path(path, f"{self.name}: file name in {MANIFEST}")
            files.append(RemoteFile(path=path, sha256=digest.lower()))
        return files

    def list_files(self, repo: str, revision: str | None = None) -> Sequence[RemoteFile]:
        _, revision = self._folder(repo, revision)
        return self._parse(self._manifest(repo, revision))

    # -- fetching ------------------------------------------------------------------------
    def fetch(self, request: FetchRequest, progress: ProgressCallback | None = None) -> FetchResult:
        import httpx

        folder, revision = self._folder(request.repo, request.revision)
        manifest = self._manifest(request.repo, revision)
        listing = {f.path: f for f in self._parse(manifest)}
        wanted = list(request.files)
        wanted += [p for p in listing if any(fnmatch.fnmatch(p, g) for g in request.patterns)]
        files_root = folder / "files"
        fetched: list[Path] = []
        downloaded = 0
        try:
            with self._client() as client:
                for path in dict.fromkeys(wanted):
                    if path not in listing:
                        raise HubError(
                            f"{self.name}: {request.repo}@{revision} has no file {path!r}"
                        )
                    target = safe_join(files_root, path)
                    if not target.is_file():  # only verified files are ever renamed into place
                        url = self._url(request.repo, revision, path)
                        downloaded += self._download(
                            client, url, target, path, listing[path].sha256, progress
                        )
                    fetched.append(target)
            (folder / MANIFEST).write_text(manifest, encoding="utf-8")
        except httpx.HTTPError as error:
            raise self._failure(error, f"{request.repo}@{revision}") from error
        except OSError as error:  # the disk, not the mirror: never "unreachable"
            raise HubError(f"{self.name}: cannot write into {files_root}: {error}") from error
        return FetchResult(
            hub=self.name,
            repo=request.repo,
            revision=revision,
            root=files_root,
            files=tuple(fetched),
            bytes_downloaded=downloaded,
        )

    def _download(
        self,
        client: httpx.Client,
        url: str,
        target: Path,
        path: str,
        sha256: str | None,
        progress: ProgressCallback | None,
    ) -> int:
        target.parent.mkdir(parents=True, exist_ok=True)
        part = target.with_name(target.name + ".part")
        digest = hashlib.sha256()
        done = 0
        with client.stream("GET", url) as response:
            response.raise_for_status()
            length = response.headers.get("Content-Length", "")
            total = int(length) if length.isdigit() else None
            with open(part, "wb") as out:
                for chunk in response.iter_bytes(CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    done += len(chunk)
                    if progress is not None:
                        progress(path, done, total)
        if sha256 and digest.hexdigest() != sha256:
            part.unlink()
            raise HubError(f"{self.name}: {path} does not match its sha256 in {MANIFEST}")
        part.replace(target)
        return done

    # -- the cache (no network) ----------------------------------------------------------
    def cached_listing(self, repo: str, revision: str | None = None) -> Sequence[RemoteFile] | None:
        folder, _ = self._folder(repo, revision)
        try:
            return self._parse((folder / MANIFEST).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None

    def cached(self, request: FetchRequest) -> FetchResult | None:
        folder, revision = self._folder(request.repo, request.revision)
        wanted = list(request.files)
        if request.patterns:
            listing = self.cached_listing(request.repo, revision) or ()
            wanted += [
                f.path for f in listing if any(fnmatch.fnmatch(f.path, g) for g in request.patterns)
            ]
        files_root = folder / "files"
        paths = [safe_join(files_root, p) for p in dict.fromkeys(wanted)]
        if not paths or not all(p.is_file() for p in paths):
            return None  # a partial cache is a miss
        return FetchResult(self.name, request.repo, revision, files_root, tuple(paths))

    def cache_entries(self) -> Sequence[CacheEntry]:
        entries = []
        root = self.cache_root()
        for manifest in sorted(root.glob(f"*/*/{MANIFEST}")):
            files_root = manifest.parent / "files"
            files = sorted(p for p in files_root.rglob("*") if p.is_file())
            entries.append(
                CacheEntry(
                    hub=self.name,
                    repo=unquote(manifest.parent.parent.name),
                    revision=unquote(manifest.parent.name),
                    root=files_root,
                    files=tuple(p.relative_to(files_root).as_posix() for p in files),
                    bytes=sum(p.stat().st_size for p in files),
                )
            )
        return entries

    def remove(self, repo: str, revision: str | None = None) -> Sequence[CacheEntry]:
        gone = [
            e
            for e in self.cache_entries()
            if e.repo == repo and (revision is None or e.revision == revision)
        ]
        for entry in gone:
            shutil.rmtree(entry.root.parent)
        return gone


@hookimpl
def zoo_register_hubs() -> list[Hub]:
    return [MirrorHub()]
