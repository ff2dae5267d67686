"""The Hugging Face hub, on top of huggingface_hub and its standard cache.

Files land in the standard cache (``HF_HUB_CACHE``, else ``HF_HOME/hub``, else
``~/.cache/huggingface/hub``) in the client's own layout, so what ``hf download``, transformers
or vLLM fetched is reused without a request, and what zoo fetches they reuse.

Cross-process resume. huggingface_hub 2.x downloads into a partial file with a random name and
starts a killed download again from byte 0. For weights (LFS files, the multi-GB ones) zoo
therefore fetches the bytes itself with ``Range`` into ``blobs/<etag>.zoo-partial`` (a stable
name: the next process continues it), checks size and sha256, renames it to ``blobs/<etag>``
and then calls ``hf_hub_download``, which finds the blob in place and only creates the
snapshot link, exactly as it would for its own download. Small git files (configs,
tokenizers) go through ``hf_hub_download`` directly. A file lock per repository in the
client's ``.locks`` folder makes a second process wait and then reuse the first one's files.

Verification needs no extra metadata for cached files: a blob's name is its sha256 (LFS) or
its git blob id (other files), so a corrupted cached file is detected even offline.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

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
from zoo.hubs.failures import network_error, storage_error, storage_guard
from zoo.hubs.safety import check_relative_path, check_repo_id, check_revision, safe_join
from zoo.hubs.select import select_exact, select_patterns
from zoo.hubs.timeouts import hub_timeouts
from zoo.hubs.verify import mark_verified, verify_file

DEFAULT_ENDPOINT = "https://huggingface.co"
_COMMIT = re.compile(r"[0-9a-f]{40}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_TRUE = ("1", "true", "yes", "on")


MOVE_CACHE = "HF_HOME (or HF_HUB_CACHE)"


def _client() -> Any:
    """Import huggingface_hub with zoo's defaults (no telemetry), only when needed."""
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    import huggingface_hub
    from huggingface_hub.utils.tqdm import disable_progress_bars

    disable_progress_bars()  # zoo draws its own progress
    _bound_requests(huggingface_hub)
    return huggingface_hub


def _bound_requests(hf: Any) -> None:
    """Give every request of huggingface_hub's shared HTTP client a connect and read timeout.

    Its API calls (``model_info``, ``list_repo_tree``) pass ``timeout=None``, which httpx takes
    as "wait forever": a server that accepts and never answers would hang zoo. A request hook
    fills in zoo's timeouts where a request has none (with ZOO_HUB_TIMEOUT: everywhere). It wraps
    whatever client factory is set, so a user's own (proxies, certificates) keeps working, and
    clients the factory makes again (after a connection error) get the hook too.
    """
    from huggingface_hub.utils import _http

    current = getattr(_http, "_GLOBAL_CLIENT_FACTORY", _http.default_client_factory)
    if getattr(current, "zoo_bounded", False):
        return

    def factory() -> Any:
        client = current()
        hooks = dict(client.event_hooks)
        hooks["request"] = [*hooks.get("request", []), _fill_timeouts]
        client.event_hooks = hooks
        return client

    factory.zoo_bounded = True  # type: ignore[attr-defined]
    hf.set_client_factory(factory)


def _fill_timeouts(request: Any) -> None:
    """httpx reads the timeouts from the request's extensions when it sends it."""
    timeouts = hub_timeouts()
    wanted = {
        "connect": timeouts.connect,
        "read": timeouts.read,
        "write": timeouts.read,
        "pool": timeouts.read,
    }
    given = request.extensions.get("timeout") or {}
    request.extensions["timeout"] = {
        key: value if timeouts.explicit or given.get(key) is None else given[key]
        for key, value in wanted.items()
    }


