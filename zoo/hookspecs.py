"""The plugin contract: every hook zoo calls, with when it is called and what it returns.

Plugins implement these with ``@zoo.hookimpl`` in a module named by an entry point in the
``zoo`` group. Built-in hubs and engines register through the same hooks.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import typer

    from zoo.engine import Engine
    from zoo.hubs.base import Hub

hookspec = pluggy.HookspecMarker("zoo")
hookimpl = pluggy.HookimplMarker("zoo")


@hookspec
def zoo_register_engines() -> list[Engine]:  # type: ignore[empty-body]
    """Return the engines this plugin provides.

    Called once per plugin manager, the first time zoo needs the engine list (``zoo engines``,
    ``zoo launch``, docs rendering). Every plugin's list is merged; two engines with the same
    ``name`` are an error naming both plugins.
    """


@hookspec
def zoo_register_hubs() -> list[Hub]:  # type: ignore[empty-body]
    """Return the model hubs (download sources) this plugin provides.

    Called the first time zoo needs a hub (``zoo download``, ``zoo launch``, ``zoo cache``).
    Every plugin's list is merged; hub names must be unique.
    """


@hookspec
def zoo_catalog_paths() -> list[Path]:  # type: ignore[empty-body]
    """Return folders of spec YAML files this plugin ships.

    Called when the catalog loads, after the built-in catalog, the user folder and
    ``ZOO_CATALOG_PATH`` folders. Their families join the catalog; a family defined twice is
    reported with both locations.
    """


@hookspec
def zoo_register_commands(app: typer.Typer) -> None:
    """Add commands to the ``zoo`` command line.

    Called once while the CLI is assembled, before arguments are parsed. ``app`` is the root
    ``typer.Typer``: add commands with ``@app.command()`` or groups with ``app.add_typer``.
    Returns nothing. Keep imports inside the command functions so ``zoo`` starts fast.
    """
