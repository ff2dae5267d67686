"""Which zoo models the hubs' caches hold: cached files mapped back to catalog families.

A hub's cache knows repositories and files, the catalog knows families; ``zoo cache list``
and ``zoo rm`` need the link. Every (family, spec, source, quantization) of the catalog makes a
``Claim`` on one repository of one hub, with the same file selection a plan makes
(``zoo.resolve.file_selection``): a claim that names exact files (GGUF files and split parts,
a projector, a file in a PyPI wheel, or what an archive among them was unpacked into) owns
those files; a claim on a whole model folder owns what ``zoo.hubs.select`` would take from the
cached listing (everything, when that rule finds no model there: a half-finished download).

Removal (``plan_removal``) takes the files the selected claims own and keeps those another
claim still needs whose files are all cached (another family's, or another quantization's, that
would launch from the cache today), unless asked to take shared files too; and it refuses
files a live instance was launched from (``zoo.runtime.state`` records family, format and
quantization). ``remove`` deletes whole revisions through the hub (``Hub.remove``) and single
files of a shared revision itself (the link, and the blob it points to when nothing else
does).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from zoo.errors import NotFoundError, UsageError
from zoo.hubs.base import CacheEntry, Hub, HubError, RemoteFile

if TYPE_CHECKING:
    from zoo.catalog.catalog import Catalog
    from zoo.catalog.model import Spec
    from zoo.runtime.state import Instance

# Instance statuses whose processes are alive (``zoo.runtime.state.STATUSES``).
LIVE = ("running", "starting", "orphaned")


@dataclass(frozen=True)
class Claim:
    """One quantization of one spec of a family, on one hub's repository."""

    family: str
    size: float
    size_tag: str  # as a model reference spells it: "8b", "30b-a3b"
    format: str
    quantization: str
    hub: str
    repo: str
    exact: tuple[str, ...] | None  # None: a model folder, chosen from the listing
    exclude: tuple[str, ...] = ()
    active: float | None = None  # MoE: billions active per token
    # How many sizes the family has, and quantizations the spec has: a reference names the
    # size and the quantization only where they tell the choices apart.
    sizes: int = 1
    quantizations: int = 1

    def key(self) -> tuple[str, str]:
        return self.hub, self.repo.casefold()

    def owns(self, entry: CacheEntry) -> frozenset[str]:
        """The files of ``entry`` that are this claim's."""
        if self.exact is None:
            return _selected(entry, self.exclude)
        return frozenset(f for f in entry.files if any(_from(f, path) for path in self.exact))

    def complete_in(self, entry: CacheEntry) -> bool:
        """Whether every file this claim needs is in ``entry`` (it would launch from cache)."""
        if self.exact is None:
            return bool(self.owns(entry))
        return all(any(_from(f, path) for f in entry.files) for path in self.exact)

    def reference(self) -> str:
        """The model reference that names these files (``zoo rm`` takes it): the family, and
        a tag with the size where the family has several and the quantization where the spec
        has several and the files are that quantization's (a model folder serves every
        quantization alike)."""
        words = [self.size_tag] if self.sizes > 1 else []
        if self.exact is not None and self.quantizations > 1:
            words.append(self.quantization.lower())
        return f"{self.family}:{'-'.join(words)}" if words else self.family


def _from(cached: str, requested: str) -> bool:
    """Whether the cached file ``cached`` is the requested ``requested`` or unpacked from it."""
    if cached == requested:
        return True
    from zoo.hubs.unpack import folder_for, is_archive

    return is_archive(requested) and cached.startswith(folder_for(requested) + "/")


def _selected(entry: CacheEntry, exclude: tuple[str, ...]) -> frozenset[str]:
    from zoo.hubs.select import select_weights

    listing = [RemoteFile(f) for f in entry.files]
    try:
        chosen = select_weights(listing, hub=entry.hub, repo=entry.repo, exclude=exclude)
    except HubError:  # no config or weights yet: a partial download, all of it the model's
        return frozenset(entry.files)
    return frozenset(f.path for f in chosen)


