"""The corrections overlay (zoo/importers/xinference_corrections.yaml) on Xinference's registry.

The import applies it, the generated specs keep upstream's values (plain export gives back the
registry byte for byte), ``--corrected`` exports the corrected facts, and a correction that no
longer applies fails the import instead of rotting.
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from zoo.catalog.validate import check_file
from zoo.cli.app import build_app
from zoo.importers import corrections
from zoo.importers.corrections import CorrectionsError
from zoo.importers.xinference import convert_family, import_registry, is_generated

DATA = Path(__file__).parent / "data" / "llm_family.json"
REPO_SPECS = Path(__file__).parents[2] / "specs"


def run(*args: str) -> Any:
    result = CliRunner().invoke(build_app(with_plugins=False), list(args))
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def upstream() -> dict[str, dict[str, Any]]:
    return {f["model_name"]: f for f in json.loads(DATA.read_text(encoding="utf-8"))}


def by_name(families: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {f["model_name"].lower(): f for f in families}


OVERLAY = corrections.load()["llm"]


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh import with the overlay, beside specs/' hand-written families (they win)."""
    out = tmp_path_factory.mktemp("corrected")
    import_registry(DATA, with_hand_written(out))
    return out


def with_hand_written(folder: Path) -> Path:
    for path in REPO_SPECS.glob("*.yaml"):
        if not is_generated(path):
            shutil.copy(path, folder / path.name)
    return folder


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Xinference's facts as they are: the same import without the overlay."""
    out = tmp_path_factory.mktemp("raw")
    import_registry(DATA, with_hand_written(out), overlay=None)
    return out


