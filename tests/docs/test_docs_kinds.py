"""Pages for embedding models and rerankers: their facts, the engines that serve the kind, and
examples that really run (the ``openai`` client and ``curl`` against a local server that
answers in the OpenAI/rerank shape); the index and the matrix show kinds; the spec-format
reference covers the kind fields; the strict Sphinx build passes with the whole catalog."""

from __future__ import annotations

import base64
import dataclasses
import http.server
import json
import re
import struct
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from zoo import kinds
from zoo.catalog.catalog import load_catalog
from zoo.catalog.model import Family, context_label
from zoo.docs import kind_sections, rst
from zoo.docs.context import DocsContext, EngineInfo
from zoo.docs.family_page import render_family
from zoo.docs.render import render_pages
from zoo.docs.schema_ref import field_label, load_schema, render_reference
from zoo.engine import Capabilities

ROOT = Path(__file__).resolve().parents[2]
XINFERENCE = ROOT / "tests" / "importers" / "data"
EMBEDDING = "nomic-embed-text-v1.5"
RERANKER = "jina-reranker-v1-tiny-en"
# What a page puts after a fact written from the card and not yet checked.
MARK = rst.footnote_ref(kind_sections.UNVERIFIED_NOTE)
# Fields only a language model's page has.
LLM_ONLY = (
    ":Abilities:",
    ":Chat template:",
    ":Stop strings:",
    ":Stop token ids:",
    ":Reasoning tags:",
    ":Tool-call parser:",
    "Fill-in-the-middle",
)


@pytest.fixture(scope="module")
def catalog() -> dict[str, Family]:
    loaded = load_catalog()
    assert [str(p) for p in loaded.problems if getattr(p, "is_error", True)] == []
    return dict(loaded.families)


@pytest.fixture(scope="module")
def ctx() -> DocsContext:
    return DocsContext.from_plugins()


def _blocks(page: str, language: str) -> list[str]:
    """The bodies of the page's ``code-block:: language`` directives, unindented."""
    found = []
    for match in re.finditer(rf"\.\. code-block:: {language}\n\n((?:   .*\n|\n)+)", page):
        found.append("\n".join(line[3:] for line in match.group(1).splitlines()).strip("\n"))
    return found


# ---- the pages' facts ------------------------------------------------------------------------


def test_an_embedding_page_states_its_vector_facts_and_no_llm_fields(
    catalog: dict[str, Family], ctx: DocsContext, rst_problems: Any
) -> None:
    family = catalog[EMBEDDING]
    # Even a family object carrying LLM facts (the lint refuses such a file) shows none of them.
    odd = dataclasses.replace(
        family, abilities=("chat",), chat_template="{{ x }}", stop=("</s>",), stop_token_ids=(2,)
    )
    for page in (render_family(family, ctx), render_family(odd, ctx)):
        assert rst_problems(page) == []
        assert ":Dimensions: 768\n" in page
        assert ":Matryoshka dimensions: 512, 256, 128, 64\n" in page
        assert ":Max input tokens: 8K tokens\n" in page
        assert ":Pooling: mean\n" in page
        # The trailing space of a prompt matters: it is shown inside quotes.
        assert ':Query prompt: ``"search_query: "``' in page
        assert ':Document prompt: ``"search_document: "``' in page
        assert ":Kind: :ref:`embedding model <kind-embedding>`" in page
        assert "client.embeddings.create(" in page
        for field in LLM_ONLY:
            assert field not in page, field
    assert "\n   zoo launch nomic-embed-text-v1.5 --port 8080\n" in page


def test_a_rerank_page_has_the_curl_of_the_kinds_route_and_body(
    catalog: dict[str, Family], ctx: DocsContext, rst_problems: Any
) -> None:
    page = render_family(catalog[RERANKER], ctx)
    assert rst_problems(page) == []
    assert ":Reranker type: cross-encoder" in page
    assert ":Max input tokens: 8K tokens" in page
    (curl,) = [b for b in _blocks(page, "shell") if b.startswith("curl")]
    assert f"http://127.0.0.1:8080{kinds.KINDS['rerank'].main_route} " in curl
    body = json.loads(curl.split("-d '", 1)[1].rsplit("'", 1)[0])
    assert body == {"model": RERANKER, **kinds.KINDS["rerank"].example}
    assert "embeddings.create" not in page and ":Dimensions:" not in page
    for field in LLM_ONLY:
        assert field not in page, field


