"""Fact lints: facts in a spec that contradict what its own repository ids and file names say.

Imported registries copy mistakes (a 32B spec pointing at a 9B repository, an FP8 repository
filed as plain pytorch, a 70B file template naming a Qwen-7B file). Names on the hubs follow
strong conventions, so the mistakes can be found by rule: read the size, the active size, the
format and the model series out of each id and file, and compare them with the spec's fields.

Names are read loosely on purpose: a rule reports only when no reading of the name fits the
spec (labels are rounded, 7B is often 7.6B), because a false alarm trains people to ignore
warnings. Like zoo.catalog.lint, every access is type-checked: the schema reports bad shapes.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator
from typing import Any

from zoo.catalog.model import QUANTIZATION_PLACEHOLDER
from zoo.catalog.problems import Problem
from zoo.catalog.yamlpos import DataPath, Document

Add = Callable[[Problem], None]

# A size label: 7B, 1.5B, 1_8B (Qwen's underscore decimal), 135M. Not preceded by a letter
# or digit (A3B is an active size, 8x7B counts experts, Qwen2.5 is a version) and not
# followed by one (4bit, 7bf16).
_SIZE = re.compile(r"(?<![A-Za-z0-9.])(\d+(?:[._]\d+)?)([BbMm])(?![A-Za-z0-9])")
# Mixture of experts: Qwen3-30B-A3B, qwen2-57b-a14b, and Llama 4's 17B-16E (17B active).
_ACTIVE = re.compile(r"(?<![A-Za-z0-9])[Aa](\d+(?:[._]\d+)?)([BbMm])(?![A-Za-z0-9])")
_EXPERTS_AFTER = re.compile(r"[-_](\d+)[Ee](?![A-Za-z0-9])")
# A label is a rounded size: Qwen2.5-7B is 7.6B, gpt-oss-20b is 21B, Mixtral's 8x7B is 47B.
TOLERANCE = 0.25
# Split part names as llama.cpp's gguf-split writes them.
_PART = re.compile(r"(\d+)-of-(\d+)")
# Words in ids that name a weight format, and the spec format each one means.
_FORMAT_WORDS = {"fp8": "fp8", "awq": "awq", "gptq": "gptq", "gguf": "ggufv2", "mlx": "mlx"}
_FORMAT_ORGS = {"mlx-community": "mlx"}
# (spec format, word) pairs that do not contradict: a conversion of an FP8, AWQ or GPTQ
# checkpoint to MLX (or of an FP8 one to GGUF) keeps its origin's word in the name.
_COMPATIBLE = {("mlx", "fp8"), ("mlx", "awq"), ("mlx", "gptq"), ("ggufv2", "fp8")}
# pytorch weights are loaded as stored or quantized on load by bitsandbytes; a quantization
# that names a stored format (Int4, fp8, AWQ) belongs to that format's spec instead.
PYTORCH_QUANTIZATIONS = frozenset(
    {"none", "4-bit", "8-bit", "bf16", "fp16", "fp32", "float16", "bfloat16", "float32"}
)
# Jinja's tags; the raw text between them is what a template prints as written.
_JINJA_TAG = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.S)
_COMMENT_THEN_CODE = re.compile(r"#\}\s?\{[{%]")
# A series word: the letters of the name part right before the size label (Qwen in
# "DeepSeek-R1-Distill-Qwen-7B", llama in "Meta-Llama-3.1-8B").
_SERIES = re.compile(r"([A-Za-z]{3,})[A-Za-z0-9.]*[-_]?(?:[vV]?\d+(?:[._]\d+)*[-_])*$")


def _strs(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _number(text: str) -> float:
    return float(text.replace("_", "."))


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= TOLERANCE * max(a, b)


def sizes(text: str) -> tuple[list[float], list[float]]:
    """Total and active sizes (billions) a name states: ``Qwen2-57B-A14B`` -> [57], [14].

    Millions count only when the name has no billions label (``SmolLM2-135M``), so a context
    mark after the size (``Qwen2.5-7B-Instruct-1M``) is not read as a size.
    """
    totals: list[float] = []
    # granite-3.1-1b-a400m: 400M active.
    actives = [
        _number(m.group(1)) / (1000 if m.group(2) in "Mm" else 1) for m in _ACTIVE.finditer(text)
    ]
    millions: list[float] = []
    for match in _SIZE.finditer(text):
        value = _number(match.group(1))
        if match.group(2) in "Mm":
            millions.append(value / 1000)
        elif _EXPERTS_AFTER.match(text, match.end()):
            actives.append(value)  # Llama-4-Scout-17B-16E: 17B active in 16 experts
        else:
            totals.append(value)
    return (totals or millions), actives


def series(text: str) -> str | None:
    """The series word before a name's size label, lowercased, or None."""
    match = _SIZE.search(text)
    if match is None:
        return None
    words = _SERIES.search(text[: match.start()])
    return words.group(1).lower() if words else None


def _letters(text: str) -> str:
    return re.sub(r"[^a-z]", "", text.lower())


