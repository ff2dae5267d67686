"""``zoo catalog check``: ask the hubs whether the catalog's sources are what the specs say.

One line per problem in ``zoo validate``'s ``file:line:col`` form, then a summary; exit 1 when
there are problems. ``--fix`` writes the families' lock files, ``--unverified`` lists the facts
marked unverified (no network). The engine is ``zoo.catalog.check``, imported in the command.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

if TYPE_CHECKING:
    from zoo.catalog.model import Family
    from zoo.catalog.problems import Problem
    from zoo.catalog.unverified import Unverified

    Shown = TypeVar("Shown", Problem, Unverified)

# Top-level command names this module adds (lets the CLI skip loading plugins for them).
COMMANDS: tuple[str, ...] = ("catalog",)

JSON_VERSION = 1


def check(
    families: Annotated[
        list[str] | None,
        typer.Argument(help="Families to check (default: every family).", show_default=False),
    ] = None,
    hub: Annotated[
        list[str] | None,
        typer.Option(
            "--hub",
            help="Hub to ask (repeatable; default: every hub whose listing is cheap).",
            show_default=False,
        ),
    ] = None,
    fix: Annotated[
        bool,
        typer.Option(
            "--fix",
            help="Write each checked family's lock (locks/<family>.json): revisions pinned to "
            "commits, file sizes and hashes, for repositories without problems.",
        ),
    ] = False,
    unverified: Annotated[
        bool,
        typer.Option("--unverified", help="List the facts marked unverified (no network)."),
    ] = False,
    jobs: Annotated[int, typer.Option("--jobs", min=1, max=64, help="Requests in flight.")] = 4,
    rate: Annotated[
        float, typer.Option("--rate", min=0.0, help="Requests per second, all hubs (0: no limit).")
    ] = 5.0,
    resume: Annotated[
        bool,
        typer.Option("--resume", help="Reuse the answers an earlier, interrupted run saved."),
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON (stable, versioned).")
    ] = False,
) -> None:
    """Check every source against its hub: repository, revision, files, split parts, sizes."""
    from zoo.registry import catalog_with_plugins

    catalog = catalog_with_plugins()
    broken = sorted({p.path for p in catalog.errors})
    if broken:
        typer.echo(
            f"zoo: {len(broken)} spec file(s) have errors and were not checked "
            f"(first: {broken[0]}); run `zoo validate` for details",
            err=True,
        )
    chosen = (
        [catalog.get(name) for name in dict.fromkeys(families)]
        if families
        else list(catalog.families.values())
    )
    if unverified:
        _unverified(chosen, as_json)
        return
    from zoo.catalog.check import CheckOptions, check_families
    from zoo.plugins import get_hubs

    options = CheckOptions(hubs=tuple(hub or ()), fix=fix, jobs=jobs, rate=rate, resume=resume)
    report = check_families(chosen, get_hubs(), options)
    problems = [_shown(p) for p in report.problems]
    if as_json:
        document = {"version": JSON_VERSION, **report.to_json()}
        document["problems"] = [p.to_json() for p in problems]
        typer.echo(json.dumps(document, indent=2, ensure_ascii=False))
    else:
        for problem in problems:
            typer.echo(str(problem))
        for line in report.written:
            typer.echo(_one_line(line))
        resumed = f" ({report.resumed} answers reused)" if report.resumed else ""
        typer.echo(report.summary() + resumed)
    if problems or report.write_failures:
        raise typer.Exit(1)


def _unverified(families: list[Family], as_json: bool) -> None:
    from zoo.catalog.unverified import unverified_facts

    found = unverified_facts(families)
    if as_json:
        document = {"version": JSON_VERSION, "unverified": [u.to_json() for u in found]}
        typer.echo(json.dumps(document, indent=2, ensure_ascii=False))
        return
    for item in found:
        typer.echo(str(_shown(item)))
    names = len({u.family for u in found})
    typer.echo(f"{len(found)} unverified marks in {names} families (not yet checked against a hub)")


def _shown(item: Shown) -> Shown:
    """``item`` (a Problem or an Unverified) with its path shortened like `zoo validate`."""
    from dataclasses import replace

    return replace(item, path=_display(item.path))


def _display(path: str) -> str:
    """Paths under the working folder as relative paths (clickable, short), others as given
    (a hub's address among them)."""
    if "://" in path:
        return path
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except (ValueError, OSError, RuntimeError):
        return path


def _one_line(text: str) -> str:
    from zoo.catalog.problems import one_line

    return one_line(text)


def register(app: typer.Typer) -> None:
    group = typer.Typer(
        name="catalog",
        help="Check the catalog against the hubs.",
        no_args_is_help=True,
        rich_markup_mode=None,
    )
    group.command("check")(check)
    app.add_typer(group, name="catalog")
