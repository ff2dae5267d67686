"""Model kinds through the command line: list --kind, search, show, launch --dry-run/--explain
and engines, on a catalog of small test families and a test engine plugin."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from catalog_helpers import family_text, write
from test_kind_lints import EMBEDDING, RERANK

from zoo.cli.app import main
from zoo.plugins import plugin_manager

# A test engine plugin, installed as a distribution with a `zoo` entry point: one engine for
# embeddings and rerankers, one for language models only (the default kinds).
ENGINES = """\
from zoo import hookimpl
from zoo.engine import Capabilities, Engine, ServerCommand


class Vectors(Engine):
    name = "vectors"
    display_name = "Vectors"
    capabilities = Capabilities(formats={"pytorch": ("*",)}, kinds=("embedding", "rerank"))

    def server_command(self, ctx):
        argv = (ctx.python, "-m", "vectors.server", ctx.model_path, "--task", ctx.family.kind)
        return ServerCommand(argv=argv + ("--port", str(ctx.port)))


class ChatOnly(Engine):
    name = "chatonly"
    display_name = "Chat-only"
    capabilities = Capabilities(formats={"pytorch": ("*",)})

    def server_command(self, ctx):
        return ServerCommand(argv=(ctx.python, "-m", "chat.server", "--port", str(ctx.port)))


@hookimpl
def zoo_register_engines():
    return [Vectors(), ChatOnly()]
"""
# The real engine plugins stay out: what they serve is not what these tests are about.
REAL_ENGINES = "llamacpp, mlx, transformers, vllm"
PROFILE = ("--host-profile", "cpu-24g")


@pytest.fixture
def kinds_catalog(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Only an embedding model, a reranker and a language model in the catalog."""
    from zoo.catalog import catalog

    folder = tmp_path / "specs"
    write(folder, "tiny-embed.yaml", EMBEDDING)
    write(folder, "tiny-rerank.yaml", RERANK)
    write(folder, "chatty.yaml", family_text("chatty"))
    monkeypatch.setattr(catalog, "builtin_catalog_dir", lambda: folder)
    monkeypatch.setenv("ZOO_DISABLE_PLUGINS", REAL_ENGINES)
    return folder


@pytest.fixture
def engine_plugin(kinds_catalog: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "site"
    info = root / "zoo_kind_engines-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: zoo-kind-engines\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[zoo]\nkindengines = zoo_kind_engines_test\n")
    (root / "zoo_kind_engines_test.py").write_text(ENGINES)
    monkeypatch.syspath_prepend(str(root))