def _size_tag(spec: Spec) -> str:
    from zoo.reference import spec_tag

    return spec_tag(spec)


def claims(catalog: Catalog, hubs: Mapping[str, Hub] | None) -> list[Claim]:
    """Every claim the catalog makes, with the file selection plans make."""
    from zoo.resolve import file_selection

    found: list[Claim] = []
    for family in catalog:
        sizes = len({s.size for s in family.specs})
        for spec in family.specs:
            for source in spec.sources:
                for q in source.quantizations:
                    selection = file_selection(spec, source, q, hubs)
                    found.append(
                        Claim(
                            family=family.name,
                            size=spec.size,
                            size_tag=_size_tag(spec),
                            format=spec.format,
                            quantization=q,
                            hub=source.hub,
                            repo=source.repo_for(q),
                            exact=selection.exact,
                            exclude=selection.exclude,
                            active=spec.activated_size,
                            sizes=sizes,
                            quantizations=len(spec.quantizations),
                        )
                    )
    return found


@dataclass(frozen=True)
class Part:
    """Files of one cached revision that the same claims own (a row of ``zoo cache list``)."""

    entry: CacheEntry
    files: tuple[str, ...]
    owners: tuple[Claim, ...]  # empty: no family of the catalog names these files
    bytes: int

    def label(self) -> str:
        return owner_label(self.owners)


def owner_label(owners: Sequence[Claim]) -> str:
    """The references of ``owners`` ("qwen3:8b-q4_k_m, qwen3:8b-q8_0"); "-" for none. Files
    every quantization of a spec names (a multimodal projector) are the spec's, unqualified."""
    if not owners:
        return "-"
    groups: dict[tuple[str, float, str], list[Claim]] = {}
    for claim in owners:
        groups.setdefault((claim.family, claim.size, claim.format), []).append(claim)
    words: list[str] = []
    for group in groups.values():
        first = group[0]
        if first.quantizations > 1 and len({c.quantization for c in group}) >= first.quantizations:
            words.append(replace(first, exact=None).reference())
        else:
            words.extend(c.reference() for c in group)
    return ", ".join(dict.fromkeys(words))


def _size(entry: CacheEntry, path: str) -> int:
    try:
        return (entry.root / path).stat().st_size
    except OSError:
        return 0


def _index(all_claims: Iterable[Claim]) -> dict[tuple[str, str], list[Claim]]:
    index: dict[tuple[str, str], list[Claim]] = {}
    for claim in all_claims:
        index.setdefault(claim.key(), []).append(claim)
    return index


def parts(entries: Sequence[CacheEntry], all_claims: Sequence[Claim]) -> list[Part]:
    """Each cached revision split by owner: one part per set of claims owning the same files."""
    index = _index(all_claims)
    found: list[Part] = []
    for entry in entries:
        owners: dict[str, list[Claim]] = {f: [] for f in entry.files}
        for claim in index.get((entry.hub, entry.repo.casefold()), ()):
            for path in claim.owns(entry):
                owners[path].append(claim)
        grouped: dict[tuple[Claim, ...], list[str]] = {}
        for path, owning in owners.items():
            grouped.setdefault(tuple(owning), []).append(path)
        if not entry.files:
            grouped[()] = []
        for group, files in sorted(grouped.items(), key=lambda item: owner_label(item[0])):
            size = entry.bytes if len(grouped) == 1 else sum(_size(entry, f) for f in files)
            found.append(Part(entry, tuple(sorted(files)), group, size))
    return found


# -- removal -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Doomed:
    """What ``zoo rm`` deletes from one cached revision, and what it keeps and why."""

    entry: CacheEntry
    files: tuple[str, ...]
    bytes: int
    owners: tuple[Claim, ...]
    kept: Mapping[str, tuple[Claim, ...]] = field(default_factory=dict)

    @property
    def whole(self) -> bool:
        return set(self.files) == set(self.entry.files)


