"""Model references as Ollama users type them: ``qwen3:8b``, ``seed-oss:36b-q4_k_m``.

A reference is a family name with an optional tag after ``:``. The tag names a size
(``8b``, ``0.5b``, ``135m``, a mixture-of-experts ``30b-a3b``: 30B in all, 3B active per
token), a quantization (``q4_k_m``, any case, ``-`` and ``_`` alike), or a size then a
quantization (``36b-q4_k_m``); ``latest`` (or nothing) means no tag, as in Ollama. The same
size grammar is what ``--size`` accepts (``36B``, ``36``, ``0.5B``, ``30B-A3B``, ``135M``).

Parsing is syntax only (``parse_reference``, ``parse_size``); whether the family has that size
or quantization is checked by ``check_tag`` against the family, which also lists the tags
that exist (``family_tags``). ``merge_flags`` is the one rule for a tag beside ``--size`` or
``--quantization``: agreeing is fine, contradicting is a usage error. This module imports
nothing of the catalog at run time, so the CLI can parse a reference before loading it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from zoo.errors import UsageError

if TYPE_CHECKING:
    from zoo.catalog.model import Family, Spec

# Ollama's word for "no particular tag".
LATEST = "latest"
_NUMBER = r"\d+(?:\.\d+)?"
# A size word: "8b", "0.5b", "135m", "1t"; "8" alone only in --size (a bare digit in a tag
# could be a quantization like "4bit"'s start, so a tag's size always has its unit).
_SIZE_WORD = re.compile(rf"^({_NUMBER})([bmt])$", re.IGNORECASE)
_ACTIVE_WORD = re.compile(rf"^a({_NUMBER})([bmt])$", re.IGNORECASE)


@dataclass(frozen=True)
class Size:
    """Billions of parameters, and for a mixture of experts the billions active per token."""

    total: float
    active: float | None = None


@dataclass(frozen=True)
class Reference:
    """What a model reference names; None: not said (the flags or the resolver decide)."""

    name: str
    size: float | None = None
    active: float | None = None  # MoE: billions active per token ("a3b")
    quantization: str | None = None
    tag: str | None = None  # as typed, for messages; None for a plain name or ``latest``

    @property
    def text(self) -> str:
        return f"{self.name}:{self.tag}" if self.tag else self.name


def _billions(number: str, unit: str) -> float:
    # 135/1000 is the float nearest 0.135, as the catalog's ``size: 0.135`` is; 135 * 1e-3 is not.
    unit = unit.lower()
    return float(number) / 1000 if unit == "m" else float(number) * (1000 if unit == "t" else 1)


def billions(word: str) -> float | None:
    """One size word as ``--size`` takes it ("8B", "8", "0.5b", "135M", "1T") in billions,
    or None: the one grammar of a size, for references, ``zoo list --size`` and the like."""
    found = re.fullmatch(rf"({_NUMBER})([bmt]?)", word.strip(), re.IGNORECASE)
    return _billions(found.group(1), found.group(2)) if found else None


def _size_word(word: str) -> float | None:
    found = _SIZE_WORD.match(word)
    return _billions(found.group(1), found.group(2)) if found else None


def _active_word(word: str) -> float | None:
    found = _ACTIVE_WORD.match(word)
    return _billions(found.group(1), found.group(2)) if found else None


def parse_size(text: str, *, what: str = "--size") -> Size:
    """``36B``, ``36b``, ``36``, ``0.5B``, ``135M``, ``30B-A3B`` -> a Size in billions."""
    words = text.strip().split("-")
    first = words[0]
    total = float(first) if re.fullmatch(_NUMBER, first) else _size_word(first)
    active = _active_word(words[1]) if len(words) == 2 else None
    if total is None or total <= 0 or len(words) > 2 or (len(words) == 2 and active is None):
        raise UsageError(
            f"{what} {text!r} is not a size",
            hint="sizes look like 8B, 0.5B, 135M, or 30B-A3B for a mixture of experts",
        )
    return Size(total, active)


def parse_reference(text: str) -> Reference:
    """``name[:tag]`` -> Reference. The tag is a size, a quantization, or a size then a
    quantization; everything after the size words is the quantization."""
    name, colon, tag = text.strip().partition(":")
    name, tag = name.strip(), tag.strip()
    if not name:
        raise UsageError(f"{text!r} names no model", hint="a reference looks like qwen3:8b")
    if not colon or not tag or tag.lower() == LATEST:
        return Reference(name)
    words = tag.split("-")
    if ":" in tag or not all(words):
        raise UsageError(
            f"{text!r} is not a model reference",
            hint="a reference looks like qwen3:8b, qwen3:q4_k_m or seed-oss:36b-q4_k_m",
        )
    size = _size_word(words[0])
    active = _active_word(words[1]) if size is not None and len(words) > 1 else None
    rest = words[(size is not None) + (active is not None) :]
    return Reference(name, size, active, "-".join(rest) or None, tag)


def same_size(a: float, b: float) -> bool:
    # The resolver's tolerance: sizes are the catalog's floats, parsed the same way.
    return abs(a - b) < 1e-9


def merge_flags(reference: Reference, size: Size | None, quantization: str | None) -> Reference:
    """The reference with ``--size``/``--quantization`` folded in: a flag may say what the tag
    did not, or the same thing again; saying something else is a usage error."""
    from zoo import quantization as quant

    if size is not None:
        if reference.size is not None and not same_size(reference.size, size.total):
            raise UsageError(
                f"{reference.text} asks for {size_label(reference.size)} but --size says "
                f"{size_label(size.total)}",
                hint="give the size once: in the tag or with --size",
            )
        active = reference.active if size.active is None else size.active
        if (
            reference.active is not None
            and size.active is not None
            and not same_size(reference.active, size.active)
        ):
            raise UsageError(
                f"{reference.text} asks for {_active_label(reference.active)} active but "
                f"--size says {_active_label(size.active)}"
            )
        reference = replace(reference, size=size.total, active=active)
    if quantization is not None:
        if reference.quantization is not None and not quant.same(
            reference.quantization, quantization
        ):
            raise UsageError(
                f"{reference.text} asks for {reference.quantization} but --quantization says "
                f"{quantization}",
                hint="give the quantization once: in the tag or with --quantization",
            )
        reference = replace(reference, quantization=quantization)
    return reference


def size_label(size: float) -> str:
    """A size as a tag spells it: ``8b``, ``0.5b``, ``135m`` (below half a billion)."""
    from zoo.catalog.model import format_size

    if size < 0.5:
        return f"{format_size(round(size * 1000, 6))}m"
    return f"{format_size(size)}b"


def _active_label(active: float) -> str:
    return f"a{size_label(active)}"


def spec_tag(spec: Spec) -> str:
    """The size tag of a spec: ``8b``, or ``30b-a3b`` for a mixture of experts."""
    if spec.activated_size is not None:
        return f"{size_label(spec.size)}-{_active_label(spec.activated_size)}"
    return size_label(spec.size)


def family_tags(family: Family) -> tuple[list[str], list[str]]:
    """The size tags and quantization tags (lower case, as Ollama spells them) of a family,
    in the catalog's order."""
    sizes = list(dict.fromkeys(spec_tag(s) for s in family.specs))
    quantizations = list(
        dict.fromkeys(q.lower() for s in family.specs for q in s.quantizations if q)
    )
    return sizes, quantizations


