"""Fixtures for runtime tests (helpers live in runtime_helpers.py beside this file)."""

from __future__ import annotations

from pathlib import Path

import pytest

from zoo.hubs.base import FetchResult


@pytest.fixture
def fetched(tmp_path: Path) -> FetchResult:
    root = tmp_path / "model"
    root.mkdir()
    (root / "config.json").write_text("{}")
    return FetchResult(
        hub="huggingface",
        repo="test/tiny",
        revision="0" * 40,
        root=root,
        files=(root / "config.json",),
    )
