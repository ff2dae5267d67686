"""``zoo docs``: write the catalog's RST pages, or build the documentation site.

Rendering and Sphinx are imported inside the commands: ``zoo --help`` never pays for them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

# Top-level command names this module adds (lets the CLI skip loading plugins for them).
COMMANDS: tuple[str, ...] = ("docs",)

OutOption = Annotated[
    Path,
    typer.Option("--out", "-o", help="Folder to write to (created; replaced if zoo wrote it)."),
]
CatalogOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--catalog",
        help="A spec folder or file to document instead of zoo's catalog (repeatable).",
    ),
]


def render(out: OutOption, catalog: CatalogOption = None) -> None:
    """Write one RST page per model family, the index, the engine matrix and ability pages.

    Nothing is written when the catalog has errors: they are listed instead.
    """
    from zoo.docs.context import DocsContext
    from zoo.docs.output import publish
    from zoo.docs.render import render_pages
    from zoo.docs.source import load_families

    families = load_families(catalog or None)
    pages = render_pages(families, DocsContext.from_plugins())
    publish(out, pages)
    typer.echo(f"wrote {len(pages)} pages ({len(families)} families) to {out}")


def build(
    out: OutOption,
    source: Annotated[
        Path | None,
        typer.Option(
            "--source",
            help="The Sphinx project to build (default: the repository's docs/ when present, "
            "else a site with just the model pages).",
        ),
    ] = None,
    catalog: CatalogOption = None,
    strict: Annotated[
        bool, typer.Option("--strict/--no-strict", help="Fail on any Sphinx warning.")
    ] = True,
) -> None:
    """Build the HTML documentation site with Sphinx (model pages generated on the way)."""
    from zoo.docs.site import build_site
    from zoo.docs.source import require_paths

    require_paths(catalog)  # before Sphinx, which would report it as a failed event handler
    index = build_site(out, source=source, catalog=catalog or None, strict=strict)
    typer.echo(f"built the site in {out}; open {index}")


def register(app: typer.Typer) -> None:
    group = typer.Typer(
        name="docs",
        help="Generate the catalog's documentation pages and site.",
        no_args_is_help=True,
    )
    group.command("render")(render)
    group.command("build")(build)
    app.add_typer(group)