def _engine(name: str, kinds_served: tuple[str, ...], variant_kinds: tuple[str, ...] = ()):  # type: ignore[no-untyped-def]
    caps = Capabilities(formats={"ggufv2": ("*",), "pytorch": ("*",)}, kinds=kinds_served)
    variants = (
        (
            Capabilities(
                formats={"ggufv2": ("*",)}, kinds=variant_kinds, variant="cpu", opt_in="x-cpu"
            ),
        )
        if variant_kinds
        else ()
    )
    return EngineInfo(name=name, display_name=name.title(), capabilities=caps, variants=variants)


def test_only_engines_that_serve_the_kind_are_named(catalog: dict[str, Family]) -> None:
    ctx = DocsContext(
        engines=(
            _engine("chatonly", ("llm",)),
            _engine("embedder", ("llm", "embedding")),
            _engine("optin", ("llm",), variant_kinds=("embedding", "rerank")),
        )
    )
    page = render_family(catalog[EMBEDDING], ctx)
    assert "Chatonly" not in page and "--engine chatonly" not in page
    assert "--engine embedder" in page and "--engine optin" in page  # a variant serves it
    # pytorch: only "embedder" serves embeddings in it (the opt-in variant runs GGUF only).
    pytorch = page.split("Spec 1: pytorch", 1)[1].split("Spec 2:", 1)[0]
    assert "--engine embedder" in pytorch and "--engine optin" not in pytorch
    nobody = DocsContext(engines=(_engine("chatonly", ("llm",)),))
    page = render_family(catalog[RERANKER], nobody)
    assert "none of the installed engines serves rerankers in ``ggufv2``" in page
    assert "zoo picks an engine once one that serves rerankers is installed" in page
    pages = render_pages([catalog[EMBEDDING], catalog[RERANKER], catalog["seed-oss"]], ctx)
    matrix = pages["matrix.rst"]
    kinds_table = matrix.split("Kinds and engines", 1)[1].split("\nEngines\n", 1)[0]
    rows = [r for r in kinds_table.split("   * - ")[1:] if not r.startswith("Kind")]
    cells = {r.split("\n")[0]: [c.strip() for c in r.split("     - ")[1:]] for r in rows}
    assert cells[":ref:`embedding models <kind-embedding>`"] == [
        "1",
        "—",
        "yes",
        "yes (opt-in ``x-cpu``)",
    ]
    assert cells[":ref:`rerankers <kind-rerank>`"] == ["1", "—", "—", "yes (opt-in ``x-cpu``)"]
    assert "optin (``optin``, opt-in ``x-cpu``)" in pages["kind-rerank.rst"].replace(
        "Optin", "optin"
    )


