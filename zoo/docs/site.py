"""Building the HTML site with Sphinx, in process (``zoo docs build``).

The project is the repository's ``docs/`` when zoo runs from a checkout; an installed zoo has
no ``docs/``, so it builds a small site of just the model pages from a project made on the fly.
Builds are strict by default, like ``sphinx-build -W --keep-going -n``.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from zoo.errors import UsageError, ZooError

_MINIMAL_CONF = """\
project = "zoo models"
extensions = ["zoo.docs.sphinx_ext"]
html_theme = "furo"
html_title = "zoo models"
exclude_patterns = ["_build"]
"""
_MINIMAL_INDEX = """\
zoo models
==========

.. toctree::
   :maxdepth: 1

   models/index
"""


def repository_docs() -> Path | None:
    """``docs/`` beside the ``zoo`` package in a source checkout, if there is one."""
    import zoo

    candidate = Path(zoo.__file__).resolve().parent.parent / "docs"
    return candidate if (candidate / "conf.py").is_file() else None


def build_site(
    out: Path,
    *,
    source: Path | None = None,
    catalog: Sequence[Path] | None = None,
    strict: bool = True,
) -> Path:
    """Build HTML into ``out`` and return the path of its index page."""
    if source is not None and not (source / "conf.py").is_file():
        raise UsageError(f"{source} is not a Sphinx project (no conf.py)")
    project = source or repository_docs()
    with tempfile.TemporaryDirectory(prefix="zoo-docs-") as scratch:
        if project is None:
            project = Path(scratch, "site")
            project.mkdir()
            (project / "conf.py").write_text(_MINIMAL_CONF, encoding="utf-8")
            (project / "index.rst").write_text(_MINIMAL_INDEX, encoding="utf-8")
        overrides: dict[str, object] = {"nitpicky": strict}
        if catalog is not None:
            overrides["zoo_catalog_paths"] = [str(Path(p).resolve()) for p in catalog]
        status = run_sphinx(project, out, overrides, strict=strict)
    if status != 0:
        raise ZooError(
            "the documentation build failed (Sphinx's messages are above)",
            hint="fix the warnings, or build with --no-strict",
        )
    return out / "index.html"


def run_sphinx(project: Path, out: Path, overrides: dict[str, object], *, strict: bool) -> int:
    from sphinx.application import Sphinx
    from sphinx.errors import SphinxError
    from sphinx.util.docutils import docutils_namespace, patch_docutils

    out.mkdir(parents=True, exist_ok=True)
    try:
        with patch_docutils(project), docutils_namespace():
            app = Sphinx(
                srcdir=project,
                confdir=project,
                outdir=out,
                doctreedir=out / ".doctrees",
                buildername="html",
                confoverrides=overrides,
                status=None,
                warning=sys.stderr,
                warningiserror=strict,
                keep_going=strict,
            )
            app.build()
            return app.statuscode
    except SphinxError as error:
        raise ZooError(f"the documentation build failed: {error}") from None