def lint(document: Document) -> list[Problem]:
    """The fact lints for one spec file (called from zoo.catalog.lint)."""
    data = document.data
    if not isinstance(data, dict):
        return []
    problems: list[Problem] = []
    seen: set[tuple[object, ...]] = set()
    _lint_template(document, data, problems.append)
    specs = data.get("specs")
    if not isinstance(specs, list):
        return problems

    def add(problem: Problem) -> None:
        # One report per code and place: every hub and file of a spec repeats the same id.
        if (problem.code, problem.line, problem.column) not in seen:
            seen.add((problem.code, problem.line, problem.column))
            problems.append(problem)

    for index, spec in enumerate(specs):
        if isinstance(spec, dict):
            _lint_spec(document, ("specs", index), spec, _vocabulary(data, specs, index), add)
    return problems


def _sources(spec: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], list[str]]]:
    sources = spec.get("sources")
    spec_quants = _strs(spec.get("quantizations"))
    for hub, source in sources.items() if isinstance(sources, dict) else ():
        if isinstance(source, dict) and hub != "pypi":
            yield hub, source, _strs(source.get("quantizations")) or spec_quants


def _filled(template: str, quantizations: list[str]) -> list[str]:
    if QUANTIZATION_PLACEHOLDER not in template:
        return [template]
    return list(dict.fromkeys(template.replace(QUANTIZATION_PLACEHOLDER, q) for q in quantizations))


def _name(model_id: str) -> str:
    return model_id.rsplit("/", 1)[-1]


def _texts(source: dict[str, Any], quants: list[str]) -> Iterator[tuple[DataPath, list[str]]]:
    """(path inside the source, the names it stands for) for its id, file and split file."""
    model_id = source.get("model_id")
    if isinstance(model_id, str):
        yield ("model_id",), [_name(t) for t in _filled(model_id, quants)]
    file = source.get("file")
    if isinstance(file, str):
        yield ("file",), _filled(file, quants)
    split = source.get("split")
    if isinstance(split, dict) and isinstance(split.get("file"), str):
        yield ("split", "file"), _filled(split["file"], quants)


def _vocabulary(data: dict[str, Any], specs: list[Any], index: int) -> str:
    """The letters of the family's name and of the repository names of its other specs.

    A spec's own ids are left out, so an id (copied to every hub of its spec) cannot vouch
    for itself; a file is also checked against its own spec's ids (see _check_series).
    """
    words = [data.get("name") if isinstance(data.get("name"), str) else ""]
    for other, spec in enumerate(specs):
        if isinstance(spec, dict) and other != index:
            for _hub, source, _quants in _sources(spec):
                if isinstance(source.get("model_id"), str):
                    words.append(_name(source["model_id"]))
    return " ".join(_letters(w) for w in words if w)


def _lint_spec(
    document: Document, path: DataPath, spec: dict[str, Any], vocabulary: str, add: Add
) -> None:
    size = spec.get("size")
    activated = spec.get("activated_size")
    fmt = spec.get("format")
    fmt = fmt if isinstance(fmt, str) else ""
    own = " ".join(
        _letters(_name(source["model_id"]))
        for _hub, source, _quants in _sources(spec)
        if isinstance(source.get("model_id"), str)
    )
    for hub, source, quants in _sources(spec):
        src_path = (*path, "sources", hub)
        for where, texts in _texts(source, quants):
            field = (*src_path, *where)
            if isinstance(size, int | float) and _is_number(size):
                _check_size(document, field, texts, float(size), add)
            _check_active(document, field, path, texts, activated, add)
            known = vocabulary if where == ("model_id",) else f"{vocabulary} {own}"
            _check_series(document, field, texts, known, add)
        _check_format(document, src_path, source, fmt, quants, add)
        _check_parts(document, src_path, source, add)


def _check_size(
    document: Document, field: DataPath, texts: list[str], size: float, add: Add
) -> None:
    for text in texts:
        totals, _ = sizes(text)
        if totals and not any(_close(total, size) for total in totals):
            stated = ", ".join(f"{t:g}B" for t in totals)
            add(
                document.problem(
                    field,
                    "W308",
                    f"{text!r} says {stated}, but the spec's size is {size:g} (billions): "
                    "the size or the repository is wrong",
                )
            )
            return


def _check_active(
    document: Document,
    field: DataPath,
    spec_path: DataPath,
    texts: list[str],
    activated: Any,
    add: Add,
) -> None:
    for text in texts:
        _, actives = sizes(text)
        if not actives:
            continue
        stated = ", ".join(f"{a:g}B" for a in actives)
        if not _is_number(activated):
            # Reported once for the spec, where activated_size belongs (beside size).
            add(
                document.problem(
                    (*spec_path, "size"),
                    "W309",
                    f"a mixture of experts ({text!r}: {stated} active) without activated_size",
                    key=True,
                )
            )
            return
        if not any(_close(a, float(activated)) for a in actives):
            add(
                document.problem(
                    (*spec_path, "activated_size"),
                    "W309",
                    f"activated_size {activated:g} disagrees with {text!r} ({stated} active)",
                )
            )
            return


