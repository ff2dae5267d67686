"""Reviewed corrections to imported Xinference families that survive re-import (the overlay).

Xinference's registries are imported as they are, mistakes included; the few facts found wrong
(a size of 1.5 for an 8B repository, a file template naming another model) are corrected in
``xinference_corrections.yaml`` beside this module, one entry per correction:

- the family (zoo's name, as in specs/) and what the correction selects: ``spec`` (every
  spec, or those of a ``format``, ``size`` (one or a list) and/or ``model_id`` on any hub),
  optionally one ``hub`` of them (its source); neither: the family itself;
- what it ``set``s (zoo's field names: size, activated_size, format; model_id, revision,
  quantizations, file, split {file, parts}; context_length, architectures, abilities,
  languages, description, chat_template), ``unset``s, or ``drop: true`` (a hub's source goes);
- ``why`` (one sentence), ``source`` (the URL of the model card or repository that says so)
  and ``verified`` (false where nobody has checked it against that page: the generated spec
  then lists the facts in the source's ``unverified`` or the spec's or family's
  ``extra.unverified``).

The importers apply the corrections to Xinference's entry before converting it
(``apply``), then keep upstream's values (``annotate``): each level's ``extra.xinference``
holds the original value of every key a correction changed and names those keys in its
``corrected`` list (a listed key it does not hold was absent upstream; ``model_src.<hub>`` names
a dropped hub entry). The plain export puts the originals back, byte for byte;
``zoo export xinference --corrected`` leaves them out and writes the corrected facts.

The overlay is checked when it is read, and a correction that selects nothing, or changes
nothing where it selects, is an error naming it: a fix that upstream has made, or a selector
that no longer fits, must not rot silently.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from zoo.catalog.model import format_size
from zoo.errors import ZooError

OVERLAY = Path(__file__).with_name("xinference_corrections.yaml")
# extra.xinference key: the keys of that level whose upstream values the overlay replaced.
CORRECTED = "corrected"
# extra key (beside xinference) of a spec or family: the facts the overlay gave, unchecked.
UNVERIFIED = "unverified"
SECTIONS = ("llm", "embedding", "rerank")

# zoo field -> Xinference key, per level.
SPEC_FIELDS = {
    "size": "model_size_in_billions",
    "activated_size": "activated_size_in_billions",
    "format": "model_format",
}
SOURCE_FIELDS = {
    "model_id": "model_id",
    "revision": "model_revision",
    "quantizations": "quantizations",
    "file": "model_file_name_template",
    "split": "model_file_name_split_template",  # and quantization_parts
}
FAMILY_FIELDS = {
    "context_length": "context_length",
    "architectures": "architectures",
    "abilities": "model_ability",
    "languages": "model_lang",
    "description": "model_description",
    "chat_template": "chat_template",
}
_SPLIT_KEYS = ("model_file_name_split_template", "quantization_parts")
_ENTRY_KEYS = frozenset({"spec", "hub", "set", "unset", "drop", "why", "source", "verified"})
_SELECTOR_KEYS = frozenset({"format", "size", "model_id"})
_URL = re.compile(r"^https://[^\s/]+\.[^\s/]+/\S*$")


class CorrectionsError(ZooError):
    """The corrections overlay is malformed, or one of its corrections no longer applies."""


@dataclass(frozen=True)
class Correction:
    """One reviewed fix to one imported family."""

    family: str
    number: int  # 1-based, within the family's list (for messages)
    spec: Mapping[str, Any] | None  # None: the family itself
    level: str  # "family", "spec" or "source": what set/unset/drop change
    hub: str | None  # a source-level correction's hub (None: every hub of the spec)
    set: Mapping[str, Any]
    unset: tuple[str, ...]
    drop: bool
    why: str
    source: str
    verified: bool

    @property
    def label(self) -> str:
        what = [f"set {', '.join(self.set)}"] if self.set else []
        what += [f"unset {', '.join(self.unset)}"] if self.unset else []
        what += [f"drop the {self.hub} source"] if self.drop else []
        return f"{OVERLAY.name}: {self.family} correction {self.number} ({'; '.join(what)})"


@dataclass
class Applied:
    """What the corrections changed in one entry, by level, in Xinference's keys."""

    family: list[str] = field(default_factory=list)
    specs: dict[int, list[str]] = field(default_factory=dict)  # spec index -> keys
    sources: dict[tuple[int, str], list[str]] = field(default_factory=dict)
    unverified_family: list[str] = field(default_factory=list)
    unverified_specs: dict[int, list[str]] = field(default_factory=dict)
    unverified_sources: dict[tuple[int, str], list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.family or self.specs or self.sources)