def zoo(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``zoo ARGS`` through its entry function, as a fresh process would run it."""
    plugin_manager.cache_clear()
    capsys.readouterr()
    try:
        main(list(args))
        code = 0
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def names(out: str) -> list[str]:
    return [f["name"] for f in json.loads(out)["families"]]


def fact(out: str, label: str) -> str:
    """The value of one ``zoo show`` line (labels may hold spaces: "query prompt")."""
    found = re.search(rf"^{re.escape(label)}  +(.*?)\s*$", out, re.M)
    assert found, f"no {label!r} line in:\n{out}"
    return found.group(1)


def test_list_filters_by_kind(kinds_catalog: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for kind, expected in (
        ("embedding", ["tiny-embed"]),
        ("rerank", ["tiny-rerank"]),
        ("llm", ["chatty"]),
    ):
        code, out, err = zoo(capsys, "list", "--kind", kind, "--json")
        assert code == 0, err
        assert names(out) == expected
    code, out, _ = zoo(capsys, "list", "--json")
    assert {f["name"]: f["kind"] for f in json.loads(out)["families"]} == {
        "chatty": "llm",
        "tiny-embed": "embedding",
        "tiny-rerank": "rerank",
    }
    # Filters combine: no embedding model has the chat ability.
    code, _, err = zoo(capsys, "list", "--kind", "embedding", "--ability", "chat")
    assert (code, err) == (0, "no model families match\n")


def test_list_refuses_an_unknown_kind_in_one_line(
    kinds_catalog: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = zoo(capsys, "list", "--kind", "embeding")
    assert (code, out) == (2, "")
    assert err == "zoo: error: unknown kind 'embeding' (did you mean 'embedding'?)\n"
    _, _, err = zoo(capsys, "list", "--kind", "image")
    assert err == "zoo: error: unknown kind 'image' (choose from llm, embedding, rerank)\n"


def test_list_abilities_are_the_schemas(
    kinds_catalog: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from zoo.catalog.schema import schema
    from zoo.kinds import ABILITIES

    assert tuple(schema()["properties"]["abilities"]["items"]["enum"]) == ABILITIES
    # Abilities that became kinds point at --kind instead of listing nothing.
    for ability, hint in (("embed", "--kind embedding"), ("rerank", "--kind rerank")):
        code, out, err = zoo(capsys, "list", "--ability", ability)
        assert (code, out) == (2, "")
        assert err == (f"zoo: error: {ability!r} is a model kind, not an ability (use {hint})\n")
    code, out, err = zoo(capsys, "list", "--ability", "tool")
    assert (code, out) == (2, "")
    assert err == "zoo: error: unknown ability 'tool' (did you mean 'tools'?)\n"
    code, out, err = zoo(capsys, "list", "--ability", "chat", "--json")
    assert code == 0, err
    assert names(out) == ["chatty"]


def test_the_listing_marks_the_kinds_within_80_columns(
    kinds_catalog: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    code, out, err = zoo(capsys, "list")
    assert code == 0, err
    rows = {line.split()[0]: line.split(None, 1)[1] for line in out.splitlines()[1:]}
    assert rows["tiny-embed"].startswith("embedding model  pytorch")
    assert rows["tiny-rerank"].startswith("reranker")
    assert rows["chatty"].startswith("chat ")
    assert max(len(line) for line in out.splitlines()) <= 80


def test_search_matches_the_kind(kinds_catalog: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = zoo(capsys, "search", "embedding", "--json")
    assert code == 0 and names(out) == ["tiny-embed"]
    _, out, _ = zoo(capsys, "search", "reranker", "--json")
    assert names(out) == ["tiny-rerank"]
    _, out, _ = zoo(capsys, "search", "rerank", "--json")
    assert names(out) == ["tiny-rerank"]


def test_show_an_embedding_model(kinds_catalog: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = zoo(capsys, "show", "tiny-embed")
    assert code == 0, err
    assert fact(out, "kind") == "embedding model: POST /v1/embeddings"
    assert fact(out, "dimensions") == "384"
    assert fact(out, "matryoshka") == "256, 128"
    assert fact(out, "pooling") == "mean"
    assert fact(out, "normalized") == "yes"
    # Quoted: the trailing space of a prompt is part of it.
    assert fact(out, "query prompt") == '"query: "'
    assert fact(out, "document prompt") == '"passage: "'
    assert fact(out, "max tokens") == "512"
    # No LLM facts: an embedding model has no abilities, and its context is its max input.
    labels = {line.split("  ")[0] for line in out.splitlines()}
    assert not labels & {"abilities", "context", "stop", "reasoning", "tool parser", "fim"}


def test_show_a_reranker_and_a_language_model(
    kinds_catalog: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, out, _ = zoo(capsys, "show", "tiny-rerank")
    assert fact(out, "kind") == "reranker: POST /v1/rerank (also /rerank, /v2/rerank)"
    assert fact(out, "rerank type") == "cross-encoder"
    assert fact(out, "max tokens") == "512"
    assert not re.search(r"^(abilities|context|dimensions) ", out, re.M)
    _, out, _ = zoo(capsys, "show", "chatty")
    assert fact(out, "kind") == "language model: POST /v1/chat/completions (also /v1/completions)"
    assert fact(out, "abilities") == "chat"
    assert fact(out, "context") == "2K (2048 tokens)"
    assert not re.search(r"^(max tokens|dimensions|rerank type) ", out, re.M)


def test_show_escapes_control_characters_in_prompts(
    kinds_catalog: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = EMBEDDING.replace('query: "query: "', 'query: "\\e[2Jquery: "')
    write(kinds_catalog, "tiny-embed.yaml", text)
    _, out, _ = zoo(capsys, "show", "tiny-embed")
    assert "\x1b" not in out
    assert fact(out, "query prompt") == '"\\u001b[2Jquery: "'


def test_dry_run_states_the_kind_and_its_route(
    engine_plugin: None, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = zoo(capsys, "launch", "tiny-embed", "--dry-run", *PROFILE)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[:5] == [
        "model:        tiny-embed",
        (
            "kind:         embedding model: 384 dimensions (or 256, 128), mean pooling, "
            "normalized, max 512 tokens"
        ),
        'prompts:      query "query: ", document "passage: "',
        "route:        POST /v1/embeddings",
        "host:         cpu-24g",
    ]
    # The engine that serves embeddings was chosen, and it is told the kind.
    assert "engine:       vectors on cpu" in lines
    assert "--task embedding" in out
    code, out, err = zoo(capsys, "launch", "tiny-rerank", "--explain", *PROFILE)
    assert code == 0, err
    assert "kind:         reranker: cross-encoder, max 512 tokens" in out
    assert "route:        POST /v1/rerank" in out
    [dropped] = [line for line in out.splitlines() if line.startswith("  x ")]
    # Either layout of --explain (one row per candidate, or grouped by reason) names both.
    assert "chatonly" in dropped
    assert "does not serve rerankers (serves language models)" in dropped
    # A language model's plan names no kind: that is the default, served on the chat route.
    code, out, err = zoo(capsys, "launch", "chatty", "--dry-run", *PROFILE)
    assert code == 0, err
    assert "engine:       chatonly on cpu" in out
    assert not re.search(r"^(kind|route):", out, re.M)


def test_every_kind_is_planned_memory_for_its_longest_input(
    engine_plugin: None, capsys: pytest.CaptureFixture[str]
) -> None:
    # A decoder-based embedding model or reranker holds its input's keys and values during
    # the pass: paging engines are given that figure, so it is planned for every kind.
    for name in ("tiny-embed", "tiny-rerank", "chatty"):
        code, out, err = zoo(capsys, "launch", name, "--dry-run", "--json", *PROFILE)
        assert code == 0, err
        assert json.loads(out)["memory"]["kv_cache_bytes"] > 0
        code, out, err = zoo(capsys, "launch", name, "--dry-run", *PROFILE)
        assert re.search(r"KV cache \S+ GiB for \d+ tokens", fact(out, "memory:"))


def test_a_kind_no_engine_serves_is_one_line(
    engine_plugin: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Naming an engine that serves language models only.
    code, out, err = zoo(capsys, "launch", "tiny-embed", "--engine", "chatonly", "--dry-run")
    assert (code, out) == (2, "")
    assert err == (
        "zoo: error: tiny-embed --engine chatonly cannot run: Chat-only does not serve "
        "embedding models (serves language models); on this machine: pytorch 0.02B none with "
        "Vectors\n"
    )
    # No installed engine serves embeddings at all.
    monkeypatch.setenv("ZOO_DISABLE_PLUGINS", REAL_ENGINES + ", kindengines")
    code, out, err = zoo(capsys, "launch", "tiny-embed", "--dry-run", *PROFILE)
    assert (code, out) == (2, "")
    assert err == (
        "zoo: error: tiny-embed cannot run: no installed engine runs pytorch (engines are "
        "plugins, e.g. pip install zoo-launcher-llamacpp; see `zoo plugins`)\n"
    )


def test_engines_show_the_kinds_they_serve(
    engine_plugin: None, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = zoo(capsys, "engines", "--json", *PROFILE)
    assert code == 0, err
    kinds = {row["name"]: row["kinds"] for row in json.loads(out)["engines"]}
    assert kinds == {"chatonly": ["llm"], "vectors": ["embedding", "rerank"]}
    _, out, _ = zoo(capsys, "engines", *PROFILE)
    rows = {line.split()[0]: line for line in out.splitlines()}
    assert re.match(r"vectors +yes +pytorch +embedding, rerank +runs here on cpu$", rows["vectors"])
    assert re.match(r"chatonly +yes +pytorch +llm +runs here on cpu$", rows["chatonly"])


def test_engines_for_a_model_say_why_an_engine_has_no_row(
    engine_plugin: None, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = zoo(capsys, "engines", "--model", "tiny-embed", *PROFILE)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[1].split()[:4] == ["vectors", "pytorch", "0.02B", "none"]
    assert lines[-1] == (
        "not shown: chatonly: does not serve embedding models (serves language models)"
    )
    code, out, err = zoo(capsys, "engines", "--model", "chatty", *PROFILE)
    assert code == 0, err
    assert out.splitlines()[-1] == (
        "not shown: vectors: does not serve language models (serves embedding models, rerankers)"
    )


def test_an_unknown_kind_value_in_a_spec_is_never_listed(
    kinds_catalog: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(
        kinds_catalog,
        "odd.yaml",
        family_text("odd").replace("abilities: [chat]\n", "kind: image\n"),
    )
    code, out, err = zoo(capsys, "list", "--json")
    assert code == 0
    assert "odd" not in names(out)
    assert "1 spec file(s) have errors and were skipped" in err
