"""The catalog commands as a user runs them: zoo list/show/search/validate/schema."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from catalog_helpers import VALID, family_text, write
from typer.testing import CliRunner

from zoo.cli.app import build_app
from zoo.paths import user_catalog_dir

SUMMARY_KEYS = [
    "name",
    "kind",
    "description",
    "abilities",
    "formats",
    "sizes",
    "parameters",  # [total, active] billions per spec size (active: MoE only)
    "context_length",
    "languages",
    "location",
    "download_bytes",
]
SOURCE_KEYS = [
    "hub",
    "model_id",
    "revision",
    "quantizations",
    "file",
    "split",
    "multimodal_projectors",
    "draft",
    "exclude",
    "unverified",
    "location",
]


@pytest.fixture
def only_seeds(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A catalog of just the hand-written families (the imported ones make lists long)."""
    from zoo.catalog import catalog

    seeds = tmp_path / "seeds"
    seeds.mkdir()
    for name in (
        "seed-coder-8b-base",
        "seed-coder-8b-instruct",
        "seed-coder-8b-reasoning",
        "seed-oss",
        "smollm2-135m-instruct",
    ):
        (seeds / f"{name}.yaml").write_bytes(
            (catalog.builtin_catalog_dir() / f"{name}.yaml").read_bytes()
        )
    monkeypatch.setattr(catalog, "builtin_catalog_dir", lambda: seeds)


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(build_app(with_plugins=False), list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def test_list_json_shape_is_stable(only_seeds: None) -> None:
    code, out, _ = run("list", "--json")
    assert code == 0
    document = json.loads(out)
    assert list(document) == ["version", "families", "problems"]
    assert document["version"] == 1
    assert [f["name"] for f in document["families"]] == [
        "seed-coder-8b-base",
        "seed-coder-8b-instruct",
        "seed-coder-8b-reasoning",
        "seed-oss",
        "smollm2-135m-instruct",
    ]
    seed_oss = document["families"][3]
    assert list(seed_oss) == SUMMARY_KEYS
    assert seed_oss["formats"] == ["pytorch", "gptq", "awq", "mlx", "ggufv2"]
    assert seed_oss["sizes"] == ["36"]
    assert seed_oss["context_length"] == 524288
    assert seed_oss["location"].endswith("seed-oss.yaml:2:1")
    assert document["families"][4]["sizes"] == ["0.135"]


def test_list_filters_by_ability_and_format(only_seeds: None) -> None:
    _, out, _ = run("list", "--ability", "fim", "--json")
    assert [f["name"] for f in json.loads(out)["families"]] == ["seed-coder-8b-base"]
    _, out, _ = run("list", "--format", "ggufv2", "--json")
    assert [f["name"] for f in json.loads(out)["families"]] == [
        "seed-coder-8b-reasoning",
        "seed-oss",
        "smollm2-135m-instruct",
    ]


def test_list_rejects_unknown_filters_with_a_suggestion(only_seeds: None) -> None:
    from zoo.errors import UsageError

    with pytest.raises(UsageError, match=r"unknown format 'gguf' \(did you mean 'ggufv2'\?\)"):
        run("list", "--format", "gguf")
    with pytest.raises(UsageError, match="unknown ability 'vison'"):
        run("list", "--ability", "vison")


def test_list_prints_a_table_with_whole_names(only_seeds: None) -> None:
    code, out, _ = run("list")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == [
        "NAME",
        "ABILITIES",
        "FORMATS",
        "SIZE",
        "(B)",
        "DOWNLOAD",
        "CONTEXT",
    ]
    assert any(line.startswith("seed-coder-8b-reasoning ") for line in lines)
    assert any(line.startswith("seed-oss ") and line.endswith("512K") for line in lines)


def test_list_warns_about_broken_files_but_still_lists(only_seeds: None) -> None:
    write(user_catalog_dir(), "broken.yaml", "name: [\n")
    code, out, err = run("list", "--json")
    assert code == 0
    document = json.loads(out)
    assert len(document["families"]) == 5
    assert document["problems"][0]["code"] == "E101"
    assert list(document["problems"][0]) == [
        "path",
        "line",
        "column",
        "severity",
        "code",
        "message",
    ]
    assert "1 spec file(s) have errors and were skipped" in err


def test_show_json_has_everything(only_seeds: None) -> None:
    code, out, _ = run("show", "seed-oss", "--json")
    assert code == 0
    document = json.loads(out)
    assert list(document) == ["version", "family"]
    family = document["family"]
    assert list(family) == [
        *SUMMARY_KEYS,
        "architectures",
        "license",
        "homepage",
        "chat_template",
        "stop",
        "stop_token_ids",
        "reasoning",
        "tool_parser",
        "fim",
        "generation",
        "embedding",
        "rerank",
        "extra",
        "specs",
        "here",
    ]
    assert list(family["here"]) == ["host", "recommended", "quantizations"]
    assert family["reasoning"] == {"start_tag": "<seed:think>", "end_tag": "</seed:think>"}
    gguf = family["specs"][4]
    assert list(gguf) == [
        "format",
        "size",
        "size_label",
        "activated_size",
        "quantizations",
        "sources",
        "location",
    ]
    source = gguf["sources"][0]
    assert list(source) == SOURCE_KEYS
    assert source["split"] == {
        "file": "{quantization}/Seed-OSS-36B-Instruct-{quantization}-{part}.gguf",
        "parts": {"BF16": ["00001-of-00002", "00002-of-00002"]},
    }


def test_show_prints_facts_and_specs(only_seeds: None) -> None:
    code, out, _ = run("show", "seed-coder-8b-base")
    assert code == 0
    assert "<[fim-suffix]>suffix <[fim-prefix]>prefix <[fim-middle]>" in out
    assert "ByteDance-Seed/Seed-Coder-8B-Base" in out


def test_show_unknown_name_suggests(only_seeds: None) -> None:
    from zoo.errors import NotFoundError

    with pytest.raises(NotFoundError, match="did you mean seed-oss"):
        run("show", "seed-os")


def test_unknown_name_is_one_line_from_the_real_entry_point(
    only_seeds: None, capsys: pytest.CaptureFixture[str]
) -> None:
    from zoo.cli.app import main

    with pytest.raises(SystemExit) as exit_info:
        main(["show", "seed-os"])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert err == "zoo: error: unknown model 'seed-os' (did you mean seed-oss?)\n"


def test_search_json(only_seeds: None) -> None:
    code, out, _ = run("search", "seed", "coder", "--json")
    assert code == 0
    document = json.loads(out)
    assert list(document) == ["version", "query", "families"]
    assert document["query"] == "seed coder"
    assert [f["name"] for f in document["families"]] == [
        "seed-coder-8b-base",
        "seed-coder-8b-instruct",
        "seed-coder-8b-reasoning",
    ]
    code, _, err = run("search", "nothing-like-this")
    assert code == 1 and "no model family matches" in err


def test_validate_prints_positioned_lines_and_fails(tmp_path: Path) -> None:
    folder = tmp_path / "specs"
    write(folder, "good.yaml", VALID)
    write(folder, "bad.yaml", family_text("bad").replace("size: 1\n", "size: 0\n"))
    write(folder, "twin.yaml", family_text("tiny-coder"))
    code, out, _ = run("validate", str(folder))
    assert code == 1
    lines = out.splitlines()
    assert (
        f"{folder / 'bad.yaml'}:9:11: error[E202]: specs[0].size must be greater than 0, not 0"
        in lines
    )
    assert any("error[E306]: family 'tiny-coder'" in line for line in lines)
    assert lines[-1] == "FAILED: 3 file(s) checked, 3 error(s), 0 warning(s)"


def test_validate_passes_on_good_files_and_reports_warnings(tmp_path: Path) -> None:
    path = write(
        tmp_path, "warn.yaml", VALID.replace("abilities: [generate, fim]", "abilities: [generate]")
    )
    code, out, _ = run("validate", str(path))
    assert code == 0
    assert out.splitlines()[-1] == "ok: 1 file(s) checked, 0 error(s), 1 warning(s)"
    code, out, _ = run("validate", str(path), "--json")
    document = json.loads(out)
    assert list(document) == ["version", "files", "errors", "warnings", "problems"]
    assert document["problems"][0]["code"] == "W305"


def test_validate_a_missing_path(tmp_path: Path) -> None:
    code, out, _ = run("validate", str(tmp_path / "nope.yaml"))
    assert code == 1
    assert "error[E100]: no such file or folder" in out


def test_validate_the_shipped_seed_families(only_seeds: None) -> None:
    code, out, _ = run("validate")
    assert code == 0, out
    assert out.splitlines()[-1] == "ok: 5 file(s) checked, 0 error(s), 0 warning(s)"


def test_schema_prints_the_json_schema() -> None:
    code, out, _ = run("schema")
    assert code == 0
    schema = json.loads(out)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert "specs" in schema["properties"]


def test_validate_lists_the_codes() -> None:
    from zoo.catalog.problems import CODES

    code, out, _ = run("validate", "--codes")
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == len(CODES)
    assert lines[0].startswith("E100  ")


def test_show_does_not_pass_terminal_escapes_through() -> None:
    text = family_text("esc").replace("Family esc.", '"Bad \\e[2J description"')
    write(user_catalog_dir(), "esc.yaml", text)
    code, out, _ = run("show", "esc")
    assert code == 0
    assert "\x1b" not in out
    assert "Bad \\x1b[2J description" in out


def test_the_fast_commands_load_no_plugins() -> None:
    from zoo.cli.app import _needs_plugin_commands

    assert _needs_plugin_commands(["--version"]) is False
    assert _needs_plugin_commands(["list", "--json"]) is False
    assert _needs_plugin_commands(["show", "seed-oss"]) is False
    assert _needs_plugin_commands([]) is True  # `zoo` alone prints help with plugin commands
    assert _needs_plugin_commands(["--help"]) is True


def test_console_script_prints_the_version_without_the_cli_framework() -> None:
    import subprocess
    import sys

    code = (
        "import sys; sys.argv = ['zoo', '--version']\n"
        "from zoo.cli.entry import main; main()\n"
        "assert 'typer' not in sys.modules, 'typer imported for --version'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    from zoo import __version__

    assert done.stdout == f"zoo {__version__}\n"


def test_only_the_named_commands_module_is_registered() -> None:
    from zoo.cli.app import COMMAND_MODULES, modules_for

    assert modules_for(["list", "--json"]) == ("zoo.cli.catalog_cmds",)
    # `zoo engines install` lives in the runtime module, which extends the engines group.
    assert modules_for(["engines", "install", "llamacpp"]) == (
        "zoo.cli.runtime_cmds",
        "zoo.cli.engines_cmds",
    )
    assert modules_for(["--help"]) == COMMAND_MODULES
    assert modules_for(["list", "--help"]) == COMMAND_MODULES
    assert modules_for(["no-such-command"]) == COMMAND_MODULES
