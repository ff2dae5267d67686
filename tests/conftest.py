"""Shared test set-up: every test runs with zoo's files and HOME in a temporary folder."""

from __future__ import annotations

from pathlib import Path

import pytest

# The local hub server fixture (``hub_server``), shipped for plugin authors too.
pytest_plugins = ["zoo.testing.fixtures"]


@pytest.fixture(autouse=True)
def isolated_zoo(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keep every test away from the user's real config, caches, state and hub caches."""
    home = tmp_path_factory.mktemp("zoo-home")
    monkeypatch.setenv("ZOO_HOME", str(home))
    monkeypatch.delenv("ZOO_CATALOG_PATH", raising=False)
    monkeypatch.delenv("ZOO_DISABLE_PLUGINS", raising=False)
    monkeypatch.delenv("ZOO_STRICT_PLUGINS", raising=False)
    from zoo.plugins import plugin_manager

    plugin_manager.cache_clear()
    return home
