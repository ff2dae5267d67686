"""Plugin loading: broken plugins are reported and never break the CLI; disable, strict and
trace modes; misspelled hooks; duplicate names; hooks that return the wrong thing; the
``zoo plugins`` report."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from plugin_helpers import InstallPlugin, warnings
from typer.testing import CliRunner

from zoo import hookimpl
from zoo.engine import Capabilities, Engine, LaunchContext, ServerCommand
from zoo.plugins import (
    PluginError,
    add_plugin_commands,
    get_catalog_paths,
    get_engines,
    get_hubs,
    new_plugin_manager,
    plugin_manager,
    plugin_records,
    plugin_report,
)

BROKEN = "raise RuntimeError('this plugin is broken on purpose')\n"


def _record(pm: object, name: str):  # type: ignore[no-untyped-def]
    return next(r for r in plugin_records(pm) if r.name == name)  # type: ignore[arg-type]


@dataclass
class Ran:
    exit_code: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., Ran]:
    """Run a zoo command as a fresh process would (its own plugin manager), with everything it
    printed on stderr: while the command line is assembled, and while the command runs."""
    from zoo.cli.app import _needs_plugin_commands, build_app, modules_for

    def run(*args: str) -> Ran:
        plugin_manager.cache_clear()
        capsys.readouterr()
        argv = list(args)
        app = build_app(with_plugins=_needs_plugin_commands(argv), modules=modules_for(argv))
        assembling = capsys.readouterr().err
        result = CliRunner().invoke(app, argv)
        return Ran(result.exit_code, result.stdout, assembling + result.stderr)

    return run


def test_broken_plugin_is_reported_not_raised(
    install_plugin: InstallPlugin, capsys: pytest.CaptureFixture[str]
) -> None:
    install_plugin("broken", BROKEN)
    pm = new_plugin_manager()
    record = _record(pm, "broken")
    assert (record.distribution, record.loaded) == ("zoo-broken", False)
    assert record.error == "failed to load: RuntimeError: this plugin is broken on purpose"
    assert "llamacpp" in get_engines(pm)  # the others still load
    [line] = warnings(capsys.readouterr().err)
    assert line.startswith("zoo: warning: plugin 'broken': failed to load: RuntimeError")
    assert "ZOO_DISABLE_PLUGINS=broken" in line


def test_cli_still_works_and_shows_the_error(
    install_plugin: InstallPlugin, cli: Callable[..., Ran]
) -> None:
    install_plugin("broken", BROKEN)
    result = cli("plugins")
    assert result.exit_code == 0, result.output
    [line] = [li for li in result.stdout.splitlines() if li.startswith("broken ")]
    assert "zoo-broken 0.1" in line and "FAILED: not loaded" in line
    assert "! failed to load: RuntimeError: this plugin is broken on purpose" in result.stdout
    assert warnings(result.stderr) == []  # zoo plugins lists the problem itself
    result = cli("engines", "--host-profile", "cpu-8g")
    assert result.exit_code == 0 and "llamacpp" in result.stdout
    # The command that met the broken plugin says so, once.
    [warning] = warnings(result.stderr)
    assert "plugin 'broken': failed to load" in warning


def test_disable_by_name_blocks_without_importing(
    install_plugin: InstallPlugin, monkeypatch: pytest.MonkeyPatch, cli: Callable[..., Ran]
) -> None:
    install_plugin("broken", BROKEN)
    monkeypatch.setenv("ZOO_DISABLE_PLUGINS", "broken, llamacpp")
    pm = new_plugin_manager()
    record = _record(pm, "broken")
    assert record.disabled and record.error is None  # never imported, so it never raised
    assert pm.is_blocked("broken") and pm.is_blocked("llamacpp")
    assert "llamacpp" not in get_engines(pm) and "vllm" in get_engines(pm)
    result = cli("plugins")
    [line] = [li for li in result.stdout.splitlines() if li.startswith("llamacpp ")]
    assert "disabled (ZOO_DISABLE_PLUGINS)" in line
    data = json.loads(cli("plugins", "--json").stdout)
    by_name = {p["name"]: p for p in data["plugins"]}
    assert by_name["broken"]["disabled"] and not by_name["broken"]["loaded"]


def test_disabling_the_builtin_hubs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZOO_DISABLE_PLUGINS", "hubs")
    assert get_hubs(new_plugin_manager()) == {}


def test_strict_mode_raises(install_plugin: InstallPlugin, monkeypatch: pytest.MonkeyPatch) -> None:
    install_plugin("broken", BROKEN)
    monkeypatch.setenv("ZOO_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match="plugin 'broken': failed to load: RuntimeError"):
        new_plugin_manager()


MISSPELLED = """\
from zoo import hookimpl

