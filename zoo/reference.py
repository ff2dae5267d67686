"""Model references as Ollama users type them: ``qwen3:8b``, ``seed-oss:36b-q4_k_m``.

The one grammar of a tag, for the CLI (``model_request``, completion, ``zoo list --size``) and
the gateway (``zoo.serve.names``) alike. A reference is a family name with an optional tag after
``:``. The tag names a size (``8b``, ``0.5b``, ``.5b``, ``135m``, ``1t``; a mixture of experts
``30b-a3b``: 30B in all, 3B active per token), a quantization (``q4_k_m``, ``UD-Q4_K_XL``, any
case, ``-`` and ``_`` alike), or a size then a quantization (``36b-q4_k_m``); ``latest`` means
no tag, as in Ollama (an empty tag, ``qwen3:``, is a malformed reference). A tag's size always
has its unit (``4bit`` is a quantization); ``--size`` also takes a bare number (``36``).

A tag is read against the family (``read_tag``): its readings are tried in order (the whole
tag as a size, as a quantization, then split into a size and a quantization at each ``-``,
since quantizations such as ``UD-Q4_K_XL`` hold a ``-`` themselves) and the first the family
has wins, as the first of its specs has it (the catalog's floats and spelling). A tag that
names nothing the family has is a UsageError naming the part it lacks and listing the
family's sizes and quantizations. Without a family (``parse_reference``) the tag gets its
plain reading: a leading size, the rest a quantization. ``merge_flags`` is the one rule for a
tag beside ``--size`` or ``--quantization``: agreeing is fine, contradicting is a usage error.

This module imports nothing of the catalog, the CLI or the gateway at run time, so a
reference parses before the catalog loads.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from zoo.errors import UsageError

if TYPE_CHECKING:
    from collections.abc import Callable

    from zoo.catalog.model import Family, Spec

# Ollama's word for "no particular tag".
LATEST = "latest"
# Billions per unit; division for k and m, so 135m is the float nearest 0.135 (as the
# catalog's ``size: 0.135`` is), which 135 * 1e-3 is not.
_DIVIDE = {"k": 1e6, "m": 1e3}
_MULTIPLY = {"b": 1.0, "t": 1e3}
# Bounded and ASCII: tags come from any client of the gateway too.
_NUMBER = r"(\d{1,6}(?:\.\d{1,6})?|\.\d{1,6})"
_COUNT = rf"{_NUMBER}([kmbt])"
_TAG_SIZE = re.compile(rf"{_COUNT}(?:-a{_COUNT})?", re.IGNORECASE | re.ASCII)
_FLAG_SIZE = re.compile(rf"{_NUMBER}([kmbt]?)(?:-a{_COUNT})?", re.IGNORECASE | re.ASCII)
_SIZE_WORD = re.compile(rf"a?{_COUNT}", re.IGNORECASE | re.ASCII)  # 8b, or active a3b
_REFERENCE_HINT = "a reference looks like qwen3:8b, qwen3:q4_k_m or seed-oss:36b-q4_k_m"


@dataclass(frozen=True)
class Size:
    """Billions of parameters, and for a mixture of experts the billions active per token."""

    total: float
    active: float | None = None


@dataclass(frozen=True)
class Tag:
    """What a tag asks for; None: any. Read against a family, the size is the spec's float and
    the quantization is spelt as the catalog spells it."""

    size: float | None = None  # billions of parameters
    activated: float | None = None  # MoE: billions active per token (``30b-a3b``)
    quantization: str | None = None

    def label(self) -> str:
        """The canonical tag: ``36b-Q4_K_M``, ``30b-a3b``, ``Q4_1``; "" for no constraint."""
        words = []
        if self.size is not None:
            words.append(size_tag(self.size, self.activated))
        if self.quantization is not None:
            words.append(self.quantization)
        return "-".join(words)


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


def _shown(text: str) -> str:
    # What a user typed (or a gateway client sent), as an error shows it: control characters
    # escaped, so a stray \x07 or \x1b[ cannot ring or repaint the terminal. Quoted names use
    # repr, which escapes them too.
    from zoo.catalog.problems import one_line

    return one_line(text)


# --- sizes -----------------------------------------------------------------------------------


def _billions(number: str, unit: str) -> float:
    unit = unit.lower() or "b"
    if unit in _DIVIDE:
        return float(number) / _DIVIDE[unit]
    return float(number) * _MULTIPLY[unit]


def parse_parameters(text: str) -> tuple[float, float | None] | None:
    """A tag's size: ``"30b-a3b"`` -> (30.0, 3.0), ``"135m"`` -> (0.135, None); None when
    ``text`` is not one (the unit is required: ``"8"`` is None)."""
    found = _TAG_SIZE.fullmatch(text.strip())
    if found is None:
        return None
    total = _billions(found.group(1), found.group(2))
    if found.group(3) is None:
        return total, None
    return total, _billions(found.group(3), found.group(4))


def billions(word: str) -> float | None:
    """One size word as ``--size`` takes it ("8B", "8", "0.5b", "135M", "1T") in billions,
    or None: the one grammar of a size, for references, ``zoo list --size`` and the like."""
    found = _FLAG_SIZE.fullmatch(word.strip())
    if found is None or found.group(3) is not None:
        return None
    return _billions(found.group(1), found.group(2))


def parse_size(text: str, *, what: str = "--size") -> Size:
    """``36B``, ``36b``, ``36``, ``0.5B``, ``135M``, ``30B-A3B`` -> a Size in billions."""
    found = _FLAG_SIZE.fullmatch(text.strip())
    total = _billions(found.group(1), found.group(2)) if found else 0.0
    if found is None or total <= 0:
        raise UsageError(
            f"{what} {text!r} is not a size",
            hint="sizes look like 8B, 0.5B, 135M, or 30B-A3B for a mixture of experts",
        )
    active = None if found.group(3) is None else _billions(found.group(3), found.group(4))
    return Size(total, active)


def same_size(a: float, b: float) -> bool:
    # The parsed 22.7m need not be the catalog's float 0.0227 to the last bit.
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def size_label(size: float) -> str:
    """A size as a tag spells it: ``8b``, ``0.5b``, ``135m`` (below half a billion)."""
    from zoo.catalog.model import format_size

    if size < 0.5:
        return f"{format_size(round(size * 1000, 6))}m"
    return f"{format_size(size)}b"


def size_tag(size: float, active: float | None = None) -> str:
    """``8b``, or ``30b-a3b`` for a mixture of experts."""
    if active is None:
        return size_label(size)
    return f"{size_label(size)}-a{size_label(active)}"


def spec_tag(spec: Spec) -> str:
    """The size tag of a spec: ``8b``, or ``30b-a3b`` for a mixture of experts."""
    return size_tag(spec.size, spec.activated_size)


# --- reading a tag ---------------------------------------------------------------------------


def _check_words(tag: str, shown: str) -> None:
    # Nothing after ':' is a slip (or a probe), not a way to say "latest".
    if ":" in tag or not all(tag.split("-")):
        raise UsageError(f"{shown!r} is not a model reference", hint=_REFERENCE_HINT)


def readings(tag: str) -> list[Tag]:
    """Every way ``tag`` can be read, in the order they are tried: the whole tag as a size, as
    a quantization, then a size and a quantization split at each ``-``. Sizes are parsed;
    quantizations are as typed."""
    text = tag.strip()
    found: list[Tag] = []
    whole = parse_parameters(text)
    if whole is not None:
        found.append(Tag(*whole))
    found.append(Tag(quantization=text))
    for at in (i for i, c in enumerate(text) if c == "-"):
        size = parse_parameters(text[:at])
        if size is not None:
            found.append(Tag(*size, quantization=text[at + 1 :]))
    return found


def _plain(tag: str) -> Tag:
    """The reading of ``tag`` without a family: the first whose quantization does not start
    with a size word (``36b-q4_k_m`` is 36b and q4_k_m, ``30b-a3b-q4_k_m`` 30b-a3b and
    q4_k_m), else the one with the longest size."""
    found = readings(tag)
    for reading in found:
        first = (reading.quantization or "").split("-")[0]
        if reading.quantization is None or not _SIZE_WORD.fullmatch(first):
            return reading
    return found[-1]


def parse_reference(text: str) -> Reference:
    """``name[:tag]`` -> Reference, with the tag's plain reading (a leading size, the rest a
    quantization); ``read_reference`` reads it against the family instead."""
    name, colon, tag = text.strip().partition(":")
    name, tag = name.strip(), tag.strip()
    if not name:
        raise UsageError(f"{text!r} names no model", hint="a reference looks like qwen3:8b")
    if not colon or tag.lower() == LATEST:
        return Reference(name)
    _check_words(tag, text)
    plain = _plain(tag)
    return Reference(name, plain.size, plain.activated, plain.quantization, tag)


def matching_builds(
    family: Family,
    *,
    format: str | None = None,
    size: float | None = None,
    activated: float | None = None,
    quantization: str | None = None,
) -> list[tuple[int, str]]:
    """Every (spec index, quantization) of ``family`` that fits the constraints, in spec order
    (quantizations compared case-insensitively, '-' and '_' alike)."""
    from zoo import quantization as quant

    return [
        (index, name)
        for index, spec in enumerate(family.specs)
        if (format is None or spec.format == format)
        and (size is None or same_size(spec.size, size))
        and (
            activated is None
            or (spec.activated_size is not None and same_size(spec.activated_size, activated))
        )
        for name in spec.quantizations
        if quantization is None or quant.same(name, quantization)
    ]


def find_build(family: Family, wanted: Tag, *, format: str | None = None) -> Tag | None:
    """``wanted`` as the first build of ``family`` that has it gives it (the spec's floats,
    the catalog's spelling), or None."""
    builds = matching_builds(
        family,
        format=format,
        size=wanted.size,
        activated=wanted.activated,
        quantization=wanted.quantization,
    )
    if not builds:
        return None
    index, name = builds[0]
    spec = family.specs[index]
    return Tag(
        size=spec.size if wanted.size is not None else None,
        activated=spec.activated_size if wanted.activated is not None else None,
        quantization=name if wanted.quantization is not None else None,
    )


def build_tag(family: Family, spec_index: int, quantization: str) -> str | None:
    """The tag that names exactly this build (``135m-q8_0``), or None when a tag cannot: the
    same size and quantization in an earlier spec of another format wins the reading."""
    spec = family.specs[spec_index]
    tag = f"{spec_tag(spec)}-{quantization.lower()}"
    try:
        wanted = read_tag(family, tag)
    except UsageError:  # a quantization whose spelling reads as something else
        return None
    first = matching_builds(
        family, size=wanted.size, activated=wanted.activated, quantization=wanted.quantization
    )[:1]
    return tag if first == [(spec_index, quantization)] else None


def read_tag(family: Family, tag: str, *, format: str | None = None) -> Tag:
    """The build ``tag`` names in ``family`` (restricted to ``format``), or a UsageError.

    The readings (``readings``) are tried in order and the first the family has wins, so an
    ambiguous tag means what the earlier reading, then the earlier spec, means.
    """
    text = tag.strip()
    if text.lower() == LATEST:
        return Tag()
    _check_words(text, f"{family.name}:{text}")
    for reading in readings(text):
        found = find_build(family, reading, format=format)
        if found is not None:
            return found
    raise no_build(family, _plain(text), format=format)


def reference_with_flags(
    model: str,
    size: str | float | None,
    quantization: str | None,
    family: Callable[[str], Family],
) -> Reference:
    """What ``model`` (a reference such as ``qwen3:8b``) and the ``--size``/``--quantization``
    flags ask for together, the one reading every command makes: the tag read against the
    family (looked up with ``family`` only when there is a tag, or an active size to check),
    the flags merged in (a contradiction is a usage error), the catalog's floats and spelling."""
    wanted = parse_reference(model)
    asked_size = None if size is None else parse_size(str(size))
    if wanted.tag is None and (asked_size is None or asked_size.active is None):
        return merge_flags(wanted, asked_size, quantization)
    found = family(wanted.name)
    wanted = read_reference(wanted, found)
    return check_tag(merge_flags(wanted, asked_size, quantization), found)


def read_reference(reference: Reference, family: Family) -> Reference:
    """``reference`` with its tag read against ``family`` (``read_tag``) and the family's
    name as the catalog spells it."""
    found = Tag() if reference.tag is None else read_tag(family, reference.tag)
    return replace(
        reference,
        name=family.name,
        size=found.size,
        active=found.activated,
        quantization=found.quantization,
    )


def check_tag(reference: Reference, family: Family) -> Reference:
    """The reference's size, active size and quantization (from a tag or flags) checked
    against ``family``: the spec's floats and the catalog's spelling, or ``no_build``'s error."""
    wanted = Tag(reference.size, reference.active, reference.quantization)
    found = find_build(family, wanted)
    if found is None:
        raise no_build(family, wanted)
    return replace(
        reference,
        name=family.name,
        size=found.size,
        active=found.activated,
        quantization=found.quantization,
    )


def no_build(family: Family, wanted: Tag, *, format: str | None = None) -> UsageError:
    """The error for a tag the family has no build of: the part it lacks, and its tags."""
    within = f" in {_shown(format)}" if format else ""
    sizes, quantizations = family_tags(family, format=format)
    hint = (
        f"sizes: {', '.join(sizes) or 'none'}; quantizations: {', '.join(quantizations) or 'none'}"
    )
    asked = size_tag(wanted.size, wanted.activated) if wanted.size is not None else None
    sized = Tag(wanted.size, wanted.activated)
    if asked is not None and find_build(family, sized, format=format) is None:
        return UsageError(f"{family.name} has no size {asked}{within}", hint=hint)
    at = f" for size {asked}" if asked is not None else ""
    return UsageError(
        f"{family.name} has no quantization {_shown(wanted.quantization or '')}{at}{within}",
        hint=hint,
    )


def family_tags(family: Family, *, format: str | None = None) -> tuple[list[str], list[str]]:
    """The size tags and quantization tags (lower case, as Ollama spells them) of a family
    (restricted to ``format``), in the catalog's order."""
    specs = [s for s in family.specs if format is None or s.format == format]
    sizes = list(dict.fromkeys(spec_tag(s) for s in specs))
    quantizations = list(dict.fromkeys(q.lower() for s in specs for q in s.quantizations if q))
    return sizes, quantizations


def quantization_names(family: Family, format: str | None = None) -> list[str]:
    """The family's quantizations as the catalog spells them, in spec order."""
    return list(
        dict.fromkeys(
            q for s in family.specs if format is None or s.format == format for q in s.quantizations
        )
    )


# --- flags beside a tag ----------------------------------------------------------------------


def merge_flags(reference: Reference, size: Size | None, quantization: str | None) -> Reference:
    """The reference with ``--size``/``--quantization`` folded in: a flag may say what the tag
    did not, or the same thing again; saying something else is a usage error."""
    from zoo import quantization as quant

    if size is not None:
        if reference.size is not None and not same_size(reference.size, size.total):
            raise UsageError(
                f"{_shown(reference.text)} asks for {size_label(reference.size)} but --size says "
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
                f"{_shown(reference.text)} asks for a{size_label(reference.active)} active but "
                f"--size says a{size_label(size.active)}"
            )
        reference = replace(reference, size=size.total, active=active)
    if quantization is not None:
        if reference.quantization is not None and not quant.same(
            reference.quantization, quantization
        ):
            raise UsageError(
                f"{_shown(reference.text)} asks for {_shown(reference.quantization)} but "
                f"--quantization says {_shown(quantization)}",
                hint="give the quantization once: in the tag or with --quantization",
            )
        reference = replace(reference, quantization=quantization)
    return reference
