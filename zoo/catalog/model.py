"""The catalog's data model: a Family holds Specs, a Spec holds one Source per hub.

Everything here is a frozen dataclass built from already-validated YAML data (see
``zoo.catalog.load``), so the rest of zoo can rely on types instead of re-checking dicts.
Field names are the YAML field names; ``docs/spec-format`` is generated from the schema.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from zoo.catalog.lock import FamilyLock, LockedRepo

QUANTIZATION_PLACEHOLDER = "{quantization}"
PART_PLACEHOLDER = "{part}"

# Formats a spec can have. "pytorch" means unquantized Hugging Face weights (safetensors or
# .bin); gptq/awq/fp8/bnb/fp4 are safetensors-based quantized repositories.
FORMATS = ("pytorch", "gptq", "awq", "fp8", "bnb", "fp4", "mlx", "ggufv2")

# Hubs known to the core. More come from hub plugins; a spec may name any hub key.
KNOWN_HUBS = ("huggingface", "modelscope", "pypi", "openmind_hub", "csghub")


@dataclass(frozen=True)
class Location:
    """Where a value came from, for error messages: ``path:line:col`` (1-based)."""

    path: str
    line: int = 0
    column: int = 0

    def __str__(self) -> str:
        if self.line:
            return f"{self.path}:{self.line}:{self.column}"
        return self.path


@dataclass(frozen=True)
class GenerationDefaults:
    """The sampling defaults a model card recommends (spec ``generation:``); None: not given.

    ``zoo run`` sends them when the user sets nothing else; ``options()`` is the request's
    parameters in the OpenAI API's names.
    """

    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    min_p: float | None = None
    repetition_penalty: float | None = None
    max_tokens: int | None = None
    system_prompt: str | None = None
    source: str | None = None

    def options(self) -> dict[str, float | int]:
        """The sampling parameters that are set, as request fields."""
        named = {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "top_k": self.top_k,
            "min_p": self.min_p,
            "repetition_penalty": self.repetition_penalty,
            "max_tokens": self.max_tokens,
        }
        return {k: v for k, v in named.items() if v is not None}


@dataclass(frozen=True)
class FimTemplate:
    """Fill-in-the-middle tokens and the order the prompt is assembled in.

    ``order`` lists "prefix", "suffix" and "middle" in prompt order: PSM is
    ("prefix", "suffix", "middle"); Seed-Coder uses SPM ("suffix", "prefix", "middle").
    """

    prefix: str
    suffix: str
    middle: str
    order: tuple[str, ...] = ("prefix", "suffix", "middle")

    def render(self, prefix_text: str, suffix_text: str) -> str:
        """Build the prompt for infilling between ``prefix_text`` and ``suffix_text``."""
        pieces = {
            "prefix": self.prefix + prefix_text,
            "suffix": self.suffix + suffix_text,
            "middle": self.middle,
        }
        return "".join(pieces[name] for name in self.order)


@dataclass(frozen=True)
class EmbeddingFacts:
    """What an embedding model's vectors are like (``kind: embedding``).

    ``dimensions`` is the vector length; ``matryoshka_dimensions`` the shorter lengths the
    model was trained to be cut to (a request's ``dimensions`` must be one of them, or the
    full length).
    ``pooling`` is how token vectors become one ("mean", "cls", "last"); ``normalized`` whether
    vectors come out with length 1. ``query_prefix``/``document_prefix`` are the texts the
    model expects before a search query or a document (e5's "query: ", nomic's
    "search_query: "), None when it needs none.
    """

    dimensions: int
    matryoshka_dimensions: tuple[int, ...] = ()
    pooling: str | None = None
    normalized: bool | None = None
    query_prefix: str | None = None
    document_prefix: str | None = None
    # An input longer than the family's context_length is cut to it (True, as
    # sentence-transformers does) or refused with a 400 naming the limit (False).
    truncate: bool = True

    def supports_dimensions(self, wanted: int) -> bool:
        """Whether a request may ask for vectors of ``wanted`` length."""
        return wanted == self.dimensions or wanted in self.matryoshka_dimensions


# How a reranker scores: a cross-encoder (BERT-style, one score per pair), an LLM prompted
# to judge relevance, or an LLM read at several layers (bge-reranker-v2-minicpm-layerwise).
RERANK_TYPES = ("cross-encoder", "llm", "llm-layerwise")


@dataclass(frozen=True)
class RerankFacts:
    """How a reranker works (``kind: rerank``); its max input is the family's context.

    ``truncate``: a (query, document) pair longer than the context is cut to it (True) or
    refused with a 400 (False).
    """

    type: str = "cross-encoder"
    truncate: bool = True


@dataclass(frozen=True)
class SourcedValue:
    """What one source says a disputed fact is (``source``: where it is written, a URL)."""

    value: Any
    source: str
    note: str | None = None


@dataclass(frozen=True)
class Disputed:
    """A family fact whose sources disagree: what each says, and why the family's own value
    (the field itself, which zoo uses) was chosen. Recorded so a reader sees both sides."""

    field: str
    values: tuple[SourcedValue, ...]
    reason: str


@dataclass(frozen=True)
class SplitFiles:
    """A GGUF quantization stored as several files: ``template`` with ``{part}`` filled."""

    template: str
    parts: Mapping[str, tuple[str, ...]]  # quantization -> part names, e.g. "00001-of-00002"


@dataclass(frozen=True)
class DraftModel:
    """A smaller model for speculative decoding, as Xinference records it."""

    model_id: str
    quantizations: tuple[str, ...] = ()
    file: str | None = None


@dataclass(frozen=True)
class Source:
    """Where one spec's files live on one hub.

    ``model_id`` may contain ``{quantization}`` when each quantization has its own repository.
    ``file`` is the GGUF file name template (``{quantization}`` filled); ``split`` covers the
    quantizations stored as several parts. For the ``pypi`` hub, ``model_id`` is the package
    name and ``file`` the path of the model file inside its wheel.
    """

    hub: str
    model_id: str
    quantizations: tuple[str, ...]
    revision: str | None = None
    file: str | None = None
    split: SplitFiles | None = None
    multimodal_projectors: tuple[str, ...] = ()
    draft: DraftModel | None = None
    # Facts written from best knowledge and not yet checked against the hub (e.g. "file").
    unverified: tuple[str, ...] = ()
    # Glob patterns of repository files not to download (e.g. "original/**" duplicates).
    exclude: tuple[str, ...] = ()
    # Facts a source registry had for this hub entry that zoo does not interpret (lossless
    # import/export; see zoo.importers).
    extra: Mapping[str, Any] = field(default_factory=dict)
    location: Location | None = field(default=None, compare=False)
    # What `zoo catalog check --fix` recorded for this source's repositories (zoo.catalog.lock),
    # repository id -> entry; only entries made for the revision the spec asks for today.
    locked: Mapping[str, LockedRepo] = field(default_factory=dict, compare=False)

    def repo_for(self, quantization: str) -> str:
        """The repository id for ``quantization`` (the template filled in)."""
        return self.model_id.replace(QUANTIZATION_PLACEHOLDER, quantization)

    def locked_repo(self, quantization: str) -> LockedRepo | None:
        """The lock entry of ``quantization``'s repository, if it was checked."""
        return self.locked.get(self.repo_for(quantization))

    def revision_for(self, quantization: str) -> str | None:
        """The revision to download for ``quantization``: the commit the lock pinned the
        spec's revision to when there is one, else the spec's own revision."""
        locked = self.locked_repo(quantization)
        return locked.commit if locked is not None else self.revision

    def files_for(self, quantization: str) -> tuple[str, ...]:
        """GGUF file names for ``quantization``: its split parts, or the single file.

        Empty for non-GGUF sources, whose files are the repository's weights.
        """
        if self.split is not None and quantization in self.split.parts:
            return tuple(
                self.split.template.replace(QUANTIZATION_PLACEHOLDER, quantization).replace(
                    PART_PLACEHOLDER, part
                )
                for part in self.split.parts[quantization]
            )
        if self.file is not None:
            return (self.file.replace(QUANTIZATION_PLACEHOLDER, quantization),)
        return ()


