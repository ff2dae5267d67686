"""``zoo download`` and ``zoo cache list/remove``: model files without launching anything.

``zoo download`` resolves exactly as ``zoo launch`` does (same options), then fetches the
plan's files (``zoo.hubs.download``); ``--dry-run`` lists hub, repository, revision, files and
bytes instead. Everything heavy is imported inside the commands.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

from zoo.cli.options import (
    ContextOption,
    EngineOption,
    FormatOption,
    HostProfileOption,
    HubOption,
    ModelArgument,
    OptInOption,
    QuantizationOption,
    SizeOption,
    model_request,
    planning_host,
)

if TYPE_CHECKING:
    from zoo.hubs.base import CacheEntry, FetchResult
    from zoo.hubs.download import FetchListing

COMMANDS: tuple[str, ...] = ("download", "cache")

CACHE_JSON_VERSION = 1


def download(
    model: ModelArgument,
    engine: EngineOption = None,
    format: FormatOption = None,
    size: SizeOption = None,
    quantization: QuantizationOption = None,
    hub: HubOption = None,
    context: ContextOption = None,
    host_profile: HostProfileOption = None,
    opt_in: OptInOption = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="List hub, repository, files and bytes; fetch nothing."),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress output.")] = False,
) -> None:
    """Fetch the files `zoo launch` would use for MODEL, without launching it."""
    from zoo import launch

    request = model_request(model, engine, format, size, quantization, hub, context)
    plan = launch.plan(request, host=planning_host(host_profile, opt_in))
    if dry_run:
        listing = launch.describe_download(plan)
        if as_json:
            typer.echo(json.dumps(listing.to_json(), indent=2))
        else:
            typer.echo(render_listing(listing))
        return
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
    """List cached models: hub, repository, revision, files and bytes."""
    entries = _entries(hub)
    if as_json:
        typer.echo(
            json.dumps(
                {"version": CACHE_JSON_VERSION, "entries": [_entry_json(e) for e in entries]},
                indent=2,
            )
        )
        return
    if not entries:
        typer.echo("no cached models")
        return
    from zoo.hubs.progress import human_bytes

    for e in entries:
        typer.echo(
            f"{e.hub:<12} {e.repo}  {e.revision[:12]}  {len(e.files)} files  {human_bytes(e.bytes)}"
        )


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


def _entry_json(e: CacheEntry) -> dict[str, object]:
    return {
        "hub": e.hub,
        "repo": e.repo,
        "revision": e.revision,
        "root": str(e.root),
        "files": list(e.files),
        "bytes": e.bytes,
    }


def register(app: typer.Typer) -> None:
    app.command("download")(download)
    app.add_typer(cache_app, name="cache")