class HuggingFaceHub(Hub):
    name = "huggingface"
    display_name = "Hugging Face"

    # -- where things are (read at call time, so environment changes apply) ------------------
    def endpoint(self) -> str:
        return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")

    def cache_root(self) -> Path:
        explicit = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
        if explicit:
            return Path(explicit).expanduser()
        home = os.environ.get("HF_HOME")
        if home:
            return Path(home).expanduser() / "hub"
        xdg = os.environ.get("XDG_CACHE_HOME") or "~/.cache"
        return Path(xdg).expanduser() / "huggingface" / "hub"

    def offline(self) -> bool:
        return os.environ.get("HF_HUB_OFFLINE", "").lower() in _TRUE

    def web_url(self, repo: str) -> str | None:
        return f"{DEFAULT_ENDPOINT}/{repo}"

    def storage(self, repo: str) -> Path:
        check_repo_id(repo, self.name)
        return self.cache_root() / ("models--" + repo.replace("/", "--"))

    # -- network ---------------------------------------------------------------------------
    def reachable(self, timeout: float = 2.0) -> bool:
        import httpx

        try:
            httpx.head(self.endpoint() + "/api/models", timeout=timeout)
        except httpx.HTTPError:
            return False
        return True

    def _api(self) -> Any:
        return _client().HfApi(endpoint=self.endpoint())

    def resolve_commit(self, repo: str, revision: str | None) -> str:
        revision = check_revision(revision or "main", self.name)
        if _COMMIT.fullmatch(revision):
            return revision
        try:
            info = self._api().model_info(repo, revision=revision)
        except Exception as error:
            raise self._translate(error, repo, revision) from error
        commit = str(getattr(info, "sha", "") or "")
        if not _COMMIT.fullmatch(commit):
            raise HubError(f"{self.name}: {repo}@{revision}: the hub gave no commit id")
        return commit

    def revision_commit(self, repo: str, revision: str | None = None) -> str | None:
        """The commit ``revision`` (None: main) names now: ``/api/models/{repo}/revision/{rev}``
        (a 40-hex revision is its own answer, with no request)."""
        check_repo_id(repo, self.name)
        if self.offline() and not _COMMIT.fullmatch(revision or ""):
            raise HubUnreachableError(
                f"{self.name}: HF_HUB_OFFLINE is set: cannot ask what {repo}@{revision or 'main'}"
                " names now"
            )
        return self.resolve_commit(repo, revision)

    def list_files(self, repo: str, revision: str | None = None) -> Sequence[RemoteFile]:
        check_repo_id(repo, self.name)
        commit = self.resolve_commit(repo, revision)
        return self._listing(repo, commit)

    def _listing(self, repo: str, commit: str) -> list[RemoteFile]:
        from huggingface_hub.hf_api import RepoFile

        try:
            tree = list(self._api().list_repo_tree(repo, revision=commit, recursive=True))
        except Exception as error:
            raise self._translate(error, repo, commit) from error
        files = []
        for entry in tree:
            if not isinstance(entry, RepoFile):
                continue
            # Paths come from the server: never trust them to stay inside the cache.
            check_relative_path(entry.path, f"{self.name}: file name from the server")
            lfs = entry.lfs
            files.append(
                RemoteFile(
                    path=entry.path,
                    size=entry.size,
                    sha256=lfs.sha256 if lfs is not None else None,
                    git_oid=entry.blob_id if lfs is None else None,
                )
            )
        return files

    def _translate(self, error: Exception, repo: str, revision: str | None) -> HubError:
        """Turn a client exception into one line that names the hub and the real cause."""
        from huggingface_hub import errors

        where = f"{self.name}: {repo}" + (f"@{revision}" if revision else "")
        if isinstance(error, HubError):
            return error
        # The disk first: a full cache raises OSError, which is no reason to call the hub down.
        failure = storage_error(error, self.name, MOVE_CACHE) or network_error(
            error, self.name, self.endpoint()
        )
        if failure is not None:
            return failure
        if isinstance(error, errors.GatedRepoError):
            return HubError(
                f"{where} is gated: accept its terms on the hub and log in (hf auth login)"
            )
        if isinstance(error, errors.RepositoryNotFoundError):
            return HubError(f"{where}: repository not found (or private)")
        if isinstance(error, errors.RevisionNotFoundError):
            return HubError(f"{where}: revision not found")
        if isinstance(error, errors.EntryNotFoundError):
            return HubError(f"{where}: {error}".splitlines()[0])
        if isinstance(error, errors.HfHubHTTPError) and error.response is not None:
            status = error.response.status_code
            return HubError(f"{where}: the hub answered HTTP {status}")
        text = f"{type(error).__name__}: {error}".splitlines()[0]
        return HubError(f"{where}: {text}")

    # -- fetching ----------------------------------------------------------------------------
    def fetch(self, request: FetchRequest, progress: ProgressCallback | None = None) -> FetchResult:
        hub_timeouts()  # a wrong ZOO_HUB_TIMEOUT fails before anything starts
        # Creating folders, the lock, refs and blobs: a full or read-only cache says so.
        with storage_guard(self.name, MOVE_CACHE):
            return self._fetch(request, progress)

    def _fetch(self, request: FetchRequest, progress: ProgressCallback | None) -> FetchResult:
        repo = check_repo_id(request.repo, self.name)
        check_revision(request.revision or "main", self.name)
        for path in request.files:
            check_relative_path(path)
        if self.offline():
            found = self.cached(request)
            if found is not None:
                return found
            raise HubError(
                f"{self.name}: HF_HUB_OFFLINE is set and {repo} is not (completely) in the cache "
                f"{self.cache_root()}"
            )
        try:
            commit = self.resolve_commit(repo, request.revision)
        except HubUnreachableError:
            found = self.cached(request)  # no network: what is cached still serves
            if found is not None:
                return found
            raise
        listing = self._listing(repo, commit)
        wanted = list(
            select_exact(
                listing,
                request.files,
                hub=self.name,
                repo=repo,
                revision=request.revision or "main",
            )
        )
        if request.patterns:
            matched = select_patterns(listing, request.patterns)
            if not matched:
                raise HubError(
                    f"{self.name}: {repo}: no file matches {', '.join(request.patterns)}"
                )
            wanted.extend(f for f in matched if f not in wanted)
        from filelock import FileLock

        storage = self.storage(repo)
        lock_path = self.cache_root() / ".locks" / storage.name / "zoo.lock"
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        downloaded = 0
        with FileLock(str(lock_path)):
            for remote in wanted:
                downloaded += self._fetch_one(repo, commit, remote, progress)
            revision = request.revision or "main"
            if revision != commit:
                # refs/<branch> as the client keeps it; a slashed branch is a nested file.
                ref = safe_join(storage / "refs", revision, "revision")
                ref.parent.mkdir(parents=True, exist_ok=True)
                ref.write_text(commit)
        root = storage / "snapshots" / commit
        return FetchResult(
            hub=self.name,
            repo=repo,
            revision=commit,
            root=root,
            files=tuple(safe_join(root, f.path) for f in wanted),
            bytes_downloaded=downloaded,
        )

    def _fetch_one(
        self, repo: str, commit: str, remote: RemoteFile, progress: ProgressCallback | None
    ) -> int:
        hf = _client()
        snapshot = self.storage(repo) / "snapshots" / commit
        pointer = safe_join(snapshot, remote.path)
        if pointer.exists() or pointer.is_symlink():
            problem = verify_file(pointer, remote.size, remote.sha256, remote.git_oid)
            if problem is None:
                if progress is not None:
                    progress(remote.path, remote.size or 0, remote.size)
                return 0
            # A corrupted or truncated cached file: drop it (and its blob) and fetch it again.
            blob = pointer.resolve()
            pointer.unlink(missing_ok=True)
            if blob.parent.name == "blobs":
                blob.unlink(missing_ok=True)
        downloaded = 0
        try:
            if remote.sha256 is not None:
                downloaded = self._fetch_blob(repo, commit, remote, progress)
            path = hf.hf_hub_download(
                repo,
                remote.path,
                revision=commit,
                cache_dir=str(self.cache_root()),
                endpoint=self.endpoint(),
            )
        except Exception as error:
            raise self._translate(error, repo, commit) from error
        if remote.sha256 is None:
            downloaded = remote.size or 0
        problem = verify_file(Path(path), remote.size, remote.sha256, remote.git_oid)
        if problem is not None:
            Path(path).resolve().unlink(missing_ok=True)
            Path(path).unlink(missing_ok=True)
            raise HubError(
                f"{self.name}: {repo}/{remote.path} {problem} after download; removed it"
            )
        if progress is not None:
            progress(remote.path, remote.size or 0, remote.size)
        return downloaded

    def _fetch_blob(
        self, repo: str, commit: str, remote: RemoteFile, progress: ProgressCallback | None
    ) -> int:
        """Fetch an LFS file into ``blobs/<etag>`` with zoo's resumable transfer."""
        from zoo.hubs.transfer import download_resumable

        hf = _client()
        url = hf.hf_hub_url(repo, remote.path, revision=commit, endpoint=self.endpoint())
        headers = hf.utils.build_hf_headers()
        meta = hf.get_hf_file_metadata(url, endpoint=self.endpoint(), headers=headers)
        etag = (meta.etag or remote.sha256 or "").strip('"')
        if not etag or "/" in etag or etag.startswith("."):
            raise HubError(f"{self.name}: {repo}/{remote.path}: the hub gave no usable etag")
        blobs = self.storage(repo) / "blobs"
        blob = safe_join(blobs, etag, "etag")
        if blob.exists() and verify_file(blob, remote.size, remote.sha256) is None:
            return 0
        location = meta.location or url
        same_origin = location.startswith(self.endpoint() + "/")
        sha256 = remote.sha256
        done = download_resumable(
            location,
            blob,
            hub=self.name,
            label=remote.path,
            size=remote.size or meta.size,
            sha256=sha256,
            headers=headers if same_origin else None,
            progress=progress,
        )
        if sha256:
            mark_verified(blob, sha256)
        return done

    # -- cache -----------------------------------------------------------------------------------
    def _cached_commit(self, repo: str, revision: str | None) -> str | None:
        revision = check_revision(revision or "main", self.name)
        if _COMMIT.fullmatch(revision):
            return revision
        ref = safe_join(self.storage(repo) / "refs", revision, "revision")
        try:
            commit = ref.read_text().strip()
        except OSError:
            return None
        return commit if _COMMIT.fullmatch(commit) else None

    def cached_listing(self, repo: str, revision: str | None = None) -> Sequence[RemoteFile] | None:
        commit = self._cached_commit(repo, revision)
        if commit is None:
            return None
        root = self.storage(repo) / "snapshots" / commit
        if not root.is_dir():
            return None
        return [
            RemoteFile(path=p.relative_to(root).as_posix(), size=p.stat().st_size)
            for p in sorted(root.rglob("*"))
            if p.is_file()
        ]

    def cached(self, request: FetchRequest) -> FetchResult | None:
        repo = check_repo_id(request.repo, self.name)
        commit = self._cached_commit(repo, request.revision)
        if commit is None:
            return None
        root = self.storage(repo) / "snapshots" / commit
        wanted = [safe_join(root, f) for f in request.files]
        if request.patterns:
            listing = self.cached_listing(repo, commit) or []
            matched = select_patterns(listing, request.patterns)
            if not matched:
                return None
            wanted.extend(root / f.path for f in matched)
        for path in wanted:
            if not path.is_file() or _blob_problem(path) is not None:
                return None
        return FetchResult(
            hub=self.name,
            repo=repo,
            revision=commit,
            root=root,
            files=tuple(wanted),
            reason="cached",
        )

    def cache_entries(self) -> Sequence[CacheEntry]:
        hf = _client()
        if not self.cache_root().is_dir():
            return ()
        try:
            info = hf.scan_cache_dir(self.cache_root())
        except Exception:
            return ()
        entries = []
        for repo in sorted(info.repos, key=lambda r: r.repo_id):
            if repo.repo_type != "model":
                continue
            for rev in sorted(repo.revisions, key=lambda r: r.commit_hash):
                entries.append(
                    CacheEntry(
                        hub=self.name,
                        repo=repo.repo_id,
                        revision=rev.commit_hash,
                        root=Path(rev.snapshot_path),
                        files=tuple(
                            sorted(
                                f.file_path.relative_to(rev.snapshot_path).as_posix()
                                for f in rev.files
                            )
                        ),
                        bytes=rev.size_on_disk,
                    )
                )
        return entries

    def remove(self, repo: str, revision: str | None = None) -> Sequence[CacheEntry]:
        check_repo_id(repo, self.name)
        commit = None if revision is None else (self._cached_commit(repo, revision) or revision)
        doomed = [
            e
            for e in self.cache_entries()
            if e.repo == repo and (commit is None or e.revision == commit)
        ]
        if doomed:
            hf = _client()
            info = hf.scan_cache_dir(self.cache_root())
            info.delete_revisions(*(e.revision for e in doomed)).execute()
        if revision is None:
            # Partial downloads and refs of the repository go too.
            import shutil

            shutil.rmtree(self.storage(repo), ignore_errors=True)
        return doomed


def _blob_problem(pointer: Path) -> str | None:
    """Check a cached file against the hash its blob is named after (sha256 or git blob id)."""
    blob = pointer.resolve()
    name = blob.name
    if _SHA256.fullmatch(name):
        return verify_file(pointer, sha256=name)
    if _COMMIT.fullmatch(name):
        return verify_file(pointer, git_oid=name)
    return None
