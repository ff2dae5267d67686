"""One family's page: its facts, then one section per spec a user can copy from.

Everything Xinference's page shows is here, and what it gets wrong is fixed: model ids and
links have the quantization filled in (one row per quantization where they differ), GGUF file
names and split parts are listed, pinned revisions shown, memory estimated per quantization,
and each spec ends with ``zoo launch`` commands naming a real engine and quantization.

Pages follow the family's kind: only engines that serve the kind are named, an embedding
model's or reranker's page gives its kind's facts and a request to copy
(``zoo.docs.kind_sections``), and the language-model fields (abilities, chat template, stop
strings, reasoning tags) appear only on language-model pages.

A fact written from best knowledge (a source's or the family's ``unverified``) is marked where
it appears and explained once, in a footnote at the end of the page; so is a fact whose
sources disagree (``disputed``), with each source's value and the reason for zoo's.
"""

from __future__ import annotations

from dataclasses import dataclass

from zoo import kinds
from zoo.catalog.model import Disputed, Family, Source, Spec, context_label, format_size
from zoo.docs import rst
from zoo.docs.context import DocsContext, EngineInfo
from zoo.docs.host_fit import HOST_WORDS, host_fits
from zoo.docs.kind_sections import (
    UNVERIFIED_NOTE,
    kind_fields,
    kind_label,
    kind_plural,
    kind_title,
    unverified_family_facts,
    usage_section,
)
from zoo.docs.sizes import bytes_words, spec_downloads
from zoo.memory import estimate, gib
from zoo.quantization import info
from zoo.speed import tokens_per_second

# Memory on the pages is for this much context (or the family's maximum, if smaller): enough
# for a chat, and a figure a user can compare with their GPU or RAM.
DOCS_CONTEXT_TOKENS = 8192
# Engine overhead assumed on the pages: the default of zoo.engine.Capabilities.
DOCS_OVERHEAD_BYTES = 512 * 1024**2
# Launch lines use this quantization when a spec has it: the common size/quality balance.
PREFERRED_QUANTIZATION = "Q4_K_M"
# Where a source's unverified facts show on a page: the hub's field, unless named here.
_SHOWN_IN_TABLE = ("file", "split")
_SHOWN_ELSEWHERE = ("quantizations", "multimodal_projectors", "draft", *_SHOWN_IN_TABLE)
# The family fields a spec's ``disputed`` may name, by the row of the page that shows them.
_DISPUTABLE_ROWS = {
    "Context length": "context_length",
    "Max input tokens": "context_length",
    "Languages": "languages",
    "Abilities": "abilities",
    "Architectures": "architectures",
    "License": "license",
    "Homepage": "homepage",
    "Stop strings": "stop",
    "Stop token ids": "stop_token_ids",
    "Tool-call parser": "tool_parser",
}


def family_label(name: str) -> str:
    return f"model-{name}"


def ability_label(ability: str) -> str:
    return f"ability-{ability}"


def render_family(family: Family, ctx: DocsContext) -> str:
    """The RST page of ``family``; the same input always gives the same text.

    What a newcomer asks comes first: the command to try it, one table of every spec and
    quantization with its download, memory and engines, the sampling defaults and what runs
    on a few reference machines; then each spec in detail, then the internal facts (stop
    tokens, architectures, chat template) under "Details".
    """
    parts = [
        rst.label_line(family_label(family.name)),
        rst.heading(family.name, "=", overline=True),
    ]
    if family.description:
        parts.append(rst.text(family.description) + "\n")
    parts.append(_try_it(family))
    parts.append(_summary_fields(family))
    parts.append(_summary_table(family, ctx))
    generation = _generation_section(family)
    if generation:
        parts.append(generation)
    hosts = _hosts_section(family, ctx)
    if hosts:
        parts.append(hosts)
    if family.fim is not None and _is_llm(family):
        parts.append(_fim_section(family))
    if not _is_llm(family):
        served = any(family.kind in e.kinds() for e in ctx.engines)
        parts.append(usage_section(family, served))
    parts.append(rst.heading("Specifications", "-"))
    for index, spec in enumerate(family.specs, start=1):
        parts.append(_spec_section(family, spec, index, ctx))
    parts.append(_details_section(family))
    notes = _notes_section(family, "\n".join(parts))
    if notes:
        parts.append(notes)
    return "\n".join(parts)


