"""``zoo config show|path`` (the settings file, ``zoo.config``) and ``zoo completion``.

``config show`` prints every effective setting and where it came from (flag, environment
variable, the file with its line, or zoo's default), by the same functions the commands use,
so what it says is what a launch does. The API key is never printed, only ``***``.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Annotated, Any

import typer

from zoo.cli.options import MinSpeedOption

if TYPE_CHECKING:
    from zoo.config import Setting

# Top-level command names this module adds (lets the CLI skip loading plugins for them).
COMMANDS: tuple[str, ...] = ("config", "completion")

CONFIG_SHOW_JSON_VERSION = 1


def show(
    host: Annotated[str | None, typer.Option("--host", help="As zoo launch --host.")] = None,
    port: Annotated[int | None, typer.Option("--port", help="As zoo launch --port.")] = None,
    min_speed: MinSpeedOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the settings as JSON.")] = False,
) -> None:
    """Print the effective settings and where each came from: flag, environment variable,
    the settings file (with its line) or zoo's default. Flags beat environment variables,
    which beat the file, which beats the defaults."""
    from zoo import config

    file = config.load()
    rows = effective(file, host=host, port=port, min_speed=min_speed)
    if as_json:
        document = {
            "version": CONFIG_SHOW_JSON_VERSION,
            "path": str(file.path),
            "exists": file.exists,
            "settings": {
                name: {"value": _json_value(name, s), "source": s.source} for name, s in rows
            },
        }
        typer.echo(json.dumps(document, indent=2))
        return
    found = "" if file.exists else " (none: every setting is a flag, a variable or a default)"
    typer.echo(f"settings file: {file.path}{found}")
    width = max(len(name) for name, _ in rows)
    shown = [(name, _shown(name, s)) for name, s in rows]
    value_width = min(max(len(v) for _, v in shown), 40)
    for (name, setting), (_, value) in zip(rows, shown, strict=True):
        typer.echo(f"{name:{width}}  {value:{value_width}}  {setting.source}")


def effective(
    file: Any, *, host: str | None, port: int | None, min_speed: float | None
) -> list[tuple[str, Setting]]:
    """(name, Setting) for every setting, in the file's documented order."""
    from zoo import config
    from zoo.cli.options import launch_defaults, model_settings
    from zoo.cluster.address import cluster_setting
    from zoo.errors import UsageError

    try:
        cluster = cluster_setting(None, file)
    except UsageError as error:  # an address that is not one: shown, not fatal here
        cluster = config.Setting(error, "error")
    try:
        launch = launch_defaults(host, port)
        key = launch.api_key
    except config.ConfigError as error:  # a key source that fails is shown, not fatal here
        launch = launch_defaults(host, port, api_key="")
        key = config.Setting(error, "error")
    rows: list[tuple[str, Setting]] = [
        ("hub", config.default_hub(file)),
        ("host", launch.host),
        ("port", launch.port),
        ("api_key", key),
        ("opt_in", config.opt_ins(file)),
        ("min_speed", config.min_speed(min_speed, file)),
        ("cluster", cluster),
    ]
    for name in file.models:
        rows += [(f"models.{name}.{k}", s) for k, s in model_settings(file, name).items()]
    return rows


def _shown(name: str, setting: Setting) -> str:
    value = setting.value
    if setting.source == "error":
        return f"! {value}"
    if name == "api_key":
        return "***" if value else "(none)"
    if name == "hub" and value is None:
        return "auto (any hub)"
    if name == "cluster" and value is None:
        return "(none: this machine)"
    if name == "port" and value is None:
        return "(a free one)"
    if name == "min_speed" and value is None:
        from zoo.speed import DEFAULT_MIN_SPEED

        return f"{DEFAULT_MIN_SPEED:g} tok/s"
    if name == "min_speed":
        return f"{value:g} tok/s"
    from zoo.catalog.problems import one_line

    # The file's strings may hold control characters (TOML's \u0007): shown escaped.
    if isinstance(value, tuple):
        return one_line(", ".join(value)) or "(none)"
    return one_line(str(value))


def _json_value(name: str, setting: Setting) -> Any:
    if setting.source == "error":
        return {"error": str(setting.value)}
    if name == "api_key":
        return "***" if setting.value else None
    return list(setting.value) if isinstance(setting.value, tuple) else setting.value


def path() -> None:
    """Print where the settings file is read from (ZOO_CONFIG moves it)."""
    from zoo.config import config_path

    typer.echo(str(config_path()))


def completion(
    shell: Annotated[
        str | None, typer.Argument(help="bash, zsh or fish.", show_default=False)
    ] = None,
) -> None:
    """Print the shell completion script (model names complete too).

    bash: `eval "$(zoo completion bash)"` in ~/.bashrc; zsh: `eval "$(zoo completion zsh)"`
    in ~/.zshrc; fish: `zoo completion fish > ~/.config/fish/completions/zoo.fish`.
    """
    from zoo.cli import completion as completing
    from zoo.errors import UsageError

    instruction = os.environ.get(completing.COMPLETE_VAR)
    if instruction:  # the script calling back: answer it (see zoo.cli.completion)
        typer.echo(completing.answer(instruction))
        return
    if shell not in completing.SHELLS:
        raise UsageError(
            f"completion for {shell!r} is not available" if shell else "name a shell",
            hint=f"zoo completion {'|'.join(completing.SHELLS)}",
        )
    typer.echo(completing.script(shell))


def register(app: typer.Typer) -> None:
    group = typer.Typer(
        name="config",
        help="The settings file: effective settings and where they come from.",
        no_args_is_help=True,
    )
    group.command("show")(show)
    group.command("path")(path)
    app.add_typer(group)
    app.command("completion")(completion)