def _check_series(
    document: Document, field: DataPath, texts: list[str], vocabulary: str, add: Add
) -> None:
    """A name whose series word (Qwen in 'Distill-Qwen-7B') the family never uses elsewhere.

    The vocabulary is the family name and every repository name in the family, so a file
    that names what its repository names passes, and only a series no id of the family
    names is reported.
    """
    for text in texts:
        word = series(text)
        if word is None or word in vocabulary:
            continue
        add(
            document.problem(
                field,
                "W310",
                f"{text!r} names {word!r}, a series no other repository of this family "
                "names: it points at another model",
            )
        )
        return


def _check_format(
    document: Document,
    src_path: DataPath,
    source: dict[str, Any],
    fmt: str,
    quants: list[str],
    add: Add,
) -> None:
    model_id = source.get("model_id")
    if not fmt or not isinstance(model_id, str):
        return
    for model_id_text in _filled(model_id, quants):
        org, _, name = model_id_text.rpartition("/")
        words = {w.lower() for w in re.split(r"[-_.]", name)}
        named = [_FORMAT_ORGS[org.lower()]] if org.lower() in _FORMAT_ORGS else []
        named += [f for word, f in _FORMAT_WORDS.items() if word in words]
        for other in named:
            if other != fmt and (fmt, other) not in _COMPATIBLE:
                add(
                    document.problem(
                        (*src_path, "model_id"),
                        "W311",
                        f"{model_id_text!r} holds {other} weights, but the spec's format is {fmt}",
                    )
                )
                return
    if fmt == "pytorch":
        listed = source.get("quantizations")
        for index, name in enumerate(quants):
            if name not in PYTORCH_QUANTIZATIONS:
                # The entry on the source's own list, else on the spec's (src_path[:-2]).
                owner = src_path if isinstance(listed, list) and listed else src_path[:-2]
                add(
                    document.problem(
                        (*owner, "quantizations", index),
                        "W313",
                        f"pytorch weights are used as stored, so {name!r} is not a pytorch "
                        "quantization: file the repository under its own format (fp8, awq, "
                        "gptq, ...)",
                    )
                )


def _check_parts(document: Document, src_path: DataPath, source: dict[str, Any], add: Add) -> None:
    split = source.get("split")
    parts = split.get("parts") if isinstance(split, dict) else None
    for quant, names in parts.items() if isinstance(parts, dict) else ():
        listed = _strs(names)
        if not listed:
            continue
        where = (*src_path, "split", "parts", quant)
        matches = [_PART.fullmatch(n) for n in listed]
        if not any(matches):
            continue  # not gguf-split names (a repository's own scheme): nothing to count
        if not all(matches):
            odd = next(n for n, m in zip(listed, matches, strict=True) if m is None)
            add(
                document.problem(
                    where, "E315", f"part {odd!r} is not named like the others (NNNNN-of-MMMMM)"
                )
            )
            continue
        totals = sorted({int(m.group(2)) for m in matches if m})
        numbers = [int(m.group(1)) for m in matches if m]
        if len(totals) > 1:
            message = f"the parts disagree on their count (of {', of '.join(map(str, totals))})"
        elif sorted(numbers) != list(range(1, totals[0] + 1)):
            message = (
                f"{len(listed)} parts listed, but their names say {totals[0]} "
                f"(parts 1 to {totals[0]}, each once)"
            )
        else:
            continue
        add(document.problem(where, "E315", message))


def flattened(template: str) -> str | None:
    """Why a chat template looks like a copy with its newlines removed, or None.

    Many official templates are one line (DeepSeek-R1's writes newlines as '\\n' inside
    strings), so a missing newline alone is not enough: the copy must also show where the
    newlines were: escapes printed as text, comments glued to code, or spaces between tags.
    """
    if "\n" in template:
        return None
    raw = [s for s in _JINJA_TAG.split(template) if s]
    if any("\\n" in s for s in raw):
        return "'\\n' written as text outside the template's tags prints a backslash and an n"
    if _COMMENT_THEN_CODE.search(template):
        return "a comment runs straight into code"
    if _printed_blanks(template):
        return "spaces between tags where the official template has newlines"
    return None


def _printed_blanks(template: str) -> bool:
    """Whether a run of spaces between two tags reaches the prompt (no '-' trims it).

    Indentation before ``{%-`` is trimmed, so it is harmless even without newlines; a space
    that survives between tags is where a newline was replaced.
    """
    tags = list(_JINJA_TAG.finditer(template))
    for before, after in itertools.pairwise(tags):
        between = template[before.end() : after.start()]
        trimmed = before.group().endswith(("-%}", "-}}")) or after.group().startswith(
            ("{%-", "{{-")
        )
        if between and between.strip() == "" and " " in between and not trimmed:
            return True
    return False


def _lint_template(document: Document, data: dict[str, Any], add: Add) -> None:
    template = data.get("chat_template")
    if not isinstance(template, str):
        return
    reason = flattened(template)
    if reason:
        add(
            document.problem(
                ("chat_template",),
                "W312",
                f"the chat template has no newline at all and looks flattened ({reason}): "
                "use the template that ships with the weights, or copy the official one",
            )
        )