@dataclass(frozen=True)
class Spec:
    """One downloadable build of a family: a format and a size, on one or more hubs."""

    format: str
    size: float  # billions of parameters
    quantizations: tuple[str, ...]
    sources: tuple[Source, ...]
    activated_size: float | None = None  # MoE: parameters active per token, in billions
    # Facts a source registry had for this spec that zoo does not interpret (lossless import).
    extra: Mapping[str, Any] = field(default_factory=dict)
    location: Location | None = field(default=None, compare=False)

    @property
    def size_label(self) -> str:
        """``36`` for 36.0, ``1.5`` for 1.5: the size as users type it."""
        return format_size(self.size)

    def source(self, hub: str) -> Source | None:
        return next((s for s in self.sources if s.hub == hub), None)

    @property
    def hubs(self) -> tuple[str, ...]:
        return tuple(s.hub for s in self.sources)


@dataclass(frozen=True)
class Family:
    """A model family: the facts shared by all its specs.

    ``kind`` is what the model does (``zoo.kinds``: "llm", "embedding", "rerank"); the facts
    of a kind are in the block named after it (``embedding``, ``rerank``). ``context_length``
    is the longest input in tokens: prompt plus output for a language model, the longest text
    an embedding model or reranker reads (what other registries call ``max_tokens``).
    ``abilities`` are a language model's (chat, tools, ...); other kinds have none.
    """

    name: str
    description: str
    context_length: int
    languages: tuple[str, ...]
    abilities: tuple[str, ...]
    specs: tuple[Spec, ...]
    kind: str = "llm"
    embedding: EmbeddingFacts | None = None
    rerank: RerankFacts | None = None
    architectures: tuple[str, ...] = ()
    license: str | None = None
    homepage: str | None = None
    chat_template: str | None = None
    stop: tuple[str, ...] = ()
    stop_token_ids: tuple[int, ...] = ()
    reasoning_start_tag: str | None = None
    reasoning_end_tag: str | None = None
    tool_parser: str | None = None
    fim: FimTemplate | None = None
    generation: GenerationDefaults | None = None
    # Facts whose sources disagree (``disputed:`` in the spec), in the file's order.
    disputed: tuple[Disputed, ...] = ()
    # Facts a source registry had that zoo does not interpret, kept so exports are lossless.
    extra: Mapping[str, Any] = field(default_factory=dict)
    location: Location | None = field(default=None, compare=False)

    @property
    def formats(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(s.format for s in self.specs))

    def dispute(self, field_name: str) -> Disputed | None:
        """What the sources say about ``field_name`` when they disagree, else None."""
        return next((d for d in self.disputed if d.field == field_name), None)