def test_pages_state_every_fact_of_xinferences_embedding_and_rerank_pages(
    catalog: dict[str, Family], ctx: DocsContext
) -> None:
    """Dimensions, max tokens, languages, model ids and hub links, for every imported family."""
    checked = 0
    for registry, kind in (
        ("embedding_model_spec.json", "embedding"),
        ("rerank_model_spec.json", "rerank"),
    ):
        for entry in json.loads((XINFERENCE / registry).read_text(encoding="utf-8")):
            family = catalog.get(str(entry["model_name"]).lower())
            if family is None or family.kind != kind:
                continue  # `zoo import` decides what is imported; its own tests cover that
            page = render_family(family, ctx)
            checked += 1
            unverified = family.extra.get("unverified") or []
            if kind == "embedding":
                assert family.embedding is not None
                ours = f":Dimensions: {family.embedding.dimensions:,}"
                mark = MARK if "embedding.dimensions" in unverified else ""
                if family.embedding.dimensions == entry["dimensions"]:
                    assert ours + mark + "\n" in page, family.name
                else:  # corrected on import: the page gives both figures
                    theirs = f" (Xinference's registry: {entry['dimensions']:,})"
                    assert ours + theirs + mark + "\n" in page, family.name
            else:
                # Xinference's type in zoo's words; a corrected one is shown beside ours.
                upstream = family.extra.get("xinference", {}).get("type")
                same = {"normal": "cross-encoder", "LLM-based": "llm"}.get(
                    entry["type"], "llm-layerwise"
                )
                assert family.rerank is not None
                expected = kind_sections.RERANK_TYPE_WORDS[family.rerank.type]
                assert f":Reranker type: {rst.text(expected)}" in page, family.name
                if upstream is not None:
                    assert f"(Xinference's registry: {upstream})" in page, family.name
                else:
                    assert family.rerank.type == same, family.name
            if unverified:
                # Each fact is marked where it shows, and the page says what the mark means once.
                assert page.count(".. [#unverified] Not yet checked against the hub") == 1
                if "size" in unverified:
                    assert f" parameters{MARK}\n" in page, family.name
                if "embedding.pooling" in unverified:
                    assert re.search(rf"^:Pooling: \w+{re.escape(MARK)}$", page, re.M), family.name
            assert f":Max input tokens: {context_label(entry['max_tokens'])} tokens" in page, (
                family.name
            )
            for language in family.languages:
                assert language in page.split(":Languages:", 1)[1].split("\n", 1)[0]
            for spec in entry["model_specs"]:
                assert f"``{spec['model_format']}``" in page
                for hub, source in spec["model_src"].items():
                    assert ctx.hub_name(hub) in page, (family.name, hub)
                    for quant in source["quantizations"]:
                        repo = source["model_id"].replace("{quantization}", quant)
                        url = ctx.repo_url(hub, repo)
                        assert url is not None and f"<{url}>" in page, (family.name, repo)
                        template = source.get("model_file_name_template")
                        if template:
                            name = template.replace("{quantization}", quant)
                            assert f"``{name}``" in page, (family.name, name)
            for field in LLM_ONLY:
                assert field not in page, (family.name, field)
    assert checked >= 40, "the Xinference import brings its embedding and rerank families"


def test_every_family_of_each_kind_has_a_page_with_its_kinds_usage(
    catalog: dict[str, Family], ctx: DocsContext
) -> None:
    pages = render_pages(catalog.values(), ctx)
    for family in catalog.values():
        page = pages[f"{family.name}.rst"]
        assert ("client.embeddings.create(" in page) == (family.kind == "embedding"), family.name
        assert ("/v1/rerank \\" in page) == (family.kind == "rerank"), family.name


def test_every_spec_launch_line_names_an_engine_serving_the_kind(
    catalog: dict[str, Family], ctx: DocsContext
) -> None:
    engines = {e.name: e for e in ctx.engines}
    named = 0
    for family in catalog.values():
        if family.kind == kinds.LLM:
            continue
        for line in render_family(family, ctx).splitlines():
            words = line.split()
            if words[:2] != ["zoo", "launch"] or "--format" not in words:
                continue
            options = dict(zip(words[3::2], words[4::2], strict=True))
            # Several specs may share a format and size (two GGUF repositories): the
            # quantization picks one.
            spec = next(
                s
                for s in family.specs
                if s.format == options["--format"]
                and s.size_label == options["--size"]
                and options["--quantization"] in s.quantizations
            )
            if "--engine" in options:
                named += 1
                engine = engines[options["--engine"]]
                assert engine.runs(spec.format, options["--quantization"], family.kind), line
    assert named, "the installed engines serve embedding models and rerankers"


# ---- the examples run ------------------------------------------------------------------------


class _Api(http.server.BaseHTTPRequestHandler):
    """Answers /v1/embeddings and /v1/rerank in the shapes zoo's engines answer, and records
    each request body, so the page examples are checked against the protocol, not a string."""

    dimensions: ClassVar[int] = 768
    seen: ClassVar[list[tuple[str, dict[str, Any]]]] = []

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).seen.append((self.path, body))
        if self.path == "/v1/embeddings":
            texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
            size = int(body.get("dimensions") or self.dimensions)
            data = []
            for index, _ in enumerate(texts):
                vector = [0.5] * size
                if body.get("encoding_format") == "base64":
                    packed = struct.pack(f"<{size}f", *vector)
                    item: Any = base64.b64encode(packed).decode()
                else:
                    item = vector
                data.append({"object": "embedding", "index": index, "embedding": item})
            answer: dict[str, Any] = {
                "object": "list",
                "data": data,
                "model": body["model"],
                "usage": {"prompt_tokens": 4, "total_tokens": 4},
            }
        elif self.path == "/v1/rerank":
            results = [
                {"index": i, "relevance_score": 1.0 / (i + 1)}
                for i in range(len(body["documents"]))
            ]
            answer = {"model": body["model"], "results": results, "usage": {"total_tokens": 9}}
        else:
            self.send_error(404)
            return
        raw = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)


