"""``zoo pull``, ``zoo rm`` and ``zoo cache list/remove``: model files without launching.

``zoo pull`` (``zoo download`` is the same command) resolves exactly as ``zoo launch`` does
(same options), then fetches the plan's files (``zoo.hubs.download``); ``--dry-run`` lists hub,
repository, revision, files and bytes instead. ``zoo rm`` and ``zoo cache list`` go from hub
caches to zoo names and back through ``zoo.hubs.cache_index``. Everything heavy is imported
inside the commands.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from zoo.cli.options import (
    ContextOption,
    EngineOption,
    FormatOption,
    HostProfileOption,
    HubOption,
    MinSpeedOption,
    ModelArgument,
    OptInOption,
    QuantizationOption,
    SizeOption,
    model_request,
    planning_host,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from zoo.catalog.catalog import Catalog
    from zoo.hubs.base import CacheEntry, FetchResult, Hub
    from zoo.hubs.cache_index import Claim, Doomed, Part
    from zoo.hubs.download import FetchListing

COMMANDS: tuple[str, ...] = ("pull", "download", "rm", "cache")

CACHE_JSON_VERSION = 1


def pull(
    model: ModelArgument,
    engine: EngineOption = None,
    format: FormatOption = None,
    size: SizeOption = None,
    quantization: QuantizationOption = None,
    hub: HubOption = None,
    context: ContextOption = None,
    min_speed: MinSpeedOption = None,
    host_profile: HostProfileOption = None,
    opt_in: OptInOption = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="List hub, repository, files and bytes; fetch nothing."),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress output.")] = False,
) -> None:
    """Download the files `zoo launch` would use for MODEL, without launching it."""
    from zoo import launch

    request = model_request(
        model, engine, format, size, quantization, hub, context, min_speed=min_speed
    )
    plan = launch.plan(request, host=planning_host(host_profile, opt_in))
    if dry_run:
        listing = launch.describe_download(plan)
        if as_json:
            typer.echo(json.dumps(listing.to_json(), indent=2))
        else:
            typer.echo(render_listing(listing))
        return
    if not (quiet or as_json):
        typer.echo(launch.plan_line(plan), err=True)  # what and where, before any byte
    result = launch.fetch(plan, progress=not (quiet or as_json))
    if as_json:
        typer.echo(json.dumps(result_json(result), indent=2))
    else:
        typer.echo(render_result(result))


def render_listing(listing: FetchListing) -> str:
    from zoo.hubs.progress import human_bytes

    state = "already cached" if listing.cached else "to download"
    lines = [
        f"hub       {listing.hub} ({listing.reason})",
        f"repo      {listing.repo}",
        f"revision  {listing.revision or 'default branch'}",
    ]
    if listing.root:  # where the files land (a PyPI archive: the folder it is unpacked into)
        lines.append(f"root      {listing.root}")
    lines.append(f"files     {len(listing.files)} ({human_bytes(listing.bytes)}, {state})")
    lines += [f"  {f.path}  {human_bytes(f.size)}" for f in listing.files]
    lines += [f"skipped   {s}" for s in listing.skipped]
    return "\n".join(lines)


def result_json(result: FetchResult) -> dict[str, object]:
    return {
        "version": 1,
        "hub": result.hub,
        "repo": result.repo,
        "revision": result.revision,
        "root": str(result.root),
        "files": [str(p) for p in result.files],
        "bytes_downloaded": result.bytes_downloaded,
        "reason": result.reason,
    }


def render_result(result: FetchResult) -> str:
    from zoo.hubs.progress import human_bytes

    fetched = (
        f"downloaded {human_bytes(result.bytes_downloaded)}"
        if result.bytes_downloaded
        else "nothing downloaded (cached)"
    )
    lines = [f"{result.repo} from {result.hub} ({result.reason}): {fetched}"]
    lines += [f"  {p}" for p in result.files]
    return "\n".join(lines)


cache_app = typer.Typer(
    name="cache",
    help="Models in the hubs' caches.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@cache_app.command("list")
def cache_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print the entries as JSON.")] = False,
    hub: Annotated[str | None, typer.Option("--hub", help="Only this hub's cache.")] = None,
) -> None:
    """List cached models: zoo model, hub, repository, revision and size, with a total."""
    from zoo.hubs import cache_index

    entries = _entries(hub)
    parts = cache_index.parts(entries, cache_index.claims(*_catalog_and_hubs())) if entries else []
    total = sum(e.bytes for e in entries)
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "version": CACHE_JSON_VERSION,
                    "entries": [_entry_json(e, parts) for e in entries],
                    "bytes": total,
                },
                indent=2,
            )
        )
        return
    if not entries:
        typer.echo("no cached models")
        return
    from zoo.cli.texttable import Column, render
    from zoo.hubs.progress import human_bytes

    columns = [
        Column("MODEL"),
        Column("HUB", wrap=False),
        Column("REPOSITORY"),
        Column("REVISION", wrap=False),
        Column("SIZE", wrap=False, right=True),
    ]
    rows = [
        [p.label(), p.entry.hub, p.entry.repo, p.entry.revision[:12], human_bytes(p.bytes)]
        for p in parts
    ]
    typer.echo(render(columns, rows))
    revisions = f"{len(entries)} cached revision{'s' if len(entries) != 1 else ''}"
    typer.echo(f"total {human_bytes(total)} in {revisions}")


def _catalog_and_hubs() -> tuple[Catalog, Mapping[str, Hub]]:
    from zoo.plugins import get_hubs
    from zoo.registry import catalog_with_plugins

    return catalog_with_plugins(), get_hubs()


def rm(
    model: ModelArgument,
    format: FormatOption = None,
    size: SizeOption = None,
    quantization: QuantizationOption = None,
    hub: Annotated[
        str | None, typer.Option("--hub", help="Only files in this hub's cache.")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Remove without asking.")] = False,
    include_shared: Annotated[
        bool,
        typer.Option(
            "--include-shared",
            help="Also remove files another cached model (or quantization) needs too.",
        ),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List what would be removed; remove nothing.")
    ] = False,
) -> None:
    """Remove MODEL's files from the hub caches: every cached quantization, or those a tag
    (NAME:TAG) or the options select. Lists them and asks first (on a terminal)."""
    from zoo.errors import UsageError
    from zoo.hubs import cache_index
    from zoo.runtime import state

    request = cache_index.wanted(model, format, size, quantization, hub)
    catalog, hubs = _catalog_and_hubs()
    claims = cache_index.claims(catalog, hubs)
    selected = cache_index.selected_claims(catalog, claims, request)
    doomed = cache_index.plan_removal(
        _entries(None), claims, selected, include_shared=include_shared
    )
    if not any(d.files for d in doomed):
        if any(d.kept for d in doomed):
            typer.echo(render_kept(doomed))
            raise UsageError(
                f"nothing to remove: every cached file of {request.describe()} is needed by "
                "another cached model",
                hint="--include-shared removes them anyway",
            )
        raise cache_index.nothing_cached(request)
    for instance, path in cache_index.in_use(doomed, claims, state.list_instances()):
        raise UsageError(
            f"{path} is in use by instance {instance.id} ({instance.model}, {instance.status}, "
            f"{instance.endpoint}): stop it first",
            hint=f"zoo stop {instance.id}",
        )
    typer.echo(render_removal(doomed))
    if dry_run:
        return
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError(
                "not removing without confirmation: stdin is not a terminal",
                hint="pass --yes to remove without asking",
            )
        if not typer.confirm("Remove these files?", default=False):
            typer.echo("nothing removed")
            raise typer.Exit(1)
    from zoo.hubs.progress import human_bytes

    freed = cache_index.remove(doomed, hubs)
    count = sum(len(d.files) for d in doomed)
    typer.echo(f"removed {count} file{'s' if count != 1 else ''} ({human_bytes(freed)})")


def render_removal(doomed: Sequence[Doomed]) -> str:
    """The files ``zoo rm`` will delete (model, hub, file, size), then what it keeps."""
    from zoo.cli.texttable import Column, render
    from zoo.hubs.cache_index import owner_label
    from zoo.hubs.progress import human_bytes

    columns = [
        Column("MODEL"),
        Column("HUB", wrap=False),
        Column("FILE"),
        Column("SIZE", wrap=False, right=True),
    ]
    rows = [
        [
            owner_label([c for c in d.owners if c in _owners_of(d, path)]),
            d.entry.hub,
            f"{d.entry.repo}/{path}",
            human_bytes(_file_size(d, path)),
        ]
        for d in doomed
        for path in d.files
    ]
    total = sum(d.bytes for d in doomed)
    count = sum(len(d.files) for d in doomed)
    lines = [
        render(columns, rows),
        f"to remove: {count} file{'s' if count != 1 else ''}, {human_bytes(total)}",
    ]
    if any(d.kept for d in doomed):
        lines.append(render_kept(doomed))
    return "\n".join(lines)


def render_kept(doomed: Sequence[Doomed]) -> str:
    from zoo.hubs.cache_index import owner_label

    lines = ["kept (another cached model needs them; --include-shared removes them too):"]
    lines += [
        f"  {d.entry.repo}/{path}  (needed by {owner_label(users)})"
        for d in doomed
        for path, users in d.kept.items()
    ]
    return "\n".join(lines)


def _owners_of(d: Doomed, path: str) -> set[Claim]:
    return {c for c in d.owners if path in c.owns(d.entry)}


def _file_size(d: Doomed, path: str) -> int:
    try:
        return (d.entry.root / path).stat().st_size
    except OSError:
        return 0


@cache_app.command("remove")
def cache_remove(
    repo: Annotated[str, typer.Argument(help="Repository id as `zoo cache list` shows it.")],
    hub: Annotated[str | None, typer.Option("--hub", help="The hub whose cache it is in.")] = None,
    revision: Annotated[
        str | None, typer.Option("--revision", help="Only this revision (default: all).")
    ] = None,
) -> None:
    """Delete a cached model (all its revisions, or one) from a hub's cache."""
    from zoo.errors import NotFoundError, UsageError
    from zoo.hubs.progress import human_bytes

    holders = sorted({e.hub for e in _entries(hub) if e.repo == repo})
    if not holders:
        raise NotFoundError(
            f"{repo} is not in {'the ' + hub if hub else 'any'} hub cache",
            hint="see `zoo cache list`",
        )
    if len(holders) > 1:
        raise UsageError(f"{repo} is cached by {', '.join(holders)}: choose one with --hub")
    from zoo.plugins import get_hubs

    removed = get_hubs()[holders[0]].remove(repo, revision)
    if not removed:
        raise NotFoundError(f"{repo} has no revision {revision!r} in the {holders[0]} cache")
    freed = sum(e.bytes for e in removed)
    typer.echo(
        f"removed {repo} from {holders[0]} ({len(removed)} revision(s), {human_bytes(freed)})"
    )


