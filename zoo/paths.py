"""Where zoo keeps its files: the user's catalog folder, caches, state and engine envs.

Every location can be moved with an environment variable so tests and shared machines can
isolate zoo completely (``ZOO_HOME`` moves them all at once).
"""

from __future__ import annotations

import os
from pathlib import Path

APP_NAME = "zoo"


def _base(env_var: str, kind: str) -> Path:
    explicit = os.environ.get(env_var)
    if explicit:
        return Path(explicit).expanduser()
    home = os.environ.get("ZOO_HOME")
    if home:
        return Path(home).expanduser() / kind
    import platformdirs  # imported here: only commands that touch files pay for it

    finder = {
        "config": platformdirs.user_config_dir,
        "cache": platformdirs.user_cache_dir,
        "state": platformdirs.user_state_dir,
        "data": platformdirs.user_data_dir,
    }[kind]
    return Path(finder(APP_NAME, appauthor=False))


def config_dir() -> Path:
    """The user's settings and own catalog folder (``<config>/specs``)."""
    return _base("ZOO_CONFIG_DIR", "config")


def user_catalog_dir() -> Path:
    return config_dir() / "specs"


def cache_dir() -> Path:
    """zoo's own caches (compiled catalog, hub reachability verdicts, wheels)."""
    return _base("ZOO_CACHE_DIR", "cache")


def state_dir() -> Path:
    """Running instances (SQLite) and their logs."""
    return _base("ZOO_STATE_DIR", "state")


def data_dir() -> Path:
    """Engine virtual environments."""
    return _base("ZOO_DATA_DIR", "data")
