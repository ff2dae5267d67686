"""The catalog as commands see it: zoo's folders plus the folders plugins contribute.

The catalog package sits below the plugins and never asks them anything; this module does,
and hands the plugin folders to ``zoo.catalog.catalog.load_catalog``. Every command, the docs
build and the demo load the catalog through ``catalog_with_plugins``.

Asking the plugins means importing pluggy and every plugin module, which alone costs more than
the whole of ``zoo list`` may take. Their answer only changes when distributions are installed
or removed, or ZOO_DISABLE_PLUGINS changes, so it is kept in the compiled-catalog cache under a
key made of those (see ``plugin_catalog_dirs``): a warm ``zoo list`` imports no plugin.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pluggy

    from zoo.catalog.cache import CompiledCatalog
    from zoo.catalog.catalog import Catalog

_CACHE_KEY = "plugin_catalog_paths"


def catalog_with_plugins(
    paths: Sequence[Path] | None = None,
    *,
    pm: pluggy.PluginManager | None = None,
    use_cache: bool = True,
) -> Catalog:
    """The catalog of zoo's folders and the plugins' folders (or exactly ``paths``)."""
    from zoo.catalog import catalog
    from zoo.catalog.cache import CompiledCatalog

    cache = CompiledCatalog.open() if use_cache else None
    plugin_dirs = plugin_catalog_dirs(pm, cache) if paths is None else []
    return catalog.load_catalog(paths, plugin_dirs=plugin_dirs, use_cache=use_cache, cache=cache)


def plugin_catalog_dirs(
    pm: pluggy.PluginManager | None = None, cache: CompiledCatalog | None = None
) -> list[Path]:
    """Folders that plugins contribute through ``zoo_catalog_paths``, remembered in ``cache``.

    The key is the modification times of the folders distributions are installed into
    (installing or removing one adds or removes a ``*.dist-info`` entry there, which changes
    its folder's mtime) and ZOO_DISABLE_PLUGINS. An explicit ``pm`` (tests, the docs build) is
    always asked directly.
    """
    key = _installation_key()
    stored = cache.extra.get(_CACHE_KEY) if cache is not None else None
    if pm is None and isinstance(stored, dict) and stored.get("key") == key:
        return [Path(p) for p in stored.get("paths", [])]
    from zoo.plugins import get_catalog_paths

    if pm is not None or cache is None:
        return get_catalog_paths(pm)
    paths = get_catalog_paths()
    cache.set_extra(_CACHE_KEY, {"key": key, "paths": [str(p) for p in paths]})
    return paths


def site_dirs() -> list[str]:
    """The folders distributions are installed into (editable ones too: their dist-info
    lives there). Other sys.path entries, like the working folder, change for unrelated
    reasons, so they are not part of the key."""
    return [entry for entry in sys.path if entry.endswith(("site-packages", "dist-packages"))]


def _installation_key() -> list[Any]:
    stamps: list[Any] = [os.environ.get("ZOO_DISABLE_PLUGINS", "")]
    for entry in site_dirs():
        try:
            stamps.append([entry, os.stat(entry).st_mtime_ns])
        except OSError:
            continue
    return stamps
