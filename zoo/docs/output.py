"""Writing rendered pages to disk, two ways.

- ``publish``: all or nothing, for ``zoo docs render``. Pages are written to a temporary
  folder beside the target and renamed into place, so a failure leaves the old folder intact.
- ``sync``: for the Sphinx extension. Only pages whose text changed are rewritten, so their
  modification times stay put and Sphinx's incremental build re-reads only what changed.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

from zoo.errors import UsageError

# Marks a folder as zoo's own output, so it can be replaced without losing anyone's files.
MARKER = ".zoo-generated"


def _is_ours_or_empty(folder: Path) -> bool:
    return not folder.exists() or (folder / MARKER).exists() or not any(folder.iterdir())


def publish(out: Path, pages: Mapping[str, str]) -> None:
    """Make ``out`` hold exactly ``pages``, atomically (rename of a complete folder)."""
    out = out.resolve()
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out} is not a folder")
    if not _is_ours_or_empty(out):
        raise UsageError(
            f"{out} already has files zoo did not write",
            hint="choose an empty or new folder",
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        _write_all(staging, pages)
        (staging / MARKER).write_text("", encoding="utf-8")
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
            os.replace(out, old / "pages")
            os.replace(staging, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, out)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _write_all(root: Path, pages: Mapping[str, str]) -> None:
    for relative, text in pages.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def sync(folder: Path, pages: Mapping[str, str]) -> list[str]:
    """Make ``folder`` hold ``pages``, touching only what changed; returns the changed paths.

    Stale ``.rst`` files (a family that left the catalog) are removed; other files are kept.
    """
    if folder.exists() and not _is_ours_or_empty(folder):
        raise UsageError(
            f"{folder} already has files zoo did not write",
            hint="point zoo_models_dir at a folder of its own",
        )
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MARKER).touch()
    changed: list[str] = []
    for relative, text in sorted(pages.items()):
        path = folder / relative
        try:
            if path.read_text(encoding="utf-8") == text:
                continue
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
        changed.append(relative)
    wanted = {folder / p for p in pages}
    for stale in sorted(folder.rglob("*.rst")):
        if stale not in wanted:
            stale.unlink()
            changed.append(str(stale.relative_to(folder)))
    return changed