def _entries(hub: str | None) -> list[CacheEntry]:
    from zoo.errors import NotFoundError
    from zoo.plugins import get_hubs

    hubs = get_hubs()
    if hub is not None and hub not in hubs:
        raise NotFoundError(f"unknown hub {hub!r}", hint=f"hubs: {', '.join(sorted(hubs))}")
    entries: list[CacheEntry] = []
    for name, item in sorted(hubs.items()):
        if hub in (None, name):
            entries.extend(item.cache_entries())
    return entries


def _entry_json(e: CacheEntry, parts: Sequence[Part]) -> dict[str, object]:
    return {
        "hub": e.hub,
        "repo": e.repo,
        "revision": e.revision,
        "root": str(e.root),
        "files": list(e.files),
        "bytes": e.bytes,
        # Which zoo models the files are (an empty "models" list: none of the catalog's).
        "parts": [
            {
                "model": p.label() if p.owners else None,
                "models": [
                    {
                        "family": c.family,
                        "size": c.size_tag,
                        "format": c.format,
                        "quantization": c.quantization,
                    }
                    for c in p.owners
                ],
                "files": list(p.files),
                "bytes": p.bytes,
            }
            for p in parts
            if p.entry is e
        ],
    }


def register(app: typer.Typer) -> None:
    # One command, two names: `pull` as Ollama users type it, `download` as zoo had it.
    app.command("pull")(pull)
    app.command("download", help="Alias of `zoo pull`.")(pull)
    app.command("rm")(rm)
    app.add_typer(cache_app, name="cache")
