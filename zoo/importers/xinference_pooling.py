"""Import Xinference's embedding and rerank registries (``model_spec.json``) as spec files, and
export them back.

Xinference keeps embedding models (``xinference/model/embedding/model_spec.json``) and
rerankers (``xinference/model/rerank/model_spec.json``) in registries of their own, shaped
alike: what zoo calls "pooling" models after vLLM's runner that serves both. The mapping,
field by field (Xinference -> zoo spec YAML):

- family: ``model_name`` -> ``name`` (lowercased), ``max_tokens`` -> ``context_length``,
  ``language`` -> ``languages`` (ISO codes kept; "multilingual" and phrases such as
  "89 languages supported" become ``mul``, ISO 639's "multiple languages"); ``kind`` is the
  registry's. Embedding: ``dimensions`` -> ``embedding.dimensions``. Rerank: ``type`` "normal"
  -> ``rerank.type: cross-encoder``, "LLM-based" -> ``llm``, "LLM-based layerwise" ->
  ``llm-layerwise``.
- spec: ``model_format`` -> ``format``; the spec's ``quantizations`` is the union of its hubs'.
- hub entry: ``model_id``, ``model_revision`` -> ``revision``, ``quantizations`` (written only
  where it differs from the spec's), ``model_file_name_template`` -> ``file``.

What Xinference does not say and zoo needs (every spec's ``size`` for memory planning; pooling,
normalization, query/document prompts and Matryoshka sizes where known; a sentence on what is
special) comes from ``xinference_supplement.yaml`` beside this module, written from the model
cards and not checked against the weights: the importer lists each such fact in the family's
``extra.unverified`` (source-level ``unverified`` can only name a source's fields). The
supplement may also correct a Xinference fact (jina-embeddings-v2-base-en's dimensions); the
upstream value then stays in ``extra.xinference`` and the import reports it. The description
is generated. None of these are exported: they are zoo's facts.

As in the LLM import (zoo.importers.xinference), everything else is kept verbatim under
``extra: {xinference: {...}}`` at the level it came from, computed as exactly what the export
of the zoo fields would get wrong (version, updated_at, featured, virtualenv, the original
capitalisation of model_name, a language list that is not ISO codes), so export gives back
the same JSON. Where a family's keys are not in the registry's usual order, the order is kept
too (``key_order``): the export is byte-identical to upstream's file.

The corrections overlay of the LLM import (zoo.importers.corrections, its embedding and rerank
sections) applies here the same way; the supplement's two corrections stay as they are.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from zoo.catalog.model import Family, Source, Spec, family_from_data, format_size
from zoo.importers import corrections
from zoo.importers.xinference import (
    EXTRA_KEY,
    GENERATED_MARKER,
    SCHEMA_COMMENT,
    UNLISTED_SPECS,
    XINFERENCE_HUBS,
    Conversion,
    ImportReport,
    XinferenceFormatError,
    _note_missing,
    _notes_for,
    _ordered,
    _override,
    _source_document,
    _xinference_extra,
    is_generated,
    read_registry,
    record_spec_overrides,
    source_commit,
    unusable_reason,
    with_upstream,
    write_families,
)

FORMAT_VERSION = 2  # the "version" of the entries this module reads and writes
SUPPLEMENT = Path(__file__).with_name("xinference_supplement.yaml")
# Family extra key (beside extra.xinference) listing the facts the supplement gave.
UNVERIFIED = "unverified"
# extra.xinference key: the keys of this level in upstream's order, where it is not the usual.
KEY_ORDER = "key_order"
# ISO 639-2 "multiple languages": what Xinference's "multilingual" and "89 languages
# supported" say, as a code the spec format takes.
MULTILINGUAL = "mul"
_LANGUAGE_CODE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]+)*$")
_MAX_DIMENSIONS = 65536  # the spec schema's bound
_MAX_TOKENS = 2147483647

# Xinference's reranker types -> zoo's rerank.type (and back).
RERANK_TYPES = {
    "normal": "cross-encoder",
    "LLM-based": "llm",
    "LLM-based layerwise": "llm-layerwise",
}
_XINFERENCE_RERANK_TYPES = {zoo: xinference for xinference, zoo in RERANK_TYPES.items()}

_SPEC_ORDER = ("model_format", "model_src")
_SOURCE_ORDER = ("model_id", "model_revision", "quantizations", "model_file_name_template")
# Family keys with no zoo field, kept in extra.xinference without a report line.
_PASSTHROUGH = frozenset(
    {"version", "updated_at", "featured", "virtualenv", "model_name", UNLISTED_SPECS}
)
# The supplement's keys: shared, and an embedding model's own (embedding.<key> in the spec).
_SUPPLEMENT_KEYS = frozenset({"size", "note", "estimate", "remote_code", "verified"})
# The facts of the kind's block (embedding.<key>, rerank.<key>) the supplement may give.
_BLOCK_KEYS = {
    "embedding": ("dimensions", "matryoshka_dimensions", "pooling", "normalized", "prompts"),
    "rerank": ("type",),
}


@dataclass(frozen=True)
class Registry:
    """One of Xinference's non-LLM registries."""

    kind: str  # zoo's kind for its families
    upstream: str  # the file in Xinference's repository
    family_order: tuple[str, ...]  # the usual key order of its entries
    key: str  # the key its entries have and the other registries' do not

    @property
    def label(self) -> str:
        return self.kind