def check_tag(reference: Reference, family: Family) -> Reference:
    """The reference checked against ``family``: a size it has (with the active size, for a
    mixture of experts, when given), a quantization one of those specs has (spelled as the
    catalog spells it). A tag that names neither says which tags exist."""
    from zoo import quantization as quant

    specs = list(family.specs)
    if reference.size is not None:
        specs = [
            s
            for s in specs
            if same_size(s.size, reference.size)
            and (
                reference.active is None
                or (s.activated_size is not None and same_size(s.activated_size, reference.active))
            )
        ]
        if not specs:
            raise _unknown(reference, family, "size")
        # The catalog's float, not the parsed one: 22.7/1000 is a hair off the spec's 0.0227.
        active = specs[0].activated_size if reference.active is not None else None
        reference = replace(reference, size=specs[0].size, active=active)
    if reference.quantization is not None:
        spelled = quant.find(reference.quantization, [q for s in specs for q in s.quantizations])
        if spelled is None:
            raise _unknown(reference, family, "quantization")
        reference = replace(reference, quantization=spelled)
    return replace(reference, name=family.name)


def _unknown(reference: Reference, family: Family, what: str) -> UsageError:
    sizes, quantizations = family_tags(family)
    if what == "size" and reference.size is not None:
        asked = size_label(reference.size)
        if reference.active is not None:
            asked += f"-{_active_label(reference.active)}"
    else:
        asked = str(reference.quantization)
    return UsageError(
        f"{family.name} has no {what} {asked}",
        hint=f"sizes: {', '.join(sizes) or 'none'}; "
        f"quantizations: {', '.join(quantizations) or 'none'}",
    )
