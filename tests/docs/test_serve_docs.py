"""docs/serve.rst is true: its config example loads against the real catalog, its field, route
and error tables list exactly what the schema, the app and the errors have, and its client
examples run, unchanged but for the address, against a real gateway."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from zoo.testing.hubserver import HubServer

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "serve.rst"
README = ROOT / "README.md"
DOCS_URL = "http://127.0.0.1:11435"


def _blocks(language: str) -> list[str]:
    """The page's ``.. code-block:: <language>`` bodies, dedented, in order."""
    lines = PAGE.read_text().splitlines()
    found: list[str] = []
    for index, line in enumerate(lines):
        if line.strip() != f".. code-block:: {language}":
            continue
        body: list[str] = []
        for following in lines[index + 1 :]:
            if following.strip() and not following.startswith(" "):
                break
            body.append(following)
        found.append(textwrap.dedent("\n".join(body)).strip() + "\n")
    return found


def _table_after(marker: str) -> list[list[str]]:
    """The rows of the first list-table after the text ``marker``: each row's cells."""
    text = PAGE.read_text()
    table = text.index(".. list-table::", text.index(marker))
    rows: list[list[str]] = []
    for line in text[table:].splitlines()[1:]:
        if line and not line.startswith(" "):
            break
        if line.startswith("   * - "):
            rows.append([line[7:]])
        elif line.startswith("     - "):
            rows[-1].append(line[7:])
        elif line.startswith("       ") and rows:
            rows[-1][-1] += " " + line.strip()
    return rows[1:]  # without the header row


def _literals(cell: str) -> list[str]:
    return re.findall(r"``([^`]+)``", cell)


# ---- the config ----------------------------------------------------------------------------


def _schema_fields() -> set[str]:
    """Every field of the config schema, as the page names them (``models.<name>.engine``)."""
    from zoo.serve.config import config_schema

    schema = config_schema()
    model = schema["$defs"]["model"]
    fields: set[str] = set()
    for name, spec in schema["properties"].items():
        fields.add(name)
        if "properties" in spec:
            fields.update(f"{name}.{sub}" for sub in spec["properties"])
        if spec.get("type") == "array" and "properties" in spec.get("items", {}):
            fields.update(f"{name}[].{sub}" for sub in spec["items"]["properties"])
    fields.update(f"models.<name>.{sub}" for sub in model["properties"])
    fields.discard("listen")  # a heading for its two fields, not a value
    return fields


def test_the_field_table_lists_exactly_the_schemas_fields() -> None:
    documented = [_literals(row[0])[0] for row in _table_after("Every field:")]
    assert len(documented) == len(set(documented)), "a field is listed twice"
    assert set(documented) == _schema_fields()


def _load(text: str, folder: Path) -> Any:
    from zoo.plugins import get_engines, get_hubs
    from zoo.registry import catalog_with_plugins
    from zoo.serve.config import load_config

    path = folder / "gateway.yaml"
    path.write_text(text)
    key = folder / "editor.key"
    key.write_text("editor-secret-1\n")
    key.chmod(0o600)
    return load_config(
        path,
        catalog_with_plugins(),
        engines=tuple(get_engines()),
        hubs=tuple(get_hubs()),
        environ={"ZOO_TEAM_KEY": "team-secret-1"},
    )


def test_the_config_example_loads_against_the_real_catalog(tmp_path: Path) -> None:
    (example,) = _blocks("yaml")
    config = _load(example, tmp_path)
    assert config.warnings == ()
    assert (config.host, config.port) == ("127.0.0.1", 11435)
    assert (config.keep_alive, config.concurrency) == (600.0, 8)
    assert config.memory_budget == 12 * 2**30
    tiny, coder = config.models["smollm2-135m-instruct"], config.models["coder"]
    assert tiny.aliases == ("tiny", "smollm2:135m") and tiny.pinned and tiny.preload
    assert (tiny.keep_alive, coder.keep_alive) == (-1.0, 0.0)
    assert coder.family == "seed-coder-8b-base" and coder.context_length == 8192
    team, editor = config.api_keys
    assert (team.key, team.models) == ("team-secret-1", ())
    assert (editor.key, editor.models) == ("editor-secret-1", ("coder",))


def test_the_readme_config_example_loads_too(tmp_path: Path) -> None:
    lines = README.read_text().splitlines()
    start = lines.index("    # gateway.yaml (`zoo serve schema` prints its JSON Schema)")
    block = []
    for line in lines[start:]:
        if not line.startswith("    "):
            break
        block.append(line[4:])
    config = _load("\n".join(block) + "\n", tmp_path)
    assert config.models["smollm2-135m-instruct"].aliases == ("tiny",)


# ---- routes and errors ---------------------------------------------------------------------