EMBEDDING = Registry(
    "embedding",
    "xinference/model/embedding/model_spec.json",
    (
        "version",
        "model_name",
        "dimensions",
        "max_tokens",
        "language",
        "model_specs",
        "updated_at",
        "featured",
        "virtualenv",
    ),
    "dimensions",
)
RERANK = Registry(
    "rerank",
    "xinference/model/rerank/model_spec.json",
    (
        "version",
        "model_name",
        "type",
        "language",
        "max_tokens",
        "model_specs",
        "updated_at",
        "featured",
        "virtualenv",
    ),
    "type",
)
REGISTRIES = {registry.kind: registry for registry in (EMBEDDING, RERANK)}


def detect_kind(registry: list[Any]) -> str:
    """Which Xinference registry a parsed file is ("llm", "embedding" or "rerank")."""
    first = next((entry for entry in registry if isinstance(entry, Mapping)), None)
    if first is None:
        raise XinferenceFormatError("no model families in it: cannot tell which registry it is")
    if "dimensions" in first:
        return "embedding"
    if "type" in first and "model_ability" not in first:
        return "rerank"
    return "llm"


# ---------------------------------------------------------------------------------------------
# The supplement


@dataclass(frozen=True)
class Facts:
    """What the supplement says about one model."""

    kind: str
    size: float
    block: Mapping[str, Any]  # facts of the kind's block: embedding.dimensions, rerank.type...
    note: str | None = None
    estimate: bool = False
    remote_code: bool = False
    verified: frozenset[str] = frozenset()

    def unverified(self) -> list[str]:
        """The spec fields these facts fill, as ``extra.unverified`` names them."""
        fields = [("size", "size"), *((key, f"{self.kind}.{key}") for key in self.block)]
        return [field for key, field in fields if key not in self.verified]


