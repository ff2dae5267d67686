"""The spec JSON Schema (shipped as ``spec.schema.json``) and its errors as positioned Problems.

The schema is the single description of the file format: editors validate with it through the
``yaml-language-server`` comment, the docs render the spec reference from it, and
``zoo validate`` checks with it here. jsonschema is imported only when a file is validated, so
``zoo list`` served from the compiled-catalog cache never pays for it.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from zoo.catalog.problems import Problem
from zoo.catalog.yamlpos import DataPath, Document

SCHEMA_FILE = Path(__file__).with_name("spec.schema.json")
# The comment every spec file starts with, relative to specs/ in the source tree.
SCHEMA_COMMENT = "# yaml-language-server: $schema=../zoo/catalog/spec.schema.json"
SCHEMA_COMMENT_PREFIX = "# yaml-language-server: $schema="

_TYPE_NAMES = {
    "integer": "an integer",
    "number": "a number",
    "string": "a string",
    "array": "a list",
    "object": "a mapping",
    "boolean": "true or false",
    "null": "empty",
}

# Human wording for the schema's patterns (keyed by the pattern itself).
_PATTERN_HELP = {
    "^[a-z0-9][a-z0-9._-]*$": "lowercase letters, digits, '.', '_' and '-', starting with a "
    "letter or digit",
    "^[a-z]{2,3}(-[A-Za-z0-9]+)*$": "an ISO 639 language code such as 'en' or 'zh'",
    "^https?://[^\\s]+$": "an http(s) URL",
    "^[a-z][a-z0-9_]*$": "a hub name: lowercase letters, digits and '_'",
    "^[A-Za-z0-9][A-Za-z0-9._+/-]*$": "a commit, tag, branch or version",
    "^[A-Za-z0-9][A-Za-z0-9._+-]*$": "letters, digits, '.', '_', '+' and '-'",
    "^[A-Za-z0-9][A-Za-z0-9._-]*$": "letters, digits, '.', '_' and '-'",
}


def schema_text() -> str:
    return SCHEMA_FILE.read_text(encoding="utf-8")


@cache
def schema() -> dict[str, Any]:
    """The schema as zoo validates with it (patterns anchored for Python's ``re``)."""
    anchored: dict[str, Any] = _anchor_patterns(json.loads(schema_text()))
    return anchored


def _anchor_patterns(node: Any) -> Any:
    """Every ``pattern`` ending in ``$`` ends in ``\\Z`` instead.

    The file's patterns are ECMA-262 regexes, as editors run them, where ``$`` is the end of
    the string. Both validators here run them with Python's ``re``, where ``$`` also matches
    before a final newline, so ``name: "x\\n"`` would pass: ``\\Z`` is the end in Python.
    """
    if isinstance(node, dict):
        return {
            key: (
                value[:-1] + r"\Z"
                if key == "pattern" and isinstance(value, str) and value.endswith("$")
                else _anchor_patterns(value)
            )
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_anchor_patterns(item) for item in node]
    return node


@cache
def _validator() -> Any:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(schema())


def field_name(path: DataPath) -> str:
    """``specs[0].sources.huggingface.model_id``: a path as a user reads it."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "the file"


def type_name(value: Any) -> str:
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return "true/false"
    return {
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "a mapping",
    }.get(type(value), type(value).__name__)


@cache
def _fast_validator() -> Any:
    """A compiled validator that only answers valid/invalid, ~15x faster than jsonschema.

    Most files are valid, so they cost one compiled call; only invalid files go through
    jsonschema to list every error with its place. A test checks on generated documents
    that both always agree on the verdict.
    """
    try:
        import fastjsonschema
    except ImportError:  # pragma: no cover - a declared dependency; jsonschema still works
        return None
    return fastjsonschema.compile(schema())


def is_valid(data: Any) -> bool | None:
    """The fast verdict, or None when no fast validator is available."""
    fast = _fast_validator()
    if fast is None:  # pragma: no cover
        return None
    from fastjsonschema import JsonSchemaException

    try:
        fast(data)
    except JsonSchemaException:
        return False
    return True


def check(document: Document) -> list[Problem]:
    """Every schema violation in ``document``, one Problem each, in file order."""
    if is_valid(document.data):
        return []
    problems: list[Problem] = []
    seen: set[tuple[DataPath, str]] = set()
    for error in _validator().iter_errors(document.data):
        path: DataPath = tuple(error.absolute_path)
        for problem in _problems_for(document, error, path):
            marker = (path, problem.message)
            if marker not in seen:
                seen.add(marker)
                problems.append(problem)
    return sorted(problems)


def _problems_for(document: Document, error: Any, path: DataPath) -> list[Problem]:
    keyword = error.validator
    instance = error.instance
    name = field_name(path)
    if keyword == "additionalProperties" and isinstance(instance, dict):
        allowed = list(error.schema.get("properties", {}))
        return [
            document.problem((*path, key), "E201", _unknown_key(key, allowed, path), key=True)
            for key in instance
            if key not in allowed
        ]
    if keyword == "required" and isinstance(instance, dict):
        return [
            document.problem(path, "E200", f"missing required field {field_name((*path, key))!r}")
            for key in error.validator_value
            if key not in instance
        ]
    if keyword == "propertyNames":
        # The error's instance is the offending key; point at the key itself.
        key = instance
        return [
            document.problem(
                (*path, key),
                "E204",
                f"{key!r} in {name} is not "
                f"{_pattern_help(error.schema.get('pattern', ''), 'valid')}",
                key=True,
            )
        ]
    if keyword == "type":
        expected = error.validator_value
        wanted = " or ".join(
            _TYPE_NAMES.get(str(t), str(t))
            for t in (expected if isinstance(expected, list) else [expected])
        )
        return [
            document.problem(path, "E200", f"{name} must be {wanted}, not {type_name(instance)}")
        ]
    if keyword in ("exclusiveMinimum", "minimum"):
        relation = "greater than" if keyword == "exclusiveMinimum" else "at least"
        return [
            document.problem(
                path, "E202", f"{name} must be {relation} {error.validator_value}, not {instance}"
            )
        ]
    if keyword in ("exclusiveMaximum", "maximum"):
        relation = "less than" if keyword == "exclusiveMaximum" else "at most"
        return [
            document.problem(
                path, "E202", f"{name} must be {relation} {error.validator_value}, not {instance}"
            )
        ]
    if keyword == "enum":
        return [document.problem(path, "E203", _not_allowed(name, instance, error.validator_value))]
    if keyword == "pattern":
        help_text = _pattern_help(error.validator_value, f"matching {error.validator_value}")
        return [document.problem(path, "E204", f"{name}: {instance!r} is not {help_text}")]
    if keyword in ("minItems", "minProperties", "minLength"):
        return [document.problem(path, "E200", f"{name} must not be empty")]
    if keyword in ("maxItems", "maxLength", "maxProperties"):
        return [
            document.problem(path, "E200", f"{name} is too long (at most {error.validator_value})")
        ]
    if keyword == "uniqueItems":
        return [document.problem(path, "E200", f"{name} lists the same value twice")]
    return [document.problem(path, "E200", f"{name}: {error.message}")]


def _pattern_help(pattern: str, default: str) -> str:
    """The words for a pattern, as written in the file (``$``, not the ``\\Z`` used here)."""
    written = pattern[:-2] + "$" if pattern.endswith(r"\Z") else pattern
    return _PATTERN_HELP.get(written, default)


def _unknown_key(key: str, allowed: list[str], path: DataPath) -> str:
    import difflib

    where = f" in {field_name(path)}" if path else ""
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}?" if close else "allowed: " + ", ".join(allowed)
    return f"unknown key {key!r}{where} ({hint})"


def _not_allowed(name: str, value: Any, choices: list[Any]) -> str:
    import difflib

    text = ", ".join(str(c) for c in choices)
    if isinstance(value, str):
        close = difflib.get_close_matches(value, [str(c) for c in choices], n=1, cutoff=0.6)
        if close:
            return f"{name}: {value!r} is not allowed (did you mean {close[0]!r}?)"
    return f"{name}: {value!r} is not allowed (choose from {text})"
