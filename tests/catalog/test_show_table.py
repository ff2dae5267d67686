"""``zoo show``'s quantization table: per spec by download size, memory and speed estimated on
a host, fits, downloaded, and the row ``zoo launch`` would choose; with the real engine
plugins, built-in host profiles and a Hugging Face cache filled by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from catalog_helpers import HEADER, write

from zoo.cli.app import main
from zoo.plugins import plugin_manager

SMALL = ("--host-profile", "cpu-8g")
BIG = ("--host-profile", "h100-80g")
COMMIT = "0123456789abcdef0123456789abcdef01234567"

# A 1B spec whose repository id is a template (one repository per quantization), listed out
# of size order, and a 70B spec that fits only a big machine.
FITTY = (
    HEADER
    + """\
name: fitty
description: A family to fit.
context_length: 4096
languages: [en]
abilities: [chat]
specs:
  - format: ggufv2
    size: 1
    quantizations: [Q8_0, Q2_K, Q4_K_M]
    sources:
      huggingface:
        model_id: org/fitty-1b-{quantization}-GGUF
        file: fitty-1b-{quantization}.gguf
  - format: ggufv2
    size: 70
    quantizations: [Q4_K_M, Q2_K]
    sources:
      huggingface:
        model_id: org/fitty-70b-GGUF
        file: fitty-70b-{quantization}.gguf
"""
)
HUGE = (
    FITTY.replace("name: fitty", "name: huge")
    .replace(
        """  - format: ggufv2
    size: 1
    quantizations: [Q8_0, Q2_K, Q4_K_M]
    sources:
      huggingface:
        model_id: org/fitty-1b-{quantization}-GGUF
        file: fitty-1b-{quantization}.gguf
""",
        "",
    )
    .replace("org/fitty-70b-GGUF", "org/huge-70b-GGUF")
)


@pytest.fixture
def fit_catalog(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Only ``fitty`` and ``huge`` in the catalog; an empty Hugging Face cache."""
    from zoo.catalog import catalog

    folder = tmp_path / "specs"
    write(folder, "fitty.yaml", FITTY)
    write(folder, "huge.yaml", HUGE)
    monkeypatch.setattr(catalog, "builtin_catalog_dir", lambda: folder)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.delenv("ZOO_HUB", raising=False)
    return folder


def zoo(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    plugin_manager.cache_clear()
    capsys.readouterr()
    try:
        main(list(args))
        code = 0
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def put_in_hf_cache(cache: Path, repo: str, name: str, data: bytes = b"GGUF") -> None:
    """A file in the Hugging Face cache layout: refs/main -> commit, snapshots/commit/name."""
    storage = cache / ("models--" + repo.replace("/", "--"))
    (storage / "refs").mkdir(parents=True)
    (storage / "refs" / "main").write_text(COMMIT)
    snapshot = storage / "snapshots" / COMMIT
    snapshot.mkdir(parents=True)
    (snapshot / name).write_bytes(data)


def shown(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, object]:
    code, out, err = zoo(capsys, "show", "fitty", "--json", *args)
    assert code == 0, err
    here = json.loads(out)["family"]["here"]
    assert isinstance(here, dict)
    return here


@pytest.mark.parametrize("profile", [SMALL, BIG])
def test_the_recommended_row_is_what_launch_picks(
    fit_catalog: Path, capsys: pytest.CaptureFixture[str], profile: tuple[str, str]
) -> None:
    here = shown(capsys, *profile)
    code, out, err = zoo(capsys, "launch", "fitty", "--dry-run", "--json", *profile)
    assert code == 0, err
    plan = json.loads(out)
    rows = here["quantizations"]
    assert isinstance(rows, list)
    marked = [r for r in rows if r["recommended"]]
    assert len(marked) == 1
    assert (marked[0]["format"], marked[0]["size"], marked[0]["quantization"]) == (
        plan["format"],
        plan["size"],
        plan["quantization"],
    )
    assert marked[0]["engine"] == plan["engine"]
    assert here["recommended"] == marked[0]
    # The big machine runs the 70B, the small one only the 1B.
    assert marked[0]["size"] == (70 if profile == BIG else 1)


def test_rows_by_spec_size_then_download_size_with_estimates_here(
    fit_catalog: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = shown(capsys, *SMALL)["quantizations"]
    assert isinstance(rows, list)
    assert [(r["size"], r["quantization"]) for r in rows] == [
        (1, "Q2_K"),
        (1, "Q4_K_M"),
        (1, "Q8_0"),
        (70, "Q2_K"),
        (70, "Q4_K_M"),
    ]
    one_b = [r for r in rows if r["size"] == 1]
    assert [r["download_bytes"] for r in one_b] == sorted(r["download_bytes"] for r in one_b)
    assert all(r["download_estimated"] for r in rows)  # no lock in this catalog
    # The 1B fits the 8 GB laptop with a memory and speed estimate; the 70B is sized but
    # too big: memory shown, no fit.
    for row in rows:
        assert row["memory_bytes"] is not None
        assert row["fits"] == (row["size"] == 1), row
        assert (row["decode_tps"] or 0) > 0
    # Placeholders filled: each quantization's own repository.
    assert rows[0]["repos"] == [{"hub": "huggingface", "model_id": "org/fitty-1b-Q2_K-GGUF"}]


def test_the_table_fits_80_columns_and_fills_the_templates(
    fit_catalog: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    code, out, err = zoo(capsys, "show", "fitty", *SMALL)
    assert code == 0, err
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert "{quantization}" not in out
    assert "ggufv2 1B  org/fitty-1b-{Q2_K,Q4_K_M,Q8_0}-GGUF (huggingface)" in lines
    assert "ggufv2 70B  org/fitty-70b-GGUF (huggingface)" in lines
    _, plan, _ = zoo(capsys, "launch", "fitty", "--dry-run", "--json", *SMALL)
    chosen = json.loads(plan)["quantization"]
    [starred] = [line for line in lines if line.startswith("*")]
    assert starred.split()[1] == chosen
    assert starred.split()[-2:] == ["yes", "no"]  # fits, not downloaded
    # Estimated download sizes are marked as such.
    assert "~" in starred.split()[2]


def test_downloaded_after_files_are_in_the_hub_cache(
    fit_catalog: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    rows = shown(capsys, *SMALL)["quantizations"]
    assert isinstance(rows, list)
    assert not any(r["downloaded"] for r in rows)
    put_in_hf_cache(tmp_path / "hf", "org/fitty-70b-GGUF", "fitty-70b-Q2_K.gguf")
    rows = shown(capsys, *SMALL)["quantizations"]
    assert isinstance(rows, list)
    assert [(r["size"], r["quantization"]) for r in rows if r["downloaded"]] == [(70, "Q2_K")]
    # Another quantization's file in the same repository is not this one.
    code, out, err = zoo(capsys, "show", "fitty", *SMALL)
    assert code == 0, err
    q2_70 = [
        line
        for line in out.splitlines()[
            out.splitlines().index("ggufv2 70B  org/fitty-70b-GGUF (huggingface)") :
        ]
        if line.split()[:1] == ["Q2_K"]
    ]
    assert q2_70 and q2_70[0].split()[-1] == "yes"


def test_nothing_fits_says_so(fit_catalog: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = zoo(capsys, "show", "huge", *SMALL)
    assert code == 0, err
    assert "Nothing of huge runs on cpu-8g." in out
    assert not any(line.startswith("*") for line in out.splitlines())