def _facts(where: str, kind: str, data: Any) -> Facts:
    if not isinstance(data, Mapping):
        raise XinferenceFormatError(f"{where}: expected a mapping of facts")
    allowed = _SUPPLEMENT_KEYS | set(_BLOCK_KEYS[kind])
    unknown = sorted(set(map(str, data)) - allowed)
    if unknown:
        raise XinferenceFormatError(f"{where}: unknown key {unknown[0]!r}")
    size = data.get("size")
    if isinstance(size, bool) or not isinstance(size, int | float) or not 0 < size <= 100000:
        raise XinferenceFormatError(f"{where}: size {size!r} is not a number of billions")
    note = data.get("note")
    if note is not None and not (isinstance(note, str) and note.strip()):
        raise XinferenceFormatError(f"{where}: note {note!r} is not a sentence")
    verified = data.get("verified") or []
    if not isinstance(verified, list) or not all(isinstance(v, str) for v in verified):
        raise XinferenceFormatError(f"{where}: verified must be a list of its keys")
    if kind == "rerank" and data.get("type", "llm") not in RERANK_TYPES.values():
        raise XinferenceFormatError(f"{where}: type {data['type']!r} is not a zoo rerank type")
    return Facts(
        kind=kind,
        size=float(size),
        block={key: data[key] for key in _BLOCK_KEYS[kind] if key in data},
        note=note.strip() if isinstance(note, str) else None,
        estimate=data.get("estimate") is True,
        remote_code=data.get("remote_code") is True,
        verified=frozenset(verified),
    )


def load_supplement(path: Path = SUPPLEMENT) -> dict[str, dict[str, Facts]]:
    """The supplement's facts: kind -> Xinference model_name -> Facts."""
    try:
        changed = path.stat().st_mtime_ns
    except OSError as error:
        raise XinferenceFormatError(f"{path}: not readable ({error.strerror})") from None
    return dict(_load_supplement(path, changed))


@cache  # read once per import, not once per family; an edited file is read again
def _load_supplement(path: Path, changed: int) -> tuple[tuple[str, dict[str, Facts]], ...]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise XinferenceFormatError(f"{path}: not readable as YAML ({error})") from None
    if not isinstance(data, dict):
        raise XinferenceFormatError(f"{path}: expected a mapping")
    out: dict[str, dict[str, Facts]] = {}
    for kind in REGISTRIES:
        section = data.get(kind) or {}
        if not isinstance(section, dict):
            raise XinferenceFormatError(f"{path}: {kind}: expected a mapping of model names")
        out[kind] = {str(n): _facts(f"{path}: {kind}.{n}", kind, f) for n, f in section.items()}
    # Keys starting with "_" hold YAML anchors shared by several models.
    unknown = sorted(k for k in map(str, data) if k not in REGISTRIES and not k.startswith("_"))
    if unknown:
        raise XinferenceFormatError(f"{path}: unknown section {unknown[0]!r}")
    return tuple(out.items())


# ---------------------------------------------------------------------------------------------
# Xinference -> zoo


