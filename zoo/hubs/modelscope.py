"""The ModelScope hub, on top of the modelscope client and its standard cache.

Files land where the modelscope client puts them (``MODELSCOPE_CACHE``, else
``~/.cache/modelscope``: ``models/<org>--<name>/snapshots/<revision>/<file>``), so models
fetched by modelscope itself are reused. The client resumes across processes on its own (it
continues ``<file>.incomplete`` with Range), and enforces sizes and sha256 from the listing;
zoo lists the repository itself (the listing endpoint gives sizes and sha256, which the
client's own listing call drops) to pick files and to re-check cached ones.
"""

from __future__ import annotations

import fnmatch
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
from zoo.hubs.verify import changed_since_verified, verify_file

DEFAULT_ENDPOINT = "https://www.modelscope.cn"
DEFAULT_REVISION = "master"
_COMMIT = re.compile(r"[0-9a-f]{40}")
MOVE_CACHE = "MODELSCOPE_CACHE"


def _literal(path: str) -> str:
    """A glob that matches exactly ``path`` (the client only takes patterns)."""
    return "".join(f"[{c}]" if c in "*?[]" else c for c in path)


class ModelScopeHub(Hub):
    name = "modelscope"
    display_name = "ModelScope"

    def endpoint(self) -> str:
        return (os.environ.get("MODELSCOPE_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")

    def cache_root(self) -> Path:
        return Path(os.environ.get("MODELSCOPE_CACHE") or "~/.cache/modelscope").expanduser()

    def storage(self, repo: str) -> Path:
        check_repo_id(repo, self.name)
        return self.cache_root() / "models" / repo.replace("/", "--")

    def web_url(self, repo: str) -> str | None:
        return f"{DEFAULT_ENDPOINT}/models/{repo}"

    def reachable(self, timeout: float = 2.0) -> bool:
        import httpx

        try:
            httpx.head(self.endpoint(), timeout=timeout)
        except httpx.HTTPError:
            return False
        return True

    def _get(self, repo: str, action: str, params: dict[str, str], doing: str) -> Any:
        """GET ``/api/v1/models/{repo}/{action}``; errors as one line, unreachable typed."""
        import httpx

        url = f"{self.endpoint()}/api/v1/models/{repo}/{action}"
        timeouts = hub_timeouts()
        try:
            response = httpx.get(
                url,
                params=params,
                timeout=httpx.Timeout(timeouts.read, connect=timeouts.connect),
            )
        except httpx.HTTPError as error:
            unreachable = network_error(error, self.name, self.endpoint())
            if unreachable is not None:
                raise unreachable from error
            raise HubError(f"{self.name}: {doing} failed: {error}") from error
        if response.status_code == 404:
            what = "repository" if action == "revisions" else "repository or revision"
            raise HubError(f"{self.name}: {doing}: {what} not found")
        if response.status_code >= 400:
            raise HubError(f"{self.name}: {doing}: HTTP {response.status_code}")
        return response

    def revision_commit(self, repo: str, revision: str | None = None) -> str | None:
        """The commit the branch or tag ``revision`` (None: master) names now, from the
        repository's revisions (``/api/v1/models/{repo}/revisions``, what the client's
        ``get_model_branches_and_tags_details`` reads); a 40-hex revision is its own answer.
        None when the hub names no commit for it (the revision then stays as the spec has it).
        """
        check_repo_id(repo, self.name)
        revision = check_revision(revision or DEFAULT_REVISION, self.name)
        if _COMMIT.fullmatch(revision):
            return revision
        doing = f"{repo}@{revision}"
        response = self._get(repo, "revisions", {}, doing)
        data: Any = None
        try:
            data = response.json()
            found = data["Data"]["RevisionMap"]
            entries = [*(found.get("Branches") or []), *(found.get("Tags") or [])]
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as error:
            if isinstance(data, dict) and data.get("Success") is False:
                raise HubError(f"{self.name}: {doing}: {str(data.get('Message'))[:200]}") from None
            raise HubError(f"{self.name}: {repo}: unexpected revisions from the hub") from error
        entry = next(
            (e for e in entries if isinstance(e, dict) and e.get("Revision") == revision), None
        )
        if entry is None:
            raise HubError(f"{self.name}: {doing}: revision not found")
        commit = entry.get("CommitId")
        return commit if isinstance(commit, str) and _COMMIT.fullmatch(commit) else None

    def list_files(self, repo: str, revision: str | None = None) -> Sequence[RemoteFile]:
        check_repo_id(repo, self.name)
        revision = check_revision(revision or DEFAULT_REVISION, self.name)
        response = self._get(
            repo, "repo/files", {"Revision": revision, "Recursive": "True"}, f"{repo}@{revision}"
        )
        unexpected = f"{self.name}: {repo}: unexpected listing from the hub"
        try:
            entries = response.json()["Data"]["Files"]
        except (ValueError, KeyError, TypeError, RecursionError) as error:
            raise HubError(unexpected) from error
        if not isinstance(entries, list):
            raise HubError(unexpected)
        files = []
        for entry in entries:
            if not isinstance(entry, dict):
                raise HubError(f"{unexpected} (an entry is {type(entry).__name__}, not an object)")
            if entry.get("Type") not in (None, "blob", "file"):
                continue
            path = entry.get("Path")
            if not isinstance(path, str):
                raise HubError(f"{unexpected} (a file has no name)")
            check_relative_path(path, f"{self.name}: file name from the server")
            size, sha256 = entry.get("Size"), entry.get("Sha256") or None
            # The server's word decides how much is downloaded and how it is checked.
            if size is not None and not (type(size) is int and size >= 0):
                raise HubError(f"{unexpected} ({path}: size {str(size)[:40]!r})")
            if sha256 is not None and not isinstance(sha256, str):
                raise HubError(f"{unexpected} ({path}: sha256 {str(sha256)[:40]!r})")
            files.append(RemoteFile(path=path, size=size, sha256=sha256))
        return files

    def fetch(self, request: FetchRequest, progress: ProgressCallback | None = None) -> FetchResult:
        hub_timeouts()  # a wrong ZOO_HUB_TIMEOUT fails before anything starts
        # Creating folders and the lock: a full or read-only cache says so.
        with storage_guard(self.name, MOVE_CACHE):
            return self._fetch(request, progress)

    def _fetch(self, request: FetchRequest, progress: ProgressCallback | None) -> FetchResult:
        repo = check_repo_id(request.repo, self.name)
        # The client writes into snapshots/<revision>: a revision with '..' would escape.
        revision = check_revision(request.revision or DEFAULT_REVISION, self.name)
        for path in request.files:
            check_relative_path(path)
        try:
            listing = self.list_files(repo, revision)
        except HubUnreachableError:
            found = self.cached(request)
            if found is not None:
                return found
            raise
        wanted = list(
            select_exact(listing, request.files, hub=self.name, repo=repo, revision=revision)
        )
        if request.patterns:
            matched = select_patterns(listing, request.patterns)
            if not matched:
                raise HubError(
                    f"{self.name}: {repo}: no file matches {', '.join(request.patterns)}"
                )
            wanted.extend(f for f in matched if f not in wanted)
        from filelock import FileLock

        root = self._snapshot(repo, revision)
        lock_path = self.cache_root() / ".locks" / self.storage(repo).name / "zoo.lock"
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(lock_path)):
            needed = []
            for remote in wanted:
                target = safe_join(root, remote.path)
                if verify_file(target, remote.size, remote.sha256) is not None:
                    target.unlink(missing_ok=True)  # corrupted or partial: fetch again
                    needed.append(remote)
                elif progress is not None:
                    progress(remote.path, remote.size or 0, remote.size)
            if needed:
                self._download(repo, revision, needed, progress)
            for remote in wanted:
                problem = verify_file(safe_join(root, remote.path), remote.size, remote.sha256)
                if problem is not None:
                    raise HubError(f"{self.name}: {repo}/{remote.path} {problem} after download")
        return FetchResult(
            hub=self.name,
            repo=repo,
            revision=revision,
            root=root,
            files=tuple(safe_join(root, f.path) for f in wanted),
            bytes_downloaded=sum(f.size or 0 for f in needed),
        )

    def _download(
        self,
        repo: str,
        revision: str,
        files: Sequence[RemoteFile],
        progress: ProgressCallback | None,
    ) -> None:
        os.environ.setdefault("MODELSCOPE_DOWNLOAD_INTRA_CLOUD", "false")
        _client_timeouts()
        from modelscope.hub.snapshot_download import snapshot_download

        _quiet_client()

        callbacks: list[type[Any]] = []
        if progress is not None:
            callbacks.append(_callback_class(progress))
        try:
            snapshot_download(
                repo,
                revision=revision,
                cache_dir=str(self.cache_root()),
                allow_file_pattern=[_literal(f.path) for f in files],
                progress_callbacks=callbacks or None,
                endpoint=self.endpoint(),
            )
        except Exception as error:
            # The disk first (a full cache is no reason to call the hub down), then timeouts
            # and connections (naming the host a redirect led to).
            # The client wraps each file's real cause in ``failed_files``: name it.
            failed = getattr(error, "failed_files", None)
            where = self._snapshot(repo, revision)
            if isinstance(failed, dict) and len(failed) == 1:
                where = safe_join(where, str(next(iter(failed))))
            failure = storage_error(error, self.name, MOVE_CACHE, where) or network_error(
                error, self.name, self.endpoint()
            )
            if failure is not None:
                raise failure from error
            text = f"{type(error).__name__}: {error}".splitlines()[0]
            if isinstance(failed, dict) and failed:
                text = "; ".join(
                    f"{path}: {str(cause).splitlines()[0]}"
                    for path, cause in list(failed.items())[:3]
                )
            raise HubError(f"{self.name}: downloading {repo}@{revision} failed: {text}") from error

    def _snapshot(self, repo: str, revision: str | None) -> Path:
        """``snapshots/<revision>`` as the client lays it out (``feature/x`` is nested)."""
        revision = check_revision(revision or DEFAULT_REVISION, self.name)
        return safe_join(self.storage(repo) / "snapshots", revision, "revision")

    def cached_listing(self, repo: str, revision: str | None = None) -> Sequence[RemoteFile] | None:
        root = self._snapshot(repo, revision)
        if not root.is_dir():
            return None
        return [
            RemoteFile(path=p.relative_to(root).as_posix(), size=p.stat().st_size)
            for p in sorted(root.rglob("*"))
            if p.is_file() and not p.name.endswith(".incomplete")
        ]

    def cached(self, request: FetchRequest) -> FetchResult | None:
        repo = check_repo_id(request.repo, self.name)
        revision = request.revision or DEFAULT_REVISION
        listing = self.cached_listing(repo, revision)
        if listing is None:
            return None
        root = self._snapshot(repo, revision)
        wanted = [safe_join(root, f) for f in request.files]
        if request.patterns:
            matched = [
                f for f in listing if any(fnmatch.fnmatchcase(f.path, p) for p in request.patterns)
            ]
            if not matched:
                return None
            wanted.extend(root / f.path for f in matched)
        if not all(p.is_file() and not changed_since_verified(p) for p in wanted):
            return None
        return FetchResult(
            hub=self.name,
            repo=repo,
            revision=revision,
            root=root,
            files=tuple(wanted),
            reason="cached",
        )

    def cache_entries(self) -> Sequence[CacheEntry]:
        models = self.cache_root() / "models"
        if not models.is_dir():
            return ()
        entries = []
        for storage in sorted(models.iterdir()):
            if "--" not in storage.name or not (storage / "snapshots").is_dir():
                continue
            repo = storage.name.replace("--", "/", 1)
            for snapshot in sorted((storage / "snapshots").iterdir()):
                files = [p for p in sorted(snapshot.rglob("*")) if p.is_file()]
                entries.append(
                    CacheEntry(
                        hub=self.name,
                        repo=repo,
                        revision=snapshot.name,
                        root=snapshot,
                        files=tuple(p.relative_to(snapshot).as_posix() for p in files),
                        bytes=sum(p.stat().st_size for p in files),
                    )
                )
        return entries

    def remove(self, repo: str, revision: str | None = None) -> Sequence[CacheEntry]:
        import shutil

        storage = self.storage(repo)
        if revision is not None:
            check_revision(revision, self.name)
        doomed = [
            e
            for e in self.cache_entries()
            if e.repo == repo and (revision is None or e.revision == revision)
        ]
        for entry in doomed:
            shutil.rmtree(entry.root, ignore_errors=True)
        if revision is None:
            shutil.rmtree(storage, ignore_errors=True)
        return doomed


