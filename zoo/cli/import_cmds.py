"""``zoo import xinference FILE`` and ``zoo export xinference``: other registries, both ways.

Xinference keeps three registries: language models (llm_family.json), embedding models and
rerankers (model_spec.json each). The import tells them apart by their content (``--kind``
overrides) and applies the corrections overlay (zoo.importers.corrections); the export writes
one of them (``--kind``, default llm), with upstream's facts or, ``--corrected``, the overlay's.

The conversion lives in ``zoo.importers``; this module only parses options and prints. Notes
on what a format could not hold go to stderr (one line each, prefixed with the family), the
summary to stdout, so scripts can keep the data and still see the report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from zoo.kinds import KIND_NAMES, LLM

# Top-level command names this module adds (lets the CLI skip loading plugins for them).
COMMANDS: tuple[str, ...] = ("import", "export")

import_app = typer.Typer(
    help="Convert another registry's models into zoo spec files.", no_args_is_help=True
)
export_app = typer.Typer(
    help="Write the catalog in another registry's format.", no_args_is_help=True
)


def _check_kind(kind: str | None) -> None:
    from zoo.errors import UsageError

    # Xinference keeps one registry per zoo kind.
    if kind is not None and kind not in KIND_NAMES:
        raise UsageError(f"--kind {kind!r}: expected one of {', '.join(KIND_NAMES)}")


def _print_notes(notes: dict[str, list[str]]) -> None:
    for name in sorted(notes):
        for note in notes[name]:
            typer.echo(f"{name}: {note}", err=True)


@import_app.command("xinference")
def import_xinference(
    file: Annotated[
        Path,
        typer.Argument(
            help="Xinference's llm_family.json, or its embedding or rerank model_spec.json."
        ),
    ],
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
    kind: Annotated[
        str | None,
        typer.Option(
            "--kind",
            help="Which registry FILE is: llm, embedding or rerank (default: read from FILE).",
        ),
    ] = None,
) -> None:
    """Write one spec file per Xinference model family; hand-written families win.

    Reviewed corrections to Xinference's facts (zoo/importers/xinference_corrections.yaml: what,
    why, the source) are applied on the way; upstream's values stay in extra.xinference, so
    zoo export xinference gives the file back as it was (with --corrected: with the fixes).
    """
    from zoo.importers import xinference, xinference_pooling
    from zoo.paths import user_catalog_dir

    _check_kind(kind)
    target = out if out is not None else user_catalog_dir()
    if kind is None:
        kind = _detect(file)
    if kind == LLM:
        report = xinference.import_registry(file, target, commit=commit)
        what = "families"
    else:
        _, report = xinference_pooling.import_registry(file, target, kind=kind, commit=commit)
        what = f"{kind} families"
    _print_notes(report.notes)
    total = len(report.written) + len(report.unchanged)
    typer.echo(
        f"imported {total} {what} into {target}: {len(report.written)} written, "
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
    kind: Annotated[
        str,
        typer.Option(
            "--kind",
            help="Which registry to write: llm (llm_family.json), embedding or rerank "
            "(model_spec.json).",
        ),
    ] = LLM,
    corrected: Annotated[
        bool,
        typer.Option(
            "--corrected",
            help="With the corrections zoo made to imported families "
            "(zoo/importers/xinference_corrections.yaml) instead of Xinference's values.",
        ),
    ] = False,
) -> None:
    """Write the catalog's models of one kind as Xinference's registry of that kind."""
    from zoo.errors import UsageError
    from zoo.importers import xinference, xinference_pooling
    from zoo.registry import catalog_with_plugins

    _check_kind(kind)
    for folder in specs or ():
        if not folder.is_dir():
            raise UsageError(f"--specs {folder}: not a folder")
    catalog = catalog_with_plugins(list(specs) if specs else None)
    if kind == LLM:
        families, notes = xinference.export_catalog(catalog.families.values(), corrected)
        text = xinference.dumps_registry(families)
    else:
        registry = xinference_pooling.REGISTRIES[kind]
        families, notes = xinference_pooling.export_catalog(
            catalog.families.values(), registry, corrected
        )
        text = xinference_pooling.dumps_registry(families)
    _print_notes(notes)
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        typer.echo(f"exported {len(families)} families to {out}", err=True)


def _detect(file: Path) -> str:
    from zoo.importers.xinference import XinferenceFormatError, read_registry
    from zoo.importers.xinference_pooling import detect_kind

    try:
        return detect_kind(read_registry(file))
    except XinferenceFormatError as error:
        if str(error).startswith(str(file)):
            raise
        raise XinferenceFormatError(f"{file}: {error} (pass --kind)") from None


def register(app: typer.Typer) -> None:
    app.add_typer(import_app, name="import")
    app.add_typer(export_app, name="export")