def test_the_route_table_lists_exactly_the_apps_routes(tmp_path: Path) -> None:
    from starlette.routing import Route

    from zoo.serve.app import build_app

    app = build_app(None)  # type: ignore[arg-type]  # the routes only: no request is served
    served = {
        (method, route.path)
        for route in app.routes
        if isinstance(route, Route)
        for method in (route.methods or set()) - {"HEAD"}
    }
    documented = set()
    for row in _table_after("\nRoutes\n"):
        for literal in _literals(row[0]):
            method, path = literal.split(" ", 1)
            documented.add((method, path))
    assert documented == served


def test_the_error_table_lists_every_error_code() -> None:
    from zoo.serve import errors

    codes: dict[str, int] = {
        cls.code: cls.status
        for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, errors.GatewayError)
    }
    codes.pop(errors.GatewayError.code)  # the base class: never raised as such
    documented: dict[str, set[int]] = {}
    for statuses, cell, _ in _table_after("Errors on the OpenAI routes"):
        for literal in _literals(cell):
            documented.setdefault(literal, set()).update(int(s) for s in statuses.split(", "))
    assert {"not_found", "method_not_allowed"} <= set(documented)
    for code, status in codes.items():
        assert status in documented.get(code, set()), code
    assert set(documented) - set(codes) == {"not_found", "method_not_allowed"}


# ---- the examples --------------------------------------------------------------------------


def test_every_python_example_compiles_and_there_are_both_clients() -> None:
    blocks = _blocks("python")
    for index, block in enumerate(blocks):
        compile(block, f"serve.rst python block {index}", "exec")
    assert any("from openai import OpenAI" in b for b in blocks)
    assert any("from ollama import Client" in b for b in blocks)


def test_the_shell_examples_use_options_zoo_serve_has() -> None:
    def help_of(*words: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "zoo", *words, "--help"],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "COLUMNS": "200"},
            check=True,
        )
        return done.stdout

    commands = [
        line.split("#")[0].split()
        for block in _blocks("shell")
        for line in block.splitlines()
        if line.startswith("zoo serve")
    ]
    assert commands
    for words in commands:
        # "zoo serve status [--json]": the subcommand's own help has its options.
        sub = words[2:3] if len(words) > 2 and not words[2].startswith(("-", "[")) else []
        text = help_of("serve", *sub)
        for option in (w.strip("[]") for w in words if w.strip("[]").startswith("--")):
            assert option in text, (words, option)


def _helpers() -> ModuleType:
    """tests/serve/gateway_helpers.py (the real gateway in a thread), loaded by its path."""
    path = ROOT / "tests" / "serve" / "gateway_helpers.py"
    spec = importlib.util.spec_from_file_location("serve_docs_gateway_helpers", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def gateway(
    tmp_path: Path, hub_server: HubServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """A real gateway serving ``tiny`` and ``coder`` (a FIM family), with a key in
    ``$ZOO_API_KEY`` as the examples expect; its URL."""
    from zoo.serve.config import ApiKey
    from zoo.serve.types import ModelEntry

    helpers = _helpers()
    families = {"gw-tiny": False, "gw-coder": True}
    helpers.serve_files(hub_server, list(families))
    catalog = helpers.write_catalog(tmp_path / "specs", families)
    entries = {
        "tiny": ModelEntry(name="tiny", family="gw-tiny", download=True),
        "coder": ModelEntry(name="coder", family="gw-coder", download=True),
    }
    monkeypatch.setenv("ZOO_API_KEY", "docs-key-1")
    with helpers.running_gateway(catalog, entries, keys=(ApiKey("docs-key-1"),)) as running:
        yield running.url


def test_the_client_examples_run_against_a_gateway(
    gateway: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # The first two; the embeddings and rerank ones run in tests/serve/test_pooling_routes.py.
    openai_block, ollama_block = _blocks("python")[:2]
    for block in (openai_block, ollama_block):
        assert DOCS_URL in block
        exec(compile(block.replace(DOCS_URL, gateway), "serve.rst", "exec"), {})  # noqa: S102
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "['tiny', 'coder']"  # openai: the models
    ollama_start = next(i for i, line in enumerate(printed) if i and line.startswith("["))
    assert "tiny" in printed[ollama_start] and "coder" in printed[ollama_start]
    # The test engine answers with what it was sent: the FIM prompt went out rendered.
    fim = [line for line in printed if "fim-suffix" in line or "fim-prefix" in line]
    assert len(fim) >= 2, printed


def test_the_curl_example_runs_against_a_gateway(gateway: str) -> None:
    curl = next(b for b in _blocks("shell") if b.startswith("curl"))  # the FIM one
    done = subprocess.run(
        ["bash", "-c", curl.replace(DOCS_URL, gateway)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    answer = json.loads(done.stdout)
    sent = json.loads(answer["choices"][0]["text"])
    assert sent["prompt"] == "<[fim-suffix]>\n<[fim-prefix]>def mean(values):\n    <[fim-middle]>"