def run_command(family: Family) -> str:
    """The one command to try the model: ``zoo run`` chats with a language model; other
    kinds are served (``zoo launch``) and called through their route."""
    return f"zoo run {family.name}" if _is_llm(family) else f"zoo launch {family.name}"


def _try_it(family: Family) -> str:
    if _is_llm(family):
        intro = (
            "Talk to it in the terminal (zoo picks the spec, quantization and engine that run "
            "best on your machine, downloads it and starts it):\n"
        )
    else:
        intro = "Serve it (zoo picks the spec, quantization and engine for your machine):\n"
    return intro + "\n" + rst.code_block(run_command(family), "shell")


def _summary_fields(family: Family) -> str:
    context_name = "Context length" if _is_llm(family) else "Max input tokens"
    rows = [
        ("Kind", rst.ref(kind_title(family.kind), kind_label(family.kind))),
        (context_name, f"{context_label(family.context_length)} tokens"),
    ]
    if _is_llm(family):
        rows.append(
            ("Abilities", ", ".join(rst.ref(a, ability_label(a)) for a in family.abilities))
        )
    else:
        rows.extend(row for row in kind_fields(family) if row[0] != "Kind")
    rows += [
        ("Languages", ", ".join(rst.text(lang) for lang in family.languages)),
        ("License", rst.text(family.license or "")),
        ("Homepage", rst.link(family.homepage, family.homepage) if family.homepage else ""),
    ]
    return rst.field_list(_disputed(family, rows))


def _summary_table(family: Family, ctx: DocsContext) -> str:
    """Every spec and quantization in one table: download, memory, engines."""
    context = min(family.context_length, DOCS_CONTEXT_TOKENS)
    kind = family.kind
    rows = []
    for index, spec in enumerate(family.specs, start=1):
        downloads = spec_downloads(spec)
        title = f"{spec.format}, {spec.size_label}B"
        if spec.activated_size is not None:
            title += f" ({format_size(spec.activated_size)}B active)"
        # Smallest first, as ``zoo show`` lists them; the spec is named (and linked) on its
        # first row only: the rows below are its quantizations, and a link per row would be
        # thousands of references for Sphinx to resolve over the catalog.
        ordered = sorted(spec.quantizations, key=lambda q: downloads[q].bytes)
        for row_index, quant in enumerate(ordered):
            download = downloads[quant]
            file_bytes = download.bytes if download.recorded else None
            memory = estimate(family, spec, quant, context, DOCS_OVERHEAD_BYTES, file_bytes)
            engines = [
                e.display_name + (" (experimental)" if e.experimental(spec.format) else "")
                for e in ctx.engines
                if e.runs(spec.format, quant, kind)
            ]
            rows.append(
                [
                    rst.ref(title, _spec_label(family, index)) if row_index == 0 else "",
                    rst.literal(quant),
                    download.words(),
                    bytes_words(memory.total_bytes),
                    ", ".join(engines) or "—",
                ]
            )
    table = rst.list_table(
        ["Spec", "Quantization", "Download", "Est. memory", "Engines"], rows, "25 15 15 15 30"
    )
    return "\n".join([rst.heading("Specs at a glance", "-"), _memory_note(family), table])


def _generation_section(family: Family) -> str:
    """The sampling defaults ``zoo run`` sends, as the model card gives them."""
    generation = family.generation
    if generation is None:
        return ""
    fields = [(name, rst.literal(str(value))) for name, value in generation.options().items()]
    if generation.system_prompt:
        fields.append(("system prompt", rst.text(generation.system_prompt)))
    if not fields:
        return ""
    source = (
        f" ({rst.link('source', generation.source)})"
        if generation.source and generation.source.startswith(("https://", "http://"))
        else ""
    )
    return "\n".join(
        [
            rst.heading("Generation defaults", "-"),
            f"``zoo run`` sends these unless you set others; they are the model card's{source}:\n",
            rst.field_list(fields),
        ]
    )


