"""Site build time for the catalog: a full build, a rebuild with nothing changed, and the
incremental rebuild after one spec file changes.

    .venv/bin/python bench/docs_build.py [--catalog specs] [--jobs 1]

Builds a copy of ``docs/`` in a temporary folder with the same settings as ``make docs``
(``-W --keep-going -n``), against a copy of the catalog so one spec can be edited. Prints
wall time and how many documents Sphinx re-read each time: after one spec changes only its
page should be re-read, because ``zoo.docs.sphinx_ext`` rewrites only pages whose text changed.
"""

from __future__ import annotations

import argparse
import io
import re
import shutil
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def build(project: Path, out: Path, catalog: Path, jobs: int) -> tuple[float, str]:
    from sphinx.application import Sphinx
    from sphinx.util.docutils import docutils_namespace, patch_docutils

    status = io.StringIO()
    start = time.perf_counter()
    with patch_docutils(project), docutils_namespace():
        app = Sphinx(
            project,
            project,
            out,
            out / ".doctrees",
            "html",
            confoverrides={"nitpicky": True, "zoo_catalog_paths": [str(catalog)]},
            status=status,
            warning=io.StringIO(),
            warningiserror=True,
            keep_going=True,
            parallel=jobs,
        )
        app.build()
    elapsed = time.perf_counter() - start
    if app.statuscode:
        raise SystemExit("the build had warnings; run `make docs` to see them")
    found = re.search(r"(\d+) added, (\d+) changed, (\d+) removed", status.getvalue())
    return elapsed, found.group(0) if found else "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--catalog", type=Path, default=ROOT / "specs")
    parser.add_argument("--jobs", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="zoo-docs-bench-") as scratch:
        work = Path(scratch)
        project = work / "docs"
        shutil.copytree(ROOT / "docs", project, ignore=shutil.ignore_patterns("_build", "models"))
        catalog = work / "specs"
        shutil.copytree(args.catalog, catalog)
        out = work / "html"
        families = len(list(catalog.glob("*.yaml")))
        full, full_docs = build(project, out, catalog, args.jobs)
        same, same_docs = build(project, out, catalog, args.jobs)
        spec = catalog / "seed-oss.yaml"
        text = spec.read_text(encoding="utf-8")
        spec.write_text(text.replace("Seed-OSS is", "Seed-OSS (edited) is", 1), encoding="utf-8")
        touched, touched_docs = build(project, out, catalog, args.jobs)
    print(f"catalog: {families} families; sphinx jobs: {args.jobs}")
    print(f"full build:               {full:6.1f} s  ({full_docs})")
    print(f"rebuild, nothing changed: {same:6.1f} s  ({same_docs})")
    print(f"rebuild, one spec edited: {touched:6.1f} s  ({touched_docs})")


if __name__ == "__main__":
    main()
