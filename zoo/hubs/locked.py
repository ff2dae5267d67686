"""What a lock file (``zoo.catalog.lock``) says a plan's source downloads, with no request.

``zoo catalog check --fix`` records, per repository, the commit the spec's revision named and
the files zoo downloads from it (for listing-based formats: the weight selection, remote code
included). While the plan fetches that commit, those facts are the hub's own answer: the dry
run takes file sizes from them (offline too), and the download checks what it fetched
against them.
"""

from __future__ import annotations

from pathlib import Path

from zoo.catalog.lock import LockedRepo
from zoo.errors import ZooError
from zoo.hubs.base import FetchResult, HubError, RemoteFile
from zoo.hubs.select import select_weights
from zoo.plan import FileSelection, Plan


def plan_lock(plan: Plan, hub: str) -> LockedRepo | None:
    """The lock entry of the plan's repository on ``hub``, if the plan fetches its commit."""
    planned = next((s for s in plan.sources if s.hub == hub), None)
    source = plan.spec.source(hub)
    if planned is None or source is None:
        return None
    locked = source.locked.get(planned.repo)
    if locked is None or locked.hub != hub or locked.commit != planned.revision:
        return None
    return locked


def plan_recorded_bytes(plan: Plan, hub: str) -> int | None:
    """What the plan downloads from ``hub`` in bytes, as the lock recorded it (no request);
    None when the repository was not checked or the lock lacks one of the files."""
    locked = plan_lock(plan, hub)
    planned = next((s for s in plan.sources if s.hub == hub), None)
    if locked is None or planned is None:
        return None
    files = locked_files(locked, planned.selection, hub=hub)
    return None if files is None else sum(f.size or 0 for f in files)


def locked_files(
    locked: LockedRepo, selection: FileSelection, *, hub: str
) -> tuple[RemoteFile, ...] | None:
    """The files ``selection`` takes, sizes and sha256 from the lock; None when the lock
    lacks one of them (an exact name it never recorded, or no weight set to choose)."""
    listing = [RemoteFile(p, f.size, f.sha256) for p, f in sorted(locked.files.items())]
    if selection.exact is not None:
        by_path = {f.path: f for f in listing}
        if not selection.exact or any(p not in by_path for p in selection.exact):
            return None
        return tuple(by_path[p] for p in selection.exact)
    try:
        return select_weights(
            listing,
            hub=hub,
            repo=locked.repo,
            exclude=selection.exclude,
            remote_code=selection.remote_code,
        )
    except ZooError:
        return None


def check_against_lock(locked: LockedRepo, result: FetchResult) -> None:
    """Check fetched files against the sizes and sha256 the lock recorded.

    Cheap where the hub already checked the same sha256 (``zoo.hubs.verify`` keeps a stamp);
    it hashes a file once where the hub gave no sha256. A mismatch is an error, not a repair:
    the hub served the pinned commit, so the lock (or the hub) is wrong and a person decides.
    """
    from zoo.hubs.verify import verify_file

    for path in result.files:
        name = _repo_path(result.root, path)
        recorded = locked.files.get(name) if name is not None else None
        if recorded is None:
            continue
        problem = verify_file(path, recorded.size, recorded.sha256)
        if problem is not None:
            raise HubError(
                f"{result.hub}: {result.repo}/{name} {problem} (recorded by `zoo catalog check`"
                f" on {locked.checked}): the hub or the lock is wrong; check it again with"
                " `zoo catalog check --fix`"
            )


def _repo_path(root: Path, path: Path) -> str | None:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return None
