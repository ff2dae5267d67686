"""The gateway config file: read it, check it, and turn it into a GatewayConfig.

The file is read the way catalog specs are (``zoo.catalog.yamlpos``: safe, bounded, every
value's ``line:col`` kept), checked against ``config.schema.json`` (which editors use through
``# yaml-language-server: $schema=...`` and ``zoo serve schema`` prints), then against the
facts the schema cannot know: the catalog's families and their builds, the installed engines
and hubs, durations and sizes, aliases that clash, API keys that cannot be read. Every
problem is reported at once, each as ``path:line:col: error[code]: message``; a file with any
error gives a ConfigError and no config, so a reload never half-applies a broken file.

API keys come from the environment (``key_env``) or a file (``key_file``): a literal ``key``
works but is warned about, since anyone who can read the config can read it. No message ever
contains a key.
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeGuard

from zoo.catalog.problems import Problem
from zoo.catalog.schema import field_name
from zoo.errors import ZooError
from zoo.serve.types import ModelEntry

if TYPE_CHECKING:
    from zoo.catalog.catalog import Catalog
    from zoo.catalog.model import Family
    from zoo.catalog.yamlpos import DataPath, Document

SCHEMA_FILE = Path(__file__).with_name("config.schema.json")
DEFAULT_HOST = "127.0.0.1"
# Next to Ollama's 11434, so nothing an Ollama user runs is in the way.
DEFAULT_PORT = 11435
DEFAULT_KEEP_ALIVE = 300.0  # Ollama's default: 5 minutes after the last request
DEFAULT_CONCURRENCY = 10
ENV_API_KEY = "ZOO_API_KEY"
# Past this a keep-alive is a typo for "forever", which is written -1.
MAX_DURATION = 1e9
MAX_KEY_FILE_BYTES = 64 * 1024

# code -> one-line summary (E1xx and E2xx are the catalog's reading and schema codes).
CODES: dict[str, str] = {
    "E400": "a model family the catalog does not have",
    "E401": "a model name or alias used by two models",
    "E402": "a duration that cannot be read",
    "E403": "a size that cannot be read (memory in bytes, or a model's parameters)",
    "E404": "an engine that is not installed",
    "E405": "a hub that is not installed",
    "E406": "a format, size, quantization or context length the family does not have",
    "E407": "an API key that cannot be had (none or several sources, unset, unreadable, bad)",
    "E408": "an API key scoped to a model the gateway cannot serve",
    "W400": "a literal API key in the config file",
    "W401": "an API key file other users can read",
    "W402": "an alias that repeats its model's own name",
}

_TYPE_NAMES = {
    "integer": "an integer",
    "number": "a number",
    "string": "a string",
    "array": "a list",
    "object": "a mapping",
    "boolean": "true or false",
    "null": "empty",
}
_PATTERN_HELP = {
    "^[A-Za-z0-9][A-Za-z0-9._:/+-]*$": "a model name: letters, digits, '.', '_', ':', '/', "
    "'+' and '-', starting with a letter or digit",
    "^[A-Za-z_][A-Za-z0-9_]*$": "an environment variable name",
}


class ConfigError(ZooError):
    """The config file has errors; the message lists each, one per line after the first.

    ``problems`` keeps them (errors and warnings) as Problem objects.
    """

    def __init__(self, message: str, problems: Sequence[Problem]) -> None:
        super().__init__(message)
        self.problems = list(problems)


@dataclass(frozen=True)
class ApiKey:
    """A key clients may send, the models it may use (empty: all) and where it came from."""

    key: str = field(repr=False)  # never in a repr, a log line or a message
    models: tuple[str, ...] = ()
    source: str = ""  # "$ZOO_TEAM_KEY", "team.key", "api_keys[0]": for messages

    def allows(self, entry: ModelEntry) -> bool:
        """Whether this key may use ``entry``: by name, alias, family, or the name a tag
        narrowed (``coder:q8_0`` is ``coder``)."""
        if not self.models:
            return True
        names = {entry.name, entry.name.partition(":")[0], entry.family, *entry.aliases}
        return not names.isdisjoint(self.models)


@dataclass(frozen=True)
class GatewayConfig:
    """What the gateway serves and how. ``models`` is read-only, in the file's order."""

    path: str | None = None
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    keep_alive: float = DEFAULT_KEEP_ALIVE  # seconds; negative: forever
    concurrency: int = DEFAULT_CONCURRENCY
    memory_budget: int | None = None  # bytes; None: what the machine has
    allow_download: bool = False
    api_keys: tuple[ApiKey, ...] = ()
    models: Mapping[str, ModelEntry] = field(default_factory=lambda: MappingProxyType({}))
    # The file's warnings (a literal key...), for the CLI to print.
    warnings: tuple[Problem, ...] = ()


