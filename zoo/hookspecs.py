"""The plugin contract: every hook zoo calls, with when it is called and what it returns.

Plugins implement these with ``@zoo.hookimpl`` in a module named by an entry point in the
``zoo`` group. Built-in hubs and engines register through the same hooks.

zoo calls each plugin's implementation on its own (``zoo.plugins``): an implementation that
raises, returns something other than what its spec says, or is named like no hook here (a
misspelling) is recorded against its plugin, shown by ``zoo plugins`` and as one warning
line, and never breaks the command; ``ZOO_STRICT_PLUGINS=1`` makes each of these an error.
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
    """Return the engines this plugin provides: a list of ``zoo.engine.Engine`` instances.

    Called once per plugin manager, the first time zoo needs the engine list (``zoo engines``,
    ``zoo launch``, docs rendering). Every plugin's list is merged. Each engine is checked
    (``name``, ``display_name``, ``capabilities``; ``server_command`` is abstract): one that
    fails is left out with a problem naming it. A name another plugin registered first is
    left out too. Return ``[]`` to register nothing.
    """


@hookspec
def zoo_register_hubs() -> list[Hub]:  # type: ignore[empty-body]
    """Return the model hubs (download sources) this plugin provides: ``zoo.hubs.base.Hub``
    instances.

    Called once per plugin manager, the first time zoo needs a hub (``zoo download``,
    ``zoo launch``, ``zoo cache``, docs rendering). Every plugin's list is merged. Each hub is
    checked (``name``, ``display_name``, the flags; the download methods are abstract): one
    that fails, or whose name another plugin registered first, is left out with a problem
    naming it. Return ``[]`` to register nothing.
    """


@hookspec
def zoo_catalog_paths() -> list[Path]:  # type: ignore[empty-body]
    """Return folders (or single files) of spec YAML files this plugin ships: a list of
    ``Path`` or ``str``.

    Called when the catalog loads, after the built-in catalog, the user folder and
    ``ZOO_CATALOG_PATH`` folders (the answer is cached until distributions change). Their
    families join the catalog; a family defined twice is reported with both locations.
    Return ``[]`` for none.
    """


@hookspec
def zoo_register_commands(app: typer.Typer) -> None:
    """Add commands to the ``zoo`` command line.

    Called once while the CLI is assembled, before arguments are parsed. ``app`` is the root
    ``typer.Typer``: add commands with ``@app.command()`` or groups with ``app.add_typer``.
    Returns nothing. Keep imports inside the command functions so ``zoo`` starts fast. A
    plugin whose hook raises is reported, and the other plugins' commands still work.
    """
