"""Semantic checks: facts in a spec file that have the right shape but cannot be true.

Runs after (and independently of) the schema, so it must survive any data: every access is
type-checked, and a part with the wrong shape is simply skipped (the schema reports it).
"""

from __future__ import annotations

import math
import re
from typing import Any

from zoo import kinds, names
from zoo.catalog import quantizations as quants
from zoo.catalog.model import PART_PLACEHOLDER, QUANTIZATION_PLACEHOLDER
from zoo.catalog.problems import Problem
from zoo.catalog.schema import SCHEMA_COMMENT_PREFIX, field_name
from zoo.catalog.yamlpos import DataPath, Document

# Hubs whose ids are "org/name" repositories with Hugging Face's naming rules (ModelScope,
# OpenMind and CSGHub follow the same shape). Hubs added by plugins define their own ids.
REPO_HUBS = names.ORG_NAME_HUBS
# Ids, revisions and file names are checked by zoo.names, exactly as the hubs check them
# before a download: what validates is what downloads.
_PLACEHOLDER = re.compile(r"\{[^{}]*\}")
# The schema's pattern for revisions: what it refuses it reports itself (E204).
_REVISION_SHAPE = re.compile(names.REVISION_PATTERN)
# Xinference fills draft model templates with the draft's own quantization.
_DRAFT_PLACEHOLDER = "{draft_quantization}"
SOURCE_FIELDS = (
    "model_id",
    "revision",
    "quantizations",
    "file",
    "split",
    "exclude",
    "multimodal_projectors",
    "draft",
)
# pytorch weights load as-is ("none") or are quantized on load by bitsandbytes (4-bit/8-bit),
# so one repository legitimately serves all three.
_ON_LOAD = {"none", "4-bit", "8-bit"}