# --- durations and sizes --------------------------------------------------------------------

_NUMBER = r"(?:\d{1,30}(?:\.\d{0,30})?|\.\d{1,30})"
_PLAIN_NUMBER = re.compile(_NUMBER, re.ASCII)
_DURATION_PART = re.compile(rf"({_NUMBER})(ns|us|µs|μs|ms|s|m|h|d)", re.ASCII)
_SECONDS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
}


def parse_duration(value: object) -> float:
    """Seconds from ``300``, ``"300"``, ``"5m"``, ``"1h30m"``, ``"-1"`` (negative: forever).

    Ollama's keep-alive forms: a number of seconds, or Go duration text (ns, us, ms, s, m, h;
    d for days too). Anything else is a ValueError saying what is accepted.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError("a duration is a number of seconds or text such as '5m' or '1h30m'")
    if isinstance(value, str):
        seconds = _duration_text(value)
    else:
        try:
            seconds = float(value)
        except OverflowError:
            seconds = math.inf
    if not math.isfinite(seconds):
        raise ValueError("not a finite duration")
    if abs(seconds) > MAX_DURATION:
        raise ValueError("longer than 30 years: write -1 to keep a model loaded forever")
    return seconds


def _duration_text(value: str) -> float:
    text = value.strip()
    sign = -1.0 if text.startswith("-") else 1.0
    body = text[1:] if text[:1] in "+-" else text
    if _PLAIN_NUMBER.fullmatch(body):
        return sign * float(body)
    total = 0.0
    position = 0
    while position < len(body):
        match = _DURATION_PART.match(body, position)
        if match is None:
            raise ValueError(
                f"{value!r} is not a duration: write seconds or text such as '5m', '1h30m', '90s'"
            )
        total += float(match.group(1)) * _SECONDS[match.group(2)]
        position = match.end()
    if not body:
        raise ValueError("an empty duration: write seconds or text such as '5m'")
    return sign * total


_SIZE_TEXT = re.compile(rf"({_NUMBER})\s*([A-Za-z]*)", re.ASCII)
_BYTES = {"": 1, "b": 1}
for _power, _letter in enumerate("kmgtp", start=1):
    _BYTES[_letter + "b"] = 1000**_power
    _BYTES[_letter + "ib"] = 1024**_power
    _BYTES[_letter + "i"] = 1024**_power  # Kubernetes' Gi


def parse_size(value: object) -> int:
    """Bytes from ``12884901888``, ``"12GiB"`` (1024³), ``"12GB"`` (1000³), ``"512Mi"``.

    Units are case-insensitive; a bare ``G`` is refused as ambiguous (Docker means GiB by it,
    Kubernetes GB). Anything else is a ValueError saying what is accepted.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError("a size is a number of bytes or text such as '12GiB' or '500MB'")
    if isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("not a finite size")
        amount = Decimal(value)
    else:
        match = _SIZE_TEXT.fullmatch(value.strip())
        unit = match.group(2).lower() if match else ""
        if match is None or unit not in _BYTES:
            if match is not None and unit in ("k", "m", "g", "t", "p"):
                raise ValueError(
                    f"{value!r} is ambiguous: write {match.group(1)}{unit.upper()}iB "
                    f"(1024-based) or {match.group(1)}{unit.upper()}B (1000-based)"
                )
            raise ValueError(f"{value!r} is not a size: write bytes or text such as '12GiB'")
        try:
            amount = Decimal(match.group(1)) * _BYTES[unit]
        except InvalidOperation as error:  # pragma: no cover - the pattern admits only digits
            raise ValueError(f"{value!r} is not a size") from error
    if amount < 0:
        raise ValueError("a size cannot be negative")
    return int(amount)


