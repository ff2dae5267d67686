"""How every command reports an error: one line, or with --json one JSON object on stdout.

The handler is ``zoo.cli.app.main`` (one place for all commands); these tests go through it
in-process and through the installed ``zoo`` console script.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from catalog_helpers import family_text, write

from zoo.cli.app import build_app, main
from zoo.errors import NotFoundError, UsageError, ZooError, code_from_class_name

ZOO = Path(sys.executable).with_name("zoo")


def run_main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        main(list(args))
    code = exited.value.code
    out, err = capsys.readouterr()
    return (code if isinstance(code, int) else 1), out, err


def json_error(out: str) -> dict[str, Any]:
    """The error object of stdout, which must hold that one document and nothing else."""
    document = json.loads(out)  # fails on anything besides one JSON document
    assert list(document) == ["version", "error"] and document["version"] == 1
    error = document["error"]
    assert list(error) == ["code", "message", "hint"]
    assert isinstance(error["code"], str) and error["message"]
    return error


def json_commands() -> list[list[str]]:
    """Every command path of the CLI (plugins included) that takes --json."""
    from typer.main import get_command

    found: list[list[str]] = []

    def walk(command: Any, path: list[str]) -> None:
        if any("--json" in getattr(p, "opts", ()) for p in command.params):
            found.append(path)
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            walk(sub, [*path, name])

    walk(get_command(build_app()), [])
    return found


# --- every --json command, found by walking the CLI --------------------------------------------


def test_the_walk_finds_the_json_commands() -> None:
    # Guards the walk itself: were it to find nothing, the test below would check nothing.
    found = json_commands()
    for expected in (["list"], ["show"], ["launch"], ["download"], ["cache", "list"], ["ps"]):
        assert expected in found
    assert ["engines"] in found and ["plugins"] in found and ["validate"] in found


def test_every_json_command_answers_a_usage_error_as_json(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for path in json_commands():
        code, out, err = run_main(capsys, *path, "--json", "--no-such-option")
        assert code == 2, path
        error = json_error(out)
        assert error["code"] == "usage", path
        assert "--no-such-option" in error["message"]
        assert error["hint"] == f"see `zoo {' '.join(path)} --help`"
        assert err == "", path


# --- each kind of failure ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["show", "no-such-model", "--json"],
        ["launch", "no-such-model", "--json"],
        ["download", "no-such-model", "--dry-run", "--json"],
        ["engines", "--model", "no-such-model", "--json"],
    ],
)
def test_unknown_model(capsys: pytest.CaptureFixture[str], args: list[str]) -> None:
    code, out, err = run_main(capsys, *args)
    assert code == 1
    error = json_error(out)
    assert error["code"] == "not_found"
    assert error["message"] == "unknown model 'no-such-model'"
    assert error["hint"]
    assert err == ""  # with --json the report is on stdout only


def test_the_same_error_without_json_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_main(capsys, "show", "no-such-model")
    assert (code, out) == (1, "")
    assert err == "zoo: error: unknown model 'no-such-model' (see `zoo list`)\n"


def test_a_value_typer_cannot_convert_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run_main(capsys, "launch", "seed-oss", "--port", "abc", "--json")
    assert code == 2
    error = json_error(out)
    assert error["code"] == "usage" and "--port" in error["message"]
    assert error["hint"] == "see `zoo launch --help`"
    # Without --json: one line, not typer's usage block.
    code, out, err = run_main(capsys, "launch", "seed-oss", "--port", "abc")
    assert (code, out) == (2, "")
    assert err.count("\n") == 1 and err.startswith("zoo: error: Invalid value for '--port'")
    assert err.endswith("(see `zoo launch --help`)\n")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["launch", "seed-oss", "--port", "70000", "--json"], "--port 70000 is not a TCP port"),
        (["list", "--format", "ggufv3", "--json"], "unknown format 'ggufv3'"),
        (["list", "--ability", "chatt", "--json"], "unknown ability 'chatt'"),
    ],
)
def test_a_value_zoo_refuses_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, out, _ = run_main(capsys, *args)
    assert code == 2
    error = json_error(out)
    assert (error["code"], error["message"]) == ("usage", message)


def test_a_missing_argument_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_main(capsys, "show", "--json")
    assert code == 2
    assert json_error(out)["message"].lower() == "missing argument 'name'"


def test_broken_catalog_warns_on_stderr_and_stdout_holds_only_the_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path, "ok.yaml", family_text("ok"))
    write(tmp_path, "broken.yaml", "name: broken\nspecs: [unclosed\n")
    monkeypatch.setenv("ZOO_CATALOG_PATH", str(tmp_path))
    code, out, err = run_main(capsys, "show", "broken", "--json")
    assert code == 1
    assert json_error(out)["code"] == "not_found"
    assert "spec file(s) have errors" in err  # the warning stays on stderr


def test_hub_failure(
    hub_server: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from zoo.testing.hubserver import GeneratedFile

    hub_server.add_repo("org/toy-GGUF", {"toy-Q4_0.gguf": GeneratedFile(1024, 1)})
    write(
        tmp_path,
        "toy.yaml",
        "name: toy-gguf\ndescription: A toy.\ncontext_length: 2048\nlanguages: [en]\n"
        "abilities: [chat]\nspecs:\n  - format: ggufv2\n    size: 0.1\n"
        "    quantizations: [Q4_0]\n    sources:\n      huggingface:\n"
        "        model_id: org/toy-GGUF\n        file: toy-{quantization}.gguf\n",
    )
    monkeypatch.setenv("ZOO_CATALOG_PATH", str(tmp_path))
    hub_server.fault("missing", "toy-Q4_0.gguf")
    code, out, err = run_main(capsys, "download", "toy-gguf", "--json")
    assert code == 1
    error = json_error(out)
    assert error["code"].startswith("hub")  # HubError or a subclass of it
    assert error["message"].startswith("huggingface: ")
    assert "Traceback" not in err


def test_a_bug_is_one_line_naming_the_exception_and_where(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr("zoo.catalog.catalog.load_catalog", broken)
    code, out, err = run_main(capsys, "list")
    assert (code, out) == (1, "")
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("zoo: internal error: RuntimeError: boom second line at ")
    assert "test_cli_json_errors.py:" in err and "--debug shows the traceback" in err
    code, out, _ = run_main(capsys, "list", "--json")
    assert code == 1
    assert json_error(out)["code"] == "internal"


def test_an_os_error_no_one_translated_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def denied(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied", "/somewhere/specs")

    monkeypatch.setattr("zoo.catalog.catalog.load_catalog", denied)
    code, out, err = run_main(capsys, "list")
    assert (code, err) == (1, "zoo: error: Permission denied: /somewhere/specs\n")
    code, out, _ = run_main(capsys, "list", "--json")
    assert code == 1
    assert json_error(out) == {
        "code": "os",
        "message": "Permission denied: /somewhere/specs",
        "hint": None,
    }


def test_interrupted_is_130_and_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("zoo.catalog.catalog.load_catalog", interrupted)
    assert run_main(capsys, "list") == (130, "", "zoo: interrupted\n")
    code, out, _ = run_main(capsys, "list", "--json")
    assert code == 130
    assert json_error(out)["code"] == "interrupted"


def test_output_printed_before_a_failure_is_held_back(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import typer

    def half_way(*args: object, **kwargs: object) -> None:
        typer.echo('{"version": 1, "families": [')  # the start of a result, then a failure
        print("and some prose")
        raise NotFoundError("gone half-way")

    monkeypatch.setattr("zoo.catalog.catalog.load_catalog", half_way)
    code, out, _ = run_main(capsys, "list", "--json")
    assert code == 1
    assert json_error(out)["message"] == "gone half-way"


def test_json_results_are_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path, "ok.yaml", family_text("ok"))
    monkeypatch.setenv("ZOO_CATALOG_PATH", str(tmp_path))
    code, out, _ = run_main(capsys, "list", "--json")
    assert code == 0 and "families" in json.loads(out)
    # A result that reports failures (validate) is a result, exit 1, not an error object.
    bad = write(tmp_path, "bad.yaml", "name: bad\n")
    code, out, _ = run_main(capsys, "validate", str(bad), "--json")
    assert code == 1
    assert json.loads(out)["errors"] >= 1


def test_json_after_the_double_dash_belongs_to_the_engine(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run_main(capsys, "launch", "no-such-model", "--", "--json")
    assert (code, out) == (1, "")
    assert err.startswith("zoo: error: unknown model 'no-such-model'")


@pytest.mark.parametrize("switch", ["flag", "env"])
def test_debug_adds_the_traceback_and_keeps_the_report(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], switch: str
) -> None:
    args = ["show", "no-such-model", "--json"]
    if switch == "flag":
        args.insert(0, "--debug")
    else:
        monkeypatch.setenv("ZOO_DEBUG", "1")
    code, out, err = run_main(capsys, *args)
    assert code == 1
    assert json_error(out)["code"] == "not_found"
    assert err.startswith("Traceback (most recent call last):")
    assert "zoo.errors.NotFoundError: unknown model 'no-such-model'" in err


def test_zoo_alone_still_prints_the_help(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_main(capsys)
    assert code == 2 and out == ""
    assert err.startswith("Usage: zoo [OPTIONS] COMMAND") and "launch" in err


# --- error codes ------------------------------------------------------------------------------


def test_codes_are_stable_and_derived_from_the_class_by_default() -> None:
    from zoo.docs.source import CatalogError
    from zoo.hubs.base import HubError, HubUnreachableError, UnsafePathError
    from zoo.plugins import PluginError
    from zoo.runtime.envs import EnvError
    from zoo.runtime.process import ServerError

    assert (ZooError.code, NotFoundError.code, UsageError.code) == ("error", "not_found", "usage")
    assert [c.code for c in (HubError, HubUnreachableError, UnsafePathError)] == [
        "hub",
        "hub_unreachable",
        "unsafe_path",
    ]
    assert [c.code for c in (ServerError, EnvError, PluginError, CatalogError)] == [
        "server",
        "env",
        "plugin",
        "catalog",
    ]

    class MirrorHTTPError(ZooError):
        pass

    class Renamed(NotFoundError):
        code = "gone"

    class Child(Renamed):
        pass

    assert MirrorHTTPError.code == "mirror_http"
    assert (Renamed.code, Child.code) == ("gone", "child")
    assert code_from_class_name("HTTPServerError") == "http_server"
    assert code_from_class_name("Error") == "error"


def test_to_json_separates_message_and_hint() -> None:
    from zoo.docs.source import CatalogError

    error = UsageError("no such thing", hint="try another")
    assert str(error) == "no such thing (try another)"
    assert error.to_json() == {"code": "usage", "message": "no such thing", "hint": "try another"}
    # A subclass with its own constructor (no hint keyword) still reports.
    assert CatalogError("bad catalog", []).to_json() == {
        "code": "catalog",
        "message": "bad catalog",
        "hint": None,
    }


# --- the installed console script -------------------------------------------------------------


def zoo(*args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    assert ZOO.exists(), f"no console script at {ZOO}: install the package (make venv)"
    return subprocess.run([str(ZOO), *args], capture_output=True, text=True, **kwargs)


def test_console_script_json_error_and_status() -> None:
    done = zoo("show", "no-such-model", "--json")
    assert done.returncode == 1 and done.stderr == ""
    assert json_error(done.stdout)["code"] == "not_found"
    done = zoo("launch", "seed-oss", "--tp", "two", "--json")
    assert done.returncode == 2 and done.stderr == ""
    assert json_error(done.stdout)["code"] == "usage"


@pytest.mark.parametrize("args", [["list"], ["list", "--json"], ["show", "seed-oss"]])
def test_console_script_closed_stdout_is_silent(args: list[str]) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before zoo writes: `zoo list | head -0`
    try:
        done = subprocess.run(
            [str(ZOO), *args], stdout=write_end, stderr=subprocess.PIPE, text=True
        )
    finally:
        os.close(write_end)
    assert (done.returncode, done.stderr) == (1, "")


def test_console_script_ctrl_c_is_one_line(tmp_path: Path) -> None:
    """A real SIGINT while a command works: the catalog load is made to wait for it."""
    ready = tmp_path / "ready"
    code = (
        "import pathlib, sys, time\n"
        "import zoo.catalog.catalog as catalog\n"
        "def wait(*args, **kwargs):\n"
        f"    pathlib.Path({str(ready)!r}).touch()\n"
        "    time.sleep(60)\n"
        "catalog.load_catalog = wait\n"
        "sys.argv = ['zoo', 'list', *sys.argv[1:]]\n"
        "from zoo.cli.entry import main; main()\n"
    )
    for extra, expected_out in (([], ""), (["--json"], "interrupted")):
        process = subprocess.Popen(
            [sys.executable, "-c", code, *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 30
        while not ready.exists() and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.05)
        assert ready.exists(), process.communicate()
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
        ready.unlink()
        assert process.returncode == 130
        if extra:
            assert json_error(out)["code"] == expected_out and err == ""
        else:
            assert (out, err) == ("", "zoo: interrupted\n")
