"""The ``zoo`` command line: this module only assembles the command groups.

Each command module exposes ``register(app)`` and imports heavy libraries inside its
commands, so ``zoo --version`` and ``zoo list`` start fast. Plugin commands are added through
the ``zoo_register_commands`` hook, loaded only when the command line may need them.
"""

from __future__ import annotations

import os
import sys
from importlib import import_module

import typer

from zoo import __version__
from zoo.errors import ZooError

# Command modules, in the order their commands appear in ``zoo --help``.
COMMAND_MODULES = (
    "zoo.cli.catalog_cmds",
    "zoo.cli.launch_cmd",
    "zoo.cli.hub_cmds",
    "zoo.cli.runtime_cmds",
    "zoo.cli.engines_cmds",
    "zoo.cli.docs_cmds",
    "zoo.cli.import_cmds",
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"zoo {__version__}")
        raise typer.Exit()


def build_app(
    *, with_plugins: bool = True, modules: tuple[str, ...] = COMMAND_MODULES
) -> typer.Typer:
    from zoo.cli.fastparams import install

    install()  # plain-string options without importing pydantic: keeps `zoo list` fast
    app = typer.Typer(
        name="zoo",
        help="Find, download and run open models behind an OpenAI-compatible endpoint.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
    )

    @app.callback()
    def root(
        version: bool = typer.Option(
            False,
            "--version",
            callback=_version_callback,
            is_eager=True,
            help="Print zoo's version and exit.",
        ),
        debug: bool = typer.Option(
            False,
            "--debug",
            help="Show full tracebacks for errors (also: ZOO_DEBUG=1).",
        ),
    ) -> None:
        if debug:
            os.environ["ZOO_DEBUG"] = "1"

    for module_name in modules:
        import_module(module_name).register(app)
    if with_plugins:
        from zoo.plugins import plugin_manager

        plugin_manager().hook.zoo_register_commands(app=app)
    return app


def _needs_plugin_commands(argv: list[str]) -> bool:
    """Plugin commands are loaded unless the first word is a built-in command (fast path)."""
    words = [a for a in argv if not a.startswith("-")]
    if not words:
        # `zoo --version` prints and exits before any command matters: no plugins needed.
        return "--version" not in argv
    return words[0] not in _builtin_command_names()


def _builtin_command_names() -> set[str]:
    names: set[str] = set()
    for module_name in COMMAND_MODULES:
        names.update(getattr(import_module(module_name), "COMMANDS", ()))
    return names


def modules_for(argv: list[str]) -> tuple[str, ...]:
    """The command modules a command line needs: only the named command's (fast path).

    typer builds the parameters of every registered command on each run, so registering only
    the one being run saves most of the start-up time. A module that adds subcommands to
    another module's group names that command in ``EXTENDS``. Help, no command, or an unknown
    word (typer then suggests names) get every module.
    """
    words = [a for a in argv if not a.startswith("-")]
    if not words or "--help" in argv or "-h" in argv:
        return COMMAND_MODULES
    needed = tuple(
        name
        for name in COMMAND_MODULES
        if words[0] in getattr(import_module(name), "COMMANDS", ())
        or words[0] in getattr(import_module(name), "EXTENDS", ())
    )
    return needed or COMMAND_MODULES


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args or os.environ.get("ZOO_DEBUG") == "1"
    try:
        app = build_app(with_plugins=_needs_plugin_commands(args), modules=modules_for(args))
        app(args=args, prog_name="zoo", standalone_mode=True)
    except ZooError as error:
        if debug:
            raise
        typer.echo(f"zoo: error: {error}", err=True)
        sys.exit(error.exit_code)
    except KeyboardInterrupt:
        typer.echo("zoo: interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