def _count(value: Any, what: str, limit: int) -> int:
    """A whole number of tokens or dimensions, as the spec format bounds it."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= limit:
        raise XinferenceFormatError(f"{what} {value!r} is not a whole number from 1 to {limit}")
    return value


def _languages(value: Any, name: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise XinferenceFormatError(f"{name}: language {value!r} is not a list of names")
    codes = [v if _LANGUAGE_CODE.match(v) else MULTILINGUAL for v in value]
    return list(dict.fromkeys(codes)) or [MULTILINGUAL]


def _rerank_type(value: Any, name: str) -> str:
    if not isinstance(value, str) or value not in RERANK_TYPES:
        known = ", ".join(repr(t) for t in RERANK_TYPES)
        raise XinferenceFormatError(f"{name}: type {value!r} is not one of {known}")
    return RERANK_TYPES[value]


def _description(name: str, registry: Registry, doc: Mapping[str, Any], facts: Facts) -> str:
    tokens = f"{doc['context_length']:,}"
    if registry is EMBEDDING:
        what = (
            f"{name} is an embedding model: it turns up to {tokens} tokens into a "
            f"{doc['embedding']['dimensions']}-dimensional vector."
        )
    else:
        kind = {"cross-encoder": "a cross-encoder", "llm": "a language model"}.get(
            doc["rerank"]["type"], "a language model read at several layers"
        )
        what = (
            f"{name} is a reranker ({kind}): it scores documents against a query, "
            f"reading up to {tokens} tokens."
        )
    parts = [what, facts.note or ""]
    if facts.remote_code:
        parts.append(
            "Its pytorch build runs modelling code from its repository (trust_remote_code), "
            "which zoo never turns on by itself."
        )
    if facts.estimate:
        parts.append("Its parameter count is an estimate.")
    return " ".join(p for p in parts if p)


def _spec_document(
    spec: Mapping[str, Any], size: float, unusable: dict[str, str]
) -> dict[str, Any]:
    fmt = str(spec["model_format"])
    hubs: dict[str, Any] = {}
    for hub, src in spec["model_src"].items():
        reason = unusable_reason(src, fmt)
        if reason is None:
            hubs[hub] = src
        else:
            unusable[hub] = reason
    union = list(dict.fromkeys(q for src in hubs.values() for q in src.get("quantizations") or []))
    return {
        "format": spec["model_format"],
        "size": int(size) if size.is_integer() else size,
        "quantizations": union,
        "sources": {hub: _source_document(src, union, []) for hub, src in hubs.items()},
    }


def _base_document(
    xf: Mapping[str, Any], registry: Registry, facts: Facts, unusable: dict[int, dict[str, str]]
) -> dict[str, Any]:
    """The zoo fields of one entry (no extra yet); specs without a usable hub are left out."""
    name = str(xf["model_name"])
    doc: dict[str, Any] = {
        "name": name.lower(),
        "kind": registry.kind,
        "description": "",
        "context_length": _count(xf.get("max_tokens"), f"{name}: max_tokens", _MAX_TOKENS),
        "languages": _languages(xf.get("language"), name),
    }
    if registry is EMBEDDING:
        dimensions = _count(xf.get("dimensions"), f"{name}: dimensions", _MAX_DIMENSIONS)
        doc["embedding"] = {"dimensions": dimensions} | dict(facts.block)
    else:
        doc["rerank"] = {"type": _rerank_type(xf.get("type"), name)} | dict(facts.block)
    doc["description"] = _description(name, registry, doc, facts)
    specs = xf["model_specs"]
    if not isinstance(specs, list) or not specs:
        raise XinferenceFormatError(f"{name}: model_specs is not a list of specs")
    doc["specs"] = []
    for i, spec in enumerate(specs):
        unusable[i] = {}
        spec_doc = _spec_document(spec, facts.size, unusable[i])
        if spec_doc["sources"]:
            doc["specs"].append(spec_doc)
    return doc


def _extra_of(doc: dict[str, Any]) -> dict[str, Any]:
    extra: dict[str, Any] = doc.setdefault("extra", {}).setdefault(EXTRA_KEY, {})
    return extra


def _keep_order(
    doc: dict[str, Any], original: Mapping[str, Any], exported: Mapping[str, Any]
) -> None:
    if list(original) != list(exported):
        _extra_of(doc)[KEY_ORDER] = list(original)


# Family keys in the order a reader of a spec file expects them.
_DOCUMENT_ORDER = (
    "name",
    "kind",
    "description",
    "context_length",
    "languages",
    "embedding",
    "rerank",
    "extra",
    "specs",
)


def convert_family(
    xf: Any,
    registry: Registry,
    supplement: Mapping[str, Facts] | None = None,
    overlay: Mapping[str, list[corrections.Correction]] | None = None,
) -> Conversion:
    """Convert one entry of ``registry``, with the corrections overlay's fixes to it
    (``overlay``: zoo family name -> corrections; default: xinference_corrections.yaml's
    section of the registry's kind). Raises XinferenceFormatError if it cannot round-trip,
    CorrectionsError if a correction no longer applies."""
    if not isinstance(xf, Mapping) or "model_name" not in xf or "model_specs" not in xf:
        raise XinferenceFormatError("an entry without model_name and model_specs")
    name = str(xf["model_name"])
    section = corrections.load()[registry.kind] if overlay is None else overlay
    fixes = section.get(name.lower())
    if not fixes:
        return _convert(xf, registry, supplement)[0]
    fixed, applied = corrections.apply(xf, fixes)
    conversion, kept = _convert(fixed, registry, supplement)
    try:
        doc = corrections.annotate(conversion.document, xf, applied, kept)
        doc = {key: doc[key] for key in _DOCUMENT_ORDER if key in doc}
        plain, _ = export_family(family_from_data(doc), registry)
        corrected, _ = export_family(family_from_data(doc), registry, corrected=True)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise XinferenceFormatError(f"{name}: unexpected shape ({error!r})") from None
    if json.dumps(plain) != json.dumps(xf):
        raise XinferenceFormatError(f"{name}: the corrected entry does not export back exactly")
    if json.dumps(corrected) != json.dumps(fixed):
        raise XinferenceFormatError(f"{name}: --corrected would not export the corrections")
    return Conversion(name=conversion.name, document=doc, notes=conversion.notes + applied.notes)


def _convert(
    xf: Mapping[str, Any], registry: Registry, supplement: Mapping[str, Facts] | None
) -> tuple[Conversion, dict[int, int]]:
    """The conversion of one entry, and each offered spec's place in it by upstream index."""
    name = str(xf["model_name"])
    if registry.key not in xf:
        raise XinferenceFormatError(
            f"{name}: no {registry.key}: not an entry of the {registry.kind} registry"
        )
    known = load_supplement()[registry.kind] if supplement is None else supplement
    facts = known.get(name)
    if facts is None:
        raise XinferenceFormatError(
            f"{name}: no size in {SUPPLEMENT.name}: add the model's parameters in billions "
            f"under {registry.kind}"
        )
    try:
        unusable: dict[int, dict[str, str]] = {}
        doc = _base_document(xf, registry, facts, unusable)
        derived, _ = export_family(family_from_data(doc), registry)
        assert derived is not None
        notes: list[str] = []
        family_override = _override(xf, derived, skip=("model_specs",))
        corrected = [k for k in facts.block if k in family_override and k in derived]
        for key in corrected:
            notes.append(
                f"{registry.kind}.{key}: Xinference says {family_override[key]!r}, the "
                f"supplement {facts.block[key]!r} (used; Xinference's kept in extra.xinference)"
            )
        notes += _notes_for("", family_override, _PASSTHROUGH | set(corrected))
        kept, spec_notes = record_spec_overrides(
            xf,
            derived,
            doc,
            unusable,
            family_override,
            lambda x_spec: str(x_spec["model_format"]),
            lambda spec_doc: str(spec_doc["format"]),
        )
        notes += spec_notes
        if family_override:
            doc["extra"] = {EXTRA_KEY: family_override}
        # Key order is a fact of the file too: where an entry's differs from what the export
        # writes, it is kept, so the export is byte-identical and not only equal as data.
        again, _ = export_family(family_from_data(doc), registry)
        assert again is not None
        _keep_order(doc, xf, again)
        for (i, x_spec), spec_doc in zip(kept, doc["specs"], strict=True):
            d_spec = again["model_specs"][i]  # unlisted specs are back at their places
            _keep_order(spec_doc, x_spec, d_spec)
            for hub, source in spec_doc["sources"].items():
                _keep_order(source, x_spec["model_src"][hub], d_spec["model_src"][hub])
        unverified = facts.unverified()
        if unverified:
            doc.setdefault("extra", {})[UNVERIFIED] = unverified
        doc = {key: doc[key] for key in _DOCUMENT_ORDER if key in doc}
        again, _ = export_family(family_from_data(doc), registry)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise XinferenceFormatError(f"{name}: unexpected shape ({error!r})") from None
    if json.dumps(again) != json.dumps(xf):
        raise XinferenceFormatError(f"{name}: the converted entry does not export back exactly")
    places = {i: place for place, (i, _) in enumerate(kept)}
    return Conversion(name=doc["name"], document=doc, notes=notes), places


# ---------------------------------------------------------------------------------------------
# zoo -> Xinference


def _order_of(extra: dict[str, Any], default: tuple[str, ...]) -> tuple[str, ...]:
    order = extra.pop(KEY_ORDER, None)
    return tuple(map(str, order)) if isinstance(order, list) else default


def _export_source(
    source: Source, where: str, notes: list[str], corrected: bool = False
) -> dict[str, Any]:
    out: dict[str, Any] = {"model_id": source.model_id}
    if source.revision is not None:
        out["model_revision"] = source.revision
    out["quantizations"] = list(source.quantizations)
    if source.file is not None:
        out["model_file_name_template"] = source.file
    dropped = [
        name
        for name in ("split", "multimodal_projectors", "draft", "exclude", "unverified")
        if getattr(source, name)
    ]
    dropped += [f"extra.{k}" for k in source.extra if k != EXTRA_KEY]
    if dropped:
        notes.append(f"{where} {source.hub}: Xinference cannot hold {', '.join(dropped)}")
    extra = _xinference_extra(source.extra)
    order = _order_of(extra, _SOURCE_ORDER)
    return _ordered(with_upstream(out, extra, corrected), order)


def _export_spec(spec: Spec, notes: list[str], corrected: bool = False) -> dict[str, Any] | None:
    where = f"{spec.format} {format_size(spec.size)}B"
    model_src: dict[str, Any] = {}
    for source in spec.sources:
        if source.hub not in XINFERENCE_HUBS:
            notes.append(f"{where}: Xinference has no hub {source.hub!r}; left out")
            continue
        model_src[source.hub] = _export_source(source, where, notes, corrected)
    if not model_src:
        notes.append(f"{where}: no source on a hub Xinference knows; spec left out")
        return None
    out: dict[str, Any] = {"model_format": spec.format, "model_src": model_src}
    extra = _xinference_extra(spec.extra)
    order = _order_of(extra, _SPEC_ORDER)
    return _ordered(with_upstream(out, extra, corrected), order)


def export_family(
    family: Family, registry: Registry, corrected: bool = False
) -> tuple[dict[str, Any] | None, list[str]]:
    """One family as an entry of ``registry`` (None if it is not of the registry's kind or no
    spec is on a hub Xinference knows), with notes on what Xinference cannot hold;
    ``corrected``: with the corrections overlay's facts instead of upstream's."""
    if family.kind != registry.kind:
        return None, []
    notes: list[str] = []
    if registry is EMBEDDING and family.embedding is None:
        return None, ["no embedding facts (embedding.dimensions); left out"]
    specs = [
        s for s in (_export_spec(spec, notes, corrected) for spec in family.specs) if s is not None
    ]
    if not specs:
        notes.append("no spec Xinference can download; family left out")
        return None, notes
    out: dict[str, Any] = {"version": FORMAT_VERSION, "model_name": family.name}
    if family.embedding is not None:
        out["dimensions"] = family.embedding.dimensions
    if registry is RERANK:
        rerank_type = family.rerank.type if family.rerank is not None else "cross-encoder"
        out["type"] = _XINFERENCE_RERANK_TYPES[rerank_type]
    out["max_tokens"] = family.context_length
    out["language"] = ["multilingual" if c == MULTILINGUAL else c for c in family.languages]
    out["model_specs"] = specs
    dropped = [name for name in ("license", "homepage") if getattr(family, name)]
    if family.embedding is not None:
        facts = family.embedding
        dropped += [
            f"embedding.{name}"
            for name, value in (
                ("matryoshka_dimensions", facts.matryoshka_dimensions),
                ("pooling", facts.pooling),
                ("normalized", facts.normalized),
                ("prompts", facts.query_prefix or facts.document_prefix),
            )
            if value not in (None, ())
        ]
    dropped += [f"extra.{k}" for k in family.extra if k not in (EXTRA_KEY, UNVERIFIED)]
    if dropped:
        notes.append(f"Xinference cannot hold {', '.join(dropped)}")
    extra = _xinference_extra(family.extra)
    order = _order_of(extra, registry.family_order)
    unlisted = extra.pop(UNLISTED_SPECS, None) or []
    for entry in sorted(unlisted, key=lambda e: int(e["index"])):
        out["model_specs"].insert(int(entry["index"]), entry["spec"])
    return _ordered(with_upstream(out, extra, corrected), order), notes


def export_catalog(
    families: Iterable[Family], registry: Registry, corrected: bool = False
) -> tuple[list[dict[str, Any]], dict[str, list[str]]]:
    """The families of ``registry``'s kind in its model_spec.json shape, and notes per name.

    Facts zoo adds (sizes, pooling, prompts, descriptions) are not written and not reported
    for imported families: Xinference has no place for them, and its own file did without."""
    exported: list[dict[str, Any]] = []
    notes: dict[str, list[str]] = {}
    for family in families:
        data, family_notes = export_family(family, registry, corrected)
        if data is not None:
            exported.append(data)
        imported = EXTRA_KEY in family.extra
        family_notes = [n for n in family_notes if not (imported and _zoo_only(n))]
        if family_notes:
            notes[family.name] = family_notes
    return exported, notes


def _zoo_only(note: str) -> bool:
    return note.startswith("Xinference cannot hold embedding.")


def dumps_registry(entries: list[dict[str, Any]]) -> str:
    """JSON text the way Xinference keeps these registries (2-space indent, UTF-8)."""
    return json.dumps(entries, indent=2, ensure_ascii=False) + "\n"


# ---------------------------------------------------------------------------------------------
# Files


def header(registry: Registry, commit: str | None) -> str:
    at = f"commit {commit}" if commit else "commit not recorded"
    return (
        SCHEMA_COMMENT
        + f"{GENERATED_MARKER} from Xinference's built-in {registry.label} registry\n"
        + f"# (github.com/xorbitsai/inference, {registry.upstream},\n# {at}; Apache-2.0).\n"
        + "# Sizes and other facts Xinference lacks: zoo/importers/xinference_supplement.yaml,\n"
        + "# from the model cards, not checked (extra.unverified names them).\n"
        + "# Re-import instead of editing by hand; extra.xinference keeps the facts zoo does not\n"
        + "# use (see zoo/importers/xinference_pooling.py).\n"
    )


def import_registry(
    source: Path,
    out_dir: Path,
    kind: str | None = None,
    commit: str | None = None,
    supplement: Path = SUPPLEMENT,
    overlay: Path | None = corrections.OVERLAY,
) -> tuple[str, ImportReport]:
    """Write one spec file per entry of an embedding or rerank registry into ``out_dir``.

    ``kind`` ("embedding" or "rerank") is read from the file when not given. Returns the kind
    and the report. As with the LLM import, families of files this import did not write win,
    and its own files of families no longer in the source are removed.
    """
    entries = read_registry(source)
    kind = kind or detect_kind(entries)
    registry = REGISTRIES.get(kind)
    if registry is None:
        raise XinferenceFormatError(f"{source}: not an embedding or rerank registry ({kind})")
    facts = load_supplement(supplement)[kind]
    section = corrections.load(overlay)[kind] if overlay is not None else {}
    top = header(registry, commit or source_commit(source))

    def generated(path: Path) -> bool:
        return is_generated(path, registry.label)

    def convert(entry: Any) -> Conversion:
        return convert_family(entry, registry, facts, section)

    report = write_families(source, entries, convert, out_dir, top, generated)
    _note_missing(report, section, entries)
    return kind, report