def _hosts_section(family: Family, ctx: DocsContext) -> str:
    """What the automatic choice would run on a few reference machines."""
    fits = host_fits(family, ctx)
    if not fits:
        return ""
    rows = []
    for fit in fits:
        host = f"{rst.literal(fit.profile)} ({rst.text(HOST_WORDS.get(fit.profile, ''))})"
        best = fit.best
        if best is None:
            rows.append([host, "does not run here: " + rst.text(fit.reason), "—", "—"])
            continue
        choice = (
            f"{rst.literal(best.quantization)} {rst.text(best.format)} "
            f"{format_size(best.size)}B with {rst.text(ctx_engine_name(ctx, best.engine))}"
            f" on {_DEVICE_WORDS.get(best.device or '', 'an unknown device')}"
        )
        memory = bytes_words(best.memory_bytes) if best.memory_bytes is not None else "?"
        rows.append([host, choice, memory, rst.text(tokens_per_second(best.decode_tps))])
    header = ["Machine", "Choice", "Est. memory", "Est. speed"]
    if not _is_llm(family):
        # Decoding speed says nothing about a model that reads its input and answers once.
        header, rows = header[:3], [row[:3] for row in rows]
    return "\n".join(
        [
            rst.heading("Where it runs", "-"),
            (
                "What ``zoo run`` and ``zoo launch`` would choose on a few reference machines "
                "(``--host-profile``), with the memory that engine needs (its own overhead, "
                "so it can differ from the table above)"
                + (" and the estimated decoding speed" if _is_llm(family) else "")
                + f" for {context_label(min(family.context_length, DOCS_CONTEXT_TOKENS))} "
                "tokens; ``zoo show`` and ``zoo launch --dry-run`` say it for your machine.\n"
            ),
            rst.list_table(header, rows),
        ]
    )


_DEVICE_WORDS = {"cpu": "the CPU", "cuda": "the GPU", "metal": "the GPU (Metal)"}


def ctx_engine_name(ctx: DocsContext, name: str) -> str:
    return next((e.display_name for e in ctx.engines if e.name == name), name)


def _details_section(family: Family) -> str:
    """The facts engines and zoo use, that a reader rarely needs: after the specs."""
    fields = _family_fields(family) if _is_llm(family) else _pooling_fields(family)
    return rst.heading("Details", "-") + "\n" + fields


def _unverified(marked: bool) -> str:
    """The footnote mark of a fact not yet checked against the hub ("" when it was)."""
    return rst.footnote_ref(UNVERIFIED_NOTE) if marked else ""


def _dispute_label(field_name: str) -> str:
    return "disputed-" + field_name.replace("_", "-")


def _disputed(family: Family, rows: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The family's field rows, each value marked whose sources disagree."""
    marked = []
    for name, shown in rows:
        field_name = _DISPUTABLE_ROWS.get(name)
        disputed = bool(shown) and field_name is not None and family.dispute(field_name)
        mark = rst.footnote_ref(_dispute_label(field_name or "")) if disputed else ""
        marked.append((name, shown + mark))
    return marked


def _value_words(value: object) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, list):
        return ", ".join(rst.literal(str(v)) for v in value)
    return rst.literal(str(value))


def _dispute_words(dispute: Disputed) -> str:
    said = "; ".join(
        f"{_value_words(v.value)} ("
        + (rst.text(v.note) + ", " if v.note else "")
        + rst.link("source", v.source)
        + ")"
        for v in dispute.values
    )
    return f"The sources disagree: {said}. zoo uses the value shown: {rst.text(dispute.reason)}"


def _notes_section(family: Family, page: str) -> str:
    """The footnotes the page's marks point to, each said once (none: no section)."""
    notes = [
        rst.footnote(_dispute_label(d.field), _dispute_words(d))
        for d in family.disputed
        if rst.footnote_ref(_dispute_label(d.field)) in page
    ]
    if rst.footnote_ref(UNVERIFIED_NOTE) in page:
        notes.append(
            rst.footnote(
                UNVERIFIED_NOTE,
                "Not yet checked against the hub: written from best knowledge (the model "
                "card, the builder's usual names), so a download may find it different; "
                "``zoo catalog check --unverified`` lists these marks.",
            )
        )
    if not notes:
        return ""
    return rst.heading("Notes", "-") + "\n" + "\n".join(notes)


def _is_llm(family: Family) -> bool:
    return family.kind == kinds.LLM


