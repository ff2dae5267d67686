"""zoo's settings file: ``config.toml`` in ``zoo.paths.config_dir()`` (``ZOO_CONFIG`` moves it).

What it may hold (every key optional)::

    hub = "huggingface"          # the hub to prefer (as $ZOO_HUB; "auto": any)
    host = "127.0.0.1"           # zoo launch --host
    port = 8080                  # zoo launch --port
    api_key_env = "MY_ZOO_KEY"   # the API key is in this environment variable, or
    api_key_file = "~/.zoo-key"  # in this file (readable by its owner only)
    opt_in = ["vllm-cpu"]        # engine variants (as $ZOO_ENGINE_OPT_IN)
    min_speed = 5                # tokens/s that count as usable (--min-speed)
    cluster = "10.0.0.5:6379"    # the Ray cluster --cluster means (as $ZOO_CLUSTER)

    [models."qwen3"]             # defaults for one family
    quantization = "Q4_K_M"
    engine = "llamacpp"          # as `zoo engines` names them
    size = "8B"
    format = "ggufv2"
    context = 16384

Precedence, the one rule: a flag (or a reference's tag, ``qwen3:8b``) wins over an environment
variable, which wins over this file, which wins over zoo's built-in default. Opt-ins: the file's
list is what ``$ZOO_ENGINE_OPT_IN`` would say when that variable is not set; ``--opt-in`` adds.

The API key itself never goes in this file (``api_key`` is refused): the file is usually
readable by others, and keys in dotfiles end up in backups and screenshots. A key file that its
group or others can read is refused too. A mistake in the file is one line naming the file, the
line (found by scanning the text: tomllib gives no positions) and the key; so is a per-model
default the family or the engines do not have, when a command uses it (``zoo.cli.options``).
A file over ``MAX_BYTES``, or nested too deeply for the parser, is refused in one line too.
"""

from __future__ import annotations

import math
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo.errors import UsageError

CONFIG_ENV = "ZOO_CONFIG"
FILE_NAME = "config.toml"
HUB_ENV = "ZOO_HUB"  # read by zoo.launch as well: one name
API_KEY_ENV = "ZOO_API_KEY"
OPT_IN_ENV = "ZOO_ENGINE_OPT_IN"

DEFAULT_HOST = "127.0.0.1"
# zoo's settings fit in a few hundred bytes; a file far larger is a mistake (a log or a model
# pointed at by ZOO_CONFIG), and is refused before it is read into memory.
MAX_BYTES = 1024 * 1024

# key -> (the Python types it may have, what to call them in a message)
_Types = tuple[tuple[type, ...], str]
SETTINGS: dict[str, _Types] = {
    "hub": ((str,), "a string"),
    "host": ((str,), "a string"),
    "port": ((int,), "an integer"),
    "api_key_env": ((str,), "a string"),
    "api_key_file": ((str,), "a string"),
    "opt_in": ((list, str), "a list of strings"),
    "min_speed": ((int, float), "a number"),
    "cluster": ((str,), "a string"),
    "models": ((dict,), "a table"),
}
MODEL_SETTINGS: dict[str, _Types] = {
    "engine": ((str,), "a string"),
    "format": ((str,), "a string"),
    "size": ((str, int, float), 'a size like "8B"'),
    "quantization": ((str,), "a string"),
    "context": ((int,), "an integer"),
}


class ConfigError(UsageError):
    """The settings file cannot be used as written."""

    code = "config"


@dataclass(frozen=True)
class Setting:
    """An effective value and where it came from: "flag", "env NAME", "file PATH:LINE",
    "default"."""

    value: Any
    source: str


