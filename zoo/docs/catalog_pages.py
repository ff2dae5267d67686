"""Pages about the whole catalog: the index of families, the format × engine matrix, and one
page per ability. Family pages link here through labels, so file layout can change freely."""

from __future__ import annotations

from collections.abc import Sequence

from zoo.catalog.model import FORMATS, Family
from zoo.docs import rst
from zoo.docs.context import DocsContext, EngineInfo
from zoo.docs.family_page import ability_label, family_label

INDEX_LABEL = "models-index"
MATRIX_LABEL = "models-matrix"
# Longest description shown in tables; the family page has the full text.
SUMMARY_CHARS = 160

# What each ability means, for the ability pages (unknown abilities still get a page).
ABILITY_WORDS: dict[str, str] = {
    "generate": "Plain text completion (``/v1/completions``).",
    "chat": "Conversations through a chat template (``/v1/chat/completions``).",
    "reasoning": "Thinks before answering, in tagged reasoning text.",
    "tools": "Calls functions (OpenAI ``tools``), parsed by the engine's tool-call parser.",
    "vision": "Reads images as part of the prompt.",
    "fim": "Fills in the middle of code between a prefix and a suffix.",
    "embed": "Turns text into embedding vectors (``/v1/embeddings``).",
    "audio": "Hears or speaks audio.",
    "omni": "Takes and gives several modalities (text, image, audio) at once.",
    "hybrid": "Switches between thinking and direct answers on request.",
    "rerank": "Scores documents against a query.",
}


def summary(description: str) -> str:
    """The first sentence of a description, cut at a word near ``SUMMARY_CHARS``."""
    flat = " ".join(description.split())
    end = flat.find(". ")
    first = flat[: end + 1] if 0 <= end < SUMMARY_CHARS else flat
    if len(first) > SUMMARY_CHARS:
        first = first[:SUMMARY_CHARS].rsplit(" ", 1)[0] + " …"
    return first


def _family_rows(families: Sequence[Family]) -> list[list[str]]:
    return [
        [
            rst.ref(f.name, family_label(f.name)),
            ", ".join(f.abilities),
            f"{f.context_length:,}",
            rst.text(summary(f.description)) if f.description else "",
        ]
        for f in families
    ]


def _family_table(families: Sequence[Family]) -> str:
    return rst.list_table(
        ["Model", "Abilities", "Context", "Description"], _family_rows(families), "20 20 10 50"
    )


def abilities_of(families: Sequence[Family]) -> list[str]:
    found = {a for f in families for a in f.abilities}
    known = [a for a in ABILITY_WORDS if a in found]
    return known + sorted(found - set(known))


def render_index(families: Sequence[Family], ability_docs: Sequence[str]) -> str:
    """The models index: every family, then a hidden toctree so Sphinx knows every page."""
    toctree = [".. toctree::", "   :hidden:", "", "   matrix"]
    toctree += [f"   {d}" for d in ability_docs]
    toctree += [f"   {f.name}" for f in families]
    abilities = abilities_of(families)
    return "\n".join(
        [
            rst.label_line(INDEX_LABEL),
            rst.heading("Models", "=", overline=True),
            (
                f"The catalog has {len(families)} model families. Each page lists its specs with "
                "the engines that run them, where to download them and a ``zoo launch`` line to "
                "copy. Which engine runs which format: "
                f"{rst.ref('the engine matrix', MATRIX_LABEL)}.\n"
            ),
            "By ability: "
            + (", ".join(rst.ref(a, ability_label(a)) for a in abilities) or "none")
            + ".\n",
            _family_table(families),
            "\n".join(toctree) + "\n",
        ]
    )


def render_ability(ability: str, families: Sequence[Family]) -> str:
    members = [f for f in families if ability in f.abilities]
    words = ABILITY_WORDS.get(ability, "")
    return "\n".join(
        p
        for p in [
            rst.label_line(ability_label(ability)),
            rst.heading(f"Ability: {ability}", "=", overline=True),
            words + "\n" if words else "",
            f"{len(members)} of the catalog's families have it.\n",
            _family_table(members),
        ]
        if p
    )


def _matrix_cell(engine: EngineInfo, fmt: str) -> str:
    quantizations = engine.quantizations_for(fmt)
    if not quantizations:
        return "—"
    # A format only an opt-in build runs (e.g. vLLM's CPU build) says which opt-in it needs.
    optional = fmt not in engine.capabilities.formats
    words = "any" if quantizations == ("*",) else ", ".join(rst.literal(q) for q in quantizations)
    if engine.experimental(fmt):
        words += " (experimental)"
    if optional:
        variant = next(v for v in engine.variants if fmt in v.formats)
        words += f" (opt-in {rst.literal(variant.opt_in or variant.variant or 'variant')})"
    return words


def render_matrix(families: Sequence[Family], ctx: DocsContext) -> str:
    counts: dict[str, int] = {}
    for family in families:
        for spec in family.specs:
            counts[spec.format] = counts.get(spec.format, 0) + 1
    engine_formats = {fmt for e in ctx.engines for fmt in e.formats()}
    formats = [f for f in FORMATS if f in counts or f in engine_formats]
    formats += sorted((set(counts) | engine_formats) - set(formats))
    parts = [
        rst.label_line(MATRIX_LABEL),
        rst.heading("Formats and engines", "=", overline=True),
        (
            "Which engine runs which spec format, and with which quantizations, as the installed "
            'engine plugins declare it (``zoo.engine.Capabilities``). "any" means every '
            'quantization of that format; "experimental" means zoo uses the engine for that '
            "format only when it is named with ``--engine``.\n"
        ),
    ]
    if not ctx.engines:
        parts.append("No engine plugins were installed where this page was built.\n")
        return "\n".join(parts)
    rows = [
        [rst.literal(fmt), str(counts.get(fmt, 0)), *(_matrix_cell(e, fmt) for e in ctx.engines)]
        for fmt in formats
    ]
    parts.append(rst.list_table(["Format", "Specs", *(e.display_name for e in ctx.engines)], rows))
    parts.append(rst.heading("Engines", "-"))
    parts.append(
        rst.list_table(
            ["Engine", "Name", "Platforms", "Accelerators", "Notes"],
            [_engine_row(e) for e in ctx.engines],
        )
    )
    return "\n".join(parts)


def _engine_row(engine: EngineInfo) -> list[str]:
    lines = []
    for caps in engine.all_capabilities:
        platforms = ", ".join(
            "any" if (o, a) == ("*", "*") else f"{o}/{a}".replace("*", "any")
            for o, a in caps.platforms
        )
        accelerators = ", ".join(caps.accelerators) + (
            " (required)" if caps.requires_accelerator else ""
        )
        lines.append((caps, platforms, accelerators))

    def cell(index: int) -> str:
        values = []
        for caps, platforms, accelerators in lines:
            value = (platforms, accelerators)[index]
            if caps is not engine.capabilities:
                value += f" (opt-in {caps.opt_in or caps.variant or 'variant'})"
            values.append(rst.text(value))
        return rst.line_block(values)

    notes = [rst.text(c.notes) for c in engine.all_capabilities if c.notes]
    return [
        rst.text(engine.display_name),
        rst.literal(engine.name),
        cell(0),
        cell(1),
        rst.line_block(notes) if notes else "",
    ]
