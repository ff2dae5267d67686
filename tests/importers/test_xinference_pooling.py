"""`zoo import xinference` / `zoo export xinference --kind` on Xinference's real embedding and
rerank registries.

tests/importers/data/{embedding,rerank}_model_spec.json are Xinference's built-in registries
(Apache-2.0; see SOURCE.md beside them): 43 embedding models with 47 specs, 17 rerankers with
24 specs.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from zoo.catalog.catalog import load_catalog
from zoo.cli.app import build_app, main
from zoo.importers.xinference import is_generated
from zoo.importers.xinference_pooling import (
    RERANK_TYPES,
    load_supplement,
)

DATA = Path(__file__).parent / "data"
REPO_SPECS = Path(__file__).parents[2] / "specs"
COMMIT = "7ecec16b63383e18e4af790c4b522fb7d79f7e77"
KINDS = ("embedding", "rerank")


def source(kind: str) -> Path:
    return DATA / f"{kind}_model_spec.json"


def original(kind: str) -> list[dict[str, Any]]:
    return json.loads(source(kind).read_text(encoding="utf-8"))


def run(*args: str) -> Any:
    result = CliRunner().invoke(build_app(with_plugins=False), list(args))
    assert result.exit_code == 0, (result.output, result.exception)
    return result


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = {}
    for kind in KINDS:
        out[kind] = tmp_path_factory.mktemp(kind)
        run("import", "xinference", str(source(kind)), "--out", str(out[kind]))
    return out


def test_the_sources_are_the_full_registries() -> None:
    for kind, counts in (("embedding", (43, 47)), ("rerank", (17, 24))):
        families = original(kind)
        assert (len(families), sum(len(f["model_specs"]) for f in families)) == counts


@pytest.mark.parametrize("kind", KINDS)
def test_import_writes_one_file_per_model_with_its_registry_in_the_header(
    imported: dict[str, Path], kind: str
) -> None:
    files = sorted(imported[kind].glob("*.yaml"))
    assert {p.stem for p in files} == {f["model_name"].lower() for f in original(kind)}
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert text.startswith("# yaml-language-server: $schema=../zoo/catalog/spec.schema.json\n")
        assert COMMIT in text and "Apache-2.0" in text and "xinference_supplement.yaml" in text
        assert is_generated(path, kind) and not is_generated(path)  # not the LLM import's


@pytest.mark.parametrize("kind", KINDS)
def test_export_gives_back_every_entry_byte_for_byte(
    imported: dict[str, Path], tmp_path: Path, kind: str
) -> None:
    out = tmp_path / "model_spec.json"
    result = run(
        "export", "xinference", "--kind", kind, "--specs", str(imported[kind]), "--out", str(out)
    )
    assert result.stderr.strip() == f"exported {len(original(kind))} families to {out}"
    exported = json.loads(out.read_text(encoding="utf-8"))
    # json.dumps keeps key order and tells 7 from "7": both are facts of the file.
    mine = {f["model_name"]: json.dumps(f) for f in exported}
    theirs = {f["model_name"]: json.dumps(f) for f in original(kind)}
    assert mine.keys() == theirs.keys()
    for name, text in theirs.items():
        assert mine[name] == text, name
    # The catalog lists families by name; in that order the text is upstream's, to the byte.
    by_name = sorted(original(kind), key=lambda f: str(f["model_name"]).lower())
    assert out.read_text(encoding="utf-8") == json.dumps(by_name, indent=2, ensure_ascii=False) + (
        "\n"
    )


def test_importing_twice_changes_nothing(imported: dict[str, Path], tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(imported["rerank"], copy)
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in copy.iterdir()}
    result = run("import", "xinference", str(source("rerank")), "--out", str(copy))
    assert "imported 17 rerank families" in result.stdout and "0 written, 17 unchanged" in (
        result.stdout
    )
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in copy.iterdir()} == before


def test_the_imported_families_validate_without_a_problem(imported: dict[str, Path]) -> None:
    for kind in KINDS:
        catalog = load_catalog([imported[kind]])
        assert catalog.problems == [], catalog.problems
        assert {f.kind for f in catalog} == {kind}
        assert all(f.abilities == () for f in catalog)
        # Every spec has a size for memory planning, from the supplement.
        assert all(s.size > 0 for f in catalog for s in f.specs)
    sizes = sum(len(f.specs) for k in KINDS for f in load_catalog([imported[k]]))
    assert sizes == 47 + 24


def test_embedding_facts(imported: dict[str, Path]) -> None:
    catalog = load_catalog([imported["embedding"]])
    qwen = catalog.get("Qwen3-Embedding-0.6B")
    assert qwen.name == "qwen3-embedding-0.6b"
    assert qwen.extra["xinference"]["model_name"] == "Qwen3-Embedding-0.6B"
    assert qwen.context_length == 32768 and qwen.languages == ("zh", "en")
    assert qwen.embedding is not None
    assert (qwen.embedding.dimensions, qwen.embedding.pooling) == (1024, "last")
    assert qwen.embedding.supports_dimensions(256) and not qwen.embedding.supports_dimensions(1025)
    assert [(s.format, s.size) for s in qwen.specs] == [("pytorch", 0.596), ("ggufv2", 0.596)]
    gguf = qwen.specs[1].source("huggingface")
    assert gguf is not None and gguf.file == "Qwen3-Embedding-0.6B-{quantization}.gguf"
    e5 = catalog.get("e5-large-v2").embedding
    assert e5 is not None and (e5.query_prefix, e5.document_prefix) == ("query: ", "passage: ")
    bge = catalog.get("bge-base-en-v1.5").embedding
    assert bge is not None and bge.pooling == "cls" and bge.normalized is True
    assert bge.query_prefix == "Represent this sentence for searching relevant passages: "
    assert bge.document_prefix is None
    # Supplement facts are marked unverified (the spec format has no family-level mechanism).
    assert catalog.get("e5-large-v2").extra["unverified"] == [
        "size",
        "embedding.pooling",
        "embedding.normalized",
        "embedding.prompts",
    ]
    assert catalog.get("gte-large").extra["unverified"] == ["size", "embedding.pooling"]
    # Not ISO codes: "multilingual" and "89 languages supported" are ISO 639-2 "mul".
    assert catalog.get("jina-clip-v2").languages == ("mul",)
    assert catalog.get("jina-embeddings-v5-text-nano").languages == ("mul",)
    # Multimodal models are embedding models too; what is special is in the description.
    assert "images" in catalog.get("jina-clip-v2").description
    assert "trust_remote_code" in catalog.get("jina-embeddings-v3").description


def test_a_supplement_correction_is_used_and_upstream_kept(imported: dict[str, Path]) -> None:
    catalog = load_catalog([imported["embedding"]])
    jina = catalog.get("jina-embeddings-v2-base-en")
    assert jina.embedding is not None and jina.embedding.dimensions == 768
    assert jina.extra["xinference"]["dimensions"] == 512  # exported back as upstream has it
    assert "embedding.dimensions" in jina.extra["unverified"]


def test_rerank_types(imported: dict[str, Path]) -> None:
    catalog = load_catalog([imported["rerank"]])
    types = {f.name: f.rerank.type for f in catalog if f.rerank is not None}
    assert len(types) == 17
    assert types["bge-reranker-v2-m3"] == "cross-encoder"  # "normal"
    assert types["bge-reranker-v2-gemma"] == "llm"  # "LLM-based"
    assert types["bge-reranker-v2-minicpm-layerwise"] == "llm-layerwise"
    # Xinference says "normal" for the Qwen3 rerankers; they are language models.
    assert types["qwen3-reranker-8b"] == "llm"
    assert catalog.get("qwen3-reranker-8b").extra["xinference"]["type"] == "normal"
    assert set(RERANK_TYPES) == {f["type"] for f in original("rerank")}
    # Two GGUF specs of one model (different file name templates) both stay.
    qwen = catalog.get("Qwen3-Reranker-0.6B")
    assert [s.format for s in qwen.specs] == ["pytorch", "ggufv2", "ggufv2"]
    assert [s.quantizations for s in qwen.specs][2] == ("Q8_0",)


def test_the_supplement_covers_exactly_the_registries() -> None:
    supplement = load_supplement()
    for kind in KINDS:
        names = {f["model_name"] for f in original(kind)}
        assert set(supplement[kind]) == names, kind  # no model without a size, none stale
    for facts in supplement["embedding"].values():
        cuts = facts.block.get("matryoshka_dimensions", [])
        dimensions = facts.block.get("dimensions")
        assert all(c < (dimensions or 65536) for c in cuts)


def test_reports_what_was_corrected_or_kept(tmp_path: Path) -> None:
    result = run("import", "xinference", str(source("embedding")), "--out", str(tmp_path))
    report = result.stderr
    assert (
        "jina-embeddings-v2-base-en: embedding.dimensions: Xinference says 512, the supplement "
        "768 (used" in report
    )
    assert 'jina-clip-v2: kept `language` = ["89 languages supported"] verbatim' in report
    # Documented Xinference-only facts are not reported.
    assert "virtualenv" not in report and "updated_at" not in report


def test_the_llm_import_and_these_share_a_folder(imported: dict[str, Path], tmp_path: Path) -> None:
    """Each import replaces and removes only its own files."""
    for kind in KINDS:
        shutil.copytree(imported[kind], tmp_path, dirs_exist_ok=True)
    ours = sorted(p.name for p in tmp_path.glob("*.yaml"))
    llm = DATA / "llm_family.json"
    run("import", "xinference", str(llm), "--out", str(tmp_path))
    assert len(list(tmp_path.glob("*.yaml"))) == len(ours) + 162
    stale = tmp_path / "gone-reranker.yaml"
    stale.write_text(
        (tmp_path / "bge-reranker-base.yaml").read_text().replace("bge-reranker-base", "gone")
    )
    result = run("import", "xinference", str(source("rerank")), "--out", str(tmp_path))
    assert "1 removed" in result.stdout and not stale.exists()
    result = run("import", "xinference", str(source("embedding")), "--out", str(tmp_path))
    assert "0 written, 43 unchanged" in result.stdout and "0 removed" in result.stdout
    catalog = load_catalog([tmp_path])
    # (Xinference's LLM registry brings warnings of its own: W301 on some Qwen3-VL sizes.)
    assert [p for p in catalog.problems if p.code != "W301"] == []
    assert len(catalog) == len(ours) + 162


def test_a_hand_written_family_of_the_same_name_wins(tmp_path: Path) -> None:
    ours = tmp_path / "bge-m3.yaml"
    ours.write_text(
        "name: bge-m3\nkind: embedding\ndescription: ours\ncontext_length: 8192\n"
        "languages: [mul]\nembedding: {dimensions: 1024}\nspecs:\n  - format: pytorch\n"
        "    size: 0.568\n    sources:\n      huggingface: {model_id: BAAI/bge-m3, "
        "quantizations: [none]}\n",
        encoding="utf-8",
    )
    before = ours.read_bytes()
    result = run("import", "xinference", str(source("embedding")), "--out", str(tmp_path))
    assert ours.read_bytes() == before
    assert "42 written, 0 unchanged, 1 kept hand-written" in result.stdout
    lines = [line for line in result.stderr.splitlines() if line.startswith("bge-m3:")]
    assert "hand-written bge-m3.yaml wins" in lines[0]
    assert any("spec ggufv2 0.568B: only theirs has it" in line for line in lines)


def test_no_imported_name_collides_with_another_family_in_the_repository() -> None:
    imported = {
        p.stem: p for p in REPO_SPECS.glob("*.yaml") if any(is_generated(p, kind) for kind in KINDS)
    }
    assert len(imported) == 43 + 17
    names: dict[str, list[Path]] = {}
    for path in REPO_SPECS.glob("*.yaml"):
        catalog = load_catalog([path])
        for family in catalog:
            names.setdefault(family.name, []).append(path)
    assert all(len(paths) == 1 for paths in names.values()), {
        n: p for n, p in names.items() if len(p) > 1
    }


def test_export_of_the_repository_catalog_by_kind(tmp_path: Path) -> None:
    out = tmp_path / "embedding.json"
    result = run(
        "export", "xinference", "--kind", "embedding", "--specs", str(REPO_SPECS), "--out", str(out)
    )
    exported = {f["model_name"]: f for f in json.loads(out.read_text(encoding="utf-8"))}
    catalog = load_catalog([REPO_SPECS])
    assert exported.keys() == {
        f.extra.get("xinference", {}).get("model_name", f.name)
        for f in catalog
        if f.kind == "embedding"
    }
    assert "Qwen3-Embedding-0.6B" in exported and "qwq-32b" not in exported
    # A hand-written family exports too, and the facts Xinference has no place for are named
    # (for imported ones they are the supplement's, not reported).
    nomic = exported["nomic-embed-text-v1.5"]
    assert (nomic["dimensions"], nomic["max_tokens"], nomic["language"]) == (768, 8192, ["en"])
    assert "nomic-embed-text-v1.5: Xinference cannot hold" in result.stderr
    assert "embedding.prompts" in result.stderr
    assert "qwen3-embedding-0.6b:" not in result.stderr
    # The LLM export leaves embedding models and rerankers to their registries.
    llm = tmp_path / "llm.json"
    run("export", "xinference", "--specs", str(REPO_SPECS), "--out", str(llm))
    names = {f["model_name"] for f in json.loads(llm.read_text(encoding="utf-8"))}
    assert "bge-m3" not in names and "bge-reranker-v2-m3" not in names and "QwQ-32B" in names


def test_generated_files_in_the_repository_match_a_fresh_import(tmp_path: Path) -> None:
    """specs/ holds both imports' output: regenerate them and compare (drift check)."""
    for kind in KINDS:
        generated = [p for p in REPO_SPECS.glob("*.yaml") if is_generated(p, kind)]
        if not generated:
            pytest.fail(f"specs/ holds no imported {kind} families: run `zoo import xinference`")
        out = tmp_path / kind
        out.mkdir()
        for path in REPO_SPECS.glob("*.yaml"):
            if not is_generated(path, kind):
                shutil.copy(path, out / path.name)
        run("import", "xinference", str(source(kind)), "--out", str(out))
        fresh = {p.name for p in out.glob("*.yaml") if is_generated(p, kind)}
        assert fresh == {p.name for p in generated}
        for path in generated:
            assert (out / path.name).read_text() == path.read_text(), path.name


