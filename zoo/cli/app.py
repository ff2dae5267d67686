"""The ``zoo`` command line: this module only assembles the command groups.

Each command module exposes ``register(app)`` and imports heavy libraries inside its
commands, so ``zoo --version`` and ``zoo list`` start fast. Plugin commands are added through
the ``zoo_register_commands`` hook, loaded only when the command line may need them.

``main`` is also the one place errors are reported, for every command:

- a ``ZooError`` is one line on stderr, ``zoo: error: MESSAGE (HINT)``; typer's own usage
  errors (a bad int, an unknown option) are one line too, ending in where to find help;
- with ``--json`` anywhere before ``--``, an error is instead ONE JSON object on stdout,
  ``{"version": 1, "error": {"code": ..., "message": ..., "hint": ...}}``, and stdout holds
  nothing else: a ``--json`` command's output is held back until it succeeds, so a failure
  half-way never leaves partial output for a script to parse;
- exit status: 2 for usage errors (``zoo.errors.UsageError`` and typer's), 130 when
  interrupted (Ctrl-C), otherwise the error's ``exit_code``, which is 1; stdout closed by the
  reader (``zoo list | head -1``) is silent and 1, as rich (``zoo show``) and click do it;
- no traceback unless ``--debug`` or ``ZOO_DEBUG=1``; then it goes to stderr before the same
  report. An unexpected exception (a bug in zoo or a plugin) is one line naming the exception
  and where it was raised, code ``internal``; an ``OSError`` that no one turned into a
  ``ZooError`` is one line, code ``os``.
"""

from __future__ import annotations

import io
import os
import sys
from importlib import import_module
from typing import NoReturn, TextIO

import typer

from zoo import __version__
from zoo.errors import ZooError

