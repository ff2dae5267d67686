"""Asking the hubs, politely: each (hub, endpoint, repository, revision) once, concurrently,
under one shared rate limit, with retries, and saved as it completes so a killed run resumes.

``zoo catalog check`` (``zoo.catalog.check``) decides what to ask and judges the answers; this
module only gets them. What a hub says is not trusted: every listed path, size, hash and commit
is checked here (``clean_listing``), so nothing a hostile or broken hub sends reaches a lock
file or a message unchecked.
"""

from __future__ import annotations

import json
import os
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from zoo import names

if TYPE_CHECKING:
    from zoo.hubs.base import Hub, RemoteFile

T = TypeVar("T")

# Answers: the repository at that revision, with its files; or a definite "no".
OK = "ok"
NO_REPO = "no-repository"
NO_REVISION = "no-revision"
# The hub answered something zoo cannot use (a plugin bug, a refused listing entry, ...).
FAILED = "failed"
# Not answered at all after the retries (or its hub was already found down): not saved, so a
# resumed run asks again.
UNREACHABLE = "unreachable"
_SAVED = (OK, NO_REPO, NO_REVISION)

_SHA256 = re.compile(r"[0-9a-f]{64}")
_COMMIT = re.compile(r"[0-9a-f]{40}")
# Answers worth asking again: rate limited or a server error (hubs word them "HTTP <status>").
_TRANSIENT = re.compile(r"\bHTTP (429|5[0-9][0-9])\b")
# The biggest single model file today is ~50 GB; a listed size beyond this is not a file.
MAX_FILE_BYTES = 2**44
CHECKPOINT_VERSION = 1


@dataclass(frozen=True, order=True)
class Key:
    """One question to a hub: ``repo`` at ``revision`` (None: the hub's default branch)."""

    hub: str
    endpoint: str
    repo: str
    revision: str | None

    def to_json(self) -> list[str | None]:
        return [self.hub, self.endpoint, self.repo, self.revision]


@dataclass(frozen=True)
class Answer:
    """What the hub said about one Key. ``files`` are the listing entries that passed the
    checks; ``rejected`` describes each entry that did not (never used, only reported)."""

    status: str
    commit: str | None = None
    files: tuple[RemoteFile, ...] = ()
    rejected: tuple[str, ...] = ()
    message: str = ""
    # Whether it came from the checkpoint of an earlier run (no request made).
    resumed: bool = field(default=False, compare=False)

    def file(self, path: str) -> RemoteFile | None:
        return next((f for f in self.files if f.path == path), None)


def clean_listing(listing: Iterable[Any]) -> tuple[tuple[RemoteFile, ...], tuple[str, ...]]:
    """The listing entries zoo can trust (path inside the repository, a plausible size, a
    sha256 of 64 hex digits or none), and a description of each entry refused."""
    from zoo.hubs.base import RemoteFile

    kept: dict[str, RemoteFile] = {}
    rejected: list[str] = []
    for entry in listing:
        path, size, sha256 = (getattr(entry, a, None) for a in ("path", "size", "sha256"))
        shown = repr(path)[:80]
        if not isinstance(path, str) or names.relative_path_problem(path) is not None:
            why = names.relative_path_problem(path) if isinstance(path, str) else "not text"
            rejected.append(f"{shown}: the path {why}")
            continue
        if size is not None and (
            not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= MAX_FILE_BYTES
        ):
            rejected.append(f"{shown}: size {str(size)[:40]!r} is not a file size")
            continue
        if sha256 is not None:
            if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256.lower()):
                rejected.append(f"{shown}: sha256 {str(sha256)[:40]!r} is not 64 hex digits")
                continue
            sha256 = sha256.lower()
        if path in kept:
            rejected.append(f"{shown}: listed twice")
            continue
        kept[path] = RemoteFile(path, size, sha256)
    return tuple(kept[p] for p in sorted(kept)), tuple(rejected)


def usable_commit(commit: object) -> str | None:
    """``commit`` if it is a revision a cache path can be made from (a hub's word), else None."""
    if isinstance(commit, str) and names.revision_problem(commit) is None:
        return commit
    return None


def is_commit(revision: str | None) -> bool:
    return revision is not None and _COMMIT.fullmatch(revision) is not None


