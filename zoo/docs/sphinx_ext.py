"""Sphinx extension: model pages from the catalog, plus the generated reference directives.

Add ``"zoo.docs.sphinx_ext"`` to ``extensions`` and a plain ``sphinx-build`` writes one page per
family (and the index, matrix and ability pages) into ``zoo_models_dir`` before reading
sources. Pages are rewritten only when their text changes, so Sphinx's incremental build
re-reads just the families that changed.

Settings (``conf.py``):

- ``zoo_catalog_paths``: spec folders or files, relative to ``conf.py``; ``None`` (default)
  means zoo's own catalog folders (built-in, user, ``ZOO_CATALOG_PATH``, plugins). A third-
  party catalog sets its own folders here.
- ``zoo_models_dir``: where the pages go, relative to the source folder (default ``models``).
- ``zoo_use_plugins``: read engine capabilities and hub links from installed plugins
  (default ``True``); ``False`` renders pages without engine data.

The extension also turns off docutils' smart quotes (``smartquotes = False``): the pages name
command-line options in running text, and ``--model`` must never print as "–model", a dash
a reader cannot paste into a shell. And it ranks search results with
``zoo.docs.search_rank`` (model pages first) unless ``html_search_scorer`` is set.

Directives: ``.. zoo-spec-reference::`` (every spec-file field, from the JSON Schema) and
``.. zoo-cli-reference::`` (every command, from the typer app).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.errors import ExtensionError
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles

from zoo import __version__
from zoo.errors import ZooError

logger = logging.getLogger(__name__)


def generate_model_pages(app: Sphinx) -> None:
    """``builder-inited``: render the catalog and sync it into the models folder."""
    from zoo.docs.context import DocsContext
    from zoo.docs.output import sync
    from zoo.docs.render import render_pages
    from zoo.docs.source import CatalogError, load_families

    configured = app.config.zoo_catalog_paths
    paths = None if configured is None else [Path(app.confdir, p).resolve() for p in configured]
    try:
        families = load_families(paths)
    except CatalogError as error:
        # One located message per problem (path:line), like any other Sphinx warning; the
        # pages are left as they were, never half-updated.
        for problem in error.problems:
            path = getattr(problem, "path", None)
            line = getattr(problem, "line", 0)
            logger.error(
                "zoo catalog: %s",
                getattr(problem, "message", str(problem)),
                location=f"{path}:{line}" if path and line else path,
                type="zoo",
                subtype="catalog",
            )
        return
    try:
        ctx = DocsContext.from_plugins() if app.config.zoo_use_plugins else DocsContext()
        pages = render_pages(families, ctx)
        folder = Path(app.srcdir, app.config.zoo_models_dir)
        changed = sync(folder, pages)
    except ZooError as error:
        raise ExtensionError(f"zoo: {error}") from None
    logger.info("zoo: %d model pages (%d changed) in %s", len(pages), len(changed), folder)


class _GeneratedRst(SphinxDirective):
    """Parses generated RST in place, with section titles allowed."""

    has_content = False

    def generate(self) -> str:
        raise NotImplementedError

    def run(self) -> list[nodes.Node]:
        try:
            text = self.generate()
        except ZooError as error:
            raise self.error(str(error)) from None
        container = nodes.section()
        container.document = self.state.document
        source = f"<{self.name}>"
        lines = StringList(text.splitlines(), source=source)
        nested_parse_with_titles(self.state, lines, container)
        return list(container.children)


class SpecReference(_GeneratedRst):
    def generate(self) -> str:
        from zoo.catalog.schema import SCHEMA_FILE
        from zoo.docs.schema_ref import load_schema, render_reference

        self.env.note_dependency(str(SCHEMA_FILE))
        return render_reference(load_schema(SCHEMA_FILE))


class CliReference(_GeneratedRst):
    def generate(self) -> str:
        import zoo.cli
        from zoo.docs.cli_ref import render_cli_reference

        # Rebuild this page when any command module changes.
        for module in sorted(Path(zoo.cli.__file__).parent.glob("*.py")):
            self.env.note_dependency(str(module))
        return render_cli_reference()


def rank_model_pages(app: Sphinx) -> None:
    """``builder-inited``: zoo's search scorer, unless the site has its own."""
    if app.config.html_search_scorer:
        return
    from zoo.docs.search_rank import write_scorer

    scorer = write_scorer(Path(app.doctreedir), app.config.zoo_models_dir)
    app.config.html_search_scorer = str(scorer)


def _no_smart_quotes(app: Sphinx, config: Any) -> None:
    """``config-inited``: options stay as typed (``--model``, not an en dash)."""
    config.smartquotes = False


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("config-inited", _no_smart_quotes)
    app.add_config_value("zoo_catalog_paths", None, "env", [list, type(None)])
    app.add_config_value("zoo_models_dir", "models", "env", [str])
    app.add_config_value("zoo_use_plugins", True, "env", [bool])
    app.connect("builder-inited", generate_model_pages)
    app.connect("builder-inited", rank_model_pages)
    app.add_directive("zoo-spec-reference", SpecReference)
    app.add_directive("zoo-cli-reference", CliReference)
    return {"version": __version__, "parallel_read_safe": True, "parallel_write_safe": True}