def context_label(tokens: int) -> str:
    """A context length as people say it: 8192 -> "8K", 131072 -> "128K", 1048576 -> "1M",
    32000 -> "32K" (binary where the count is a multiple of 1024, else decimal; three
    significant digits; the exact count is in ``zoo show``)."""
    binary = tokens % 1024 == 0
    if tokens >= 1_000_000:
        return f"{tokens / (1024**2 if binary else 1e6):.3g}M"
    if tokens >= 1000:
        return f"{tokens / (1024 if binary else 1000):.3g}K"
    return str(tokens)


def format_size(size: float) -> str:
    return str(int(size)) if float(size).is_integer() else repr(float(size))


def _strings(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in value)


def source_from_data(
    hub: str,
    data: Mapping[str, Any],
    spec_quants: Sequence[str],
    location: Location | None = None,
    lock: FamilyLock | None = None,
) -> Source:
    split = data.get("split")
    draft = data.get("draft")
    quantizations = _strings(data.get("quantizations")) or tuple(spec_quants)
    return Source(
        hub=hub,
        model_id=str(data["model_id"]),
        quantizations=quantizations,
        revision=data.get("revision"),
        file=data.get("file"),
        split=(
            SplitFiles(
                template=str(split["file"]),
                parts={str(q): _strings(p) for q, p in (split.get("parts") or {}).items()},
            )
            if split
            else None
        ),
        multimodal_projectors=_strings(data.get("multimodal_projectors")),
        draft=(
            DraftModel(
                model_id=str(draft["model_id"]),
                quantizations=_strings(draft.get("quantizations")),
                file=draft.get("file"),
            )
            if draft
            else None
        ),
        unverified=_strings(data.get("unverified")),
        exclude=_strings(data.get("exclude")),
        extra=dict(data.get("extra") or {}),
        location=location,
        locked=_locked_for(hub, data, quantizations, lock),
    )


def _locked_for(
    hub: str, data: Mapping[str, Any], quantizations: Sequence[str], lock: FamilyLock | None
) -> dict[str, LockedRepo]:
    """The lock entries of a source's repositories that were made for its revision today."""
    if lock is None:
        return {}
    model_id, revision = str(data["model_id"]), data.get("revision")
    found: dict[str, LockedRepo] = {}
    for quantization in quantizations:
        repo = model_id.replace(QUANTIZATION_PLACEHOLDER, quantization)
        entry = lock.find(hub, repo)
        if entry is not None and entry.asked == revision:
            found[repo] = entry
    return found