class RateLimit:
    """At most ``per_second`` starts per second, shared by every thread (0: no limit)."""

    def __init__(self, per_second: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._gap = 1.0 / per_second if per_second > 0 else 0.0
        self._clock = clock
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        if not self._gap:
            return
        with self._lock:
            now = self._clock()
            start = max(now, self._next)
            self._next = start + self._gap
        if start > now:
            time.sleep(start - now)


class Checkpoint:
    """Answers saved as they complete: one JSON line each, appended and flushed, so a run
    killed at any moment leaves every finished answer (a torn last line is skipped)."""

    def __init__(self, path: Path, *, resume: bool) -> None:
        self.path = path
        self._lock = threading.Lock()
        self.saved: dict[Key, Answer] = self._read() if resume else {}
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        # What was read is written back whole: a torn last line must not swallow the next.
        if self.saved:
            with path.open("w", encoding="utf-8") as out:
                out.writelines(_record(k, a) for k, a in self.saved.items())

    def _read(self) -> dict[Key, Answer]:
        from zoo.hubs.base import RemoteFile

        found: dict[Key, Answer] = {}
        try:
            lines = self.path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return found
        for line in lines:
            try:
                data = json.loads(line)
                if data.get("v") != CHECKPOINT_VERSION or data.get("status") not in _SAVED:
                    continue
                hub, endpoint, repo, revision = data["key"]
                key = Key(str(hub), str(endpoint), str(repo), revision)
                # Re-checked like a listing: the file is ours, but anyone could have written it.
                files, rejected = clean_listing(
                    RemoteFile(p, s, h) for p, s, h in data.get("files") or ()
                )
                found[key] = Answer(
                    data["status"],
                    usable_commit(data.get("commit")),
                    files,
                    tuple(str(r) for r in data.get("rejected") or ()) + rejected,
                    str(data.get("message") or ""),
                    resumed=True,
                )
            except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
                continue  # a torn or foreign line: that answer is asked again
        return found

    def save(self, key: Key, answer: Answer) -> None:
        if answer.status not in _SAVED:
            return
        line = _record(key, answer)
        with self._lock, self.path.open("a", encoding="utf-8") as out:
            out.write(line)
            out.flush()
            os.fsync(out.fileno())


def _record(key: Key, answer: Answer) -> str:
    record = {
        "v": CHECKPOINT_VERSION,
        "key": key.to_json(),
        "status": answer.status,
        "commit": answer.commit,
        "files": [[f.path, f.size, f.sha256] for f in answer.files],
        "rejected": list(answer.rejected),
        "message": answer.message,
    }
    return json.dumps(record, ensure_ascii=False) + "\n"


class _HubDown(Exception):
    """This hub already failed to answer: ask it nothing more in this run."""


class _NoAnswer(Exception):
    """The retries ran out without an answer."""


@dataclass
class Asker:
    """Gets the Answer to every Key, ``jobs`` at a time, each request after ``rate.wait()``."""

    hubs: Mapping[str, Hub]
    rate: RateLimit
    checkpoint: Checkpoint | None = None
    jobs: int = 4
    retries: int = 3
    backoff: float = 1.0
    # Why each hub that could not be reached was given up on (the first reason seen).
    down: dict[str, str] = field(default_factory=dict)
    requests: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def ask_all(self, keys: Sequence[Key]) -> dict[Key, Answer]:
        answers: dict[Key, Answer] = {}
        todo = []
        for key in dict.fromkeys(keys):
            saved = self.checkpoint.saved.get(key) if self.checkpoint is not None else None
            if saved is not None:
                answers[key] = saved
            else:
                todo.append(key)
        with ThreadPoolExecutor(max(1, self.jobs), thread_name_prefix="zoo-check") as pool:
            for key, answer in zip(todo, pool.map(self.ask, todo), strict=True):
                answers[key] = answer
        return answers

    def ask(self, key: Key) -> Answer:
        hub = self.hubs[key.hub]
        try:
            commit = self._call(key, lambda: hub.revision_commit(key.repo, key.revision))
            if commit is not None and usable_commit(commit) is None:
                return Answer(FAILED, message=f"the hub named an unusable commit {commit!r:.60}")
            # At the commit where there is one: the revision cannot move between the two
            # questions, and it is what a download of a locked source asks for.
            at = commit or key.revision
            listing = self._call(key, lambda: list(hub.list_files(key.repo, at)))
        except _HubDown:
            return Answer(UNREACHABLE, message=self.down.get(key.hub, ""))
        except _NoAnswer as error:
            with self._lock:
                self.down.setdefault(key.hub, str(error))
            return Answer(UNREACHABLE, message=str(error))
        except Exception as error:  # a hub plugin's bug is one problem, not a crash
            answer = _refusal(error, key)
        else:
            files, rejected = clean_listing(listing)
            answer = Answer(OK, commit, files, rejected)
        if self.checkpoint is not None:
            self.checkpoint.save(key, answer)
        return answer

    def _call(self, key: Key, call: Callable[[], T]) -> T:
        from zoo.hubs.base import HubError, HubUnreachableError

        last = ""
        for attempt in range(self.retries + 1):
            if key.hub in self.down:
                raise _HubDown
            self.rate.wait()
            with self._lock:
                self.requests += 1
            try:
                return call()
            except HubUnreachableError as error:
                last = str(error)
            except HubError as error:
                if not _TRANSIENT.search(str(error)):
                    raise
                last = str(error)
            if attempt < self.retries:
                # Exponential, with jitter so that the workers do not retry in step.
                jitter = 1 + random.random() / 2  # noqa: S311  # spacing retries, not secrets
                time.sleep(self.backoff * 2**attempt * jitter)
        raise _NoAnswer(last)


def _refusal(error: Exception, key: Key) -> Answer:
    """A definite answer from a HubError (not found), else FAILED with the one-line reason."""
    from zoo.hubs.base import HubError

    if not isinstance(error, HubError):
        text = f"{type(error).__name__}: {error}".splitlines()[0][:300]
        return Answer(FAILED, message=f"the {key.hub} hub plugin failed: {text}")
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    if "repository or revision not found" in text:
        # One 404 for both (ModelScope's listing): without a revision, the repository.
        return Answer(NO_REVISION if key.revision else NO_REPO, message=text)
    if "revision not found" in text:
        return Answer(NO_REVISION, message=text)
    if "repository not found" in text:
        return Answer(NO_REPO, message=text)
    return Answer(FAILED, message=text)