@dataclass(frozen=True)
class Wanted:
    """What ``zoo rm`` was asked for: a family and the filters that narrow it."""

    model: str
    format: str | None = None
    size: float | None = None
    active: float | None = None
    quantization: str | None = None
    hub: str | None = None

    def describe(self) -> str:
        words = [self.model]
        for flag, value in (
            ("--format", self.format),
            ("--size", self.size),
            ("--quantization", self.quantization),
            ("--hub", self.hub),
        ):
            if value is not None:
                words.append(f"{flag} {value}")
        return " ".join(words)


def wanted(
    model: str,
    format: str | None,
    size: str | float | None,
    quantization: str | None,
    hub: str | None,
) -> Wanted:
    """A model reference (``qwen3:8b``) and the flags, as ``zoo rm`` takes them: without the
    settings file's launch defaults, since what is removed follows what is cached."""
    from zoo import reference as ref
    from zoo.registry import catalog_with_plugins

    hub = None if hub == "auto" else hub
    # The tag read as `zoo launch` and the gateway read it (against the family's builds).
    found = ref.reference_with_flags(
        model, size, quantization, lambda name: catalog_with_plugins().get(name)
    )
    return Wanted(found.name, format, found.size, found.active, found.quantization, hub)


def selected_claims(catalog: Catalog, all_claims: Sequence[Claim], request: Wanted) -> list[Claim]:
    """The claims of ``request``'s family its filters (format, size, quantization, hub)
    select; an unknown name, and a filter the family has nothing for, are errors."""
    from zoo import quantization as quant
    from zoo import reference as ref

    family = catalog.get(request.model)
    mine = [c for c in all_claims if c.family == family.name]

    def same(a: float | None, b: float | None) -> bool:
        return b is None or (a is not None and ref.same_size(a, b))

    filters: list[tuple[str, object, Callable[[Claim], str], Callable[[Claim], bool]]] = [
        ("format", request.format, lambda c: c.format, lambda c: c.format == request.format),
        (
            "size",
            request.size,
            lambda c: c.size_tag,
            lambda c: same(c.size, request.size) and same(c.active, request.active),
        ),
        (
            "quantization",
            request.quantization,
            lambda c: c.quantization,
            lambda c: quant.same(c.quantization, request.quantization or ""),
        ),
        ("source on hub", request.hub, lambda c: c.hub, lambda c: c.hub == request.hub),
    ]
    for what, value, shown, keep in filters:
        if value is None:
            continue
        kept = [c for c in mine if keep(c)]
        if not kept:
            has = ", ".join(dict.fromkeys(shown(c) for c in mine))
            raise UsageError(f"{family.name} has no {what} {value} for that request (has: {has})")
        mine = kept
    return mine


def plan_removal(
    entries: Sequence[CacheEntry],
    all_claims: Sequence[Claim],
    selected: Sequence[Claim],
    *,
    include_shared: bool = False,
) -> list[Doomed]:
    """What removing ``selected`` deletes: their files, less those another claim needs whose
    files are all cached (unless ``include_shared``)."""
    index = _index(all_claims)
    chosen = set(selected)
    found: list[Doomed] = []
    for entry in entries:
        here = index.get((entry.hub, entry.repo.casefold()), [])
        mine = [c for c in here if c in chosen]
        owned: dict[str, list[Claim]] = {}
        for claim in mine:
            for path in claim.owns(entry):
                owned.setdefault(path, []).append(claim)
        if not owned:
            continue
        kept: dict[str, tuple[Claim, ...]] = {}
        if not include_shared:
            for other in here:
                if other in chosen or not other.complete_in(entry):
                    continue
                for path in other.owns(entry) & owned.keys():
                    kept[path] = (*kept.get(path, ()), other)
        files = tuple(sorted(p for p in owned if p not in kept))
        others = set(entry.files).difference(*(c.owns(entry) for c in here))
        if not kept and others and set(files) | others == set(entry.files):
            # What is left no zoo model names (a README, a file another tool fetched): the
            # revision goes whole, listed, rather than staying behind as a husk.
            files = tuple(sorted(entry.files))
        owners = tuple(dict.fromkeys(c for p in files for c in owned.get(p, ())))
        found.append(
            Doomed(
                entry,
                files,
                sum(_size(entry, f) for f in files),
                owners,
                dict(sorted(kept.items())),
            )
        )
    return found


