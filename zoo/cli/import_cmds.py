"""``zoo import xinference FILE`` and ``zoo export xinference``: other registries, both ways.

The conversion lives in ``zoo.importers``; this module only parses options and prints. Notes
on what a format could not hold go to stderr (one line each, prefixed with the family), the
summary to stdout, so scripts can keep the data and still see the report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

# Top-level command names this module adds (lets the CLI skip loading plugins for them).
COMMANDS: tuple[str, ...] = ("import", "export")

import_app = typer.Typer(
    help="Convert another registry's models into zoo spec files.", no_args_is_help=True
)
export_app = typer.Typer(
    help="Write the catalog in another registry's format.", no_args_is_help=True
)


def _print_notes(notes: dict[str, list[str]]) -> None:
    for name in sorted(notes):
        for note in notes[name]:
            typer.echo(f"{name}: {note}", err=True)


@import_app.command("xinference")
def import_xinference(
    file: Annotated[Path, typer.Argument(help="Xinference's llm_family.json.")],
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Folder for the spec files (default: your catalog folder).",
        ),
    ] = None,
    commit: Annotated[
        str | None,
        typer.Option(
            "--commit",
            help="Upstream commit the file comes from, for the header "
            "(default: read from a SOURCE.md beside FILE).",
        ),
    ] = None,
) -> None:
    """Write one spec file per Xinference model family; hand-written families win."""
    from zoo.importers.xinference import import_registry
    from zoo.paths import user_catalog_dir

    target = out if out is not None else user_catalog_dir()
    report = import_registry(file, target, commit=commit)
    _print_notes(report.notes)
    total = len(report.written) + len(report.unchanged)
    typer.echo(
        f"imported {total} families into {target}: {len(report.written)} written, "
        f"{len(report.unchanged)} unchanged, {len(report.skipped)} kept hand-written, "
        f"{len(report.removed)} removed"
    )


@export_app.command("xinference")
def export_xinference(
    out: Annotated[
        Path | None, typer.Option("--out", help="Write here instead of standard output.")
    ] = None,
    specs: Annotated[
        list[Path] | None,
        typer.Option(
            "--specs",
            help="Export only the spec files in this folder (repeatable; default: the catalog).",
        ),
    ] = None,
) -> None:
    """Write the catalog as Xinference's llm_family.json."""
    from zoo.errors import UsageError
    from zoo.importers.xinference import dumps_registry, export_catalog
    from zoo.registry import catalog_with_plugins

    for folder in specs or ():
        if not folder.is_dir():
            raise UsageError(f"--specs {folder}: not a folder")
    catalog = catalog_with_plugins(list(specs) if specs else None)
    families, notes = export_catalog(catalog.families.values())
    _print_notes(notes)
    text = dumps_registry(families)
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        typer.echo(f"exported {len(families)} families to {out}", err=True)


def register(app: typer.Typer) -> None:
    app.add_typer(import_app, name="import")
    app.add_typer(export_app, name="export")