# ---------------------------------------------------------------------------------------------
# Reading and checking the overlay


def _fail(where: str, message: str) -> CorrectionsError:
    return CorrectionsError(f"{OVERLAY.name}: {where}: {message}")


def _size_value(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 100000:
        raise _fail(where, f"size {value!r} is not a number of billions")
    return float(value)


def _check_value(name: str, value: Any, where: str) -> None:
    """A rough type check of a corrected value (the generated spec is validated in full)."""
    if name in ("size", "activated_size"):
        _size_value(value, where)
    elif name == "split":
        if not isinstance(value, Mapping) or not set(value) <= {"file", "parts"} or not value:
            raise _fail(where, "split takes {file, parts}")
        parts = value.get("parts", {})
        if not isinstance(parts, Mapping) or not all(
            (isinstance(p, int) and not isinstance(p, bool) and 1 < p < 100000)
            or (isinstance(p, list) and all(isinstance(x, str) for x in p))
            for p in parts.values()
        ):
            raise _fail(where, "split.parts maps quantizations to a part count or part names")
    elif name in ("quantizations", "architectures", "abilities", "languages"):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise _fail(where, f"{name} takes a list of names")
    elif name == "context_length":
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise _fail(where, "context_length takes a whole number of tokens")
    elif not isinstance(value, str) or not value:
        raise _fail(where, f"{name} takes a string")


def _correction(family: str, number: int, data: Any) -> Correction:
    where = f"{family} correction {number}"
    if not isinstance(data, Mapping):
        raise _fail(where, "expected a mapping")
    unknown = sorted(set(map(str, data)) - _ENTRY_KEYS)
    if unknown:
        raise _fail(where, f"unknown key {unknown[0]!r}")
    spec = data.get("spec")
    hub = data.get("hub")
    if spec is not None:
        if not isinstance(spec, Mapping) or not set(map(str, spec)) <= _SELECTOR_KEYS:
            raise _fail(where, "spec selects by format, size and/or model_id")
        sizes = spec.get("size")
        for size in sizes if isinstance(sizes, list) else [] if sizes is None else [sizes]:
            _size_value(size, where)
    if hub is not None and (spec is None or not isinstance(hub, str)):
        raise _fail(where, "hub names one source of the selected specs (give spec too)")
    changes = data.get("set") or {}
    unset = data.get("unset") or []
    drop = data.get("drop", False)
    if not isinstance(changes, Mapping) or not isinstance(unset, list):
        raise _fail(where, "set takes a mapping of fields, unset a list of fields")
    names = [str(n) for n in [*changes, *unset]]
    # The fields say the level: a spec's (size...) or its sources' (file...; every hub's
    # unless hub names one); without spec, the family's.
    level = "family" if spec is None else "source"
    if spec is not None and hub is None and names and all(n in SPEC_FIELDS for n in names):
        level = "spec"
    fields = {"family": FAMILY_FIELDS, "spec": SPEC_FIELDS, "source": SOURCE_FIELDS}[level]
    for name in names:
        if name not in fields:
            raise _fail(where, f"{name!r} is not a {level} field (one of {', '.join(fields)})")
    for name, value in changes.items():
        _check_value(str(name), value, where)
    if drop is not False and (drop is not True or hub is None or changes or unset):
        raise _fail(where, "drop: true removes one hub's source and nothing else")
    if not (changes or unset or drop):
        raise _fail(where, "sets, unsets and drops nothing")
    why, source, verified = data.get("why"), data.get("source"), data.get("verified")
    if not isinstance(why, str) or not why.strip():
        raise _fail(where, "why: one sentence saying what is wrong")
    if not isinstance(source, str) or not _URL.match(source):
        raise _fail(where, "source: the https URL of the page that says so")
    if not isinstance(verified, bool):
        raise _fail(where, "verified: true or false (was it checked against the source?)")
    return Correction(
        family=family,
        number=number,
        spec=dict(spec) if spec is not None else None,
        level=level,
        hub=hub,
        set=dict(changes),
        unset=tuple(map(str, unset)),
        drop=drop,
        why=why.strip(),
        source=source,
        verified=verified,
    )


def load(path: Path = OVERLAY) -> dict[str, dict[str, list[Correction]]]:
    """The overlay: section (llm, embedding, rerank) -> zoo family name -> corrections."""
    try:
        changed = path.stat().st_mtime_ns
    except OSError as error:
        raise CorrectionsError(f"{path}: not readable ({error.strerror})") from None
    return {kind: dict(families) for kind, families in _load(path, changed)}


@cache  # read once per import, not once per family; an edited file is read again
def _load(path: Path, changed: int) -> tuple[tuple[str, dict[str, list[Correction]]], ...]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise CorrectionsError(f"{path}: not readable as YAML ({error})") from None
    if not isinstance(data, Mapping):
        raise CorrectionsError(f"{path}: expected a mapping of sections ({', '.join(SECTIONS)})")
    unknown = sorted(set(map(str, data)) - set(SECTIONS))
    if unknown:
        raise CorrectionsError(f"{path}: unknown section {unknown[0]!r}")
    out: dict[str, dict[str, list[Correction]]] = {}
    for kind in SECTIONS:
        section = data.get(kind) or {}
        if not isinstance(section, Mapping):
            raise CorrectionsError(f"{path}: {kind}: expected a mapping of family names")
        out[kind] = {}
        for family, entries in section.items():
            if not isinstance(entries, list) or not entries:
                raise _fail(str(family), "expected a list of corrections")
            out[kind][str(family)] = [
                _correction(str(family), i + 1, entry) for i, entry in enumerate(entries)
            ]
    return tuple(out.items())


def missing_families(corrections: Mapping[str, object], names: Iterable[str]) -> list[str]:
    """The families the overlay corrects that are not in the imported registry (``names``):
    a partial or renamed registry still imports, and the import says so."""
    known = {str(n).lower() for n in names}
    return sorted(set(corrections) - known)


# ---------------------------------------------------------------------------------------------
# Applying them to a Xinference entry


def _upstream_size(value: Any) -> float | None:
    try:
        return float(str(value).replace("_", ".")) if not isinstance(value, bool) else None
    except ValueError:
        return None


def _xsize(size: float) -> int | str:
    return int(size) if float(size).is_integer() else format_size(size).replace(".", "_")


def _parts(count: int) -> list[str]:
    """Part names as llama.cpp's gguf-split writes them: 00001-of-00003."""
    return [f"{i:05d}-of-{count:05d}" for i in range(1, count + 1)]


def _selects(correction: Correction, spec: Mapping[str, Any]) -> bool:
    selector = correction.spec or {}
    if "format" in selector and spec.get("model_format") != selector["format"]:
        return False
    if "size" in selector:
        sizes = selector["size"] if isinstance(selector["size"], list) else [selector["size"]]
        if _upstream_size(spec.get("model_size_in_billions")) not in [float(n) for n in sizes]:
            return False
    sources = spec.get("model_src") or {}
    if "model_id" in selector and selector["model_id"] not in {
        s.get("model_id") for s in sources.values() if isinstance(s, Mapping)
    }:
        return False
    return correction.hub is None or correction.hub in sources


def _set_level(
    level: dict[str, Any], fields: Mapping[str, str], correction: Correction
) -> list[str]:
    """Apply ``correction``'s set and unset to one level; returns the Xinference keys changed."""
    before = copy.deepcopy(level)
    for name in correction.unset:
        for key in _SPLIT_KEYS if name == "split" else (fields[name],):
            level.pop(key, None)
    for name, value in correction.set.items():
        if name in ("size", "activated_size"):
            level[fields[name]] = _xsize(float(value))
        elif name == "split":
            if "file" in value:
                level["model_file_name_split_template"] = value["file"]
            elif "model_file_name_split_template" not in level:
                raise CorrectionsError(f"{correction.label}: no split template to add parts to")
            parts = dict(level.get("quantization_parts") or {})
            for quantization, names in (value.get("parts") or {}).items():
                parts[str(quantization)] = _parts(names) if isinstance(names, int) else names
            level["quantization_parts"] = parts
        else:
            level[fields[name]] = copy.deepcopy(value)
    keys = list(dict.fromkeys([*before, *level]))
    changed: list[str] = []
    for key in keys:
        old, new = before.get(key, _MISSING), level.get(key, _MISSING)
        if old == new:
            continue
        inner = list(dict.fromkeys([*old, *new])) if _both_mappings(old, new) else []
        if inner and not any("." in str(k) for k in inner):
            # Name the changed entries (quantization_parts.q8_0), not the whole mapping, so
            # the spec keeps only upstream's values of what was corrected.
            changed += [f"{key}.{k}" for k in inner if old.get(k, _MISSING) != new.get(k, _MISSING)]
        else:
            changed.append(key)
    return changed


_MISSING = object()


def _both_mappings(a: Any, b: Any) -> bool:
    return isinstance(a, Mapping) and isinstance(b, Mapping)


def apply(
    xf: Mapping[str, Any], corrections: Iterable[Correction]
) -> tuple[dict[str, Any], Applied]:
    """``xf`` with ``corrections`` applied (a copy), and what changed where.

    Raises CorrectionsError naming a correction that selects nothing or changes nothing."""
    fixed: dict[str, Any] = copy.deepcopy(dict(xf))
    applied = Applied()
    for correction in corrections:
        changed = 0
        if correction.spec is None:
            keys = _set_level(fixed, FAMILY_FIELDS, correction)
            applied.family += [k for k in keys if k not in applied.family]
            changed += bool(keys)
            if keys and not correction.verified:
                applied.unverified_family += list(correction.set)
        for i, spec in enumerate(fixed.get("model_specs") or []):
            if correction.spec is None or not _selects(correction, spec):
                continue
            targets: list[tuple[list[str], list[str], list[str]]] = []  # changed, mine, marks
            if correction.level == "spec":
                keys = _set_level(spec, SPEC_FIELDS, correction)
                marks = applied.unverified_specs.setdefault(i, [])
                targets.append((keys, applied.specs.setdefault(i, []), marks))
            elif correction.drop:
                assert correction.hub is not None
                del spec["model_src"][correction.hub]
                if not spec["model_src"]:
                    raise CorrectionsError(f"{correction.label}: would leave a spec no source")
                keys = [f"model_src.{correction.hub}"]
                targets.append((keys, applied.specs.setdefault(i, []), []))
            else:
                for hub in [correction.hub] if correction.hub else list(spec["model_src"]):
                    keys = _set_level(spec["model_src"][hub], SOURCE_FIELDS, correction)
                    marks = applied.unverified_sources.setdefault((i, hub), [])
                    targets.append((keys, applied.sources.setdefault((i, hub), []), marks))
            for keys, mine, marks in targets:
                mine += [k for k in keys if k not in mine]
                if keys and not correction.verified:
                    marks += [f for f in correction.set if f not in marks]
                changed += bool(keys)
        if not changed:
            raise CorrectionsError(
                f"{correction.label} matches nothing in Xinference's data (or changes nothing "
                "there any more): fix its selector or remove it"
            )
        applied.notes.append(
            f"corrected by {correction.label.split(': ', 1)[1]} in {changed} place(s): "
            f"{correction.why}"
        )
    return fixed, applied


# ---------------------------------------------------------------------------------------------
# Keeping upstream's values in the generated document


def _level_extra(doc: dict[str, Any], key: str) -> dict[str, Any]:
    extra: dict[str, Any] = doc.setdefault("extra", {})
    value: dict[str, Any] = extra.setdefault(key, {})
    return value


def _keep(level_doc: dict[str, Any], upstream: Mapping[str, Any], keys: list[str]) -> None:
    """Upstream's values of ``keys`` into ``level_doc``'s extra.xinference, named as corrected."""
    extra = _level_extra(level_doc, "xinference")
    for key in keys:
        path = key.split(".")  # model_src.<hub>, quantization_parts.<quantization>
        found, value = get_path(upstream, path)
        if found:
            put_path(extra, path, copy.deepcopy(value))
        else:
            pop_path(extra, path)  # absent upstream: the plain export leaves it out
    listed = list(extra.get(CORRECTED) or [])
    extra[CORRECTED] = listed + [k for k in keys if k not in listed]


def _mark(level_doc: dict[str, Any], names: list[str]) -> None:
    if names:
        extra = level_doc.setdefault("extra", {})
        listed = list(extra.get(UNVERIFIED) or [])
        extra[UNVERIFIED] = listed + [n for n in names if n not in listed]


def _mark_source(source_doc: dict[str, Any], names: list[str]) -> None:
    """Source facts go in the source's own ``unverified`` (before extra, as a reader expects)."""
    names = [n for n in names if n in source_doc]  # an unset field is not a fact to check
    if not names:
        return
    listed = list(source_doc.get(UNVERIFIED) or [])
    source_doc[UNVERIFIED] = listed + [n for n in names if n not in listed]
    if "extra" in source_doc:
        source_doc["extra"] = source_doc.pop("extra")


def annotate(
    doc: dict[str, Any],
    xf: Mapping[str, Any],
    applied: Applied,
    kept: Mapping[int, int],
) -> dict[str, Any]:
    """Keep upstream's values (``xf``) of what ``applied`` changed in the converted ``doc``.

    ``kept`` maps a spec's index upstream to its place in ``doc["specs"]``. Returns the
    document, family ``extra`` placed before ``specs``."""
    specs = xf["model_specs"]
    for i, keys in applied.specs.items():
        if keys and i not in kept:
            raise CorrectionsError(
                f"{OVERLAY.name}: corrects spec {i + 1}, which zoo does not offer"
            )
        if keys:
            _keep(doc["specs"][kept[i]], specs[i], keys)
    for (i, hub), keys in applied.sources.items():
        if keys and i not in kept:
            raise CorrectionsError(
                f"{OVERLAY.name}: corrects spec {i + 1}, which zoo does not offer"
            )
        if keys:
            _keep(doc["specs"][kept[i]]["sources"][hub], specs[i]["model_src"][hub], keys)
    for i, names in applied.unverified_specs.items():
        if i in kept:
            _mark(doc["specs"][kept[i]], names)
    for (i, hub), names in applied.unverified_sources.items():
        if i in kept:
            _mark_source(doc["specs"][kept[i]]["sources"][hub], names)
    if applied.family:
        _keep(doc, xf, applied.family)
    _mark(doc, applied.unverified_family)
    if "extra" in doc and "specs" in doc:
        specs_doc = doc.pop("specs")
        doc["specs"] = specs_doc
    return doc


def split_extra(extra: Mapping[str, Any]) -> tuple[dict[str, Any], list[list[str]]]:
    """A level's extra.xinference without the overlay's bookkeeping, and the corrected paths."""
    merged = copy.deepcopy(dict(extra))
    paths = [str(p).split(".") for p in merged.pop(CORRECTED, None) or []]
    return merged, paths


def get_path(data: Mapping[str, Any], path: list[str]) -> tuple[bool, Any]:
    """(whether nested ``data`` has ``path``, its value there)."""
    value: Any = data
    for name in path:
        if not isinstance(value, Mapping) or name not in value:
            return False, None
        value = value[name]
    return True, value


def pop_path(data: dict[str, Any], path: list[str]) -> tuple[bool, Any]:
    """Remove ``path`` from nested ``data``, and mappings it leaves empty: (whether it was
    there, its value)."""
    if len(path) == 1:
        return (True, data.pop(path[0])) if path[0] in data else (False, None)
    inner = data.get(path[0])
    if not isinstance(inner, dict):
        return False, None
    found, value = pop_path(inner, path[1:])
    if found and not inner:
        del data[path[0]]
    return found, value


def put_path(data: dict[str, Any], path: list[str], value: Any) -> None:
    for name in path[:-1]:
        data = data.setdefault(name, {})
    data[path[-1]] = value
