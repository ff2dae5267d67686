"""The command-line reference, generated from the typer app so it always matches ``--help``.

The app is built without plugin commands: the reference documents zoo itself, the same on
every machine. Each command gets its usage line, help text, and the same argument and option
lines ``--help`` prints (taken from each parameter's help record).

Typer ships its own copy of Click, so commands are handled by duck typing (``list_commands``)
rather than ``isinstance`` checks against the ``click`` package.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from zoo.docs import rst

if TYPE_CHECKING:
    import typer


def _walk(command: Any, ctx: typer.Context) -> Iterator[tuple[Any, typer.Context]]:
    import typer

    yield command, ctx
    for name, sub in _subcommands(command, ctx):
        yield from _walk(sub, typer.Context(sub, info_name=name, parent=ctx))


def _subcommands(command: Any, ctx: typer.Context) -> list[tuple[str, Any]]:
    if not hasattr(command, "list_commands"):
        return []
    found = [(name, command.get_command(ctx, name)) for name in command.list_commands(ctx)]
    return [(name, sub) for name, sub in found if sub is not None and not sub.hidden]


def command_label(path: str) -> str:
    return "cli-" + path.replace(" ", "-")


def render_cli_reference(app: typer.Typer | None = None) -> str:
    import typer
    import typer.main

    if app is None:
        from zoo.cli.app import build_app

        app = build_app(with_plugins=False)
    root = typer.main.get_command(app)
    root_ctx = typer.Context(root, info_name="zoo")
    parts: list[str] = []
    for command, ctx in _walk(root, root_ctx):
        if command is not root:
            parts.append(rst.label_line(command_label(ctx.command_path)))
            parts.append(rst.heading(ctx.command_path, "-" if ctx.parent is root_ctx else "~"))
        parts.append(_command_body(command, ctx))
    return "\n".join(parts)


def _command_body(command: Any, ctx: typer.Context) -> str:
    usage = " ".join([ctx.command_path, *command.collect_usage_pieces(ctx)])
    parts = [rst.code_block(usage, "text")]
    if command.help:
        parts.append(_help_text(command.help))
    arguments: list[list[str]] = []
    options: list[list[str]] = []
    for param in command.get_params(ctx):
        record = param.get_help_record(ctx)
        if record is None or param.name == "help":
            continue
        names, help_text = record
        row = [rst.literal(names), rst.prose(help_text) if help_text else "\\ "]
        (arguments if param.param_type_name == "argument" else options).append(row)
    if arguments:
        parts.append(rst.list_table(["Argument", "Description"], arguments, "30 70"))
    if options:
        parts.append(rst.list_table(["Option", "Description"], options, "30 70"))
    rows = [
        [
            rst.ref(f"{ctx.command_path} {name}", command_label(f"{ctx.command_path} {name}")),
            rst.prose(sub.get_short_help_str(limit=120)),
        ]
        for name, sub in _subcommands(command, ctx)
    ]
    if rows:
        parts.append(rst.list_table(["Command", "What it does"], rows, "30 70"))
    return "\n".join(parts)


def _help_text(help_text: str) -> str:
    # Click help is plain text in paragraphs; "\b" marks a paragraph Click must not rewrap.
    paragraphs = [p.replace("\b", "").strip() for p in help_text.split("\n\n")]
    return "\n".join(rst.prose(p) + "\n" for p in paragraphs if p)
