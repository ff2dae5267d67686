"""``zoo docs render``: writes every page, or nothing at all when the catalog has errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from zoo.cli.app import main


def _zoo(*args: str) -> int:
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    return int(exit_info.value.code or 0)


def test_render_writes_every_page(tmp_path: Path, fixture_catalog: Path, capsys) -> None:
    out = tmp_path / "pages"
    assert _zoo("docs", "render", "--out", str(out), "--catalog", str(fixture_catalog)) == 0
    written = sorted(p.name for p in out.glob("*.rst"))
    assert {"index.rst", "matrix.rst", "seed-oss.rst", "seed-coder-8b-base.rst"} <= set(written)
    assert "3 families" in capsys.readouterr().out


def test_render_again_replaces_its_own_output(tmp_path: Path, fixture_catalog: Path) -> None:
    out = tmp_path / "pages"
    assert _zoo("docs", "render", "--out", str(out), "--catalog", str(fixture_catalog)) == 0
    (out / "gone-family.rst").write_text("stale", encoding="utf-8")
    assert _zoo("docs", "render", "--out", str(out), "--catalog", str(fixture_catalog)) == 0
    assert not (out / "gone-family.rst").exists()
    assert (out / "seed-oss.rst").exists()


def test_render_refuses_a_folder_with_other_files(tmp_path: Path, fixture_catalog: Path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me", encoding="utf-8")
    assert _zoo("docs", "render", "--out", str(out), "--catalog", str(fixture_catalog)) == 2
    assert "zoo did not write" in capsys.readouterr().err
    assert (out / "notes.txt").read_text(encoding="utf-8") == "keep me"


def _malformed_catalog(tmp_path: Path, fixture_catalog: Path) -> Path:
    catalog = tmp_path / "catalog"
    shutil.copytree(fixture_catalog, catalog)
    (catalog / "broken.yaml").write_text("name: broken\ndescription: [unclosed\n", encoding="utf-8")
    wrong = (catalog / "seed-oss.yaml").read_text(encoding="utf-8")
    (catalog / "seed-oss.yaml").write_text(
        wrong.replace("context_length: 524288", "context_length: -1"), encoding="utf-8"
    )
    return catalog


def test_render_on_a_malformed_catalog_lists_the_errors_and_writes_nothing(
    tmp_path: Path, fixture_catalog: Path, capsys
) -> None:
    catalog = _malformed_catalog(tmp_path, fixture_catalog)
    out = tmp_path / "pages"
    assert _zoo("docs", "render", "--out", str(out), "--catalog", str(catalog)) == 1
    err = capsys.readouterr().err
    assert err.startswith("zoo: error: the catalog has 2 error(s); nothing was written")
    assert "broken.yaml:" in err and "seed-oss.yaml:" in err
    assert "Traceback" not in err
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_render_on_a_malformed_catalog_keeps_the_previous_pages(
    tmp_path: Path, fixture_catalog: Path
) -> None:
    out = tmp_path / "pages"
    assert _zoo("docs", "render", "--out", str(out), "--catalog", str(fixture_catalog)) == 0
    before = {p.name: p.read_text(encoding="utf-8") for p in out.iterdir()}
    catalog = _malformed_catalog(tmp_path, fixture_catalog)
    assert _zoo("docs", "render", "--out", str(out), "--catalog", str(catalog)) == 1
    assert {p.name: p.read_text(encoding="utf-8") for p in out.iterdir()} == before


def test_sync_rewrites_only_changed_pages(tmp_path: Path) -> None:
    from zoo.docs.output import sync

    folder = tmp_path / "models"
    assert sync(folder, {"a.rst": "A\n", "b.rst": "B\n"}) == ["a.rst", "b.rst"]
    stamp = (folder / "a.rst").stat().st_mtime_ns
    assert sync(folder, {"a.rst": "A\n", "b.rst": "B2\n"}) == ["b.rst"]
    assert (folder / "a.rst").stat().st_mtime_ns == stamp
    assert sync(folder, {"a.rst": "A\n"}) == ["b.rst"]  # a family left the catalog
    assert not (folder / "b.rst").exists()