def _pooling_fields(family: Family) -> str:
    """An embedding model's or reranker's facts: what Xinference's pages state, and more."""
    return rst.field_list(
        _disputed(
            family,
            [
                ("Model name", rst.literal(family.name)),
                ("Formats", ", ".join(rst.literal(f) for f in family.formats)),
                ("Architectures", ", ".join(rst.literal(a) for a in family.architectures)),
            ],
        )
    )


def _family_fields(family: Family) -> str:
    reasoning = ""
    if family.reasoning_start_tag or family.reasoning_end_tag:
        reasoning = " … ".join(
            rst.literal(tag)
            for tag in (family.reasoning_start_tag, family.reasoning_end_tag)
            if tag
        )
    return rst.field_list(
        _disputed(
            family,
            [
                ("Model name", rst.literal(family.name)),
                ("Formats", ", ".join(rst.literal(f) for f in family.formats)),
                ("Architectures", ", ".join(rst.literal(a) for a in family.architectures)),
                ("Tool-call parser", rst.literal(family.tool_parser) if family.tool_parser else ""),
                ("Reasoning tags", reasoning),
                ("Stop strings", ", ".join(rst.literal(s) for s in family.stop)),
                ("Stop token ids", ", ".join(str(t) for t in family.stop_token_ids)),
                ("Chat template", "built in" if family.chat_template else ""),
            ],
        )
    )


def _fim_section(family: Family) -> str:
    fim = family.fim
    assert fim is not None
    order = ", ".join(fim.order)
    example = fim.render("def add(a, b):\n    return ", "\n\nprint(add(1, 2))\n")
    return "\n".join(
        [
            rst.heading("Fill-in-the-middle", "-"),
            "This family completes code between a prefix and a suffix (``/v1/completions``).\n",
            rst.field_list(
                [
                    ("Prefix token", rst.literal(fim.prefix)),
                    ("Suffix token", rst.literal(fim.suffix)),
                    ("Middle token", rst.literal(fim.middle)),
                    ("Prompt order", rst.text(order)),
                ]
            ),
            "A prompt asking for the code between ``return`` and the ``print`` line:\n",
            rst.code_block(example, "text"),
        ]
    )


def _spec_title(spec: Spec, index: int) -> str:
    return f"Spec {index}: {spec.format}, {spec.size_label}B"


def _spec_label(family: Family, index: int) -> str:
    return f"model-{family.name}-spec-{index}"


def _size_words(spec: Spec) -> str:
    words = f"{spec.size_label} billion"
    if spec.activated_size is not None:
        words += f" ({format_size(spec.activated_size)} billion active)"
    return words


def _spec_engines(family: Family, spec: Spec, ctx: DocsContext) -> tuple[EngineInfo, ...]:
    """Engines that run at least one of the spec's quantizations for the family's kind."""
    return tuple(
        e
        for e in ctx.engines
        if any(e.runs(spec.format, q, family.kind) for q in spec.quantizations)
    )


@dataclass(frozen=True)
class _HubView:
    """How one source is shown: one repository for all rows, or one per quantization."""

    source: Source
    name: str
    repos: dict[str, str]  # quantization -> repository id

    @property
    def single_repo(self) -> str | None:
        distinct = set(self.repos.values())
        return next(iter(distinct)) if len(distinct) == 1 else None


def _spec_section(family: Family, spec: Spec, index: int, ctx: DocsContext) -> str:
    views = [
        _HubView(
            source=s,
            name=ctx.hub_name(s.hub),
            repos={q: s.repo_for(q) for q in spec.quantizations if q in s.quantizations},
        )
        for s in spec.sources
    ]
    engines = _spec_engines(family, spec, ctx)
    size_marked = "size" in unverified_family_facts(family)
    quants_marked = any("quantizations" in s.unverified for s in spec.sources)
    parts = [
        rst.label_line(_spec_label(family, index)),
        rst.heading(_spec_title(spec, index), "~"),
        rst.field_list(
            [
                ("Format", rst.literal(spec.format)),
                ("Size", _size_words(spec) + " parameters" + _unverified(size_marked)),
                (
                    "Quantizations",
                    ", ".join(rst.literal(q) for q in spec.quantizations)
                    + _unverified(quants_marked),
                ),
                ("Engines", _engines_field(family, spec, engines, ctx)),
                *[(view.name, _hub_field(view, ctx)) for view in views],
                *_extra_source_fields(views, ctx),
                *_recorded_fields(spec, views),
            ]
        ),
        _quantization_table(family, spec, views, engines, ctx),
        _launch_section(family, spec, engines),
    ]
    return "\n".join(p for p in parts if p)


