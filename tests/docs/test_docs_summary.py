"""What a model page, the models index and the home page show first: the command to try a
model, one table of its downloads and memory, the reference hosts' choice as resolution makes
it, and the internal facts only after the specs."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from zoo.catalog.catalog import Catalog, load_catalog
from zoo.catalog.model import Family, GenerationDefaults, context_label
from zoo.docs.context import DocsContext
from zoo.docs.family_page import render_family
from zoo.docs.featured import FEATURED, render_featured
from zoo.docs.host_fit import REFERENCE_HOSTS, host_fits
from zoo.docs.render import render_pages
from zoo.docs.sizes import bytes_words, smallest_download, spec_downloads
from zoo.host import BUILTIN_PROFILES
from zoo.memory import weights_bytes
from zoo.resolve import Request, candidates, recorded_downloads
from zoo.speed import tokens_per_second


def _families(catalog: Path) -> dict[str, Family]:
    loaded = load_catalog([catalog])
    assert loaded.problems == []
    return dict(loaded.families)


def test_a_model_page_opens_with_zoo_run_then_the_summary_table(fixture_catalog, docs_ctx) -> None:
    family = _families(fixture_catalog)["seed-oss"]
    page = render_family(family, docs_ctx)
    run = page.index("\n   zoo run seed-oss\n")
    glance = page.index("Specs at a glance\n")
    specs = page.index("Specifications\n")
    details = page.index("Details\n-------\n")
    assert run < glance < specs < details
    # Internal fields only under Details.
    for field in (":Stop token ids:", ":Architectures:", ":Stop strings:", ":Tool-call parser:"):
        assert page.index(field) > details, field
    assert ":Context length: 512K tokens\n" in page  # one context format
    summary = page[glance : page.index("Where it runs\n")]
    for index, spec in enumerate(family.specs, start=1):
        ref = f"   * - :ref:`{spec.format}, {spec.size_label}B <model-seed-oss-spec-{index}>`\n"
        rows = summary.split(ref, 1)[1].split("   * - :ref:", 1)[0]
        for quant in spec.quantizations:
            assert f"     - ``{quant}``\n" in rows, (spec.format, quant)
        assert rows.count("     - ``") == len(spec.quantizations)


def test_downloads_are_the_locks_bytes_where_recorded_else_marked_estimates() -> None:
    """smollm2-135m-instruct's lock records its PyPI wheel; a spec without a lock is "~"."""
    family = load_catalog().get("smollm2-135m-instruct")
    spec = family.specs[0]
    found = [r for s in spec.sources for r in recorded_downloads(spec, s)]
    recorded = {r.quantization: r.bytes for r in found if r.bytes}
    assert recorded, "the built-in SmolLM2 spec has a lock with sizes"
    downloads = spec_downloads(spec)
    for quant, download in downloads.items():
        if quant in recorded:
            assert download.recorded and download.bytes == recorded[quant]
            assert not download.words().startswith("~")
        else:
            assert download.bytes == weights_bytes(spec, quant) and download.words()[0] == "~"
    page = render_family(family, DocsContext.from_plugins())
    quant = next(iter(recorded))
    assert f"     - ``{quant}``\n     - {bytes_words(recorded[quant])}\n" in page
    unlocked = dataclasses.replace(spec, sources=())
    assert all(not d.recorded for d in spec_downloads(unlocked).values())


def test_where_it_runs_is_what_resolution_chooses_on_each_reference_host(
    fixture_catalog, docs_ctx
) -> None:
    assert docs_ctx.runtime_engines, "the engine plugins are installed in the dev environment"
    families = _families(fixture_catalog)
    for family in families.values():
        page = render_family(family, docs_ctx)
        section = page[page.index("Where it runs\n") : page.index("Specifications\n")]
        fits = host_fits(family, docs_ctx)
        assert [f.profile for f in fits] == list(REFERENCE_HOSTS)
        for fit in fits:
            judged = candidates(
                Catalog({family.name: family}),
                Request(model=family.name),
                docs_ctx.runtime_engines,
                BUILTIN_PROFILES[fit.profile],
            )
            kept = [c for c in judged if c.kept]
            assert fit.best == (kept[0] if kept else None)
            row = section.split(f"``{fit.profile}``", 1)[1].split("   * - ", 1)[0]
            if fit.best is None:
                assert "does not run" in row
            else:
                assert f"``{fit.best.quantization}`` {fit.best.format}" in row
                assert tokens_per_second(fit.best.decode_tps) in row
    # A 36B model does not fit a 24 GiB CPU box at usable quality, an H100 runs it on the GPU.
    seed = {f.profile: f for f in host_fits(families["seed-oss"], docs_ctx)}
    assert seed["h100-80g"].best is not None and seed["h100-80g"].best.device == "cuda"


def test_pages_without_engines_leave_the_hosts_table_out(fixture_catalog, docs_ctx) -> None:
    family = _families(fixture_catalog)["seed-oss"]
    bare = dataclasses.replace(docs_ctx, runtime_engines={})
    assert "Where it runs" not in render_family(family, bare)
    assert "Where it runs" in render_family(family, docs_ctx)


def test_generation_defaults_are_shown_where_the_spec_gives_them(
    fixture_catalog, docs_ctx, rst_problems
) -> None:
    family = _families(fixture_catalog)["smollm2-135m-instruct"]
    assert "Generation defaults" not in render_family(family, docs_ctx)
    given = dataclasses.replace(
        family,
        generation=GenerationDefaults(
            temperature=0.2,
            top_p=0.9,
            system_prompt="You are *helpful*.",
            source="https://huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct",
        ),
    )
    page = render_family(given, docs_ctx)
    assert rst_problems(page) == []
    section = page[page.index("Generation defaults\n") : page.index("Specifications\n")]
    assert ":temperature: ``0.2``\n:top_p: ``0.9``\n" in section
    assert ":system prompt: You are \\*helpful\\*." in section
    assert "<https://huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct>`__" in section


def test_the_index_shows_kind_sizes_formats_and_the_smallest_download(
    fixture_catalog, docs_ctx
) -> None:
    families = _families(fixture_catalog)
    index = render_pages(families.values(), docs_ctx)["index.rst"]
    header = "   * - Model\n     - Kind\n     - Sizes\n     - Formats\n     - Smallest download\n"
    assert header in index
    for family in families.values():
        row = index.split(f"<model-{family.name}>`\n", 1)[1].split("   * - ", 1)[0]
        found = smallest_download(family)
        assert found is not None
        spec, quant, download = found
        every = [d.bytes for s in family.specs for d in spec_downloads(s).values()]
        assert download.bytes == min(every)
        assert f"``{quant}`` ({spec.size_label}B)" in row
        for fmt in family.formats:
            assert f"``{fmt}``" in row
        assert f"     - {context_label(family.context_length)}\n" in row


def test_featured_models_link_only_to_models_the_catalog_has(
    fixture_catalog, docs_ctx, rst_problems
) -> None:
    families = _families(fixture_catalog)
    featured = render_featured(list(families.values()))
    assert rst_problems(featured) == []
    assert "<model-smollm2-135m-instruct>`" in featured
    assert "``zoo run smollm2-135m-instruct``" in featured
    assert "<model-qwen3>" not in featured  # not in the fixture catalog
    full = load_catalog()
    assert set(FEATURED) <= set(full.families), "a featured model left the catalog"
    assert "The catalog has none" in render_pages([], docs_ctx)["featured.inc"]
