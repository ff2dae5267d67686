"""Plugins as zoo meets them: installed distributions with an entry point in the ``zoo`` group."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from plugin_helpers import InstallPlugin, fake_distribution

_serial = itertools.count()


@pytest.fixture
def install_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> InstallPlugin:
    """Install a plugin distribution ``zoo-<name>`` (version 0.1) whose entry point ``name``
    is a module with the given source. Module names are unique per call, so a module that
    another test imported under the same entry-point name is never reused."""

    def install(name: str, source: str) -> str:
        module = f"zoo_test_{name.replace('-', '_')}_{next(_serial)}"
        root = tmp_path / f"site-{module}"
        fake_distribution(root, f"zoo-{name}", f"{name} = {module}", source)
        monkeypatch.syspath_prepend(str(root))
        return module

    return install