def _engines_field(
    family: Family, spec: Spec, engines: tuple[EngineInfo, ...], ctx: DocsContext
) -> str:
    if engines:
        return ", ".join(
            f"{e.display_name} ({rst.literal(e.name)}"
            + (", experimental: only with ``--engine``)" if e.experimental(spec.format) else ")")
            for e in engines
        )
    if not ctx.engines:
        return "no engine plugins are installed where this page was built"
    if not _is_llm(family):
        return (
            f"none of the installed engines serves {kind_plural(family.kind)} in "
            f"{rst.literal(spec.format)}"
        )
    return f"none of the installed engines declares {rst.literal(spec.format)}"


def _hub_field(view: _HubView, ctx: DocsContext) -> str:
    source = view.source
    repo = view.single_repo
    if repo is not None:
        url = ctx.repo_url(source.hub, repo, source.revision)
        words = rst.link(repo, url) if url else rst.literal(repo)
    else:
        words = "one repository per quantization (see the table)"
    if source.revision:
        words += f", revision {rst.literal(source.revision)}"
    return words + _unverified(any(f not in _SHOWN_ELSEWHERE for f in source.unverified))


def _recorded_fields(spec: Spec, views: list[_HubView]) -> list[tuple[str, str]]:
    """What ``zoo catalog check --fix`` recorded per hub (``locks/<family>.json``): each
    quantization's download size and the commit the spec's revision is pinned to."""
    from zoo.hubs.progress import human_bytes
    from zoo.resolve import recorded_downloads

    fields = []
    for view in views:
        found = recorded_downloads(spec, view.source)
        if not found:
            continue
        sizes = ", ".join(
            f"{rst.literal(r.quantization)} {human_bytes(r.bytes)}"
            for r in found
            if r.bytes is not None
        )
        commits = ", ".join(dict.fromkeys(rst.literal(r.commit) for r in found))
        checked = max(r.checked for r in found)
        words = f"{sizes}; " if sizes else ""
        words += f"commit {commits} (checked {rst.text(checked)})"
        fields.append((f"{view.name} download", words))
    return fields


def _extra_source_fields(views: list[_HubView], ctx: DocsContext) -> list[tuple[str, str]]:
    fields: list[tuple[str, str]] = []
    for view in views:
        source = view.source
        if source.multimodal_projectors:
            fields.append(
                (
                    f"Projector files ({view.name})",
                    ", ".join(rst.literal(p) for p in source.multimodal_projectors)
                    + _unverified("multimodal_projectors" in source.unverified),
                )
            )
        if source.draft is not None:
            draft = source.draft
            url = ctx.repo_url(source.hub, draft.model_id)
            words = rst.link(draft.model_id, url) if url else rst.literal(draft.model_id)
            if draft.quantizations:
                words += " (" + ", ".join(rst.literal(q) for q in draft.quantizations) + ")"
            if draft.file:
                words += ", file " + rst.literal(draft.file)
            fields.append(
                (f"Draft model ({view.name})", words + _unverified("draft" in source.unverified))
            )
    return fields


