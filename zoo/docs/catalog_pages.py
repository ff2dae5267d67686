"""Pages about the whole catalog: the index of families, the format × engine matrix, one page
per model kind and one per ability. Family pages link here through labels, so file layout can
change freely."""

from __future__ import annotations

from collections.abc import Sequence

from zoo import kinds
from zoo.catalog.model import FORMATS, Family, context_label
from zoo.docs import rst
from zoo.docs.context import DocsContext, EngineInfo
from zoo.docs.family_page import ability_label, family_label
from zoo.docs.kind_sections import kind_label, kind_plural, kind_title
from zoo.docs.sizes import smallest_download

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
    "audio": "Hears or speaks audio.",
    "omni": "Takes and gives several modalities (text, image, audio) at once.",
    "hybrid": "Switches between thinking and direct answers on request.",
}

# What each kind's page says first; routes are zoo.kinds' own.
KIND_WORDS: dict[str, str] = {
    kinds.LLM: "Chat and text completion.",
    kinds.EMBEDDING: "Turn text into vectors for search, clustering and similarity.",
    kinds.RERANK: "Score documents against a query, to reorder what a search found.",
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
            context_label(f.context_length),
            rst.text(summary(f.description)) if f.description else "",
        ]
        for f in families
    ]


def sizes_words(family: Family) -> str:
    """The family's parameter sizes, smallest first: "0.5B, 1.5B, 7B"."""
    sizes = sorted({(s.size, s.size_label) for s in family.specs})
    return ", ".join(f"{label}B" for _, label in sizes)


def smallest_words(family: Family) -> str:
    found = smallest_download(family)
    if found is None:
        return "—"
    spec, quantization, download = found
    return f"{rst.text(download.words())} {rst.literal(quantization)} ({spec.size_label}B)"


def _index_table(families: Sequence[Family]) -> str:
    """The models index: what a reader picks a model by, one row per family."""
    rows = [
        [
            rst.ref(f.name, family_label(f.name)),
            rst.ref(f.kind, kind_label(f.kind)),
            sizes_words(f),
            ", ".join(rst.literal(fmt) for fmt in f.formats),
            smallest_words(f),
            context_label(f.context_length),
            rst.text(summary(f.description)) if f.description else "",
        ]
        for f in families
    ]
    # "auto": the browser sizes the columns to their content and wraps the description, so
    # the table fits the page's width (fixed or equal percentages made it overflow).
    return rst.list_table(
        ["Model", "Kind", "Sizes", "Formats", "Smallest download", "Context", "Description"],
        rows,
        "auto",
    )


def _family_table(families: Sequence[Family]) -> str:
    return rst.list_table(
        ["Model", "Abilities", "Context", "Description"],
        _family_rows(families),
        "20 20 10 50",
    )


def kinds_of(families: Sequence[Family]) -> list[str]:
    """The kinds the catalog has, in zoo.kinds' order (unknown ones after, by name)."""
    found = {f.kind for f in families}
    known = [k for k in kinds.KIND_NAMES if k in found]
    return known + sorted(found - set(known))


def abilities_of(families: Sequence[Family]) -> list[str]:
    found = {a for f in families for a in f.abilities}
    known = [a for a in ABILITY_WORDS if a in found]
    return known + sorted(found - set(known))


def render_index(
    families: Sequence[Family], ability_docs: Sequence[str], kind_docs: Sequence[str] = ()
) -> str:
    """The models index: every family, then a hidden toctree so Sphinx knows every page."""
    toctree = [".. toctree::", "   :hidden:", "", "   matrix"]
    toctree += [f"   {d}" for d in kind_docs]
    toctree += [f"   {d}" for d in ability_docs]
    toctree += [f"   {f.name}" for f in families]
    abilities = abilities_of(families)
    present = kinds_of(families)
    by_kind = ", ".join(
        rst.ref(f"{kind_plural(k)} ({sum(f.kind == k for f in families)})", kind_label(k))
        for k in present
    )
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
            "By kind: " + (by_kind or "none") + ".\n",
            "By ability (language models): "
            + (", ".join(rst.ref(a, ability_label(a)) for a in abilities) or "none")
            + ".\n",
            (
                "*Smallest download* is the smallest quantization's files (estimated where "
                'marked "~"); *Context* is the longest the family takes.\n'
            ),
            _index_table(families),
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