# Command modules, in the order their commands appear in ``zoo --help``.
COMMAND_MODULES = (
    "zoo.cli.catalog_cmds",
    "zoo.cli.catalog_check_cmd",
    "zoo.cli.launch_cmd",
    "zoo.cli.run_cmd",
    "zoo.cli.hub_cmds",
    "zoo.cli.runtime_cmds",
    "zoo.cli.cluster_cmd",
    "zoo.cli.serve_cmd",
    "zoo.cli.engines_cmds",
    "zoo.cli.docs_cmds",
    "zoo.cli.import_cmds",
    "zoo.cli.config_cmd",
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
        # `debug` is read by `main` from the command line, before anything can fail; it is
        # declared here so typer accepts it and `zoo --help` lists it.
        del version, debug

    for module_name in modules:
        import_module(module_name).register(app)
    if with_plugins:
        from zoo.plugins import add_plugin_commands

        add_plugin_commands(app)  # a plugin that raises adds no commands; the rest still work
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


# The version of the ``--json`` error document; the rules are in the module docstring.
ERROR_JSON_VERSION = 1
INTERRUPTED = 130
# Not 141 (128 + SIGPIPE): rich's console exits 1 on a closed pipe itself, and one status for
# one outcome matters more to a script than the shell's convention.
BROKEN_PIPE = 1


def main(argv: list[str] | None = None) -> NoReturn:
    """Run one command line and exit with its status; every error is reported here."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args and os.environ.get("_ZOO_COMPLETE"):
        # The shell's completion protocol without the `completion` word (the standard
        # `eval "$(_ZOO_COMPLETE=source_bash zoo)"`): answered by that command.
        args = ["completion"]
    # Words after `--` go to the engine's server unchanged: a `--json` there is not zoo's.
    ours = args[: args.index("--")] if "--" in args else args
    debug = "--debug" in ours or os.environ.get("ZOO_DEBUG", "") not in ("", "0")
    sys.exit(_run(args, as_json="--json" in ours, debug=debug))


def _run(args: list[str], *, as_json: bool, debug: bool) -> int:
    stdout = sys.stdout
    held = io.StringIO() if as_json else None
    try:
        if held is not None:
            sys.stdout = held
        try:
            status = _dispatch(args)
        finally:
            sys.stdout = stdout
        if held is not None:
            stdout.write(held.getvalue())
        stdout.flush()
        return status
    except BaseException as error:  # the CLI's one error boundary: everything is reported
        if isinstance(error, BrokenPipeError):
            _silence_stdout()
            return BROKEN_PIPE
        if debug and not _is_usage(error):
            import traceback

            _write(sys.stderr, "".join(traceback.format_exception(error)))
        status, report = _describe(error)
        if as_json:
            _write_json_error(stdout, report)
        elif isinstance(error, typer.TyperException) and _shows_help(error):
            error.show()  # type: ignore[attr-defined]  # `zoo` alone: typer prints the help
        else:
            _write(sys.stderr, _error_line(report))
        return status


def _dispatch(args: list[str]) -> int:
    """Run the command; its exit status (typer.Exit and sys.exit are outcomes, not errors)."""
    from typer.main import get_command

    app = build_app(with_plugins=_needs_plugin_commands(args), modules=modules_for(args))
    command = get_command(app)
    try:
        # What typer's standalone mode does, without its own error printing: that is ours.
        with command.make_context("zoo", args) as ctx:
            command.invoke(ctx)
    except typer.Exit as done:
        return done.exit_code
    except SystemExit as done:
        if done.code is None or isinstance(done.code, int):
            return done.code or 0
        raise
    return 0


def _describe(error: BaseException) -> tuple[int, dict[str, str | None]]:
    """The exit status and the report (code, message, hint) for an error that reached main."""
    if isinstance(error, ZooError):
        return error.exit_code, error.to_json()
    if isinstance(error, KeyboardInterrupt):
        return INTERRUPTED, {"code": "interrupted", "message": "interrupted", "hint": None}
    if isinstance(error, (typer.Abort, EOFError)):
        return 1, {"code": "aborted", "message": "aborted", "hint": None}
    if isinstance(error, typer.TyperException):
        context = getattr(error, "ctx", None)
        hint = f"see `{context.command_path} --help`" if context is not None else None
        code = "usage" if error.exit_code == 2 else "error"
        return error.exit_code, {
            "code": code,
            "message": _one_line(error.format_message()).rstrip("."),
            "hint": hint,
        }
    if isinstance(error, SystemExit):  # sys.exit("text") from a command or a plugin
        return 1, {"code": "error", "message": _one_line(str(error.code)), "hint": None}
    if isinstance(error, OSError) and error.strerror:
        where = f": {error.filename}" if error.filename is not None else ""
        return 1, {"code": "os", "message": f"{error.strerror}{where}", "hint": None}
    if not isinstance(error, Exception):  # GeneratorExit and the like: not ours to explain
        raise error
    return 1, {
        "code": "internal",
        "message": f"internal error: {type(error).__name__}: {_one_line(str(error))}"
        + _raised_at(error),
        "hint": "a bug in zoo or a plugin; --debug shows the traceback",
    }


def _is_usage(error: BaseException) -> bool:
    """Typer's usage errors explain themselves: a traceback would only hide the message."""
    return isinstance(error, typer.TyperException) and error.exit_code == 2


def _shows_help(error: typer.TyperException) -> bool:
    # `zoo` or `zoo launch` with no arguments: the help is the answer, not an error line.
    return type(error).__name__ == "NoArgsIsHelpError" and hasattr(error, "show")


def _raised_at(error: BaseException) -> str:
    import traceback

    frames = traceback.extract_tb(error.__traceback__)
    if not frames:
        return ""
    last = frames[-1]
    parts = last.filename.replace(os.sep, "/").split("/")
    return f" at {'/'.join(parts[-2:])}:{last.lineno}"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _error_line(report: dict[str, str | None]) -> str:
    message = report["message"] or ""
    if report["code"] == "interrupted":
        return "zoo: interrupted\n"
    # "zoo: internal error: ..." for a bug, "zoo: error: ..." for everything a user can act on.
    line = f"zoo: {message}" if report["code"] == "internal" else f"zoo: error: {message}"
    return f"{line} ({report['hint']})\n" if report["hint"] else f"{line}\n"


def _write_json_error(stdout: TextIO, report: dict[str, str | None]) -> None:
    import json

    document = {"version": ERROR_JSON_VERSION, "error": report}
    _write(stdout, json.dumps(document, indent=2, ensure_ascii=False) + "\n")


def _write(stream: TextIO, text: str) -> None:
    """Write and flush, ignoring a closed stream: the report must not become a second error."""
    try:
        stream.write(text)
        stream.flush()
    except (OSError, ValueError):
        pass


def _silence_stdout() -> None:
    """After a closed pipe, point stdout at /dev/null so the interpreter's final flush of what
    is still buffered does not print "Exception ignored ... BrokenPipeError"."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass  # stdout without a file descriptor (a test's capture): nothing is flushed later


if __name__ == "__main__":
    main()