@pytest.fixture
def api() -> Iterator[str]:
    _Api.seen = []
    _Api.dimensions = 768
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Api)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("name", [EMBEDDING, "embeddinggemma-300m", "mxbai-embed-large-v1"])
def test_the_openai_example_runs_and_prints_what_its_comments_say(
    catalog: dict[str, Family],
    ctx: DocsContext,
    api: str,
    name: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    family = catalog[name]
    facts = family.embedding
    assert facts is not None
    _Api.dimensions = facts.dimensions
    (block,) = _blocks(render_family(family, ctx), "python")
    address = f"{kind_sections.DOCS_HOST}:{kind_sections.DOCS_PORT}"
    assert address in block
    exec(compile(block.replace(address, api), f"{name}.rst", "exec"), {})  # noqa: S102
    printed = capsys.readouterr().out.splitlines()
    promised = [line.split("  # ", 1)[1] for line in block.splitlines() if "print(" in line]
    assert printed == promised
    sent = [body for path, body in _Api.seen if path == "/v1/embeddings"]
    documents = sent[0]["input"]
    assert len(documents) == len(kinds.KINDS["embedding"].example["input"])
    assert all(d.startswith(facts.document_prefix or "") for d in documents)
    if facts.query_prefix:
        assert sent[1]["input"][0].startswith(facts.query_prefix)
    if facts.matryoshka_dimensions:
        assert sent[1]["dimensions"] in facts.matryoshka_dimensions
    assert all(body["model"] == name for body in sent)


def test_the_getting_started_embedding_example_runs(
    catalog: dict[str, Family], api: str, capsys: pytest.CaptureFixture[str]
) -> None:
    facts = catalog[EMBEDDING].embedding
    assert facts is not None
    _Api.dimensions = facts.dimensions  # the comment in the example states the catalog's fact
    page = (ROOT / "docs" / "getting-started.rst").read_text(encoding="utf-8")
    (block,) = [b for b in _blocks(page, "python") if "embeddings.create" in b]
    address = f"{kind_sections.DOCS_HOST}:{kind_sections.DOCS_PORT}"
    exec(compile(block.replace(address, api), "getting-started.rst", "exec"), {})  # noqa: S102
    assert capsys.readouterr().out == f"{facts.dimensions}\n"
    assert f"# {facts.dimensions}" in block
    (path, body), *_ = _Api.seen
    assert body["model"] == EMBEDDING and path == kinds.KINDS["embedding"].main_route
    for kind in (kinds.EMBEDDING, kinds.RERANK):  # the prose names the kinds' own routes
        assert f"``{kinds.KINDS[kind].main_route}``" in page


def test_the_rerank_curl_runs(catalog: dict[str, Family], ctx: DocsContext, api: str) -> None:
    (curl,) = [b for b in _blocks(render_family(catalog[RERANKER], ctx), "shell") if "curl" in b]
    address = f"{kind_sections.DOCS_HOST}:{kind_sections.DOCS_PORT}"
    done = subprocess.run(
        ["bash", "-c", curl.replace(address, api)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    answer = json.loads(done.stdout)
    assert [r["index"] for r in answer["results"]] == [0, 1]
    assert _Api.seen == [("/v1/rerank", kind_sections.rerank_body(catalog[RERANKER]))]


@pytest.mark.parametrize("name", [EMBEDDING, RERANKER, "bge-m3", "bge-reranker-v2-m3"])
def test_the_usage_launch_line_resolves_here(
    catalog: dict[str, Family], ctx: DocsContext, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The page's ``zoo launch NAME --port 8080`` plans a real launch on this machine (dry run:
    nothing is downloaded) on an engine that serves the kind, on the examples' port."""
    from zoo.cli.app import main

    family = catalog[name]
    (launch,) = [b for b in _blocks(render_family(family, ctx), "shell") if "--port" in b]
    words = launch.split()
    assert words[:3] == ["zoo", "launch", name]
    with pytest.raises(SystemExit) as exit_info:
        main([*words[1:], "--dry-run"])
    out = capsys.readouterr().out
    assert exit_info.value.code in (0, None), out
    assert f"route:        POST {kinds.KINDS[family.kind].main_route}" in out
    assert "--port 8080" in out


# ---- catalog pages and the reference ---------------------------------------------------------


def test_the_index_and_kind_pages_show_kinds(
    catalog: dict[str, Family], ctx: DocsContext, rst_problems: Any
) -> None:
    pages = render_pages(catalog.values(), ctx)
    index = pages["index.rst"]
    assert "   * - Model\n     - Kind\n" in index
    counts = {k: sum(f.kind == k for f in catalog.values()) for k in kinds.KIND_NAMES}
    assert counts["embedding"] >= 10 and counts["rerank"] >= 2
    for kind, count in counts.items():
        title = kind_sections.kind_plural(kind)
        assert f":ref:`{title} ({count}) <kind-{kind}>`" in index
        assert f"   kind-{kind}\n" in index  # in the toctree
        page = pages[f"kind-{kind}.rst"]
        assert rst_problems(page) == [], kind
        assert f"{count} of the catalog's families are {title}." in page
        for route in kinds.KINDS[kind].routes:
            assert f"``{route}``" in page
        for family in catalog.values():
            assert (f"<model-{family.name}>" in page) == (family.kind == kind), family.name
    row = pages["index.rst"].split(f"<model-{EMBEDDING}>`\n", 1)[1]
    assert row.startswith("     - :ref:`embedding <kind-embedding>`\n")
    embedding = pages["kind-embedding.rst"].split(f"<model-{EMBEDDING}>`\n", 1)[1]
    assert embedding.startswith("     - 768\n     - 512, 256, 128, 64\n     - 8K\n")


def test_the_matrix_says_which_kinds_each_engine_serves(
    catalog: dict[str, Family], ctx: DocsContext
) -> None:
    matrix = render_pages(catalog.values(), ctx)["matrix.rst"]
    assert "Kinds and engines" in matrix
    engines = matrix.split("\nEngines\n", 1)[1]
    for engine in ctx.engines:
        row = engines.split(f"   * - {engine.display_name}\n", 1)[1]
        kinds_cell = row.split("     - ")[2].strip()
        assert kinds_cell == ", ".join(kind_sections.kind_title(k) for k in engine.kinds())


def test_the_spec_format_reference_covers_the_kind_fields(rst_problems: Any) -> None:
    text = render_reference(load_schema())
    assert rst_problems(text) == []
    for path in (
        "kind",
        "embedding",
        "embedding.dimensions",
        "embedding.matryoshka_dimensions",
        "embedding.pooling",
        "embedding.normalized",
        "embedding.prompts.query",
        "embedding.prompts.document",
        "rerank",
        "rerank.type",
    ):
        assert f".. _{field_label(path)}:" in text, path
    kind = text.split(f".. _{field_label('kind')}:", 1)[1].split("\n.. _", 1)[0]
    assert "one of ``llm``, ``embedding``, ``rerank``" in kind


def test_the_spec_format_page_has_a_valid_embedding_example(tmp_path: Path) -> None:
    page = (ROOT / "docs" / "spec-format.rst").read_text(encoding="utf-8")
    blocks = _blocks(page, "yaml")
    (example,) = [b for b in blocks if "kind: embedding" in b]
    (tmp_path / "example.yaml").write_text(example.replace("../zoo", "../../zoo") + "\n")
    loaded = load_catalog([tmp_path])
    assert [str(p) for p in loaded.problems] == []
    (family,) = loaded.families.values()
    assert family.kind == "embedding" and family.embedding is not None
    assert family.embedding.query_prefix and family.embedding.matryoshka_dimensions
