"""Browsing and checking the catalog: ``zoo list``, ``show``, ``search``, ``validate``, ``schema``.

Everything heavy (the catalog, rich, jsonschema) is imported inside the commands: ``zoo list``
must start in well under 0.2 s, so this module costs nothing at start-up.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from zoo.cli.options import HostProfileOption, MinSpeedOption, OptInOption, complete_model
from zoo.kinds import ABILITIES, EMBEDDING, LLM, RERANK

if TYPE_CHECKING:
    from zoo.catalog.catalog import Catalog
    from zoo.catalog.model import Family
    from zoo.catalog.problems import Problem
    from zoo.fit import QuantRow
    from zoo.resolve import Request

# Top-level command names this module adds (lets the CLI skip loading plugins for them).
COMMANDS: tuple[str, ...] = ("list", "show", "search", "validate", "schema")

# Abilities that are model kinds in zoo (Xinference's "embed" and "rerank" abilities).
_KIND_ABILITIES = {"embed": EMBEDDING, "rerank": RERANK}

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON (stable, versioned).")]


def _print_json(document: dict[str, Any]) -> None:
    typer.echo(json.dumps(document, indent=2, ensure_ascii=False))


def _load() -> Catalog:
    from zoo.registry import catalog_with_plugins

    catalog = catalog_with_plugins()
    broken = sorted({p.path for p in catalog.errors})
    if broken:
        typer.echo(
            f"zoo: {len(broken)} spec file(s) have errors and were skipped "
            f"(first: {broken[0]}); run `zoo validate` for details",
            err=True,
        )
    return catalog


def _check_choice(kind: str, value: str | None, choices: tuple[str, ...]) -> None:
    if value is None or value in choices:
        return
    import difflib

    from zoo.errors import UsageError

    close = difflib.get_close_matches(value, choices, n=1)
    hint = f"did you mean {close[0]!r}?" if close else "choose from " + ", ".join(choices)
    raise UsageError(f"unknown {kind} {value!r}", hint=hint)


def _check_ability(ability: str | None) -> None:
    if ability in _KIND_ABILITIES:
        from zoo.errors import UsageError

        raise UsageError(
            f"{ability!r} is a model kind, not an ability",
            hint=f"use --kind {_KIND_ABILITIES[ability]}",
        )
    _check_choice("ability", ability, ABILITIES)


def _table(summaries: list[dict[str, Any]]) -> None:
    """Families as a table, from their ``views.family_summary`` facts.

    Only language models have abilities, so the other kinds show their kind in that column
    ("embedding model", "reranker"): one column more would not fit 80 characters.
    """
    from zoo import kinds
    from zoo.catalog.model import context_label
    from zoo.cli.texttable import Column, render
    from zoo.fit import size_range

    titles = {k.name: k.title for k in kinds.KINDS.values() if k.name != kinds.LLM}

    columns = [
        Column("NAME", wrap=False),
        Column("ABILITIES"),
        Column("FORMATS", drop=1),  # `zoo show` has them; the size matters more here
        Column("SIZE (B)"),
        Column("DOWNLOAD", wrap=False, right=True),
        Column("CONTEXT", wrap=False, right=True),
    ]
    rows = [
        [
            summary["name"],
            # Spaces, not commas: a wrapped column's narrowest is its longest word, and
            # "reasoning," would cost the 80-column layout its last character.
            titles.get(summary["kind"]) or " ".join(summary["abilities"]),
            ", ".join(summary["formats"]),
            ", ".join(summary["sizes"]),
            size_range(*summary["download_bytes"]),
            context_label(summary["context_length"]),
        ]
        for summary in summaries
    ]
    typer.echo(render(columns, rows))


SIZE_HELP = (
    "Only families with a spec of this size, in billions of parameters: 8B (or 8, 135M), "
    "30B-A3B (a mixture of experts), a range 7-9 (7B-9B), or a bound <10, <=10, >30, >=30."
)
_SIZE_BOUND = re.compile(r"^(<=|>=|<|>)\s*([0-9.]+[bmt]?)$", re.IGNORECASE)
_RANGE = re.compile(r"^([0-9.]+[bmt]?)\s*-\s*([0-9.]+[bmt]?)$", re.IGNORECASE)

# Total and active billions of parameters (active None: not a mixture of experts).
SizeTest = Callable[[float, "float | None"], bool]


def _billions(word: str) -> float | None:
    from zoo.reference import billions

    return billions(word)


def size_filter(text: str) -> SizeTest:
    """``--size``'s test for a spec's (total, active) size in billions (SIZE_HELP's syntax):
    one size as ``zoo launch --size`` reads it (``zoo.reference.parse_size``: 8B, 30B-A3B),
    ranges and bounds of total sizes."""
    from zoo.errors import UsageError
    from zoo.reference import parse_size, same_size

    text = text.strip()
    ranged = _RANGE.match(text)
    if ranged:
        low, high = _billions(ranged.group(1)), _billions(ranged.group(2))
        if low is not None and high is not None and low <= high:
            return lambda size, _active: low - 1e-9 <= size <= high + 1e-9
    bound = _SIZE_BOUND.match(text)
    if bound is None:
        try:
            one = parse_size(text)
        except UsageError as error:
            raise UsageError(
                f"--size {text!r} is not a size", hint="e.g. 8B, 135M, 30B-A3B, 7-9, <10 or >=30"
            ) from error
        return lambda size, active: (
            same_size(size, one.total)
            and (one.active is None or (active is not None and same_size(active, one.active)))
        )
    value = _billions(bound.group(2))
    if value is None or value <= 0:
        raise UsageError(
            f"--size {text!r} is not a size", hint="e.g. 8B, 135M, 30B-A3B, 7-9, <10 or >=30"
        )
    tests: dict[str, SizeTest] = {
        "<": lambda size, _active: size < value - 1e-9,
        "<=": lambda size, _active: size <= value + 1e-9,
        ">": lambda size, _active: size > value + 1e-9,
        ">=": lambda size, _active: size >= value - 1e-9,
    }
    return tests[bound.group(1)]


def _settings_request(name: str, min_speed: float | None = None) -> Request:
    """The Request ``zoo launch NAME`` makes: the reference's tag, the settings file's
    defaults (hub, min_speed, ``[models."NAME"]``), the same function."""
    from zoo.cli.options import model_request

    return model_request(name, None, None, None, None, None, None, min_speed=min_speed)


def _only_downloaded(catalog: Catalog, summaries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from zoo import config
    from zoo.fit import any_downloaded
    from zoo.plugins import get_hubs

    hubs = get_hubs()
    hub = config.default_hub().value
    return [s for s in summaries if any_downloaded(catalog.get(s["name"]), hubs, default_hub=hub)]


def _only_fitting(
    catalog: Catalog, summaries: list[dict[str, Any]], host_profile: str | None
) -> list[dict[str, Any]]:
    from zoo.cli.options import planning_host
    from zoo.errors import UsageError
    from zoo.fit import fits
    from zoo.plugins import get_engines, get_hubs

    host = planning_host(host_profile, None)
    engines, hubs = get_engines(), get_hubs()

    def runs(name: str) -> bool:
        try:
            request = _settings_request(name)
            return fits(catalog.get(name), host, engines, hubs, request=request)
        except UsageError:  # the settings file asks what the family lacks: launch fails too
            return False

    return [s for s in summaries if runs(s["name"])]


def register(app: typer.Typer) -> None:
    @app.command("list")
    def list_families(
        ability: Annotated[
            str | None, typer.Option("--ability", help="Only families with this ability.")
        ] = None,
        fmt: Annotated[
            str | None, typer.Option("--format", help="Only families with a spec in this format.")
        ] = None,
        kind: Annotated[
            str | None,
            typer.Option("--kind", help="Only families of this kind (llm, embedding, rerank)."),
        ] = None,
        size: Annotated[str | None, typer.Option("--size", "-s", help=SIZE_HELP)] = None,
        fits: Annotated[
            bool,
            typer.Option(
                "--fits",
                help="Only families with something that runs here (or on --host-profile): "
                "an installed engine and enough memory, as `zoo launch` judges it.",
            ),
        ] = False,
        downloaded: Annotated[
            bool,
            typer.Option("--downloaded", help="Only families with files in a hub's cache."),
        ] = False,
        host_profile: HostProfileOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """List the model families in the catalog, with their download sizes (the smallest to
        the largest quantization; estimated from bits per weight where no lock records them)."""
        from zoo.catalog.views import JSON_VERSION, summary_matches
        from zoo.kinds import KIND_NAMES

        if fmt is not None:
            from zoo.catalog.model import FORMATS

            _check_choice("format", fmt, FORMATS)
        _check_ability(ability)
        _check_choice("kind", kind, KIND_NAMES)
        sized = size_filter(size) if size is not None else None
        catalog = _load()
        summaries = [
            summary
            for summary in catalog.summaries()
            if summary_matches(summary, kind=kind, ability=ability, fmt=fmt)
            and (sized is None or any(sized(*pair) for pair in summary["parameters"]))
        ]
        # The costly filters last, on what is left: only they build families and ask hubs.
        if downloaded:
            summaries = _only_downloaded(catalog, summaries)
        if fits:
            summaries = _only_fitting(catalog, summaries, host_profile)
        if as_json:
            _print_json(
                {
                    "version": JSON_VERSION,
                    "families": summaries,
                    "problems": [p.to_json() for p in catalog.errors],
                }
            )
            return
        if not summaries:
            typer.echo("no model families match", err=True)
            return
        _table(summaries)

    @app.command("show")
    def show(
        name: Annotated[
            str,
            typer.Argument(
                help="The family's name, optionally with a tag: qwen3, qwen3:8b (see `zoo list`).",
                autocompletion=complete_model,
            ),
        ],
        host_profile: HostProfileOption = None,
        min_speed: MinSpeedOption = None,
        opt_in: OptInOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """Show everything the catalog knows about one model family, and per quantization its
        download size, the memory and speed estimated here, whether it fits and is downloaded,
        and which one `zoo launch` would choose (marked *). With a tag (qwen3:8b), only the
        builds it names."""
        from zoo.catalog.views import JSON_VERSION, family_detail
        from zoo.cli.options import planning_host
        from zoo.fit import family_rows
        from zoo.plugins import get_engines, get_hubs
        from zoo.reference import matching_builds, parse_reference, reference_with_flags

        family = _load().get(parse_reference(name).name)
        request = _settings_request(name, min_speed)
        host = planning_host(host_profile, opt_in)
        rows = family_rows(family, host, get_engines(), get_hubs(), request=request)
        wanted = reference_with_flags(name, None, None, lambda _name: family)
        if wanted.tag is not None:  # the builds the tag names, as the launch reads it
            named = set(
                matching_builds(
                    family,
                    size=wanted.size,
                    activated=wanted.active,
                    quantization=wanted.quantization,
                )
            )
            rows = [r for r in rows if (r.spec, r.quantization) in named]
        if as_json:
            detail = family_detail(family)
            chosen = next((r for r in rows if r.recommended), None)
            detail["here"] = {
                "host": host.name,
                "recommended": chosen.to_json() if chosen else None,
                "quantizations": [r.to_json() for r in rows],
            }
            _print_json({"version": JSON_VERSION, "family": detail})
            return
        _show(family, rows, host.name, model=name.strip())

    @app.command("search")
    def search(
        words: Annotated[list[str], typer.Argument(help="Words to look for (all must match).")],
        as_json: JsonOption = False,
    ) -> None:
        """Find families by name, description, kind, ability, format, language or model id."""
        from zoo.catalog.views import JSON_VERSION, family_summary

        text = " ".join(words)
        found = _load().search(text)
        if as_json:
            _print_json(
                {
                    "version": JSON_VERSION,
                    "query": text,
                    "families": [family_summary(f) for f in found],
                }
            )
            return
        if not found:
            typer.echo(f"no model family matches {text!r}", err=True)
            raise typer.Exit(1)
        _table([family_summary(f) for f in found])

    @app.command("validate")
    def validate(
        paths: Annotated[
            list[Path] | None,
            typer.Argument(help="Spec files or folders (default: the whole catalog)."),
        ] = None,
        as_json: JsonOption = False,
        codes: Annotated[
            bool, typer.Option("--codes", help="List the problem codes and what each means.")
        ] = False,
    ) -> None:
        """Check spec files: schema, semantics and duplicate names. Exit 1 on any error."""
        if codes:
            from zoo.catalog.problems import CODES

            for code, meaning in CODES.items():
                typer.echo(f"{code}  {meaning}")
            return
        problems, checked = _validate(paths or None)
        errors = sum(1 for p in problems if p.is_error)
        warnings = len(problems) - errors
        if as_json:
            from zoo.catalog.views import JSON_VERSION

            _print_json(
                {
                    "version": JSON_VERSION,
                    "files": checked,
                    "errors": errors,
                    "warnings": warnings,
                    "problems": [p.to_json() for p in problems],
                }
            )
        else:
            for problem in problems:
                typer.echo(str(problem))
            verdict = "ok" if not errors else "FAILED"
            typer.echo(
                f"{verdict}: {checked} file(s) checked, {errors} error(s), {warnings} warning(s)"
            )
        if errors:
            raise typer.Exit(1)

    @app.command("schema")
    def schema() -> None:
        """Print the JSON Schema of spec files (draft 2020-12)."""
        from zoo.catalog.schema import schema_text

        sys.stdout.write(schema_text())


def _validate(paths: list[Path] | None) -> tuple[list[Problem], int]:
    from zoo.catalog.catalog import check_files, default_catalog_dirs, spec_files
    from zoo.catalog.problems import Problem
    from zoo.catalog.validate import duplicate_problems
    from zoo.registry import plugin_catalog_dirs

    problems: list[Problem] = []
    if paths is None:
        roots = default_catalog_dirs(plugin_catalog_dirs())
    else:
        roots = []
        for path in paths:
            if os.path.lexists(path):  # a symlink loop or dangling link is read and reported
                roots.append(path)
            else:
                problems.append(Problem(str(path), 0, 0, "E100", "no such file or folder"))
    files = spec_files(roots)
    display = {f: _display(f) for f in files}
    results = check_files(files, None, display, problems_only=True)
    for result in results:
        problems.extend(result.problems)
    problems.extend(duplicate_problems(results))
    return sorted(set(problems), key=_file_order(files, display)), len(files)


def _file_order(files: list[Path], display: dict[Path, str]) -> Any:
    rank = {display[f]: i for i, f in enumerate(files)}
    return lambda p: (rank.get(p.path, -1), p.line, p.column, p.code)


def _display(path: Path) -> str:
    """Paths under the working folder as relative paths (clickable, short), others absolute."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except (ValueError, OSError, RuntimeError):
        # RuntimeError: Python 3.11's resolve() on a symlink loop; the loop is reported later.
        return str(path)


def _safe(text: str) -> str:
    """Catalog text for a terminal: control characters (escape sequences) shown, not obeyed.

    Spec files can come from any folder in ZOO_CATALOG_PATH; their text must not be able to
    drive the user's terminal.
    """
    from zoo.catalog.problems import one_line

    return "\n".join(one_line(line) for line in text.split("\n"))


def _show(family: Family, rows: list[QuantRow], host_name: str, *, model: str) -> None:
    from rich.console import Console
    from rich.table import Table

    from zoo.catalog.model import context_label

    console = Console(soft_wrap=False, highlight=False, markup=False)
    llm = family.kind == LLM
    facts = [("description", family.description), *kind_facts(family)]
    if llm:
        facts += [
            ("abilities", ", ".join(family.abilities)),
            ("context", f"{context_label(family.context_length)} ({family.context_length} tokens)"),
        ]
    else:  # what other registries call max_tokens: the longest text it reads
        facts.append(("max tokens", str(family.context_length)))
    facts += [
        ("languages", ", ".join(family.languages)),
        ("architectures", ", ".join(family.architectures)),
        ("license", family.license or ""),
        ("homepage", family.homepage or ""),
    ]
    if llm:  # prompt and output facts: the lints keep them off the other kinds
        facts += [
            ("stop", ", ".join(family.stop)),
            (
                "reasoning",
                " … ".join(t for t in (family.reasoning_start_tag, family.reasoning_end_tag) if t),
            ),
            ("tool parser", family.tool_parser or ""),
        ]
    if family.fim and llm:
        order = {
            "prefix": family.fim.prefix,
            "suffix": family.fim.suffix,
            "middle": family.fim.middle,
        }
        facts.append(
            ("fim", " ".join(f"{order[k]}{k if k != 'middle' else ''}" for k in family.fim.order))
        )
    facts.append(("defined in", str(family.location or "")))
    console.print(family.name, style="bold", markup=False)
    info = Table.grid(padding=(0, 2))
    info.add_column(style="dim")
    info.add_column(overflow="fold")
    for label, value in facts:
        if value:
            info.add_row(label, _safe(value))
    _print_trimmed(console, info)
    console.print()
    console.file.flush()
    typer.echo(_quantization_tables(family, rows, host_name, model=model))
    _show_recorded(console, family)


def _print_trimmed(console: Any, renderable: Any) -> None:
    """``renderable`` as rich lays it out, without the spaces it pads each line to the table's
    width with (they wrap copied text and show in diffs)."""
    with console.capture() as captured:
        console.print(renderable)
    lines = captured.get().split("\n")
    console.file.write("\n".join(line.rstrip() for line in lines))
    console.file.flush()


def _quantization_tables(
    family: Family, rows: list[QuantRow], host_name: str, *, model: str
) -> str:
    """Per spec, its quantizations by download size: download (~ where estimated), memory and
    decode speed estimated on the host, whether it fits and is downloaded; the row ``zoo
    launch`` would choose marked "*". Repository ids have their template filled in: in the
    spec's heading when every quantization shares one, else in each row. Only language
    models have a SPEED column: decode tokens/s say nothing of an embedding model or a
    reranker, which generate no tokens."""
    import shutil
    import textwrap

    from zoo.cli.texttable import Column, render
    from zoo.fit import group_by_spec, repositories
    from zoo.hubs.progress import human_bytes
    from zoo.memory import gib
    from zoo.speed import tokens_per_second

    width = shutil.get_terminal_size((100, 24)).columns
    generates = family.kind == LLM
    chosen = next((r for r in rows if r.recommended), None)
    if chosen is not None:
        pick = f"{chosen.format} {chosen.size_label}B {chosen.quantization} with {chosen.engine}"
        intro = f"On {host_name}, `zoo launch {model}` chooses {pick} (*)."
    else:
        intro = f"Nothing of {model} runs on {host_name}."
    lines = textwrap.wrap(_safe(intro), width, break_on_hyphens=False)
    for group in group_by_spec(rows):
        first = group[0]
        where = repositories(group) or "no installed hub has it"
        heading = _safe(f"{first.format} {first.size_label}B  {where}")
        lines += ["", *textwrap.wrap(heading, width, break_on_hyphens=False)]
        columns = [
            Column("", wrap=False),
            Column("QUANTIZATION", wrap=False),
            Column("DOWNLOAD", wrap=False, right=True),
            Column("MEMORY", wrap=False, right=True),
            *([Column("SPEED", wrap=False, right=True)] if generates else []),
            Column("FITS", wrap=False),
            Column("CACHED", wrap=False),
        ]
        table = []
        for row in group:
            download = human_bytes(row.download_bytes)
            cells = [
                "*" if row.recommended else "",
                _safe(row.quantization),
                f"~{download}" if row.download_estimated else download,
                gib(row.memory_bytes) if row.memory_bytes is not None else "",
                *(
                    [tokens_per_second(row.decode_tps) if row.memory_bytes is not None else ""]
                    if generates
                    else []
                ),
                "yes" if row.fits else "no",
                {True: "yes", False: "no", None: ""}[row.downloaded],
            ]
            table.append(cells)
        lines.append(render(columns, table))
        # Why the rows that no engine here runs do not, once when they share the reason.
        why = {r.reason for r in group if not r.fits and r.memory_bytes is None}
        if len(why) == 1:
            lines += textwrap.wrap(
                _safe(f"not here: {why.pop()}"), width, initial_indent="  ", subsequent_indent="  "
            )
    return "\n".join(lines)


def _show_recorded(console: Any, family: Family) -> None:
    """What `zoo catalog check --fix` recorded (locks/<family>.json): per quantization, the
    download size and the commit the spec's revision is pinned to."""
    from rich.table import Table

    from zoo.hubs.progress import human_bytes
    from zoo.resolve import recorded_downloads

    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("FORMAT", "SIZE (B)", "QUANTIZATION", "HUB", "DOWNLOAD", "COMMIT", "CHECKED"):
        table.add_column(column, overflow="fold", no_wrap=column != "QUANTIZATION")
    for spec in family.specs:
        for source in spec.sources:
            for found in recorded_downloads(spec, source):
                size = human_bytes(found.bytes) if found.bytes is not None else "not recorded"
                table.add_row(
                    spec.format,
                    spec.size_label,
                    _safe(found.quantization),
                    source.hub,
                    size,
                    _safe(found.commit[:12]),  # as `zoo cache list` shortens commits
                    _safe(found.checked),
                )
    if table.row_count:
        console.print()
        console.print("Checked against the hubs (zoo catalog check):", style="bold")
        _print_trimmed(console, table)


def kind_facts(family: Family) -> list[tuple[str, str]]:
    """``zoo show``'s lines for the family's kind: what it is, the route that serves it, and
    its embedding or rerank facts."""
    from zoo import kinds

    known = kinds.KINDS.get(family.kind)
    if known is None:
        facts = [("kind", family.kind)]
    else:
        also = f" (also {', '.join(known.routes[1:])})" if len(known.routes) > 1 else ""
        facts = [("kind", f"{known.title}: POST {known.main_route}{also}")]
    embedding = family.embedding
    if embedding is not None:
        facts += [
            ("dimensions", str(embedding.dimensions)),
            ("matryoshka", ", ".join(str(d) for d in embedding.matryoshka_dimensions)),
            ("pooling", embedding.pooling or ""),
            ("normalized", _yes_no(embedding.normalized)),
            ("query prompt", _quoted(embedding.query_prefix)),
            ("document prompt", _quoted(embedding.document_prefix)),
        ]
    if family.rerank is not None:
        facts.append(("rerank type", family.rerank.type))
    return facts


def kind_brief(family: Family) -> list[tuple[str, str]]:
    """The kind and its facts in a line or two (``zoo launch --dry-run``): ("kind",
    "embedding model: 384 dimensions (or 256, 128), mean pooling, normalized, max 512
    tokens") and, when the model wants them, ("prompts", 'query "query: ", document ...')."""
    from zoo import kinds

    known = kinds.KINDS.get(family.kind)
    parts: list[str] = []
    prompts: list[str] = []
    embedding = family.embedding
    if embedding is not None:
        cuts = ", ".join(str(d) for d in embedding.matryoshka_dimensions)
        parts.append(f"{embedding.dimensions} dimensions" + (f" (or {cuts})" if cuts else ""))
        if embedding.pooling:
            parts.append(f"{embedding.pooling} pooling")
        if embedding.normalized is not None:
            parts.append("normalized" if embedding.normalized else "not normalized")
        for what, prefix in (
            ("query", embedding.query_prefix),
            ("document", embedding.document_prefix),
        ):
            if prefix:
                prompts.append(f"{what} {_quoted(prefix)}")
    if family.rerank is not None:
        parts.append(family.rerank.type)
    if family.kind != kinds.LLM:
        parts.append(f"max {family.context_length} tokens")
    title = known.title if known else family.kind
    rows = [("kind", f"{title}: {', '.join(parts)}" if parts else title)]
    if prompts:
        rows.append(("prompts", ", ".join(prompts)))
    return rows


def _yes_no(value: bool | None) -> str:
    return "" if value is None else ("yes" if value else "no")


def _quoted(text: str | None) -> str:
    """A prompt prefix with its quotes, so a trailing space ("query: ") is visible; control
    characters escaped (spec text must not drive the terminal)."""
    from zoo.catalog.problems import one_line

    return "" if text is None else one_line(json.dumps(text, ensure_ascii=False))
