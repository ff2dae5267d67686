"""Hostile catalog folders and spec paths, through the real ``zoo`` command.

A ZOO_CATALOG_PATH folder is anyone's: whatever it holds, every command answers with problem
lines or one error line, never a crash that takes the rest of the catalog down with it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hostile_helpers import assert_friendly, assert_one_error_line, zoo

from zoo.catalog import yamlpos


def _symlink_loop(folder: Path) -> None:
    (folder / "loop1.yaml").symlink_to("loop2.yaml")
    (folder / "loop2.yaml").symlink_to("loop1.yaml")


def test_validate_a_folder_holding_a_symlink_loop(tmp_path: Path) -> None:
    # Was: "internal error: RuntimeError: Symlink loop" (pathlib.resolve on Python 3.11).
    _symlink_loop(tmp_path)
    result = zoo("validate", str(tmp_path))
    assert_friendly(result)
    assert result.returncode == 1
    assert f"{tmp_path}/loop1.yaml: error[E100]: cannot read the file: Too many levels" in (
        result.stdout
    )
    assert "2 error(s)" in result.stdout.splitlines()[-1]


def test_validate_names_a_symlink_loop(tmp_path: Path) -> None:
    # Was: "no such file or folder", for a path that is there.
    _symlink_loop(tmp_path)
    result = zoo("validate", str(tmp_path / "loop1.yaml"))
    assert_friendly(result)
    assert "error[E100]: cannot read the file: Too many levels of symbolic links" in result.stdout


def test_the_catalog_survives_a_symlink_loop_in_catalog_path(tmp_path: Path) -> None:
    _symlink_loop(tmp_path)
    result = zoo("validate", env={"ZOO_CATALOG_PATH": str(tmp_path)})
    assert_friendly(result)
    assert "loop1.yaml: error[E100]: cannot read the file" in result.stdout
    listed = zoo("list", env={"ZOO_CATALOG_PATH": str(tmp_path)})
    assert listed.returncode == 0, listed.stderr
    assert "smollm2-135m-instruct" in listed.stdout


class _WouldBlock:
    """What ``os.fdopen`` gives for a file whose non-blocking read has nothing yet
    (``/proc/kmsg`` with an empty ring): ``read`` answers None, not bytes."""

    def __init__(self, fd: int) -> None:
        self._fd = fd

    def __enter__(self) -> _WouldBlock:
        return self

    def __exit__(self, *exc: object) -> None:
        os.close(self._fd)

    def fileno(self) -> int:
        return self._fd

    def read(self, size: int = -1) -> None:
        del size


def test_a_spec_file_whose_read_would_block(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Was: "internal error: TypeError: object of type 'NoneType' has no len()", which made
    # `zoo list` fail for every family when ZOO_CATALOG_PATH held a link to /proc/kmsg.
    spec = tmp_path / "kmsg.yaml"
    spec.write_text("name: x\n")
    monkeypatch.setattr(yamlpos.os, "fdopen", lambda fd, mode: _WouldBlock(fd))
    text, problems = yamlpos.read_text(spec)
    assert text is None
    assert [p.code for p in problems] == ["E100"]
    assert "no data without waiting" in problems[0].message


@pytest.mark.parametrize("command", ["render", "build"])
def test_docs_of_a_catalog_that_is_not_there(tmp_path: Path, command: str) -> None:
    # Was: render wrote an empty site ("0 families") and said it succeeded; build failed
    # with Sphinx's "Handler <function generate_model_pages at 0x...> threw an exception".
    out = tmp_path / "site"
    result = zoo("docs", command, "-o", str(out), "--catalog", str(tmp_path / "typo"))
    assert_one_error_line(result, "no such spec file or folder", "typo")
    assert not out.exists()