# --- the schema -------------------------------------------------------------------------------


def config_schema() -> dict[str, Any]:
    """The config's JSON Schema as shipped (for ``zoo serve schema`` and editors)."""
    loaded: dict[str, Any] = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    return loaded


@cache
def _validator() -> Any:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(_anchored(config_schema()))


def _anchored(node: Any) -> Any:
    # The file's patterns are ECMA-262, where '$' is the end; in Python's re it also matches
    # before a final newline, so "name\n" would pass. '\Z' is the end in Python.
    if isinstance(node, dict):
        return {
            k: v[:-1] + r"\Z"
            if k == "pattern" and isinstance(v, str) and v.endswith("$")
            else _anchored(v)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_anchored(item) for item in node]
    return node


def _schema_problems(document: Document) -> list[Problem]:
    from zoo.catalog.schema import type_name

    problems: list[Problem] = []
    for error in _validator().iter_errors(document.data):
        path: DataPath = tuple(error.absolute_path)
        keyword, instance, name = error.validator, error.instance, field_name(path)
        if "propertyNames" in error.absolute_schema_path:
            # A key of ``models`` (the error's path is the mapping's): point at the key.
            problems.append(_key_name_problem(document, path, instance, keyword, error))
        elif keyword == "additionalProperties" and isinstance(instance, dict):
            allowed = list(error.schema.get("properties", {}))
            for key in instance:
                if key not in allowed:
                    where = f" in {name}" if path else ""
                    message = f"unknown key {key!r}{where} ({_did_you_mean(key, allowed)})"
                    problems.append(document.problem((*path, key), "E201", message, key=True))
        elif keyword == "type":
            wanted = error.validator_value
            words = " or ".join(
                _TYPE_NAMES.get(str(t), str(t))
                for t in (wanted if isinstance(wanted, list) else [wanted])
            )
            message = f"{name} must be {words}, not {type_name(instance)}"
            problems.append(document.problem(path, "E200", message))
        elif keyword in ("minimum", "maximum"):
            relation = "at least" if keyword == "minimum" else "at most"
            message = f"{name} must be {relation} {error.validator_value}, not {instance}"
            problems.append(document.problem(path, "E202", message))
        elif keyword == "enum":
            choices = [str(c) for c in error.validator_value]
            message = (
                f"{name}: {instance!r} is not allowed ({_did_you_mean(str(instance), choices)})"
            )
            problems.append(document.problem(path, "E203", message))
        elif keyword == "pattern":
            help_text = _pattern_help(error.validator_value)
            problems.append(
                document.problem(path, "E204", f"{name}: {instance!r} is not {help_text}")
            )
        elif keyword in ("minItems", "minLength"):
            problems.append(document.problem(path, "E200", f"{name} must not be empty"))
        elif keyword == "maxLength":
            message = f"{name} is too long (at most {error.validator_value} characters)"
            problems.append(document.problem(path, "E200", message))
        elif keyword == "uniqueItems":
            problems.append(document.problem(path, "E200", f"{name} lists the same value twice"))
        else:  # pragma: no cover - every keyword the schema uses is worded above
            problems.append(document.problem(path, "E200", f"{name}: {error.message}"))
    return problems


def _key_name_problem(
    document: Document, path: DataPath, key: str, keyword: str, error: Any
) -> Problem:
    where = f" in {field_name(path)}" if path else ""
    if keyword == "pattern":
        reason = f"is not {_pattern_help(error.validator_value)}"
    elif keyword == "maxLength":
        reason = f"is longer than {error.validator_value} characters"
    else:  # pragma: no cover - the name schema has only a pattern and a length
        reason = error.message
    shown = key if len(key) <= 80 else key[:80] + "..."
    return document.problem((*path, key), "E204", f"{shown!r}{where} {reason}", key=True)


