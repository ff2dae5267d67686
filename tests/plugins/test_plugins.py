"""Plugin loading: broken plugins are reported and never break the CLI; disable and strict
modes; duplicate engine names; ``zoo plugins`` output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from zoo import hookimpl
from zoo.engine import Capabilities, Engine
from zoo.plugins import (
    PluginError,
    get_engines,
    new_plugin_manager,
    plugin_records,
    plugin_report,
)


def fake_distribution(root: Path, name: str, entry: str, module_source: str) -> None:
    """A minimal installed distribution on ``root``: metadata, an entry point, its module."""
    info = root / f"{name.replace('-', '_')}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    module = entry.split("=")[1].strip()
    (info / "entry_points.txt").write_text(f"[zoo]\n{entry}\n")
    (root / f"{module}.py").write_text(module_source)


@pytest.fixture
def broken_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_distribution(
        tmp_path,
        "zoo-broken",
        "broken = zoo_broken_plugin",
        "raise RuntimeError('this plugin is broken on purpose')\n",
    )
    monkeypatch.syspath_prepend(str(tmp_path))


def test_broken_plugin_is_reported_not_raised(broken_plugin: None) -> None:
    pm = new_plugin_manager()
    record = next(r for r in plugin_records(pm) if r.name == "broken")
    assert record.distribution == "zoo-broken"
    assert record.error == "RuntimeError: this plugin is broken on purpose"
    assert "llamacpp" in get_engines(pm)  # the others still load


def test_cli_still_works_and_shows_the_error(broken_plugin: None) -> None:
    from zoo.cli.app import build_app

    runner = CliRunner()
    result = runner.invoke(build_app(), ["plugins"])
    assert result.exit_code == 0, result.output
    assert "broken" in result.output and "FAILED: RuntimeError" in result.output
    result = runner.invoke(build_app(), ["engines", "--host-profile", "cpu-8g"])
    assert result.exit_code == 0 and "llamacpp" in result.output


def test_disable_by_name(broken_plugin: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZOO_DISABLE_PLUGINS", "broken, llamacpp")
    pm = new_plugin_manager()
    records = {r.name: r for r in plugin_records(pm)}
    assert records["broken"].disabled and records["broken"].error is None
    assert "llamacpp" not in get_engines(pm)


def test_strict_mode_raises(broken_plugin: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZOO_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match="plugin 'broken' failed to load"):
        new_plugin_manager()


class _Dup(Engine):
    name = "dup"
    capabilities = Capabilities(formats={"ggufv2": ("*",)})


class FirstPlugin:
    @hookimpl
    def zoo_register_engines(self) -> list[Engine]:
        return [_Dup()]


class SecondPlugin:
    @hookimpl
    def zoo_register_engines(self) -> list[Engine]:
        return [_Dup()]


def test_duplicate_engine_names_error_naming_both() -> None:
    pm = new_plugin_manager(load_entry_points=False)
    pm.register(FirstPlugin(), name="first-plugin")
    pm.register(SecondPlugin(), name="second-plugin")
    with pytest.raises(PluginError) as error:
        get_engines(pm)
    assert "'first-plugin'" in str(error.value) and "'second-plugin'" in str(error.value)


def test_failing_hook_is_recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_distribution(
        tmp_path,
        "zoo-hookfail",
        "hookfail = zoo_hookfail_plugin",
        "from zoo import hookimpl\n\n@hookimpl\ndef zoo_register_engines():\n"
        "    raise ValueError('no engines today')\n",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    pm = new_plugin_manager()
    assert "llamacpp" in get_engines(pm)
    record = next(r for r in plugin_records(pm) if r.name == "hookfail")
    assert record.error == "zoo_register_engines: ValueError: no engines today"


def test_plugins_json_lists_builtin_engines_and_hooks() -> None:
    from zoo.cli.app import build_app

    result = CliRunner().invoke(build_app(), ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["version"] == 1
    by_name = {p["name"]: p for p in data["plugins"]}
    for name in ("llamacpp", "transformers", "vllm", "mlx"):
        assert by_name[name]["distribution"] == f"zoo-launcher-{name}"
        assert by_name[name]["hooks"] == ["zoo_register_engines"]
        assert by_name[name]["error"] is None
    assert plugin_report()  # the facade agrees with the CLI