@pytest.fixture(scope="module")
def exported(fresh: Path, raw: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("exported")
    files = {k: out / f"{k}.json" for k in ("plain", "corrected", "raw")}
    run("export", "xinference", "--specs", str(fresh), "--out", str(files["plain"]))
    run(
        "export",
        "xinference",
        "--specs",
        str(fresh),
        "--corrected",
        "--out",
        str(files["corrected"]),
    )
    run("export", "xinference", "--specs", str(raw), "--out", str(files["raw"]))
    return files


def test_the_overlay_corrects_families_of_the_registry() -> None:
    # A family renamed upstream would leave its corrections unapplied (the import notes it).
    assert set(OVERLAY) <= set(by_name(list(upstream().values())))
    assert len(OVERLAY) >= 20


def test_specs_hold_what_a_fresh_import_with_the_overlay_writes(fresh: Path) -> None:
    # (seed-oss's correction applies where its hand-written spec is not beside the import.)
    assert not is_generated(REPO_SPECS / "seed-oss.yaml")
    for name in set(OVERLAY) - {"seed-oss"}:
        mine = REPO_SPECS / f"{name}.yaml"
        assert is_generated(mine), name
        text = mine.read_text(encoding="utf-8")
        assert text == (fresh / mine.name).read_text(encoding="utf-8"), name
        assert "corrected: [" in text, name


def imported(folder: Path) -> dict[str, dict[str, Any]]:
    """Upstream's families that ``folder`` holds as imported (hand-written ones win)."""
    return {
        name: family
        for name, family in upstream().items()
        if is_generated(folder / f"{name.lower()}.yaml")
    }


def test_plain_export_gives_back_upstream(exported: dict[str, Path], fresh: Path) -> None:
    mine = by_name(json.loads(exported["plain"].read_text(encoding="utf-8")))
    for name, family in imported(fresh).items():
        assert json.dumps(mine[name.lower()], sort_keys=True) == json.dumps(
            family, sort_keys=True
        ), name
    # The corrected families come back byte for byte as the import without the overlay gives
    # them (key order included).
    plain = exported["plain"].read_text(encoding="utf-8")
    assert plain == exported["raw"].read_text(encoding="utf-8")


def test_corrected_export_has_the_corrections(exported: dict[str, Path], fresh: Path) -> None:
    fixed = by_name(json.loads(exported["corrected"].read_text(encoding="utf-8")))
    for name, family in imported(fresh).items():
        expected = family
        if name.lower() in OVERLAY:
            expected, _ = corrections.apply(family, OVERLAY[name.lower()])
            assert json.dumps(fixed[name.lower()]) != json.dumps(family), name
        assert json.dumps(fixed[name.lower()], sort_keys=True) == json.dumps(
            expected, sort_keys=True
        ), name
    # A few facts by hand, as the model cards give them.
    specs = fixed["deepseek-r1-distill-llama"]["model_specs"]
    assert (specs[7]["model_format"], specs[7]["model_size_in_billions"]) == ("ggufv2", 8)
    for src in specs[3]["model_src"].values():
        assert (
            src["model_file_name_template"] == "DeepSeek-R1-Distill-Llama-70B-{quantization}.gguf"
        )
    moe = fixed["qwen2-moe-instruct"]["model_specs"]
    assert {(s["model_size_in_billions"], s["activated_size_in_billions"]) for s in moe} == {
        (57, 14)
    }
    assert fixed["qwen1.5-moe-chat"]["model_specs"][0]["model_size_in_billions"] == "14_3"
    qwen = fixed["qwen2.5-instruct"]["model_specs"]
    q8 = qwen[24]["model_src"]["huggingface"]["quantization_parts"]["q8_0"]
    assert q8 == ["00001-of-00003", "00002-of-00003", "00003-of-00003"]
    fp16 = qwen[37]["model_src"]["huggingface"]["quantization_parts"]["fp16"]
    assert len(fp16) == 42 and fp16[-1] == "00042-of-00042"
    assert "fp16" not in qwen[37]["model_src"]["modelscope"]["quantization_parts"]
    assert list(qwen[48]["model_src"]) == ["huggingface"]
    glm = fixed["glm4-0414"]["model_specs"][5]["model_src"]["huggingface"]
    assert glm["model_id"] == "bartowski/THUDM_GLM-4-32B-0414-GGUF"
    assert (
        "model_file_name_template"
        not in fixed["ernie4.5"]["model_specs"][7]["model_src"]["huggingface"]
    )
    assert fixed["hy-mt2-1.8b"]["model_specs"][1]["model_format"] == "fp8"
    assert fixed["opt"]["model_specs"][0]["model_size_in_billions"] == "0_125"
    assert "chat_template" not in fixed["deepseek-v3"]
    vl = [s for s in fixed["qwen3-vl-thinking"]["model_specs"] if s["model_format"] == "mlx"]
    assert all(s.get("activated_size_in_billions") != s["model_size_in_billions"] for s in vl)


def test_generated_specs_keep_upstream_values_and_mark_unverified_ones(fresh: Path) -> None:
    import yaml

    doc = yaml.safe_load((fresh / "deepseek-r1-distill-llama.yaml").read_text(encoding="utf-8"))
    gguf_8b = doc["specs"][7]
    assert gguf_8b["size"] == 8
    assert gguf_8b["extra"]["xinference"] == {
        "model_size_in_billions": "1_5",
        "corrected": ["model_size_in_billions"],
    }
    assert gguf_8b["extra"]["unverified"] == ["size"]
    hf_70b = doc["specs"][3]["sources"]["huggingface"]
    assert hf_70b["unverified"] == ["file"]
    assert hf_70b["extra"]["xinference"]["model_file_name_template"].startswith(
        "DeepSeek-R1-Distill-Qwen-7B"
    )
    # Added where upstream has none: the plain export leaves it out again.
    gemma = yaml.safe_load((fresh / "gemma-4.yaml").read_text(encoding="utf-8"))
    moe = [s for s in gemma["specs"] if s["size"] == 26]
    assert [s["activated_size"] for s in moe] == [4, 4, 4]
    assert all(s["extra"]["xinference"]["corrected"] == ["activated_size_in_billions"] for s in moe)
    assert all("activated_size_in_billions" not in s["extra"]["xinference"] for s in moe)


def test_without_the_overlay_the_facts_are_wrong(raw: Path, fresh: Path) -> None:
    import yaml

    def load(folder: Path, name: str) -> dict[str, Any]:
        data: dict[str, Any] = yaml.safe_load((folder / f"{name}.yaml").read_text("utf-8"))
        return data

    for folder, sizes in ((raw, {(14, None)}), (fresh, {(57, 14)})):
        specs = load(folder, "qwen2-moe-instruct")["specs"]
        assert {(s["size"], s.get("activated_size")) for s in specs} == sizes
    assert load(raw, "deepseek-r1-distill-llama")["specs"][7]["size"] == 1.5
    assert load(raw, "opt")["specs"][0]["size"] == 1
    assert "chat_template" in load(raw, "deepseek-v3")
    assert "chat_template" not in load(fresh, "deepseek-v3")
    vl = load(raw, "qwen3-vl-instruct")["specs"]
    assert any(s.get("activated_size") == s["size"] for s in vl)
    vl = load(fresh, "qwen3-vl-instruct")["specs"]
    assert not any(s.get("activated_size") == s["size"] for s in vl)


def test_without_the_overlay_the_lints_find_each_corrected_family(raw: Path, fresh: Path) -> None:
    pytest.importorskip("zoo.catalog.lint_facts")  # the fact lints (issue 15's LINTS part)
    for name in set(OVERLAY) - {"seed-oss"}:  # hand-written: it wins in both folders
        before = check_file(raw / f"{name}.yaml").problems
        after = check_file(fresh / f"{name}.yaml").problems
        assert before, f"{name}: the lints find nothing wrong in Xinference's facts"
        assert after == [], (name, [p.message for p in after])


# ---------------------------------------------------------------------------------------------
# An overlay that no longer fits


def family(name: str) -> dict[str, Any]:
    return copy.deepcopy(upstream()[name])


def overlay(tmp_path: Path, text: str) -> dict[str, list[corrections.Correction]]:
    path = tmp_path / "corrections.yaml"
    path.write_text(text, encoding="utf-8")
    return corrections.load(path)["llm"]


ENTRY = """
llm:
  opt:
    - spec: SELECTOR
      set: {size: SIZE}
      why: facebook/opt-125m has 125M parameters.
      source: https://huggingface.co/facebook/opt-125m
      verified: false
"""


@pytest.mark.parametrize(
    ("selector", "size"),
    [("{format: ggufv2}", "0.125"), ("{model_id: facebook/opt-350m}", "0.125"), ("{}", "1")],
    ids=["no such format", "no such repository", "changes nothing"],
)
def test_a_correction_that_matches_nothing_fails_naming_it(
    tmp_path: Path, selector: str, size: str
) -> None:
    fixes = overlay(tmp_path, ENTRY.replace("SELECTOR", selector).replace("SIZE", size))
    with pytest.raises(CorrectionsError, match=r"opt correction 1 \(set size\) matches nothing"):
        convert_family(family("opt"), fixes)


def test_the_import_fails_on_a_stale_correction(tmp_path: Path) -> None:
    path = tmp_path / "corrections.yaml"
    path.write_text(ENTRY.replace("SELECTOR", "{format: mlx}").replace("SIZE", "0.125"))
    with pytest.raises(CorrectionsError, match="opt correction 1"):
        import_registry(DATA, tmp_path / "out", overlay=path)


@pytest.mark.parametrize("verified", ["false", "true"])
def test_a_correction_applies_and_round_trips(tmp_path: Path, verified: str) -> None:
    text = ENTRY.replace("SELECTOR", "{}").replace("SIZE", "0.125")
    fixes = overlay(tmp_path, text.replace("verified: false", f"verified: {verified}"))
    conversion = convert_family(family("opt"), fixes)
    spec = conversion.document["specs"][0]
    assert spec["size"] == 0.125
    assert spec["extra"]["xinference"]["model_size_in_billions"] == 1
    # A checked fact is not listed as unverified.
    assert spec["extra"].get("unverified") == (["size"] if verified == "false" else None)
    assert any("opt correction 1" in note for note in conversion.notes)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("source: https://huggingface.co/facebook/opt-125m", "source: the card"), "source:"),
        (("      verified: false\n", ""), "verified: true or false"),
        (("set: {size: 0.125}", "set: {size: 1, context_length: 5}"), "'size' is not a source"),
        (("set: {size: 0.125}", "set: {size: -1}"), "size -1"),
        (("spec: {}", "spec: {quantization: q4}"), "spec selects by"),
    ],
)
def test_a_malformed_correction_is_one_line_naming_it(
    tmp_path: Path, edit: tuple[str, str], message: str
) -> None:
    text = ENTRY.replace("SELECTOR", "{}").replace("SIZE", "0.125").replace(*edit)
    with pytest.raises(CorrectionsError, match="opt correction 1") as error:
        overlay(tmp_path, text)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_the_embedding_import_applies_its_section_too(tmp_path: Path) -> None:
    from zoo.catalog.model import family_from_data
    from zoo.importers import xinference_pooling as pooling

    path = tmp_path / "corrections.yaml"
    path.write_text(
        "embedding:\n  bge-base-en:\n    - spec: {format: pytorch}\n      hub: modelscope\n"
        "      set: {model_id: BAAI/bge-base-en}\n      why: A test.\n"
        "      source: https://huggingface.co/BAAI/bge-base-en\n      verified: false\n",
        encoding="utf-8",
    )
    entries = json.loads((DATA.parent / "embedding_model_spec.json").read_text("utf-8"))
    entry = next(e for e in entries if e["model_name"] == "bge-base-en")
    section = corrections.load(path)["embedding"]
    doc = pooling.convert_family(entry, pooling.EMBEDDING, overlay=section).document
    source = doc["specs"][0]["sources"]["modelscope"]
    assert (source["model_id"], source["unverified"]) == ("BAAI/bge-base-en", ["model_id"])
    family = family_from_data(doc)
    plain, _ = pooling.export_family(family, pooling.EMBEDDING)
    fixed, _ = pooling.export_family(family, pooling.EMBEDDING, corrected=True)
    assert json.dumps(plain) == json.dumps(entry)
    assert fixed is not None
    assert fixed["model_specs"][0]["model_src"]["modelscope"]["model_id"] == "BAAI/bge-base-en"
