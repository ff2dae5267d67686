"""pytest fixtures for zoo and plugin tests: ``hub_server`` (a local HF/ModelScope hub).

Enable them in a test suite with ``pytest_plugins = ["zoo.testing.fixtures"]``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from zoo.testing.hubserver import HubServer


@pytest.fixture
def hub_server(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[HubServer]:
    """A started hub server, with HF / ModelScope environment pointing at it and private caches.

    The clients' caches (HF_HOME, MODELSCOPE_CACHE) and HOME (modelscope writes a session file
    there) go to a temporary folder, so nothing touches the user's real caches.
    """
    server = HubServer().start()
    home = Path(tmp_path_factory.mktemp("hub-home"))
    for key, value in {**server.hf_env(), **server.ms_env()}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("HF_HOME", str(home / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HUGGINGFACE_HUB_CACHE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("ZOO_HUB", raising=False)
    monkeypatch.setenv("MODELSCOPE_CACHE", str(home / "modelscope"))
    monkeypatch.setenv("HOME", str(home))
    try:
        yield server
    finally:
        server.stop()
