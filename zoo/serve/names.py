"""A request's ``model`` string -> the ModelEntry the gateway serves for it.

Clients name models the way Ollama taught them: an exact name or alias from the gateway
config first, then ``family:tag`` or ``entry:tag`` with a tag as ``zoo.reference`` reads it
(``8b``, ``135m``, ``30b-a3b``, ``q4_k_m``, ``36b-q4_k_m``, ``latest``: the grammar the CLI
reads too, against the family's own specs), and a bare family name. A tag that names nothing
the family has is the same UsageError as on the command line, listing what the family has.

A request that narrows a configured entry or names a catalog family outside the config gets a
new entry named canonically (``qwen3:8b-Q4_K_M``, whatever case or order the client typed), so
two spellings of one build are one model to the scheduler, never two loads. Whether such an
entry may be served (downloaded already, ``allow_download``) is the caller's decision: its
``download`` is False.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

from zoo.catalog.model import format_size
from zoo.errors import NotFoundError, UsageError

# The tag grammar and its reading against a family are zoo.reference's, the CLI's too; these
# names are re-exported for the gateway's config checks (zoo.serve.config).
from zoo.quantization import canonical as _canonical_quant
from zoo.reference import (
    Tag,
    matching_builds,
    parse_parameters,
    quantization_names,
    read_tag,
    same_size,
    size_label,
    size_tag,
)
from zoo.serve.types import ModelEntry

__all__ = [
    "MAX_NAME",
    "Tag",
    "build_problem",
    "matching_builds",
    "parse_parameters",
    "quantization_names",
    "read_tag",
    "resolve_name",
    "same_size",
]

if TYPE_CHECKING:
    from zoo.catalog.catalog import Catalog
    from zoo.catalog.model import Family

# Longer than any name anyone types; past it, no did-you-mean (difflib is quadratic in the
# length, and the text comes from any client).
MAX_NAME = 200


def build_problem(
    family: Family,
    *,
    format: str | None = None,
    size: float | None = None,
    quantization: str | None = None,
) -> str | None:
    """Why no build of ``family`` has this format, size and quantization, or None.

    The same questions, in the same order, that ``zoo launch`` asks (zoo.resolve), so a
    config the gateway accepts is one the launch accepts.
    """
    if format is not None and format not in family.formats:
        return f"{family.name} has no {format} format (has: {', '.join(family.formats)})"
    if size is not None and not matching_builds(family, format=format, size=size):
        within = f" in {format}" if format else ""
        sizes = ", ".join(
            dict.fromkeys(format_size(s.size) for s in family.specs if format in (None, s.format))
        )
        return f"{family.name} has no size {format_size(size)}{within} (has: {sizes})"
    if quantization is not None and not matching_builds(
        family, format=format, size=size, quantization=quantization
    ):
        names = (
            quantization_names(family, format)
            if size is None
            else list(
                dict.fromkeys(q for _, q in matching_builds(family, format=format, size=size))
            )
        )
        return (
            f"{family.name} has no quantization {quantization!r} for that request "
            f"(has: {', '.join(names)})"
        )
    return None


def resolve_name(
    text: str,
    entries: Mapping[str, ModelEntry],
    catalog: Catalog,
    *,
    discovered: bool = True,
) -> ModelEntry:
    """The entry a request's ``model`` names.

    1. An entry's name or alias, exactly (then ignoring case).
    2. ``base:tag`` where ``base`` is an entry's name or alias: that entry when the tag picks
       no other build than the entry does, else the entry narrowed by the tag (a UsageError
       when the tag contradicts what the entry fixes).
    3. ``family`` or ``family:tag``: the first entry of that family whose builds include the
       tag's (itself, or narrowed); else, with ``discovered`` (the gateway serves catalog
       models beyond its entries), a new entry for it; else a NotFoundError.

    Narrowed and new entries are named ``base:TAG`` canonically and have ``download`` False.
    """
    name = text.strip()
    if not name:
        raise UsageError("the request names no model")
    shown = name if len(name) <= 80 else name[:80] + "..."
    if len(name) > MAX_NAME or not name.isprintable():
        raise NotFoundError(f"unknown model {shown!r}", hint="see /v1/models")
    entry = _entry_named(name, entries)
    if entry is not None:
        return entry
    base, colon, tag = name.rpartition(":")
    if not colon:
        base, tag = name, ""
    base_entry = _entry_named(base, entries) if colon and base else None
    if base_entry is not None:
        served = catalog.get(base_entry.family)
        # Read in the whole family, so a build the entry does not serve is named as such.
        wanted = read_tag(served, tag)
        narrowed = _narrow(base_entry, served, wanted)
        if narrowed is None:
            raise UsageError(
                f"{base!r} serves {_describe(base_entry)}; {tag!r} is another build of "
                f"{served.name}",
                hint=f"ask for {served.name}:{tag}",
            )
        return narrowed
    family = _family_named(base, catalog) if base else None
    if family is None:
        raise NotFoundError(
            f"unknown model {shown!r}", hint=_suggest(base or name, entries, catalog, discovered)
        )
    wanted = read_tag(family, tag) if colon else Tag()
    same_family = [e for e in entries.values() if e.family == family.name]
    for entry in same_family:
        narrowed = _narrow(entry, family, wanted)
        if narrowed is not None:
            return narrowed
    if not discovered:
        listed = ", ".join(e.name for e in same_family) or "none of its builds"
        raise NotFoundError(
            f"model {shown!r} is not served by this gateway",
            hint=f"it serves {listed} of {family.name}; see /v1/models",
        )
    bare = ModelEntry(name=family.name, family=family.name)
    found = _narrow(bare, family, wanted)
    assert found is not None  # read_tag found a build of the family
    return found


def _entry_named(name: str, entries: Mapping[str, ModelEntry]) -> ModelEntry | None:
    if name in entries:
        return entries[name]
    for entry in entries.values():
        if name in entry.aliases:
            return entry
    folded = name.casefold()
    for entry in entries.values():
        if entry.name.casefold() == folded or any(a.casefold() == folded for a in entry.aliases):
            return entry
    return None


def _family_named(name: str, catalog: Catalog) -> Family | None:
    families = catalog.families
    if name in families:
        return families[name]
    if name.lower() in families:
        return families[name.lower()]
    return None


def _narrow(entry: ModelEntry, family: Family, wanted: Tag) -> ModelEntry | None:
    """``entry`` itself when ``wanted`` picks no other build; narrowed; None if disjoint."""
    own = matching_builds(
        family, format=entry.format, size=entry.size, quantization=entry.quantization
    )
    asked = [
        build
        for build in matching_builds(
            family,
            format=entry.format,
            size=wanted.size,
            activated=wanted.activated,
            quantization=wanted.quantization,
        )
        if build in own
    ]
    if not asked:
        return None
    if asked == own:
        return entry
    label, size, quantization = _canonical(family, asked, own)
    return replace(
        entry,
        name=f"{entry.name}:{label or wanted.label()}",
        aliases=(),
        size=entry.size if entry.size is not None else size,
        quantization=entry.quantization if entry.quantization is not None else quantization,
        # A build the config did not name: another download, another model in memory.
        pinned=False,
        preload=False,
        download=False,
    )


def _canonical(
    family: Family, asked: list[tuple[int, str]], own: list[tuple[int, str]]
) -> tuple[str, float | None, str | None]:
    """The tag that names the builds ``asked`` among ``own``, and the size and quantization
    it fixes. It depends on the builds alone, never on how the client spelt them, so
    ``seed-oss:36b-q4_k_m`` and ``seed-oss:Q4_K_M`` are one model: a size or quantization is
    written only when all of ``asked`` share it and ``own`` does not."""
    specs = family.specs
    words: list[str] = []
    size = quantization = None
    sizes = {specs[i].size for i, _ in asked}
    if len(sizes) == 1 and len({specs[i].size for i, _ in own}) > 1:
        size = specs[asked[0][0]].size
        active = {specs[i].activated_size for i, _ in asked}
        words.append(size_tag(size, active.pop() if len(active) == 1 else None))
    quants = {_canonical_quant(q) for _, q in asked}
    if len(quants) == 1 and len({_canonical_quant(q) for _, q in own}) > 1:
        quantization = asked[0][1]
        words.append(quantization)
    return "-".join(words), size, quantization


def _describe(entry: ModelEntry) -> str:
    words = [entry.family]
    if entry.format:
        words.append(entry.format)
    if entry.size is not None:
        words.append(size_label(entry.size))
    if entry.quantization:
        words.append(entry.quantization)
    return " ".join(words)


def _suggest(
    name: str, entries: Mapping[str, ModelEntry], catalog: Catalog, discovered: bool
) -> str:
    names: list[str] = []
    for entry in entries.values():
        names += [entry.name, *entry.aliases]
    if discovered:
        names += list(catalog.families)
    close = _close(name, names)
    return f"did you mean {', '.join(close)}?" if close else "see /v1/models"


def _close(name: str, names: Iterable[str]) -> list[str]:
    by_folded: dict[str, str] = {}
    for candidate in names:
        by_folded.setdefault(candidate.casefold(), candidate)
    close = difflib.get_close_matches(name.casefold(), list(by_folded), n=3)
    return [by_folded[c] for c in close]