def in_use(
    doomed: Sequence[Doomed], all_claims: Sequence[Claim], instances: Sequence[Instance]
) -> list[tuple[Instance, str]]:
    """Live instances launched from files ``doomed`` deletes, each with one such file."""
    index = _index(all_claims)
    found: list[tuple[Instance, str]] = []
    for instance in instances:
        if instance.status not in LIVE:
            continue
        for d in doomed:
            users = [
                c
                for c in index.get((d.entry.hub, d.entry.repo.casefold()), ())
                if c.family == instance.model
                and c.format == instance.format
                and c.quantization == instance.quantization
                # The size where the record has it (an older zoo's records do not: every size).
                and (instance.size is None or abs(c.size - instance.size) < 1e-9)
            ]
            hit = next((f for c in users for f in sorted(c.owns(d.entry)) if f in d.files), None)
            if hit is not None:
                found.append((instance, f"{d.entry.repo}/{hit}"))
                break
    return found


def remove(doomed: Sequence[Doomed], hubs: Mapping[str, Hub]) -> int:
    """Delete what ``doomed`` lists; returns the bytes freed (as measured before)."""
    freed = 0
    whole: dict[tuple[str, str], list[Doomed]] = {}
    for d in doomed:
        if not d.files:
            continue
        if d.whole:
            whole.setdefault((d.entry.hub, d.entry.repo), []).append(d)
        else:
            _delete_files(d.entry, d.files)
        freed += d.bytes
    for (hub_name, repo), revisions in whole.items():
        hub = hubs[hub_name]
        cached = {e.revision for e in hub.cache_entries() if e.repo == repo}
        if cached <= {d.entry.revision for d in revisions}:
            hub.remove(repo)  # every revision goes: the hub clears partial downloads too
        else:
            for d in revisions:
                hub.remove(repo, d.entry.revision)
    return freed


def _delete_files(entry: CacheEntry, files: Sequence[str]) -> None:
    """Delete single files of a revision other files of which stay.

    A file that is a link into the repository's storage (the Hugging Face layout: snapshots
    link to content-addressed blobs) takes its blob with it unless another snapshot links to
    the same blob; a link pointing anywhere else loses only the link.
    """
    from zoo.hubs.safety import safe_join

    storage = entry.root.parent.parent.resolve()
    for relative in files:
        path = safe_join(entry.root, relative)
        target = path.resolve() if path.is_symlink() else None
        path.unlink(missing_ok=True)
        if target is not None and storage in target.parents and not _linked(storage, target):
            target.unlink(missing_ok=True)
        _prune(path.parent, entry.root)


def _linked(storage: Path, blob: Path) -> bool:
    snapshots = storage / "snapshots"
    if not snapshots.is_dir():
        return False
    return any(p.is_symlink() and p.resolve() == blob for p in snapshots.rglob("*"))


def _prune(folder: Path, root: Path) -> None:
    """Remove folders emptied by a deletion, up to (not including) the revision's root."""
    while folder != root and root in folder.parents:
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent


def nothing_cached(request: Wanted) -> NotFoundError:
    return NotFoundError(
        f"nothing to remove: no cached files of {request.describe()}",
        hint="see `zoo cache list`",
    )