def _pattern_help(pattern: str) -> str:
    written = pattern[:-2] + "$" if pattern.endswith(r"\Z") else pattern
    return _PATTERN_HELP.get(written, f"matching {written}")


def _did_you_mean(word: str, choices: Iterable[str], *, others: str = "allowed") -> str:
    import difflib

    choices = list(choices)
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else f"{others}: " + ", ".join(choices)


# --- loading --------------------------------------------------------------------------------


def default_config(environ: Mapping[str, str] | None = None) -> GatewayConfig:
    """The config with no file: defaults, and ``$ZOO_API_KEY`` when set."""
    problems: list[Problem] = []
    keys = _env_key(os.environ if environ is None else environ, problems)
    if problems:
        raise ConfigError(str(problems[0]), problems)
    return GatewayConfig(api_keys=keys)


def load_config(
    path: str | os.PathLike[str],
    catalog: Catalog,
    *,
    engines: Collection[str] | None = None,
    hubs: Collection[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> GatewayConfig:
    """The config in ``path``, checked against ``catalog`` and the installed ``engines`` and
    ``hubs`` (None: not checked), keys read from ``environ`` (default: the process's).

    ``$ZOO_API_KEY``, when set, is one more key, for every model. Raises ConfigError listing
    every problem when there is any error; warnings are kept in ``GatewayConfig.warnings``.
    """
    from zoo.catalog import yamlpos

    display = os.fspath(path)
    environ = os.environ if environ is None else environ
    text, problems = yamlpos.read_text(Path(display), display)
    problems = [_reworded(p) for p in problems]
    config = GatewayConfig(path=display)
    if text is not None:
        if _only_comments(text):  # a new file with just the schema comment: all defaults
            document: Document | None = yamlpos.Document(display, {})
        else:
            document, parsed = yamlpos.parse(text, display)
            problems += parsed
        if document is not None:
            if document.data is None:  # "---" alone
                document.data = {}
            problems += _schema_problems(document)
            checker = _Checker(document, catalog, engines, hubs, environ)
            config = checker.build()
            problems += checker.problems
    problems = sorted(set(problems))
    errors = [p for p in problems if p.is_error]
    if errors or text is None:
        raise ConfigError(_summary(display, problems), problems)
    return replace(config, warnings=tuple(problems))


def _summary(display: str, problems: Sequence[Problem]) -> str:
    """One line saying how many errors, then every problem (warnings too), in file order."""
    listing = "\n".join(f"  {p}" for p in problems)
    errors = sum(p.is_error for p in problems)
    return f"the gateway config {display} has {errors} error(s):\n{listing}"


def _only_comments(text: str) -> bool:
    return all(not line.strip() or line.lstrip().startswith("#") for line in text.splitlines())


def _reworded(problem: Problem) -> Problem:
    # yamlpos words its reading problems for catalog spec files.
    message = problem.message.replace("spec file", "config file").replace(
        "for a spec", "for a config file"
    )
    return replace(problem, message=message)


def _env_key(environ: Mapping[str, str], problems: list[Problem]) -> tuple[ApiKey, ...]:
    value = environ.get(ENV_API_KEY, "")
    if not value.strip():
        return ()
    where = "$" + ENV_API_KEY
    reason = _key_problem(value.strip())
    if reason:
        problems.append(Problem(where, 0, 0, "E407", f"the key {reason}"))
        return ()
    return (ApiKey(value.strip(), (), where),)


def _key_problem(key: str) -> str | None:
    """Why ``key`` cannot be an API key, in words that never show the key."""
    if not key:
        return "is empty"
    if not re.fullmatch(r"[\x21-\x7e]+", key):
        return "has spaces or characters an Authorization header cannot carry (use printable ASCII)"
    return None


class _Checker:
    """The checks the schema cannot make, and the GatewayConfig they build.

    Robust to a document the schema rejected: a value of the wrong type is skipped (the schema
    reported it), so every other problem in the file is still found.
    """

    def __init__(
        self,
        document: Document,
        catalog: Catalog,
        engines: Collection[str] | None,
        hubs: Collection[str] | None,
        environ: Mapping[str, str],
    ) -> None:
        self.document = document
        self.catalog = catalog
        self.engines = engines
        self.hubs = hubs
        self.environ = environ
        self.folder = Path(document.path).parent
        self.problems: list[Problem] = []

    def report(self, path: DataPath, code: str, message: str, *, key: bool = False) -> None:
        self.problems.append(self.document.problem(path, code, message, key=key))

    def build(self) -> GatewayConfig:
        data = self.document.data if isinstance(self.document.data, dict) else {}
        raw_listen = data.get("listen")
        listen = raw_listen if isinstance(raw_listen, dict) else {}
        host = listen.get("host")
        port = listen.get("port")
        keep_alive = self.duration(data, ("keep_alive",))
        concurrency = data.get("concurrency")
        budget = data.get("memory_budget")
        memory_budget = None
        if isinstance(budget, int | str) and not isinstance(budget, bool):
            try:
                memory_budget = parse_size(budget)
            except ValueError as error:
                self.report(("memory_budget",), "E403", f"memory_budget: {error}")
            else:
                if memory_budget == 0:
                    self.report(("memory_budget",), "E403", "memory_budget must be more than 0")
        models = self.models(data.get("models"))
        keys = self.api_keys(data.get("api_keys"), models)
        allow = data.get("allow_download")
        return GatewayConfig(
            path=self.document.path,
            host=host if isinstance(host, str) else DEFAULT_HOST,
            port=port if isinstance(port, int) and not isinstance(port, bool) else DEFAULT_PORT,
            keep_alive=DEFAULT_KEEP_ALIVE if keep_alive is None else keep_alive,
            concurrency=(
                concurrency
                if isinstance(concurrency, int) and not isinstance(concurrency, bool)
                else DEFAULT_CONCURRENCY
            ),
            memory_budget=memory_budget or None,
            allow_download=allow if isinstance(allow, bool) else False,
            api_keys=(*keys, *_env_key(self.environ, self.problems)),
            models=MappingProxyType(models),
        )

    def duration(self, data: Mapping[str, Any], path: DataPath) -> float | None:
        """The duration at ``path`` (its last part is the key in ``data``), or None."""
        value = data.get(str(path[-1]))
        if value is None or isinstance(value, bool) or not isinstance(value, int | float | str):
            return None
        try:
            return parse_duration(value)
        except ValueError as error:
            self.report(path, "E402", f"{field_name(path)}: {error}")
            return None

    # --- models ---

    def models(self, raw: object) -> dict[str, ModelEntry]:
        if not isinstance(raw, dict):
            return {}
        entries: dict[str, ModelEntry] = {}
        for name, given in raw.items():
            fields = {} if given is None else given  # `name:` alone: all defaults
            if isinstance(fields, dict):
                entries[name] = self.model(name, fields)
        self.clashes(entries)
        return entries

    def model(self, name: str, fields: dict[str, Any]) -> ModelEntry:
        at: DataPath = ("models", name)
        family_name = fields.get("family", name)
        family = (
            self.family(family_name, at, explicit="family" in fields)
            if isinstance(family_name, str)
            else None
        )
        for kind, known, code in (("engine", self.engines, "E404"), ("hub", self.hubs, "E405")):
            value = _text(fields, kind)
            if value is not None and known is not None and value not in known:
                installed = sorted(known)
                hint = (
                    _did_you_mean(value, installed, others="installed")
                    if installed
                    else "none is installed"
                )
                self.report((*at, kind), code, f"unknown {kind} {value!r} ({hint})")
        size = self.parameters(fields, at, family)
        fmt, quantization = _text(fields, "format"), _text(fields, "quantization")
        if family is not None:
            quantization = self.build_checks(family, fields, at, fmt, size, quantization)
        context = fields.get("context")
        aliases = fields.get("aliases")
        engine_args = fields.get("engine_args")
        concurrency = fields.get("concurrency")
        return ModelEntry(
            name=name,
            family=family.name if family is not None else str(family_name),
            aliases=tuple(a for a in aliases if isinstance(a, str))
            if isinstance(aliases, list)
            else (),
            engine=_text(fields, "engine"),
            format=fmt,
            size=size,
            quantization=quantization,
            hub=_text(fields, "hub"),
            context_length=context if _is_int(context) else None,
            engine_args=tuple(str(a) for a in engine_args) if isinstance(engine_args, list) else (),
            keep_alive=self.duration(fields, (*at, "keep_alive")),
            pinned=fields.get("pinned") is True,
            preload=fields.get("preload") is True,
            concurrency=concurrency if _is_int(concurrency) else None,
            download=True,  # listed in the config: a request may download it
        )

    def family(self, name: str, at: DataPath, *, explicit: bool) -> Family | None:
        families = self.catalog.families
        found = name if name in families else name.lower() if name.lower() in families else None
        if found is not None:
            return families[found]
        import difflib

        close = difflib.get_close_matches(name.lower(), list(families), n=3)
        hint = f"did you mean {', '.join(close)}?" if close else "see `zoo list`"
        if explicit:
            self.report((*at, "family"), "E400", f"unknown model family {name!r} ({hint})")
        else:
            self.report(
                at,
                "E400",
                f"{name!r} is not a catalog family: set `family:` to the one it serves ({hint})",
                key=True,
            )
        return None

    def parameters(
        self, fields: dict[str, Any], at: DataPath, family: Family | None
    ) -> float | None:
        from zoo.serve.names import parse_parameters

        raw = fields.get("size")
        if raw is None or isinstance(raw, bool) or not isinstance(raw, int | float | str):
            return None
        if isinstance(raw, str):
            parsed = parse_parameters(raw)
            if parsed is None:
                message = f"size {raw!r} is not a size: write billions (36, 0.135) or 135m, 8b"
                self.report((*at, "size"), "E403", message)
                return None
            size = parsed[0]
        else:
            size = float(raw)
        if not math.isfinite(size) or size <= 0:
            self.report((*at, "size"), "E403", f"size must be more than 0 billion, not {raw}")
            return None
        if family is not None:  # the spec's own float, so later comparisons are exact
            from zoo.serve.names import same_size

            size = next((s.size for s in family.specs if same_size(s.size, size)), size)
        return size

    def build_checks(
        self,
        family: Family,
        fields: dict[str, Any],
        at: DataPath,
        fmt: str | None,
        size: float | None,
        quantization: str | None,
    ) -> str | None:
        """Report the first of format, size and quantization the family lacks, and a context
        longer than it has; return the quantization as the catalog spells it."""
        from zoo.serve.names import build_problem, matching_builds

        context = fields.get("context")
        if _is_int(context) and context > family.context_length:
            message = (
                f"context {context} is longer than {family.name}'s {family.context_length} tokens"
            )
            self.report((*at, "context"), "E406", message)

        if fmt is not None and (reason := build_problem(family, format=fmt)):
            self.report((*at, "format"), "E406", reason)
            return quantization
        if size is not None and (reason := build_problem(family, format=fmt, size=size)):
            self.report((*at, "size"), "E406", reason)
            return quantization
        if quantization is not None:
            reason = build_problem(family, format=fmt, size=size, quantization=quantization)
            if reason:
                self.report((*at, "quantization"), "E406", reason)
                return quantization
            builds = matching_builds(family, format=fmt, size=size, quantization=quantization)
            quantization = builds[0][1]
        return quantization

    def clashes(self, entries: Mapping[str, ModelEntry]) -> None:
        owner: dict[str, str] = {name: f"the name of model {name!r}" for name in entries}
        for entry in entries.values():
            for index, alias in enumerate(entry.aliases):
                at: DataPath = ("models", entry.name, "aliases", index)
                if alias == entry.name:
                    self.report(at, "W402", f"alias {alias!r} is the model's own name")
                elif alias in owner:
                    message = f"alias {alias!r} of model {entry.name!r} is already {owner[alias]}"
                    self.report(at, "E401", message)
                else:
                    owner[alias] = f"an alias of model {entry.name!r}"

    # --- API keys ---

    def api_keys(self, raw: object, models: Mapping[str, ModelEntry]) -> list[ApiKey]:
        if not isinstance(raw, list):
            return []
        keys: list[ApiKey] = []
        for index, item in enumerate(raw):
            if isinstance(item, dict):
                key = self.api_key(index, item, models)
                if key is not None:
                    keys.append(key)
        return keys

    def api_key(
        self, index: int, item: dict[str, Any], models: Mapping[str, ModelEntry]
    ) -> ApiKey | None:
        at: DataPath = ("api_keys", index)
        given = [k for k in ("key_env", "key_file", "key") if k in item]
        if len(given) != 1:
            message = (
                f"api_keys[{index}] needs one of key_env, key_file or key"
                if not given
                else f"api_keys[{index}] has {' and '.join(given)}: keep one"
            )
            self.report(at, "E407", message)
            return None
        (kind,) = given
        value = item[kind]
        if not isinstance(value, str):
            return None  # the schema said so
        where = (*at, kind)
        if kind == "key_env":
            key, source = self.environ.get(value, "").strip(), "$" + value
            if value not in self.environ:
                message = f"the environment variable {value} is not set (set it or drop the key)"
                self.report(where, "E407", message)
                return None
        elif kind == "key_file":
            key_or_none = self.key_file(value, where)
            if key_or_none is None:
                return None
            key, source = key_or_none, value
        else:
            key, source = value.strip(), f"api_keys[{index}]"
            self.report(
                where,
                "W400",
                "a literal key: anyone who can read this file can read it "
                "(use key_env or key_file)",
            )
        reason = _key_problem(key)
        if reason:
            self.report(where, "E407", f"the key from {source} {reason}")
            return None
        scope = self.scope(item.get("models"), (*at, "models"), models)
        return ApiKey(key, scope, source)

    def key_file(self, name: str, where: DataPath) -> str | None:
        path = Path(name).expanduser()
        if not path.is_absolute():
            path = self.folder / path
        try:
            info = path.stat()
            if not stat.S_ISREG(info.st_mode):
                self.report(where, "E407", f"key file {name}: not a regular file")
                return None
            if info.st_size > MAX_KEY_FILE_BYTES:
                self.report(where, "E407", f"key file {name}: too large to hold a key")
                return None
            with path.open("rb") as handle:
                raw = handle.read(MAX_KEY_FILE_BYTES + 1)
        except OSError as error:
            self.report(where, "E407", f"key file {name}: {error.strerror or error}")
            return None
        try:
            key = raw.decode("utf-8").strip()
        except UnicodeDecodeError:
            self.report(where, "E407", f"key file {name}: not text")
            return None
        if os.name == "posix" and info.st_mode & 0o077:
            self.report(where, "W401", f"key file {name} can be read by other users (chmod 600 it)")
        return key

    def scope(self, raw: object, at: DataPath, models: Mapping[str, ModelEntry]) -> tuple[str, ...]:
        if not isinstance(raw, list):
            return ()
        known = {name for entry in models.values() for name in (entry.name, *entry.aliases)}
        scope: list[str] = []
        for index, name in enumerate(raw):
            if not isinstance(name, str):
                continue
            if name not in known and name not in self.catalog.families:
                choices = sorted(known) + list(self.catalog.families)
                import difflib

                close = difflib.get_close_matches(name, choices, n=3)
                hint = f"did you mean {', '.join(close)}?" if close else "see `zoo list`"
                message = (
                    f"{name!r} is neither a model of this config nor a catalog family ({hint})"
                )
                self.report((*at, index), "E408", message)
                continue
            scope.append(name)
        return tuple(scope)


def _text(fields: Mapping[str, Any], key: str) -> str | None:
    value = fields.get(key)
    return value if isinstance(value, str) else None


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)
