"""The spec-format reference, generated from the JSON Schema so it can never drift from it.

Every field of a spec file gets a section: its path (``specs[].sources.<hub>.file``), what it
means, its type and limits, whether it is required, and a YAML example. Examples come from the
schema's ``examples``; a field without one gets an example assembled from its children's, so
every field has one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zoo.docs import rst


@dataclass(frozen=True)
class Field:
    """One field of the format: where it sits and its (resolved) schema."""

    path: str  # e.g. "specs[].sources.<hub>.model_id"
    key: str  # the YAML key as written ("model_id", or "<hub>" for a map's keys)
    schema: Mapping[str, Any]
    required: bool
    group: str  # the path of the mapping it belongs to ("" for the top level)


def load_schema(path: Path | None = None) -> dict[str, Any]:
    if path is None:
        from zoo.catalog.schema import SCHEMA_FILE

        path = SCHEMA_FILE
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _resolve(schema: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
    """Follow a local ``$ref``; sibling keys (a description beside the ref) win."""
    ref = schema.get("$ref")
    if not isinstance(ref, str) or not ref.startswith("#/"):
        return schema
    target: Any = root
    for part in ref[2:].split("/"):
        target = target[part]
    merged = dict(_resolve(target, root))
    merged.update({k: v for k, v in schema.items() if k != "$ref"})
    return merged


def fields(schema: Mapping[str, Any]) -> list[Field]:
    """Every field, depth first in the schema's own order."""
    return list(_walk(schema, schema, ""))


def _walk(node: Mapping[str, Any], root: Mapping[str, Any], prefix: str) -> Iterator[Field]:
    node = _resolve(node, root)
    required = set(node.get("required", ()))
    for key, child in (node.get("properties") or {}).items():
        resolved = _resolve(child, root)
        path = f"{prefix}.{key}" if prefix else key
        yield Field(path, key, resolved, key in required, prefix)
        yield from _children(resolved, root, path)


def _children(schema: Mapping[str, Any], root: Mapping[str, Any], path: str) -> Iterator[Field]:
    if schema.get("type") == "array" or "items" in schema:
        items = _resolve(schema.get("items") or {}, root)
        if "properties" in items:
            yield from _walk(items, root, f"{path}[]")
    elif "properties" in schema:
        yield from _walk(schema, root, path)
    else:
        values = schema.get("additionalProperties")
        if isinstance(values, Mapping):
            resolved = _resolve(values, root)
            if "properties" in resolved:
                # A mapping keyed by names the user picks (hubs): document its value once.
                key = "<hub>" if path.endswith("sources") else "<name>"
                yield from _walk(resolved, root, f"{path}.{key}")


def example(schema: Mapping[str, Any], root: Mapping[str, Any]) -> Any:
    """The schema's first example, or one assembled from its children's examples."""
    schema = _resolve(schema, root)
    if schema.get("examples"):
        return schema["examples"][0]
    if "default" in schema:
        return schema["default"]
    if "enum" in schema:
        return schema["enum"][0]
    if "properties" in schema:
        wanted = schema.get("required") or list(schema["properties"])
        return {k: example(schema["properties"][k], root) for k in wanted}
    items = schema.get("items")
    if isinstance(items, Mapping):
        return [example(items, root)]
    values = schema.get("additionalProperties")
    if isinstance(values, Mapping):
        return {"huggingface": example(values, root)}
    return None


def _yaml(key: str, value: Any) -> str:
    """``key: value`` as a spec file writes it: mappings in block style, short lists inline."""
    import yaml

    class Dumper(yaml.SafeDumper):
        pass

    def represent_list(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.Node:
        flat = all(not isinstance(v, dict | list) for v in data)
        return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flat)

    Dumper.add_representer(list, represent_list)
    text: str = yaml.dump(
        {key: value},
        Dumper=Dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=88,
    )
    return text.rstrip("\n")


def _type_words(schema: Mapping[str, Any]) -> str:
    if "enum" in schema:
        return "one of " + ", ".join(rst.literal(str(v)) for v in schema["enum"])
    kind = schema.get("type", "")
    if kind == "array":
        items = schema.get("items") or {}
        if "enum" in items:
            return "a list of " + ", ".join(rst.literal(str(v)) for v in items["enum"])
        inner = items.get("type") or ("mapping" if "properties" in items else "value")
        return f"a list of {inner}s"
    if kind == "object":
        return "a mapping"
    return {"string": "a string", "integer": "an integer", "number": "a number"}.get(
        str(kind), str(kind) or "any value"
    )


def _limits(schema: Mapping[str, Any]) -> str:
    words = []
    if "pattern" in schema:
        words.append("matches " + rst.literal(schema["pattern"]))
    for key, phrase in (
        ("exclusiveMinimum", "greater than"),
        ("minimum", "at least"),
        ("maxLength", "at most {} characters"),
        ("minItems", "at least {} items"),
        ("maxItems", "at most {} items"),
    ):
        if key in schema:
            words.append(
                phrase.format(schema[key]) if "{}" in phrase else f"{phrase} {schema[key]}"
            )
    if schema.get("uniqueItems"):
        words.append("no repeats")
    items = schema.get("items") or {}
    if isinstance(items, Mapping) and "pattern" in items:
        words.append("each matches " + rst.literal(items["pattern"]))
    return "; ".join(words)


def field_label(path: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", path.lower()).strip("-")
    return f"spec-field-{slug}"


def render_reference(schema: Mapping[str, Any]) -> str:
    """RST for every field, grouped by the mapping it belongs to."""
    parts: list[str] = []
    if schema.get("description"):
        parts.append(rst.prose(str(schema["description"])) + "\n")
    groups: dict[str, list[Field]] = {}
    for item in fields(schema):
        groups.setdefault(item.group, []).append(item)
    for group, members in groups.items():
        title = "Family fields" if not group else f"Fields of {group}"
        parts.append(rst.heading(title, "-"))
        for item in members:
            parts.append(_field_section(item, schema))
    return "\n".join(parts)


def _field_section(item: Field, root: Mapping[str, Any]) -> str:
    schema = item.schema
    key = item.key if not item.key.startswith("<") else "huggingface"
    sample = example(schema, root)
    return "\n".join(
        [
            rst.label_line(field_label(item.path)),
            rst.heading(item.path, "^"),
            rst.prose(str(schema.get("description", ""))) + "\n",
            rst.field_list(
                [
                    ("Type", _type_words(schema)),
                    ("Required", "yes" if item.required else "no"),
                    ("Limits", _limits(schema)),
                ]
            ),
            "Example:\n",
            rst.code_block(_yaml(key, sample), "yaml"),
        ]
    )
