"""Sizes at the edges: refused by validation, or shown, planned and documented without a crash."""

from __future__ import annotations

from pathlib import Path

import pytest
from catalog_helpers import family_text, write
from typer.testing import CliRunner

from zoo.catalog.catalog import load_catalog
from zoo.catalog.validate import check_text
from zoo.errors import ZooError

# (size as written in YAML, whether it validates)
SIZES = [
    ("1e308", False),
    (".nan", False),
    (".inf", False),
    ("-.inf", False),
    ("-1", False),
    ("0", False),
    ("100001", False),
    ("100000", True),
    ("1e-300", True),
    ("5e-324", True),
]


def _text(size: str) -> str:
    return family_text("edge").replace("size: 1\n", f"size: {size}\n")


@pytest.mark.parametrize(("size", "valid"), SIZES)
def test_a_size_validates_only_when_everything_downstream_can_use_it(
    size: str, valid: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = check_text(_text(size), "edge.yaml")
    if not valid:
        assert [(p.code, p.line) for p in result.problems] == [("E202", 9)], result.problems
        return
    assert result.ok and result.problems == []
    folder = tmp_path / "specs"
    write(folder, "edge.yaml", _text(size))
    monkeypatch.setenv("ZOO_CATALOG_PATH", str(folder))
    from zoo.cli.app import build_app

    for args in (["show", "edge"], ["show", "edge", "--json"], ["launch", "edge", "--dry-run"]):
        ran = CliRunner().invoke(build_app(), args)
        # Planned, or refused with a ZooError ("does not fit": one line), never a crash.
        assert ran.exception is None or isinstance(ran.exception, SystemExit | ZooError), (
            args,
            ran.exception,
        )
    from zoo.docs.context import DocsContext
    from zoo.docs.render import render_pages

    family = load_catalog([folder]).get("edge")
    pages = render_pages([family], DocsContext.from_plugins())
    assert "edge.rst" in pages
