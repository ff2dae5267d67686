"""``zoo list``: the download-size column, --fits on host profiles, --downloaded after files
are put into a hub cache, --size, and 80 columns."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_show_table import BIG, SMALL, fit_catalog, put_in_hf_cache, zoo

__all__ = ["fit_catalog"]  # the fixture, used by name


def names(out: str) -> list[str]:
    return [f["name"] for f in json.loads(out)["families"]]


def test_fits_hides_what_does_not_fit_a_small_host(
    fit_catalog: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = zoo(capsys, "list", "--json")
    assert code == 0, err
    assert names(out) == ["fitty", "huge"]
    _, out, _ = zoo(capsys, "list", "--fits", "--json", *SMALL)
    assert names(out) == ["fitty"]  # huge has only a 70B
    _, out, _ = zoo(capsys, "list", "--fits", "--json", *BIG)
    assert names(out) == ["fitty", "huge"]


def test_downloaded_lists_families_with_files_in_a_hub_cache(
    fit_catalog: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, err = zoo(capsys, "list", "--downloaded")
    assert (code, out) == (0, "")
    assert "no model families match" in err
    put_in_hf_cache(tmp_path / "hf", "org/huge-70b-GGUF", "fitty-70b-Q4_K_M.gguf")
    _, out, _ = zoo(capsys, "list", "--downloaded", "--json")
    assert names(out) == ["huge"]


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ("70B", ["fitty", "huge"]),
        ("1", ["fitty"]),
        ("1000M", ["fitty"]),
        ("0.5-2", ["fitty"]),
        ("<10", ["fitty"]),
        (">=70", ["fitty", "huge"]),
        (">70", []),
    ],
)
def test_size_filters(
    fit_catalog: Path, capsys: pytest.CaptureFixture[str], size: str, expected: list[str]
) -> None:
    code, out, err = zoo(capsys, "list", "--size", size, "--json")
    assert code == 0, err
    assert names(out) == expected


def test_a_size_that_is_not_one_is_a_one_line_error(
    fit_catalog: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = zoo(capsys, "list", "--size", "big")
    assert (code, out) == (2, "")
    assert err.startswith("zoo: error: --size 'big' is not a size") and err.count("\n") == 1


def test_the_download_column_spans_the_family_within_80_columns(
    fit_catalog: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from zoo.fit import size_range

    monkeypatch.setenv("COLUMNS", "80")
    _, shown, _ = zoo(capsys, "show", "fitty", "--json", *SMALL)
    sizes = [r["download_bytes"] for r in json.loads(shown)["family"]["here"]["quantizations"]]
    code, out, err = zoo(capsys, "list")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == [
        "NAME",
        "ABILITIES",
        "FORMATS",
        "SIZE",
        "(B)",
        "DOWNLOAD",
        "CONTEXT",
    ]
    [row] = [line for line in lines if line.startswith("fitty ")]
    # From the smallest to the largest download `zoo show` states (estimates: no lock).
    assert size_range(min(sizes), max(sizes)) in row
    assert row.endswith("4K")  # one context format: zoo.catalog.model.context_label
    assert max(len(line) for line in lines) <= 80


def test_the_shipped_list_fits_80_columns(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    code, out, err = zoo(capsys, "list")
    assert code == 0, err
    assert max(len(line) for line in out.splitlines()) <= 80
    assert out.splitlines()[0].split() == [
        "NAME",
        "ABILITIES",
        "SIZE",
        "(B)",
        "DOWNLOAD",
        "CONTEXT",
    ]


def test_the_listing_estimate_is_weights_bytes() -> None:
    """``fit.estimated_range`` restates ``memory.weights_bytes`` (to keep ``zoo list`` free of
    the data model): equal over every spec of the shipped catalog."""
    from zoo.catalog.catalog import load_catalog
    from zoo.fit import estimated_range
    from zoo.memory import weights_bytes

    for family in load_catalog():
        for spec in family.specs:
            for q in spec.quantizations:
                expected = weights_bytes(spec, q)
                assert estimated_range([(spec.format, spec.size, [q])]) == [expected, expected]