def spec_from_data(
    data: Mapping[str, Any],
    location: Location | None = None,
    source_locations: Mapping[str, Location] | None = None,
    lock: FamilyLock | None = None,
) -> Spec:
    sources_data: Mapping[str, Any] = data.get("sources") or {}
    quants = _strings(data.get("quantizations"))
    sources = tuple(
        source_from_data(hub, src, quants, (source_locations or {}).get(hub), lock)
        for hub, src in sources_data.items()
    )
    if not quants:
        # The spec's quantizations default to the union of its hubs' lists, in order.
        quants = tuple(dict.fromkeys(q for s in sources for q in s.quantizations))
    activated = data.get("activated_size")
    return Spec(
        format=str(data["format"]),
        size=float(data["size"]),
        quantizations=quants,
        sources=sources,
        activated_size=float(activated) if activated is not None else None,
        extra=dict(data.get("extra") or {}),
        location=location,
    )


def family_from_data(
    data: Mapping[str, Any],
    location: Location | None = None,
    spec_locations: Sequence[Location | None] = (),
    source_locations: Sequence[Mapping[str, Location]] = (),
    lock: FamilyLock | None = None,
) -> Family:
    """Build a Family from YAML data that already passed schema validation.

    ``source_locations`` gives, per spec, each hub's Location (optional, like the others);
    ``lock`` the family's lock file (``zoo.catalog.lock``), whose entries fill ``Source.locked``.
    """
    fim = data.get("fim")
    generation = data.get("generation")
    reasoning = data.get("reasoning") or {}
    embedding = data.get("embedding")
    rerank = data.get("rerank")
    prompts = (embedding or {}).get("prompts") or {}
    specs_data = data.get("specs") or []
    locs = list(spec_locations) + [None] * (len(specs_data) - len(spec_locations))
    hub_locs = list(source_locations) + [{}] * (len(specs_data) - len(source_locations))
    return Family(
        name=str(data["name"]),
        description=str(data.get("description") or "").strip(),
        context_length=int(data["context_length"]),
        languages=_strings(data.get("languages")),
        abilities=_strings(data.get("abilities")),
        specs=tuple(
            spec_from_data(s, loc, hubs, lock)
            for s, loc, hubs in zip(specs_data, locs, hub_locs, strict=True)
        ),
        kind=str(data.get("kind") or "llm"),
        embedding=(
            EmbeddingFacts(
                dimensions=int(embedding["dimensions"]),
                matryoshka_dimensions=tuple(
                    int(d) for d in embedding.get("matryoshka_dimensions") or ()
                ),
                pooling=embedding.get("pooling"),
                normalized=embedding.get("normalized"),
                query_prefix=prompts.get("query"),
                document_prefix=prompts.get("document"),
                truncate=bool(embedding.get("truncate", True)),
            )
            if embedding
            else None
        ),
        rerank=(
            RerankFacts(
                type=str(rerank.get("type") or "cross-encoder"),
                truncate=bool(rerank.get("truncate", True)),
            )
            if rerank
            else None
        ),
        architectures=_strings(data.get("architectures")),
        license=data.get("license"),
        homepage=data.get("homepage"),
        chat_template=data.get("chat_template"),
        stop=_strings(data.get("stop")),
        stop_token_ids=tuple(int(t) for t in data.get("stop_token_ids") or ()),
        reasoning_start_tag=reasoning.get("start_tag"),
        reasoning_end_tag=reasoning.get("end_tag"),
        tool_parser=data.get("tool_parser"),
        fim=(
            FimTemplate(
                prefix=str(fim["prefix"]),
                suffix=str(fim["suffix"]),
                middle=str(fim["middle"]),
                order=_strings(fim.get("order")) or ("prefix", "suffix", "middle"),
            )
            if fim
            else None
        ),
        generation=(
            GenerationDefaults(
                temperature=_number(generation.get("temperature")),
                top_p=_number(generation.get("top_p")),
                top_k=_integer(generation.get("top_k")),
                min_p=_number(generation.get("min_p")),
                repetition_penalty=_number(generation.get("repetition_penalty")),
                max_tokens=_integer(generation.get("max_tokens")),
                system_prompt=generation.get("system_prompt"),
                source=generation.get("source"),
            )
            if generation
            else None
        ),
        disputed=tuple(
            Disputed(
                field=str(name),
                values=tuple(
                    SourcedValue(value=v["value"], source=str(v["source"]), note=v.get("note"))
                    for v in fact["values"]
                ),
                reason=str(fact["reason"]),
            )
            for name, fact in (data.get("disputed") or {}).items()
        ),
        extra=dict(data.get("extra") or {}),
        location=location,
    )


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def _integer(value: Any) -> int | None:
    return None if value is None else int(value)