def _client_timeouts() -> None:
    """Hand ZOO_HUB_TIMEOUT to the modelscope client, which reads its own variables once.

    The client already bounds every request (10 s to connect, 60 s per read); these only apply
    when it is imported after them, which is the case in a ``zoo`` process (imported here, on
    first download). Whole seconds: the client takes integers.
    """
    timeouts = hub_timeouts()
    if not timeouts.explicit:
        return
    import math

    read = str(max(1, math.ceil(timeouts.read)))
    connect = str(max(1, math.ceil(timeouts.connect)))
    for name, value in (
        ("MODELSCOPE_API_TIMEOUT", read),
        ("MODELSCOPE_DOWNLOAD_TIMEOUT", read),
        ("MODELSCOPE_API_CONNECT_TIMEOUT", connect),
    ):
        os.environ[name] = value


def _quiet_client() -> None:
    """Silence the client's own tqdm bars and log lines: zoo reports progress itself.

    Its WARNING and ERROR records too: they are multi-line (request and response dumps) and
    repeat the failure that zoo reports as one line.
    """
    import functools
    import logging

    try:
        from modelscope_hub import _download as client
    except ImportError:  # another client version: its bars stay, nothing breaks
        return
    bars = getattr(client, "tqdm", None)
    if bars is not None and not isinstance(bars, functools.partial):
        vars(client)["tqdm"] = functools.partial(bars, disable=True)  # a private module
    for name in ("modelscope_hub", "modelscope_hub.download", "modelscope"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def _callback_class(progress: ProgressCallback) -> type[Any]:
    """A modelscope progress callback class that forwards to zoo's progress callback."""
    from modelscope.hub.callback import ProgressCallback as Base

    class Forward(Base):  # type: ignore[misc]  # the client ships no type information
        def __init__(self, filename: str, file_size: int) -> None:
            super().__init__(filename, file_size)
            self.done = 0

        def update(self, size: int) -> None:
            self.done += size
            progress(self.filename, self.done, self.file_size or None)

    return Forward