@hookimpl
def zoo_register_engine():
    return []
"""


def test_a_misspelled_hook_is_recorded_and_the_plugin_not_loaded(
    install_plugin: InstallPlugin,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    install_plugin("typo", MISSPELLED)
    pm = new_plugin_manager()
    record = _record(pm, "typo")
    assert not record.loaded and pm.get_plugin("typo") is None
    assert record.problems == [
        (
            "implements 'zoo_register_engine', which is not a zoo hook: did you mean "
            "'zoo_register_engines'? (the plugin is not loaded until it is fixed)"
        )
    ]
    assert "llamacpp" in get_engines(pm)
    assert len(warnings(capsys.readouterr().err)) == 1
    monkeypatch.setenv("ZOO_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match="'zoo_register_engine', which is not a zoo hook"):
        new_plugin_manager()


def test_a_misspelled_hook_of_a_plugin_registered_by_hand_is_caught_too() -> None:
    class Typo:
        @hookimpl
        def zoo_catalog_path(self) -> list[str]:
            return []

    pm = new_plugin_manager(load_entry_points=False)
    pm.register(Typo(), name="typo")
    assert get_catalog_paths(pm) == []
    assert "did you mean 'zoo_catalog_paths'?" in (_record(pm, "typo").error or "")


class _Dup(Engine):
    name = "dup"
    display_name = "Dup"
    capabilities = Capabilities(formats={"ggufv2": ("*",)})

    def server_command(self, ctx: LaunchContext) -> ServerCommand:
        return ServerCommand(argv=("true",))


class FirstPlugin:
    @hookimpl
    def zoo_register_engines(self) -> list[Engine]:
        return [_Dup()]


class SecondPlugin:
    @hookimpl
    def zoo_register_engines(self) -> list[Engine]:
        return [_Dup()]


def test_a_duplicate_engine_name_keeps_the_first_and_names_both(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pm = new_plugin_manager(load_entry_points=False)
    pm.register(FirstPlugin(), name="first-plugin")
    pm.register(SecondPlugin(), name="second-plugin")
    first = pm.get_plugin("first-plugin")
    engines = get_engines(pm)
    assert list(engines) == ["dup"]
    assert _record(pm, "first-plugin").problems == []
    [problem] = _record(pm, "second-plugin").problems
    assert "engine 'dup' is also registered by plugin 'first-plugin'" in problem
    assert first is not None
    monkeypatch.setenv("ZOO_STRICT_PLUGINS", "1")
    pm.unregister(name="second-plugin")
    pm.register(SecondPlugin(), name="second-plugin")
    with pytest.raises(PluginError, match=r"plugin 'second-plugin'.*'first-plugin'"):
        get_engines(pm)


def test_failing_hook_is_recorded(install_plugin: InstallPlugin) -> None:
    install_plugin(
        "hookfail",
        "from zoo import hookimpl\n\n@hookimpl\ndef zoo_register_engines():\n"
        "    raise ValueError('no engines today')\n",
    )
    pm = new_plugin_manager()
    assert "llamacpp" in get_engines(pm)
    record = _record(pm, "hookfail")
    assert record.loaded  # its other hooks (if any) would still work
    assert record.error == "zoo_register_engines() raised ValueError: no engines today"


@pytest.mark.parametrize(
    ("returned", "words"),
    [
        ("None", "returned None, not a list (return [] to register nothing)"),
        ("_engine()", "returned _E <Engine e>, not a list"),
        ("'llamacpp'", "returned str 'llamacpp', not a list"),
        ("{'e': _engine()}", "returned dict {'e': <Engine e>}, not a list"),
    ],
)
def test_register_engines_returning_a_non_list(
    install_plugin: InstallPlugin, returned: str, words: str
) -> None:
    install_plugin(
        "nonlist",
        "from zoo import hookimpl\n"
        "from zoo.engine import Capabilities, Engine, ServerCommand\n\n"
        "class _E(Engine):\n"
        "    name = 'e'\n    display_name = 'E'\n"
        "    capabilities = Capabilities(formats={'ggufv2': ('*',)})\n"
        "    def server_command(self, ctx):\n        return ServerCommand(argv=('true',))\n\n"
        "def _engine():\n    return _E()\n\n"
        f"@hookimpl\ndef zoo_register_engines():\n    return {returned}\n",
    )
    pm = new_plugin_manager()
    engines = get_engines(pm)
    assert "e" not in engines and "llamacpp" in engines
    assert _record(pm, "nonlist").problems == [f"zoo_register_engines() {words}"]


@pytest.mark.parametrize(
    ("hook", "returned", "call"),
    [
        ("zoo_register_hubs", "None", get_hubs),
        ("zoo_register_hubs", "'huggingface'", get_hubs),
        ("zoo_catalog_paths", "'/some/folder'", get_catalog_paths),
        ("zoo_catalog_paths", "[42]", get_catalog_paths),
    ],
)
def test_other_hooks_returning_the_wrong_thing(
    install_plugin: InstallPlugin, hook: str, returned: str, call: object
) -> None:
    install_plugin(
        "wrong", f"from zoo import hookimpl\n\n@hookimpl\ndef {hook}():\n    return {returned}\n"
    )
    pm = new_plugin_manager()
    result = call(pm)  # type: ignore[operator]
    if hook == "zoo_register_hubs":
        assert "huggingface" in result
    else:
        assert result == []  # a string is not iterated into one path per character
    [problem] = _record(pm, "wrong").problems
    assert problem.startswith(f"{hook}() returned ") and "not a list" in problem


def test_a_commands_hook_that_raises_leaves_the_cli_working(
    install_plugin: InstallPlugin, cli: Callable[..., Ran]
) -> None:
    install_plugin(
        "badcli",
        "from zoo import hookimpl\n\n@hookimpl\ndef zoo_register_commands(app):\n"
        "    raise ImportError('no module named fancy_cli')\n",
    )
    result = cli("plugin-command-that-does-not-exist")
    assert result.exit_code == 2  # typer's "no such command", not a traceback
    [warning] = warnings(result.stderr)
    assert "plugin 'badcli': zoo_register_commands() raised ImportError" in warning
    import typer

    pm = new_plugin_manager()
    add_plugin_commands(typer.Typer(), pm)
    assert "no module named fancy_cli" in (_record(pm, "badcli").error or "")


def test_each_problem_is_one_warning_line_however_often_it_is_hit(
    install_plugin: InstallPlugin, capsys: pytest.CaptureFixture[str]
) -> None:
    install_plugin(
        "flaky",
        "from zoo import hookimpl\n\n@hookimpl\ndef zoo_catalog_paths():\n"
        "    raise OSError('line one\\nline two')\n",
    )
    pm = new_plugin_manager()
    for _ in range(3):
        get_catalog_paths(pm)
    [line] = warnings(capsys.readouterr().err)
    assert "zoo_catalog_paths() raised OSError: line one | line two" in line
    assert len(_record(pm, "flaky").problems) == 1


def test_trace_prints_each_hook_call_and_its_result(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    get_engines(new_plugin_manager())
    assert "zoo: trace:" not in capsys.readouterr().err
    monkeypatch.setenv("ZOO_TRACE_PLUGINS", "1")
    get_engines(new_plugin_manager())
    lines = [li for li in capsys.readouterr().err.splitlines() if li.startswith("zoo: trace:")]
    assert "zoo: trace: llamacpp.zoo_register_engines()" in lines
    assert any(
        li.startswith("zoo: trace: llamacpp.zoo_register_engines -> list [<Engine llamacpp>] (")
        for li in lines
    )


def test_plugins_json_lists_builtin_engines_and_hooks(cli: Callable[..., Ran]) -> None:
    result = cli("plugins", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["version"] == 1
    by_name = {p["name"]: p for p in data["plugins"]}
    for name in ("llamacpp", "transformers", "vllm", "mlx"):
        assert by_name[name]["distribution"] == f"zoo-launcher-{name}"
        assert by_name[name]["hooks"] == ["zoo_register_engines"]
        assert by_name[name]["loaded"] and by_name[name]["error"] is None
        assert by_name[name]["problems"] == by_name[name]["earlier_problems"] == []
    assert by_name["hubs"]["hooks"] == ["zoo_register_hubs"] and not by_name["hubs"]["problems"]
    assert plugin_report()  # the facade agrees with the CLI