@dataclass(frozen=True)
class Config:
    path: Path
    exists: bool = False
    values: Mapping[str, Any] = field(default_factory=dict)
    # family name (lower case) -> its settings
    models: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    lines: Mapping[tuple[str, ...], int] = field(default_factory=dict)

    def where(self, *keys: str) -> str:
        line = self.lines.get(keys)
        return f"file {self.path}:{line}" if line else f"file {self.path}"

    def get(self, key: str) -> Setting | None:
        if key not in self.values:
            return None
        return Setting(self.values[key], self.where(key))

    def model(self, name: str, key: str) -> Setting | None:
        settings = self.models.get(name.lower(), {})
        if key not in settings:
            return None
        return Setting(settings[key], self.where("models", _model_key(self, name), key))


def _model_key(config: Config, name: str) -> str:
    # The family's key as the file spells it (lines are recorded under that spelling).
    for keys in config.lines:
        if len(keys) >= 2 and keys[0] == "models" and keys[1].lower() == name.lower():
            return keys[1]
    return name


def config_path(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    explicit = env.get(CONFIG_ENV, "").strip()
    if explicit:
        return Path(explicit).expanduser()
    from zoo.paths import config_dir

    return config_dir() / FILE_NAME


_loaded: dict[tuple[str, int, int], Config] = {}


def load(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """The settings file, validated (read once per process while it is unchanged). A missing
    file is no settings, unless ``$ZOO_CONFIG`` named it."""
    env = os.environ if environ is None else environ
    named = path is not None or bool(env.get(CONFIG_ENV, "").strip())
    path = path if path is not None else config_path(env)
    try:
        info = path.stat()
    except FileNotFoundError:
        if named:
            raise ConfigError(
                f"the settings file {path} does not exist",
                hint=f"create it, or unset {CONFIG_ENV}",
            ) from None
        return Config(path)
    except OSError as error:
        raise ConfigError(f"cannot read the settings file {path}: {error.strerror}") from None
    key = (str(path), info.st_mtime_ns, info.st_size)
    cached = _loaded.get(key)
    if cached is None:
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(f"the settings file {path} is not a file")
        if info.st_size > MAX_BYTES:
            raise _too_large(path)
        try:
            with path.open("rb") as stream:
                # Read one byte past the limit: a file that grew since stat is refused too.
                raw = stream.read(MAX_BYTES + 1)
            if len(raw) > MAX_BYTES:
                raise _too_large(path)
            text = raw.decode("utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise ConfigError(f"cannot read the settings file {path}: {error}") from None
        cached = _loaded[key] = parse(text, path)
    return cached


def _too_large(path: Path) -> ConfigError:
    return ConfigError(
        f"the settings file {path} is larger than {MAX_BYTES // 1024 // 1024} MiB",
        hint="zoo's settings take a few lines; is ZOO_CONFIG pointing at the right file?",
    )


def parse(text: str, path: Path) -> Config:
    """Validate the file's text: TOML, known keys, the right types and values."""
    import tomllib

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        message = str(error)
        found = re.search(r"\(at line (\d+), column \d+\)", message)
        where = f"{path}:{found.group(1)}" if found else str(path)
        reason = re.sub(r"\s*\(at (?:line \d+, column \d+|end of document)\)", "", message)
        raise ConfigError(f"{where}: not valid TOML: {reason}") from None
    except RecursionError:
        # tomllib parses nested arrays and inline tables recursively: a hostile or broken file
        # (``hub = [[[[...]]]]``) exhausts the stack rather than failing to parse.
        raise ConfigError(f"{path}: not valid TOML: values nested too deeply") from None
    lines = key_lines(text)

    def fail(keys: tuple[str, ...], message: str, hint: str | None = None) -> ConfigError:
        line = lines.get(keys)
        return ConfigError(f"{path}{f':{line}' if line else ''}: {message}", hint=hint)

    values: dict[str, Any] = {}
    models: dict[str, dict[str, Any]] = {}
    for key, value in data.items():
        if key == "api_key":
            raise fail(
                (key,),
                "the API key itself does not belong in the settings file",
                hint='name where it is instead: api_key_env = "VARIABLE", or '
                'api_key_file = "PATH" for a file only you can read',
            )
        if key not in SETTINGS:
            raise fail((key,), f"unknown setting {key!r}", hint=f"known: {', '.join(SETTINGS)}")
        _check_type((key,), value, SETTINGS[key], fail)
        if key == "models":
            for name, settings in value.items():
                _check_type((key, name), settings, ((dict,), "a table"), fail)
                models[name.lower()] = _model_settings(name, settings, fail)
        else:
            values[key] = _value(key, value, fail)
    if "api_key_env" in values and "api_key_file" in values:
        raise fail(("api_key_file",), "give api_key_env or api_key_file, not both")
    return Config(path, True, values, models, lines)


def _check_type(keys: tuple[str, ...], value: Any, types: _Types, fail: Any) -> None:
    allowed, described = types
    if isinstance(value, bool) or not isinstance(value, allowed):
        shown = type(value).__name__.replace("dict", "table").replace("str", "string")
        raise fail(keys, f"{'.'.join(keys)} must be {described}, not {shown}")


def _value(key: str, value: Any, fail: Any) -> Any:
    if key == "port" and not 0 < value < 65536:
        raise fail((key,), f"port {value} is not a TCP port")
    if key == "min_speed":
        try:
            return check_min_speed(value, what=key)
        except UsageError as error:
            raise fail((key,), error.args[0], hint=error.hint) from None
    if key == "opt_in":
        names = value.split(",") if isinstance(value, str) else value
        if not all(isinstance(n, str) for n in names):
            raise fail((key,), "opt_in must be a list of strings")
        return tuple(n.strip() for n in names if n.strip())
    if key in ("hub", "host", "api_key_env", "api_key_file") and not value.strip():
        raise fail((key,), f"{key} is empty")
    return value.strip() if isinstance(value, str) else value


def _model_settings(name: str, settings: Mapping[str, Any], fail: Any) -> dict[str, Any]:
    from zoo.reference import parse_size

    checked: dict[str, Any] = {}
    for key, value in settings.items():
        keys = ("models", name, key)
        if key not in MODEL_SETTINGS:
            raise fail(
                keys,
                f"unknown setting {key!r} for model {name!r}",
                hint=f"known: {', '.join(MODEL_SETTINGS)}",
            )
        _check_type(keys, value, MODEL_SETTINGS[key], fail)
        if key == "size":
            try:
                parse_size(str(value), what=f"models.{name}.size")
            except UsageError as error:
                raise fail(keys, str(error)) from None
        if key == "context" and value <= 0:
            raise fail(keys, "context must be a positive number of tokens")
        checked[key] = str(value) if key == "size" else value
    return checked


def key_lines(text: str) -> dict[tuple[str, ...], int]:
    """The line (1-based) where each key path is set or its table starts, by a plain scan:
    tables (``[a."b"]``) and dotted keys are followed; arrays of tables and multi-line values
    are not needed for zoo's settings and simply find nothing."""
    lines: dict[tuple[str, ...], int] = {}
    table: tuple[str, ...] = ()
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and not line.startswith("[["):
            inner = line[1 : line.find("]", 1)] if "]" in line else line[1:]
            table = _dotted(inner)
            lines.setdefault(table, number)
            continue
        if "=" in line:
            keys = table + _dotted(line.split("=", 1)[0])
            lines.setdefault(keys, number)
    return lines


def _dotted(text: str) -> tuple[str, ...]:
    parts = re.findall(r'"((?:[^"\\]|\\.)*)"|\'([^\']*)\'|([^.\s"\']+)', text)
    return tuple(next(p for p in part if p) if any(part) else "" for part in parts)


# -- the effective settings -------------------------------------------------------------------


def default_hub(config: Config | None = None, environ: Mapping[str, str] | None = None) -> Setting:
    """The hub to prefer: ``$ZOO_HUB``, then the file's ``hub``; None: any ("auto" too)."""
    env = os.environ if environ is None else environ
    value = env.get(HUB_ENV, "").strip()
    if value:
        return Setting(None if value == "auto" else value, f"env {HUB_ENV}")
    found = (config or load(environ=environ)).get("hub")
    if found is not None:
        return Setting(None if found.value == "auto" else found.value, found.source)
    return Setting(None, "default")


def opt_ins(config: Config | None = None, environ: Mapping[str, str] | None = None) -> Setting:
    """The opt-ins before ``--opt-in``: ``$ZOO_ENGINE_OPT_IN`` when set (even empty), else the
    file's ``opt_in``."""
    env = os.environ if environ is None else environ
    if OPT_IN_ENV in env:
        names = tuple(n.strip() for n in env[OPT_IN_ENV].split(",") if n.strip())
        return Setting(names, f"env {OPT_IN_ENV}")
    found = (config or load(environ=environ)).get("opt_in")
    return found if found is not None else Setting((), "default")


def check_min_speed(value: float, *, what: str = "--min-speed") -> float:
    """The one rule for a usable speed, for ``--min-speed`` and the file's ``min_speed``: a
    finite number of tokens/s, 0 or more (0: any speed; a huge one: nothing counts as usable,
    so the fastest choice is taken). nan and inf would make every comparison say nothing."""
    if not math.isfinite(value) or value < 0:
        raise UsageError(
            f"{what} {value:g} is not a number of tokens/s, 0 or more",
            hint="0 accepts any speed",
        )
    return float(value)


def min_speed(flag: float | None, config: Config | None = None) -> Setting:
    if flag is not None:
        return Setting(flag, "flag")
    found = (config or load()).get("min_speed")
    return found if found is not None else Setting(None, "default")


def chosen(flag: Any, key: str, default: Any, config: Config | None = None) -> Setting:
    """A flag if given, else the file's ``key``, else ``default``."""
    if flag is not None:
        return Setting(flag, "flag")
    found = (config or load()).get(key)
    return found if found is not None else Setting(default, "default")


def api_key(
    flag: str | None, config: Config | None = None, environ: Mapping[str, str] | None = None
) -> Setting:
    """The key clients must send: ``--api-key`` (typer reads ``$ZOO_API_KEY`` into it), then
    the variable or file the settings name. A key file others can read is refused."""
    env = os.environ if environ is None else environ
    if flag is not None:
        return Setting(flag, "env ZOO_API_KEY" if env.get(API_KEY_ENV) == flag else "flag")
    if env.get(API_KEY_ENV):
        return Setting(env[API_KEY_ENV], f"env {API_KEY_ENV}")
    config = config or load(environ=environ)
    variable = config.get("api_key_env")
    if variable is not None:
        key = env.get(variable.value, "")
        if not key:
            raise ConfigError(
                f"api_key_env names ${variable.value}, which is not set ({variable.source[5:]})",
                hint="set it, or remove api_key_env from the settings",
            )
        return Setting(key, f"env {variable.value} ({variable.source})")
    key_file = config.get("api_key_file")
    if key_file is not None:
        return Setting(read_key_file(Path(key_file.value).expanduser()), key_file.source)
    return Setting(None, "default")


def read_key_file(path: Path) -> str:
    """The key in ``path`` (one line); refused when its group or others may read or write it."""
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(f"the API key file {path} is not a file")
        if info.st_mode & 0o077:
            raise ConfigError(
                f"the API key file {path} can be read by others "
                f"(mode {stat.S_IMODE(info.st_mode):04o})",
                hint=f"chmod 600 {path}",
            )
        key = path.read_text(encoding="utf-8").strip()
    except OSError as error:
        raise ConfigError(f"cannot read the API key file {path}: {error.strerror}") from None
    if not key:
        raise ConfigError(f"the API key file {path} is empty")
    return key