def _quantization_table(
    family: Family,
    spec: Spec,
    views: list[_HubView],
    engines: tuple[EngineInfo, ...],
    ctx: DocsContext,
) -> str:
    """One row per quantization with whatever differs between rows: engines, each hub's
    repository and files (sizes and memory are in the summary table); none if nothing does."""
    header = ["Quantization"]
    kind = family.kind
    per_engine = len(
        {tuple(e.runs(spec.format, q, kind) for e in engines) for q in spec.quantizations}
    )
    show_engines = per_engine > 1
    if show_engines:
        header.append("Engines")
    # Hubs whose repository changes with the quantization get a column of links; file names
    # get one column when every hub has the same files, else one column per hub.
    repo_columns = [v for v in views if v.single_repo is None]
    file_sets = {
        v.source.hub: {q: v.source.files_for(q) for q in v.repos}
        for v in views
        if any(v.source.files_for(q) for q in v.repos)
    }
    shared_files = len({tuple(sorted(f.items())) for f in file_sets.values()}) == 1
    file_columns: list[_HubView] = [v for v in views if v.source.hub in file_sets]
    for view in repo_columns:
        header.append(f"{view.name} repository")
    if shared_files:
        # One column for every hub's files: marked if any hub's names are unverified.
        unchecked = any(_files_unverified(v.source) for v in file_columns)
        header.append("Files" + _unverified(unchecked))
        file_columns = file_columns[:1]
    else:
        header.extend(
            f"{v.name} files" + _unverified(_files_unverified(v.source)) for v in file_columns
        )

    rows = []
    for quant in spec.quantizations:
        row = [rst.literal(quant)]
        if show_engines:
            row.append(
                ", ".join(e.display_name for e in engines if e.runs(spec.format, quant, kind))
                or "—"
            )
        for view in repo_columns:
            repo = view.repos.get(quant)
            if repo is None:
                row.append("—")
                continue
            url = ctx.repo_url(view.source.hub, repo, view.source.revision)
            row.append(rst.link(repo, url) if url else rst.literal(repo))
        for view in file_columns:
            files = view.source.files_for(quant) if quant in view.repos else ()
            row.append(rst.line_block([rst.literal(f) for f in files]) if files else "—")
        rows.append(row)
    if len(header) == 1:
        return ""
    return rst.list_table(header, rows)


def _files_unverified(source: Source) -> bool:
    return any(f in _SHOWN_IN_TABLE for f in source.unverified)


def _memory_note(family: Family) -> str:
    context = context_label(min(family.context_length, DOCS_CONTEXT_TOKENS))
    download = (
        "*Download* is what the hub's files take, as recorded in the catalog's lock, or "
        'estimated from the size and bits per weight where marked "~"; '
    )
    if not _is_llm(family):
        return (
            download + "*Est. memory* adds to the weights "
            f"zoo's working allowance for {context} tokens of input (estimated like a "
            "language model's KV cache, so it errs on the large side) and "
            f"{gib(DOCS_OVERHEAD_BYTES)} of engine overhead; ``zoo launch --dry-run`` shows "
            "the estimate for your machine.\n"
        )
    return (
        download + "*Est. memory* adds to the weights "
        f"the KV cache for {context} tokens of context and {gib(DOCS_OVERHEAD_BYTES)} "
        "of engine overhead; ``zoo launch --dry-run`` shows the estimate for your machine "
        "and context.\n"
    )


def launch_quantization(spec: Spec, quantizations: tuple[str, ...]) -> str:
    """The quantization a launch line suggests: Q4_K_M when there, else the smallest one of
    4 bits or more (good quality that fits most machines), else the most precise."""
    if PREFERRED_QUANTIZATION in quantizations:
        return PREFERRED_QUANTIZATION
    fmt = spec.format
    good = [q for q in quantizations if info(q, fmt=fmt).nominal >= 4]
    if good:
        return min(good, key=lambda q: (info(q, fmt=fmt).bits, quantizations.index(q)))
    return max(quantizations, key=lambda q: (info(q, fmt=fmt).bits, -quantizations.index(q)))


def launch_command(family: Family, spec: Spec, quantization: str, engine: str | None) -> str:
    words = [
        "zoo launch",
        family.name,
        f"--format {spec.format}",
        f"--size {spec.size_label}",
        f"--quantization {quantization}",
    ]
    if engine:
        words.append(f"--engine {engine}")
    return " ".join(words)


def _launch_section(family: Family, spec: Spec, engines: tuple[EngineInfo, ...]) -> str:
    lines = []
    for engine in engines:
        runnable = tuple(q for q in spec.quantizations if engine.runs(spec.format, q, family.kind))
        lines.append(launch_command(family, spec, launch_quantization(spec, runnable), engine.name))
    if not lines:
        lines.append(
            launch_command(family, spec, launch_quantization(spec, spec.quantizations), None)
        )
    what = (
        "runs this format"
        if _is_llm(family)
        else f"serves {kind_plural(family.kind)} in this format"
    )
    intro = (
        "Launch this spec with one of the engines (*Specs at a glance* above compares its "
        "quantizations):\n"
        if engines
        else f"Launch it (zoo picks an engine once one that {what} is installed):\n"
    )
    return intro + "\n" + rst.code_block("\n".join(lines), "shell")