def _strs(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def lint(document: Document) -> list[Problem]:
    data = document.data
    if not isinstance(data, dict):
        return []
    problems: list[Problem] = []
    add = problems.append
    if not document.first_line.startswith(SCHEMA_COMMENT_PREFIX):
        add(
            Problem(
                document.path,
                1,
                1,
                "W303",
                "start the file with '# yaml-language-server: $schema=...' so editors validate it",
            )
        )
    _lint_family(document, data, add)
    specs = data.get("specs")
    if isinstance(specs, list):
        for index, spec in enumerate(specs):
            if isinstance(spec, dict):
                _lint_spec(document, ("specs", index), spec, add)
    # Facts that contradict what the spec's own ids and file names say.
    from zoo.catalog import lint_facts

    problems.extend(lint_facts.lint(document))
    return sorted(problems)


# Fields that only a language model has: they shape prompts and generated text.
_LLM_ONLY = (
    "abilities",
    "chat_template",
    "stop",
    "stop_token_ids",
    "reasoning",
    "tool_parser",
    "fim",
)


def _lint_kind(document: Document, data: dict[str, Any], add: Any) -> None:
    kind = data.get("kind", kinds.LLM)
    if not isinstance(kind, str) or kind not in kinds.KINDS:  # a list is not even hashable
        return  # the schema reports it; guessing at what fits an unknown kind is only noise
    words = f"{kinds.KINDS[kind].article} {kinds.KINDS[kind].title}"
    if kind == kinds.LLM and "abilities" not in data:
        add(
            document.problem(
                (), "E313", "a language model needs abilities (e.g. [chat]); or set its kind"
            )
        )
    if kind != kinds.LLM:
        for key in _LLM_ONLY:
            if key in data:
                add(
                    document.problem(
                        (key,), "E313", f"{key} is for language models, not {words}", key=True
                    )
                )
        _lint_drafts(document, data, words, add)
    # A kind's facts block (zoo.kinds: Kind.facts_block) belongs to that kind only.
    for other in kinds.KINDS.values():
        block = other.facts_block
        if block is not None and block in data and kind != other.name:
            add(
                document.problem(
                    (block,),
                    "E313",
                    f"{block} facts on {words}: set 'kind: {other.name}' or remove them",
                    key=True,
                )
            )
    # Its dimensions are what every client sizes its vectors by; a reranker's block is optional.
    if kind == kinds.EMBEDDING and kinds.KINDS[kind].facts_block not in data:
        add(document.problem((), "E313", "an embedding model needs embedding.dimensions"))
    embedding = data.get("embedding")
    if isinstance(embedding, dict):
        dimensions = embedding.get("dimensions")
        cuts = embedding.get("matryoshka_dimensions")
        # Only against a valid length: the schema reports 0, a bool or text, once.
        if _is_count(dimensions) and isinstance(cuts, list):
            for index, cut in enumerate(cuts):
                if _is_count(cut) and cut >= dimensions:
                    add(
                        document.problem(
                            ("embedding", "matryoshka_dimensions", index),
                            "E314",
                            f"Matryoshka dimension {cut} is not smaller than the model's "
                            f"{dimensions} dimensions",
                        )
                    )


def _lint_drafts(document: Document, data: dict[str, Any], words: str, add: Any) -> None:
    """A source's ``draft`` on a model that generates no tokens: nothing to speculate on."""
    specs = data.get("specs")
    for index, spec in enumerate(specs if isinstance(specs, list) else ()):
        sources = spec.get("sources") if isinstance(spec, dict) else None
        for hub, source in sources.items() if isinstance(sources, dict) else ():
            if isinstance(source, dict) and "draft" in source:
                add(
                    document.problem(
                        ("specs", index, "sources", hub, "draft"),
                        "E313",
                        f"draft (a speculative decoding model) is for language models, not {words}",
                        key=True,
                    )
                )


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _lint_family(document: Document, data: dict[str, Any], add: Any) -> None:
    _lint_kind(document, data, add)
    abilities = _strs(data.get("abilities"))
    fim = data.get("fim")
    if "fim" in abilities and not isinstance(fim, dict):
        add(
            document.problem(
                ("abilities",),
                "W304",
                "the 'fim' ability needs a fim template (prefix, suffix, middle)",
            )
        )
    if isinstance(fim, dict):
        # On another kind E313 already says fim does not belong: "add the ability" would not help.
        if "fim" not in abilities and data.get("kind", kinds.LLM) == kinds.LLM:
            add(
                document.problem(
                    ("fim",), "W305", "a fim template without the 'fim' ability", key=True
                )
            )
        order = _strs(fim.get("order"))
        if len(order) == 3 and order[-1] != "middle":
            add(
                document.problem(
                    ("fim", "order"),
                    "E203",
                    "fim.order must end with 'middle' (the model writes after it)",
                )
            )


def _lint_spec(document: Document, path: DataPath, spec: dict[str, Any], add: Any) -> None:
    fmt = spec.get("format")
    fmt = fmt if isinstance(fmt, str) else ""
    size = spec.get("size")
    for key in ("size", "activated_size"):
        value = spec.get(key)
        if isinstance(value, float) and math.isnan(value):
            # NaN passes every comparison the schema makes (> 0, <= 100000): caught here.
            # (Infinities fail the schema's bounds.)
            add(
                document.problem(
                    (*path, key), "E202", f"{field_name((*path, key))} is not a number"
                )
            )
    activated = spec.get("activated_size")
    if (
        isinstance(size, int | float)
        and isinstance(activated, int | float)
        and _is_number(size)
        and _is_number(activated)
        and size > 0
        and activated >= size
    ):
        add(
            document.problem(
                (*path, "activated_size"),
                "W301",
                f"activated size {activated} is not smaller than the size {size}",
            )
        )

    spec_quants = _strs(spec.get("quantizations"))
    _check_names(document, (*path, "quantizations"), spec.get("quantizations"), fmt, add)
    sources = spec.get("sources")
    sources = sources if isinstance(sources, dict) else {}
    provided: set[str] = set()
    for hub, source in sources.items():
        if not isinstance(source, dict):
            continue
        src_path = (*path, "sources", hub)
        own = _strs(source.get("quantizations"))
        _check_names(document, (*src_path, "quantizations"), source.get("quantizations"), fmt, add)
        if own and spec_quants:
            for index, name in enumerate(own):
                if name not in spec_quants:
                    add(
                        document.problem(
                            (*src_path, "quantizations", index),
                            "W306",
                            f"{hub} lists {name!r}, which the spec's quantizations do not",
                        )
                    )
        effective = own or spec_quants
        provided.update(effective)
        _lint_source(document, src_path, hub, source, fmt, effective, add)
    if not spec_quants and not provided and sources:
        add(
            document.problem(
                path,
                "E309",
                "no quantizations: list them on the spec or its "
                "sources ('none' for unquantized pytorch weights)",
            )
        )
    if spec_quants and any(
        isinstance(s, dict) and s.get("quantizations") for s in sources.values()
    ):
        for index, name in enumerate(spec_quants):
            if name not in provided:
                add(
                    document.problem(
                        (*path, "quantizations", index),
                        "W300",
                        f"no source provides quantization {name!r}",
                    )
                )


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_names(document: Document, path: DataPath, names: Any, fmt: str, add: Any) -> None:
    if not isinstance(names, list) or fmt not in quants.GRAMMARS:
        return
    for index, name in enumerate(names):
        if isinstance(name, str) and not quants.is_known(fmt, name):
            add(
                document.problem(
                    (*path, index),
                    "E300",
                    f"{name!r} is not a {fmt} quantization ({quants.suggestion(fmt, name)})",
                )
            )


def _lint_source(
    document: Document,
    path: DataPath,
    hub: str,
    source: dict[str, Any],
    fmt: str,
    effective: list[str],
    add: Any,
) -> None:
    model_id = source.get("model_id")
    file = source.get("file")
    split = source.get("split")
    split = split if isinstance(split, dict) else None
    gguf = fmt == "ggufv2"

    if isinstance(model_id, str):
        _check_hub_id(document, (*path, "model_id"), hub, model_id, effective, add)
    revision = source.get("revision")
    if isinstance(revision, str) and _REVISION_SHAPE.fullmatch(revision):
        wrong = names.version_problem if hub == "pypi" else names.revision_problem
        reason = wrong(revision)
        if reason:
            add(document.problem((*path, "revision"), "E312", f"revision {revision!r} {reason}"))

    if not gguf and fmt:
        for key in ("file", "split", "multimodal_projectors"):
            if key in source and not (key == "file" and hub == "pypi"):
                add(
                    document.problem(
                        (*path, key),
                        "E303",
                        f"{key!r} is for GGUF files, but this spec's format is "
                        f"{fmt}: the repository's weights are used as a whole",
                        key=True,
                    )
                )

    for key, template in (("file", file), ("split.file", split and split.get("file"))):
        if isinstance(template, str):
            where = (*path, *key.split("."))
            _check_template(document, where, template, add, allow_part=key == "split.file")
    for index, projector in enumerate(_strs(source.get("multimodal_projectors"))):
        _check_template(
            document, (*path, "multimodal_projectors", index), projector, add, allow_part=False
        )

    split_parts: dict[str, Any] = {}
    if split is not None:
        split_file = split.get("file")
        if isinstance(split_file, str) and PART_PLACEHOLDER not in split_file:
            add(
                document.problem(
                    (*path, "split", "file"),
                    "E308",
                    "the split template has no {part}: every part would be the same file",
                )
            )
        parts = split.get("parts")
        split_parts = parts if isinstance(parts, dict) else {}
        for name in split_parts:
            if fmt in quants.GRAMMARS and not quants.is_known(fmt, name):
                add(
                    document.problem(
                        (*path, "split", "parts", name),
                        "E302",
                        f"split parts for {name!r}, which is not a {fmt} "
                        f"quantization ({quants.suggestion(fmt, name)})",
                        key=True,
                    )
                )
            elif effective and name not in effective:
                # Registries share one parts table across a family's specs, so parts for a
                # quantization another size has are common and harmless: they are unused.
                add(
                    document.problem(
                        (*path, "split", "parts", name),
                        "W307",
                        f"split parts for {name!r}, which this source does not "
                        "list: they are never used",
                        key=True,
                    )
                )

    id_varies = isinstance(model_id, str) and QUANTIZATION_PLACEHOLDER in model_id
    if gguf and isinstance(model_id, str) and hub != "pypi":
        unsplit = [q for q in effective if q not in split_parts]
        if unsplit and not isinstance(file, str):
            add(
                document.problem(
                    path,
                    "E307",
                    f"no 'file' template for {', '.join(unsplit)}: a GGUF source "
                    "names its file (or lists the quantization under split)",
                    key=True,
                )
            )
        elif (
            len(unsplit) > 1
            and isinstance(file, str)
            and not id_varies
            and QUANTIZATION_PLACEHOLDER not in file
        ):
            add(
                document.problem(
                    (*path, "file"),
                    "E301",
                    f"the file template has no {{quantization}}, so "
                    f"{', '.join(unsplit)} would all be the same file",
                )
            )
    elif (
        not gguf
        and fmt
        and len(effective) > 1
        and not id_varies
        and not (fmt == "pytorch" and set(effective) <= _ON_LOAD)
    ):
        add(
            document.problem(
                (*path, "model_id"),
                "E301",
                f"one repository for {len(effective)} quantizations "
                f"({', '.join(effective)}): put {{quantization}} in model_id or "
                "give each quantization its own spec",
            )
        )

    draft = source.get("draft")
    if isinstance(draft, dict):
        draft_id = draft.get("model_id")
        if isinstance(draft_id, str):
            _check_hub_id(
                document,
                (*path, "draft", "model_id"),
                hub,
                draft_id,
                _strs(draft.get("quantizations")),
                add,
                placeholder=_DRAFT_PLACEHOLDER,
            )
        if isinstance(draft.get("file"), str):
            _check_template(
                document,
                (*path, "draft", "file"),
                draft["file"],
                add,
                allow_part=False,
                placeholder=_DRAFT_PLACEHOLDER,
            )

    for index, name in enumerate(_strs(source.get("unverified"))):
        if name in SOURCE_FIELDS and name not in source:
            add(
                document.problem(
                    (*path, "unverified", index),
                    "W302",
                    f"'unverified' names {name!r}, which this source does not set",
                )
            )


def _check_hub_id(
    document: Document,
    path: DataPath,
    hub: str,
    model_id: str,
    effective: list[str],
    add: Any,
    placeholder: str = QUANTIZATION_PLACEHOLDER,
) -> None:
    for found in _PLACEHOLDER.findall(model_id):
        if found != placeholder:
            add(
                document.problem(
                    path,
                    "E304",
                    f"unknown placeholder {found} in "
                    f"{model_id!r} (only {placeholder} is filled in)",
                )
            )
            return
    if hub == "pypi":
        if names.package_problem(model_id):
            add(
                document.problem(
                    path,
                    "E304",
                    f"{model_id!r} is not a PyPI package name "
                    "(letters, digits, '.', '_', '-'; no placeholders)",
                )
            )
        return
    if hub not in REPO_HUBS:
        return
    if placeholder in model_id:
        filled = [model_id.replace(placeholder, q) for q in effective] or [
            model_id.replace(placeholder, "Q4_0")
        ]
        candidates = list(dict.fromkeys(filled))
    else:
        candidates = [model_id]
    for candidate in candidates:
        reason = names.repo_id_problem(candidate, hub)
        if reason:
            add(
                document.problem(
                    path, "E304", f"{candidate!r} is not a valid {hub} repository id: {reason}"
                )
            )
            return


def _check_template(
    document: Document,
    path: DataPath,
    template: str,
    add: Any,
    *,
    allow_part: bool,
    placeholder: str = QUANTIZATION_PLACEHOLDER,
) -> None:
    reason = names.relative_path_problem(template)
    if reason:
        add(
            document.problem(
                path,
                "E305",
                f"{field_name(path)} {reason}: file templates must stay inside the repository",
            )
        )
        return
    allowed = {placeholder, PART_PLACEHOLDER} if allow_part else {placeholder}
    for found in _PLACEHOLDER.findall(template):
        if found not in allowed:
            add(
                document.problem(
                    path,
                    "E311",
                    f"unknown placeholder {found} in "
                    f"{field_name(path)} (allowed: {', '.join(sorted(allowed))})",
                )
            )
            return
