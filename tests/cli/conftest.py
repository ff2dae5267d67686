"""Set-up for the CLI tests: no setting leaks in from the environment, and one compiled
catalog for the session (a cold one costs seconds; every test's ZOO_HOME is new)."""

from __future__ import annotations

from pathlib import Path

import pytest

# Variables zoo reads as settings: a developer's own must not decide a test.
SETTING_VARIABLES = (
    "ZOO_HUB",
    "ZOO_API_KEY",
    "ZOO_CONFIG",
    "ZOO_ENGINE_OPT_IN",
    "ZOO_DEBUG",
    "ZOO_CLUSTER",
)


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("zoo-cache")


@pytest.fixture(autouse=True)
def plain_environment(monkeypatch: pytest.MonkeyPatch, shared_cache: Path) -> None:
    for name in SETTING_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ZOO_CACHE_DIR", str(shared_cache))


@pytest.fixture
def config_file(isolated_zoo: Path) -> Path:
    """Where zoo reads its settings in this test (the file is not there yet)."""
    from zoo.config import config_path

    path = config_path()
    assert path.is_relative_to(isolated_zoo)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path