def _entry(**changes: Any) -> list[dict[str, Any]]:
    entry = next(f for f in original("embedding") if f["model_name"] == "bge-m3")
    return [entry | changes]


def _rerank_entry(**changes: Any) -> list[dict[str, Any]]:
    entry = next(f for f in original("rerank") if f["model_name"] == "bge-reranker-v2-m3")
    return [entry | changes]


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        (_entry(dimensions="1024"), (), "bge-m3: dimensions '1024' is not a whole number"),
        (_entry(dimensions=0), (), "bge-m3: dimensions 0 is not a whole number from 1 to 65536"),
        (_entry(dimensions=True), (), "bge-m3: dimensions True is not a whole number"),
        (_entry(max_tokens=-1), (), "bge-m3: max_tokens -1 is not a whole number"),
        (_entry(language="en"), (), "bge-m3: language 'en' is not a list of names"),
        (_entry(model_name="../../etc/x"), (), "no size in xinference_supplement.yaml"),
        (
            _rerank_entry(type="listwise"),
            (),
            (
                "bge-reranker-v2-m3: type 'listwise' is not one of 'normal', 'LLM-based', "
                "'LLM-based layerwise'"
            ),
        ),
        (
            _rerank_entry(),
            ("--kind", "embedding"),
            "bge-reranker-v2-m3: no dimensions: not an entry of the embedding registry",
        ),
        ([], (), "no model families in it: cannot tell which registry it is (pass --kind)"),
        (_entry(), ("--kind", "image"), "--kind 'image': expected one of llm, embedding, rerank"),
    ],
)
def test_bad_input_is_one_friendly_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: Any,
    args: tuple[str, ...],
    message: str,
) -> None:
    bad = tmp_path / "model_spec.json"
    bad.write_text(json.dumps(content), encoding="utf-8")
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        main(["import", "xinference", str(bad), "--out", str(out), *args])
    assert exit_info.value.code in (1, 2)
    err = capsys.readouterr().err
    assert err.startswith("zoo: error: ") and message in err, err
    assert "Traceback" not in err and len(err.strip().splitlines()) <= 2  # the line (+ a hint)
    assert not any(out.glob("*.yaml"))  # nothing half-written


