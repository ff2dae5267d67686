"""The catalog as plain JSON-ready data: the stable shapes ``--json`` prints.

``JSON_VERSION`` goes into every document; bump it only when a key changes meaning or goes
away (adding keys is compatible). Tests pin these shapes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from zoo.fit import estimated_range

if TYPE_CHECKING:
    from zoo.catalog.model import Family, Location, Source, Spec

JSON_VERSION = 1


def _location(location: Location | None) -> str | None:
    return str(location) if location is not None else None


def family_summary(family: Family) -> dict[str, Any]:
    """One row of ``zoo list``/``zoo search``."""
    return {
        "name": family.name,
        "kind": family.kind,
        "description": family.description,
        "abilities": list(family.abilities),
        "formats": list(family.formats),
        "sizes": sizes(family),
        "parameters": _parameters((spec.size, spec.activated_size) for spec in family.specs),
        "context_length": family.context_length,
        "languages": list(family.languages),
        "location": _location(family.location),
        "download_bytes": estimated_range(
            (spec.format, spec.size, spec.quantizations) for spec in family.specs
        ),
    }


def summary_matches(
    summary: Mapping[str, Any],
    *,
    kind: str | None = None,
    ability: str | None = None,
    fmt: str | None = None,
) -> bool:
    """Whether a ``family_summary`` passes the listing's cheap filters (None: any), the ones
    ``zoo list`` and the web UI's models page share."""
    return (
        (kind is None or summary["kind"] == kind)
        and (ability is None or ability in summary["abilities"])
        and (fmt is None or fmt in summary["formats"])
    )


def summary_from_data(data: Mapping[str, Any], location: str | None) -> dict[str, Any]:
    """``family_summary`` computed from validated spec data, without building the Family.

    ``zoo list`` shows every family; building them all costs more than the rest of the
    command, so listings use this (a test keeps both functions in agreement).
    """
    specs = data["specs"]
    return {
        "name": data["name"],
        "kind": str(data.get("kind") or "llm"),
        "description": str(data.get("description") or "").strip(),
        "abilities": list(data.get("abilities") or ()),
        "formats": list(dict.fromkeys(spec["format"] for spec in specs)),
        "sizes": [_size_label(size) for size in sorted({float(spec["size"]) for spec in specs})],
        "parameters": _parameters(
            (float(spec["size"]), _float_or_none(spec.get("activated_size"))) for spec in specs
        ),
        "context_length": int(data["context_length"]),
        "languages": list(data["languages"]),
        "location": location,
        "download_bytes": estimated_range(
            (str(spec["format"]), float(spec["size"]), _quantizations(spec)) for spec in specs
        ),
    }


def _parameters(pairs: Iterable[tuple[float, float | None]]) -> list[list[float | None]]:
    """[total, active] billions of each spec size (active null unless a mixture of experts),
    smallest first: what ``zoo list --size 30B-A3B`` compares."""
    unique = set(pairs)
    return [list(pair) for pair in sorted(unique, key=lambda p: (p[0], p[1] or 0.0))]


def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)


def _quantizations(spec: Mapping[str, Any]) -> list[str]:
    # model.spec_from_data's rule: the spec's list, else the union of its sources' lists.
    def strings(value: Any) -> list[str]:
        return [value] if isinstance(value, str) else [str(v) for v in value or ()]

    own = strings(spec.get("quantizations"))
    if own:
        return own
    sources = (spec.get("sources") or {}).values()
    return list(
        dict.fromkeys(q for source in sources for q in strings(source.get("quantizations")))
    )


def _size_label(size: float) -> str:
    # model.format_size, repeated so listings need not import the data model (the summary
    # agreement test keeps the two equal).
    return str(int(size)) if size.is_integer() else repr(size)


def sizes(family: Family) -> list[str]:
    from zoo.catalog.model import format_size

    ordered = sorted({spec.size for spec in family.specs})
    return [format_size(size) for size in ordered]


def source_detail(source: Source) -> dict[str, Any]:
    return {
        "hub": source.hub,
        "model_id": source.model_id,
        "revision": source.revision,
        "quantizations": list(source.quantizations),
        "file": source.file,
        "split": (
            {
                "file": source.split.template,
                "parts": {q: list(p) for q, p in source.split.parts.items()},
            }
            if source.split
            else None
        ),
        "multimodal_projectors": list(source.multimodal_projectors),
        "draft": (
            {
                "model_id": source.draft.model_id,
                "quantizations": list(source.draft.quantizations),
                "file": source.draft.file,
            }
            if source.draft
            else None
        ),
        "exclude": list(getattr(source, "exclude", ())),
        "unverified": list(source.unverified),
        "location": _location(source.location),
    }


def spec_detail(spec: Spec) -> dict[str, Any]:
    return {
        "format": spec.format,
        "size": spec.size,
        "size_label": spec.size_label,
        "activated_size": spec.activated_size,
        "quantizations": list(spec.quantizations),
        "sources": [source_detail(source) for source in spec.sources],
        "location": _location(spec.location),
    }


def family_detail(family: Family) -> dict[str, Any]:
    """Everything ``zoo show`` knows about a family."""
    reasoning = None
    if family.reasoning_start_tag or family.reasoning_end_tag:
        reasoning = {"start_tag": family.reasoning_start_tag, "end_tag": family.reasoning_end_tag}
    return {
        **family_summary(family),
        "architectures": list(family.architectures),
        "license": family.license,
        "homepage": family.homepage,
        "chat_template": family.chat_template,
        "stop": list(family.stop),
        "stop_token_ids": list(family.stop_token_ids),
        "reasoning": reasoning,
        "tool_parser": family.tool_parser,
        "fim": (
            {
                "prefix": family.fim.prefix,
                "suffix": family.fim.suffix,
                "middle": family.fim.middle,
                "order": list(family.fim.order),
            }
            if family.fim
            else None
        ),
        "generation": (
            {k: v for k, v in asdict(family.generation).items() if v is not None}
            if family.generation
            else None
        ),
        "embedding": (
            {
                "dimensions": family.embedding.dimensions,
                "matryoshka_dimensions": list(family.embedding.matryoshka_dimensions),
                "pooling": family.embedding.pooling,
                "normalized": family.embedding.normalized,
                "query_prefix": family.embedding.query_prefix,
                "document_prefix": family.embedding.document_prefix,
                "truncate": family.embedding.truncate,
            }
            if family.embedding
            else None
        ),
        "rerank": (
            {"type": family.rerank.type, "truncate": family.rerank.truncate}
            if family.rerank
            else None
        ),
        "extra": dict(family.extra),
        "specs": [spec_detail(spec) for spec in family.specs],
    }
