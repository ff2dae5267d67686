"""Shared fixtures: the real catalog, the installed engines, and the built-in host profiles."""

from __future__ import annotations

import pytest

from zoo.catalog.catalog import Catalog, load_catalog
from zoo.engine import Engine
from zoo.plugins import get_engines, new_plugin_manager


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    from zoo.catalog.catalog import builtin_catalog_dir

    return load_catalog([builtin_catalog_dir()])


@pytest.fixture
def engines() -> dict[str, Engine]:
    found = get_engines(new_plugin_manager())
    assert {"llamacpp", "transformers", "vllm", "mlx"} <= set(found)
    return found