def test_a_bad_supplement_is_one_line(tmp_path: Path) -> None:
    from zoo.importers.xinference import XinferenceFormatError
    from zoo.importers.xinference_pooling import import_registry

    supplement = tmp_path / "supplement.yaml"
    supplement.write_text("embedding:\n  bge-m3: {size: big}\n", encoding="utf-8")
    with pytest.raises(XinferenceFormatError, match=r"bge-m3: size 'big' is not a number"):
        import_registry(source("embedding"), tmp_path / "out", supplement=supplement)
    supplement.write_text("embedding:\n  bge-m3: {size: 1, pooling: cls, colour: red}\n")
    with pytest.raises(XinferenceFormatError, match=r"unknown key 'colour'"):
        import_registry(source("embedding"), tmp_path / "out", supplement=supplement)


def test_a_spec_zoo_cannot_download_stays_in_extra_and_exports_in_place() -> None:
    from zoo.catalog.model import family_from_data
    from zoo.importers.xinference_pooling import EMBEDDING, Facts, convert_family, export_family

    entry = next(f for f in original("embedding") if f["model_name"] == "bge-m3")
    odd = {"model_format": "pytorch", "model_src": {"huggingface": {"model_id": "a/b/c"}}}
    entry = entry | {"model_specs": [odd, *entry["model_specs"]]}
    facts = {"bge-m3": Facts(kind="embedding", size=0.568, block={"pooling": "cls"})}
    conversion = convert_family(entry, EMBEDDING, facts)
    doc = conversion.document
    assert [s["format"] for s in doc["specs"]] == ["pytorch", "ggufv2"]
    assert doc["extra"]["xinference"]["unlisted_specs"] == [{"index": 0, "spec": odd}]
    assert doc["extra"]["unverified"] == ["size", "embedding.pooling"]
    assert any("not offered (model id 'a/b/c' is not org/name)" in n for n in conversion.notes)
    exported, _ = export_family(family_from_data(doc), EMBEDDING)
    assert json.dumps(exported) == json.dumps(entry)
