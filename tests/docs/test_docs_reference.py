"""The generated references and the plugin guide cover everything they describe."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from zoo.docs.cli_ref import command_label, render_cli_reference
from zoo.docs.hooks_ref import hook_specs, label, signature
from zoo.docs.schema_ref import example, field_label, fields, load_schema, render_reference

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_every_hook_is_documented_with_signature_when_returns_and_example() -> None:
    guide = (DOCS / "plugins.rst").read_text(encoding="utf-8")
    specs = hook_specs()
    assert set(specs) >= {"zoo_register_engines", "zoo_register_hubs", "zoo_catalog_paths"}
    for name, func in specs.items():
        anchor = f".. _{label(name)}:"
        assert anchor in guide, f"hook {name} is not documented in docs/plugins.rst"
        section = guide.split(anchor, 1)[1].split("\n.. _", 1)[0]
        assert f"   {signature(func)}\n" in section, f"{name}: signature differs from the code"
        assert "**When it is called:**" in section, name
        assert "**What it returns:**" in section, name
        assert "**Example:**" in section and "@hookimpl" in section, name
        assert f"def {name}(" in section.split("**Example:**", 1)[1], name


def test_every_schema_field_has_a_section_with_description_and_example(rst_problems) -> None:
    schema = load_schema()
    text = render_reference(schema)
    assert rst_problems(text) == []
    all_fields = fields(schema)
    paths = {f.path for f in all_fields}
    assert {"name", "specs[].format", "specs[].sources.<hub>.split.parts", "fim.order"} <= paths
    for item in all_fields:
        assert f".. _{field_label(item.path)}:" in text
        assert item.schema.get("description"), f"{item.path} has no description in the schema"
        assert example(item.schema, schema) is not None, f"{item.path} has no example"


def test_spec_format_example_is_a_valid_spec(tmp_path: Path) -> None:
    from zoo.catalog.catalog import load_catalog

    page = (DOCS / "spec-format.rst").read_text(encoding="utf-8")
    block = page.split(".. code-block:: yaml\n\n", 1)[1].split("\n\n", 1)[0]
    text = "\n".join(line[3:] for line in block.splitlines())
    assert yaml.safe_load(text)["name"] == "seed-coder-8b-base"
    (tmp_path / "example.yaml").write_text(text.replace("../zoo", "../../zoo") + "\n")
    catalog = load_catalog([tmp_path])
    assert [str(p) for p in catalog.problems if getattr(p, "is_error", True)] == []
    assert "seed-coder-8b-base" in catalog.families


def test_cli_reference_documents_every_command(rst_problems) -> None:
    import typer
    import typer.main

    from zoo.cli.app import build_app

    text = render_cli_reference()
    assert rst_problems(text) == []
    root = typer.main.get_command(build_app(with_plugins=False))
    ctx = typer.Context(root, info_name="zoo")
    for name in root.list_commands(ctx):  # type: ignore[attr-defined]
        assert f".. _{command_label('zoo ' + name)}:" in text, name
    assert re.search(r"``-o, --out <path>``", text)  # options as --help prints them
    assert ".. _cli-zoo-docs-render:" in text