def render_kind(kind: str, families: Sequence[Family], ctx: DocsContext) -> str:
    """One kind's page: what it is, its routes, the engines serving it, and its families with
    the facts that matter for the kind (vector sizes for embedding models)."""
    members = [f for f in families if f.kind == kind]
    known = kinds.KINDS.get(kind)
    routes = ", ".join(rst.literal(r) for r in known.routes) if known else ""
    serving = [e for e in ctx.engines if kind in e.kinds()]
    engines = ", ".join(
        f"{e.display_name} ({rst.literal(e.name)}"
        + (
            f", opt-in {rst.literal(v.opt_in or v.variant or 'variant')})"
            if (v := e.kind_variant(kind)) is not None
            else ")"
        )
        for e in serving
    )
    parts = [
        rst.label_line(kind_label(kind)),
        rst.heading(f"Kind: {kind_plural(kind)}", "=", overline=True),
        KIND_WORDS.get(kind, "") + "\n" if kind in KIND_WORDS else "",
        rst.field_list(
            [
                ("Name in spec files", rst.literal(f"kind: {kind}")),
                ("Routes", routes),
                (
                    "Engines",
                    engines
                    or (
                        "none of the engines installed where this page was built"
                        if ctx.engines
                        else "no engine plugins were installed where this page was built"
                    ),
                ),
            ]
        ),
        f"{len(members)} of the catalog's families are {kind_plural(kind)}.\n",
        _kind_table(kind, members),
    ]
    return "\n".join(p for p in parts if p)


# Longest language list shown in a table row; the family page lists every one.
TABLE_LANGUAGES = 6


def _languages(family: Family) -> str:
    shown = ", ".join(rst.text(lang) for lang in family.languages[:TABLE_LANGUAGES])
    more = len(family.languages) - TABLE_LANGUAGES
    return shown + (f" and {more} more" if more > 0 else "")


def _kind_table(kind: str, members: Sequence[Family]) -> str:
    if kind == kinds.EMBEDDING:
        rows = [
            [
                rst.ref(f.name, family_label(f.name)),
                f"{f.embedding.dimensions:,}" if f.embedding else "",
                ", ".join(str(d) for d in f.embedding.matryoshka_dimensions) if f.embedding else "",
                context_label(f.context_length),
                _languages(f),
                rst.text(summary(f.description)) if f.description else "",
            ]
            for f in members
        ]
        return rst.list_table(
            ["Model", "Dimensions", "Matryoshka", "Max tokens", "Languages", "Description"],
            rows,
            "20 10 10 10 10 40",
        )
    if kind == kinds.RERANK:
        rows = [
            [
                rst.ref(f.name, family_label(f.name)),
                rst.text((f.rerank.type if f.rerank else "") or ""),
                context_label(f.context_length),
                _languages(f),
                rst.text(summary(f.description)) if f.description else "",
            ]
            for f in members
        ]
        return rst.list_table(
            ["Model", "Type", "Max tokens", "Languages", "Description"], rows, "20 15 10 15 40"
        )
    return _family_table(members)


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
    parts.append(_kinds_table(families, ctx))
    parts.append(rst.heading("Engines", "-"))
    parts.append(
        rst.list_table(
            ["Engine", "Name", "Kinds", "Platforms", "Accelerators", "Notes"],
            [_engine_row(e) for e in ctx.engines],
        )
    )
    return "\n".join(parts)


def _kinds_table(families: Sequence[Family], ctx: DocsContext) -> str:
    """Which engine serves which model kind (``Capabilities.kinds``)."""
    counts = {k: sum(f.kind == k for f in families) for k in kinds_of(families)}
    present = list(counts) + [k for e in ctx.engines for k in e.kinds() if k not in counts]
    present = list(dict.fromkeys(present))

    def cell(engine: EngineInfo, kind: str) -> str:
        if kind not in engine.kinds():
            return "—"
        variant = engine.kind_variant(kind)
        if variant is None:
            return "yes"
        return f"yes (opt-in {rst.literal(variant.opt_in or variant.variant or 'variant')})"

    rows = [
        [
            rst.ref(kind_plural(k), kind_label(k)) if k in counts else rst.text(kind_plural(k)),
            str(counts.get(k, 0)),
            *(cell(e, k) for e in ctx.engines),
        ]
        for k in present
    ]
    return "\n".join(
        [
            rst.heading("Kinds and engines", "-"),
            (
                "Which engine serves which kind of model, as the engines declare it "
                "(``Capabilities.kinds``; each kind's page lists its routes). Resolution only "
                "offers a family to the engines that serve its kind.\n"
            ),
            rst.list_table(["Kind", "Families", *(e.display_name for e in ctx.engines)], rows),
        ]
    )


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
        ", ".join(rst.text(kind_title(k)) for k in engine.kinds()),
        cell(0),
        cell(1),
        rst.line_block(notes) if notes else "",
    ]
