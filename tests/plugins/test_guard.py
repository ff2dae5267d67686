"""Plugin code that raises or returns the wrong thing after registration: a failing check
drops only that candidate, a failing server command is one error line naming the plugin, a
failing hub probe is a harmless answer; each is recorded, warned about once, and shown by a
later ``zoo plugins``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest
from plugin_helpers import InstallPlugin, warnings
from typer.testing import CliRunner

from zoo import hookimpl
from zoo.catalog.catalog import load_catalog
from zoo.catalog.model import Spec
from zoo.engine import Capabilities, Engine, LaunchContext, Match, ServerCommand
from zoo.errors import ZooError
from zoo.host import BUILTIN_PROFILES, Host
from zoo.hubs.base import FetchRequest, FetchResult, Hub, HubError, RemoteFile
from zoo.plugins import (
    PluginError,
    get_engines,
    get_hubs,
    new_plugin_manager,
    plugin_manager,
    plugin_records,
)
from zoo.resolve import Request, resolve

FAMILY = """\
name: tiny-echo
description: A tiny family for the plugin guard tests.
context_length: 2048
languages: [en]
abilities: [chat]
specs:
  - format: ggufv2
    size: 0.001
    quantizations: [Q4_1, Q8_0]
    sources:
      huggingface:
        model_id: example/tiny-echo-GGUF
        file: tiny-echo.{quantization}.gguf
"""

# An engine plugin whose methods misbehave as the class attributes say.
PLUGIN = """\
from zoo import hookimpl
from zoo.engine import Capabilities, Engine, Match, ServerCommand

class Clumsy(Engine):
    name = "clumsy"
    display_name = "Clumsy"
    priority = 100  # preferred over llama.cpp whenever its check says yes
    capabilities = Capabilities(formats={"ggufv2": ("*",)}, preferred_on=("cpu",))
    check_fails = CHECK_FAILS
    command_fails = COMMAND_FAILS

    def check(self, spec, quantization, host):
        if self.check_fails:
            raise KeyError("quantization table")
        return super().check(spec, quantization, host)

    def server_command(self, ctx):
        if self.command_fails:
            return {"argv": ["oops"]}
        return ServerCommand(argv=(ctx.python, "-m", "clumsy.server", ctx.model_path))

@hookimpl
def zoo_register_engines():
    return [Clumsy()]
"""


def _clumsy(*, check_fails: bool = False, command_fails: bool = False) -> str:
    source = PLUGIN.replace("CHECK_FAILS", repr(check_fails))
    return source.replace("COMMAND_FAILS", repr(command_fails))


@pytest.fixture
def specs(tmp_path: Path) -> Path:
    folder = tmp_path / "specs"
    folder.mkdir()
    (folder / "tiny-echo.yaml").write_text(FAMILY)
    return folder


class Flaky(Engine):
    name = "flaky"
    display_name = "Flaky"
    capabilities = Capabilities(formats={"ggufv2": ("*",)}, preferred_on=("cpu",))
    priority = 100

    def __init__(self, fail: str = "") -> None:
        self.fail = fail
        self.checks = 0

    def check(self, spec: Spec, quantization: str, host: Host) -> Match:
        self.checks += 1
        if self.fail == "check":
            raise ValueError("no table for " + quantization)
        if self.fail == "check-type":
            return True  # type: ignore[return-value]
        return super().check(spec, quantization, host)

    def server_command(self, ctx: LaunchContext) -> ServerCommand:
        if self.fail == "command":
            raise KeyError("model_path")
        if self.fail == "env":
            return ServerCommand(argv=("flaky",), env={"FLAKY_KEY": None})  # type: ignore[dict-item]
        if self.fail == "friendly":
            raise ZooError("flaky needs FLAKY_HOME set")
        return ServerCommand(argv=("flaky", ctx.model_path))

    def requirements(self, host: Host) -> Sequence[str]:
        if self.fail == "requirements":
            return "flaky-runtime==1.0"  # a string, not a sequence of requirements
        return super().requirements(host)


def _manager(engine: Engine) -> object:
    class Plugin:
        @hookimpl
        def zoo_register_engines(self) -> list[Engine]:
            return [engine]

    pm = new_plugin_manager()
    pm.register(Plugin(), name="flaky-plugin")
    return pm


def _problems(pm: object, name: str) -> list[str]:
    return next(r for r in plugin_records(pm) if r.name == name).problems  # type: ignore[arg-type]


def _ctx(specs: Path) -> LaunchContext:
    family = load_catalog([specs]).get("tiny-echo")
    return LaunchContext(
        family=family,
        spec=family.specs[0],
        quantization="Q8_0",
        model_path="/m/tiny.gguf",
        served_name="tiny-echo",
    )


def test_a_check_that_raises_drops_only_that_engine(
    specs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flaky = Flaky("check")
    pm = _manager(flaky)
    engines = get_engines(pm)  # type: ignore[arg-type]
    plan = resolve(load_catalog([specs]), Request("tiny-echo"), engines, BUILTIN_PROFILES["cpu-8g"])
    assert plan.engine == "llamacpp"  # resolution went on without it
    dropped = [c for c in plan.candidates if c.engine == "flaky"]
    assert dropped and all(
        c.reason.startswith("check() raised ValueError: no table for Q")
        and "a bug in plugin 'flaky-plugin'" in c.reason
        for c in dropped
    )
    assert flaky.checks > 1  # asked once per candidate ...
    # ... recorded once per message, and warned about once in all.
    assert len(warnings(capsys.readouterr().err)) == 1
    assert _problems(pm, "flaky-plugin")[0].startswith(
        "engine 'flaky': check() raised ValueError: no table for Q"
    )


def test_a_check_that_returns_no_match_is_a_no() -> None:
    engines = get_engines(_manager(Flaky("check-type")))  # type: ignore[arg-type]
    verdict = engines["flaky"].check(
        Spec(format="ggufv2", size=1.0, quantizations=("Q8_0",), sources=()),
        "Q8_0",
        BUILTIN_PROFILES["cpu-8g"],
    )
    assert isinstance(verdict, Match) and not verdict.ok
    assert verdict.reason.startswith("check() returned bool True, not a Match")


def test_a_failing_method_that_check_calls_is_reported_once_and_drops_the_candidate() -> None:
    class Broken(Flaky):
        def capabilities_for(self, host: Host) -> Capabilities:
            raise RuntimeError("variant table")

    pm = _manager(Broken())
    engine = get_engines(pm)["flaky"]  # type: ignore[arg-type]
    spec = Spec(format="ggufv2", size=1.0, quantizations=("Q8_0",), sources=())
    verdict = engine.check(spec, "Q8_0", BUILTIN_PROFILES["cpu-8g"])  # the default check
    assert not verdict.ok
    assert "engine 'flaky': capabilities_for() raised RuntimeError: variant table" in verdict.reason
    assert _problems(pm, "flaky-plugin") == [
        "engine 'flaky': capabilities_for() raised RuntimeError: variant table"
    ]


def test_strict_mode_makes_a_failing_check_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    engines = get_engines(_manager(Flaky("check")))  # type: ignore[arg-type]
    monkeypatch.setenv("ZOO_STRICT_PLUGINS", "1")
    spec = Spec(format="ggufv2", size=1.0, quantizations=("Q8_0",), sources=())
    with pytest.raises(PluginError, match="plugin 'flaky-plugin': engine 'flaky': check"):
        engines["flaky"].check(spec, "Q8_0", BUILTIN_PROFILES["cpu-8g"])


@pytest.mark.parametrize(
    ("fail", "words"),
    [
        ("command", "server_command() raised KeyError: 'model_path'"),
        ("env", "server_command() returned ServerCommand"),
    ],
)
def test_a_failing_server_command_is_a_plugin_error_naming_plugin_and_method(
    specs: Path, fail: str, words: str
) -> None:
    pm = _manager(Flaky(fail))
    engine = get_engines(pm)["flaky"]  # type: ignore[arg-type]
    with pytest.raises(PluginError) as caught:
        engine.server_command(_ctx(specs))
    message = str(caught.value)
    assert message.startswith(f"plugin 'flaky-plugin': engine 'flaky': {words}")
    assert "ZOO_DISABLE_PLUGINS=flaky-plugin" in message and "\n" not in message
    if fail == "command":
        assert isinstance(caught.value.__cause__, KeyError)  # --debug shows the plugin's frame
    else:
        assert "not a ServerCommand whose env maps strings to strings" in message
    assert _problems(pm, "flaky-plugin") == [Exception.__str__(caught.value).split(": ", 1)[1]]


def test_a_plugins_own_zoo_error_passes_through_untouched(specs: Path) -> None:
    engine = get_engines(_manager(Flaky("friendly")))["flaky"]  # type: ignore[arg-type]
    with pytest.raises(ZooError) as caught:
        engine.server_command(_ctx(specs))
    assert type(caught.value) is ZooError and str(caught.value) == "flaky needs FLAKY_HOME set"


def test_requirements_of_the_wrong_shape_are_caught_before_pip_sees_them() -> None:
    engine = get_engines(_manager(Flaky("requirements")))["flaky"]  # type: ignore[arg-type]
    with pytest.raises(PluginError, match=r"requirements\(\) returned str 'flaky-runtime==1.0'"):
        engine.requirements(BUILTIN_PROFILES["cpu-8g"])


def test_guarding_keeps_the_engine_the_plugins_own() -> None:
    flaky = Flaky()
    engine = get_engines(_manager(flaky))["flaky"]  # type: ignore[arg-type]
    # Same object and class (the runtime finds the plugin's package from type(engine)).
    assert engine is flaky and type(engine) is Flaky and type(engine).__module__ == __name__
    assert engine.requirements(BUILTIN_PROFILES["cpu-8g"]) == ()
    # Registering it again (another manager) does not wrap it twice.
    checks = flaky.checks
    get_engines(_manager(flaky))["flaky"].check(  # type: ignore[arg-type]
        Spec(format="ggufv2", size=1.0, quantizations=("Q8_0",), sources=()),
        "Q8_0",
        BUILTIN_PROFILES["cpu-8g"],
    )
    assert flaky.checks == checks + 1


class ShakyHub(Hub):
    name = "shaky"
    display_name = "Shaky mirror"

    def reachable(self, timeout: float = 2.0) -> bool:
        raise ConnectionResetError("peer reset")

    def list_files(self, repo: str, revision: str | None = None) -> Sequence[RemoteFile]:
        raise RuntimeError("listing parser broke")

    def fetch(self, request: FetchRequest, progress: object = None) -> FetchResult:
        raise HubError("shaky: example/model has no file x.gguf")

    def cached(self, request: FetchRequest) -> FetchResult | None:
        raise AttributeError("'NoneType' object has no attribute 'root'")

    def cache_entries(self) -> Sequence[object]:  # type: ignore[override]
        return None  # type: ignore[return-value]


def test_a_failing_hub_gives_harmless_answers_or_a_plugin_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    class Plugin:
        @hookimpl
        def zoo_register_hubs(self) -> list[Hub]:
            return [ShakyHub()]

    pm = new_plugin_manager()
    pm.register(Plugin(), name="shaky-plugin")
    hub = get_hubs(pm)["shaky"]
    request = FetchRequest("example/model", files=("x.gguf",))
    assert hub.reachable() is False  # a probe that raises: the hub counts as unreachable
    assert hub.cached(request) is None  # a cache miss
    assert hub.cache_entries() == ()  # `zoo cache list` still lists the other hubs
    with pytest.raises(PluginError, match="hub 'shaky': list_files"):
        hub.list_files("example/model")
    with pytest.raises(HubError, match=r"has no file x\.gguf"):  # its own error, untouched
        hub.fetch(request)
    assert len(warnings(capsys.readouterr().err)) == 3  # one per method that answered anyway
    assert len(_problems(pm, "shaky-plugin")) == 4


# -- through the command line, as a user meets it -------------------------------------------


def _invoke(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """One zoo command as its own process would run it: a fresh plugin manager."""
    from zoo.cli.app import build_app

    plugin_manager.cache_clear()
    result = CliRunner().invoke(build_app(with_plugins=False), list(args))
    return result.exit_code, result.stdout, capsys.readouterr().err + result.stderr


def test_the_cli_survives_a_failing_check_with_one_warning(
    install_plugin: InstallPlugin,
    specs: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    install_plugin("clumsy", _clumsy(check_fails=True))
    monkeypatch.setenv("ZOO_CATALOG_PATH", str(specs))
    code, out, err = _invoke(
        capsys, "engines", "--model", "tiny-echo", "--host-profile", "cpu-8g", "--json"
    )
    assert code == 0, err
    candidates = json.loads(out)["candidates"]
    assert {c["engine"] for c in candidates if c["kept"]} >= {"llamacpp"}
    assert any("check() raised KeyError" in c["reason"] for c in candidates)
    [warning] = warnings(err)
    assert "plugin 'clumsy': engine 'clumsy': check() raised KeyError" in warning


def test_a_failing_server_command_is_one_error_line_and_shown_by_zoo_plugins_later(
    install_plugin: InstallPlugin,
    specs: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from zoo.cli.app import main

    install_plugin("clumsy", _clumsy(command_fails=True))
    monkeypatch.setenv("ZOO_CATALOG_PATH", str(specs))
    plugin_manager.cache_clear()
    with pytest.raises(SystemExit) as exited:
        main(["launch", "tiny-echo", "--dry-run", "--host-profile", "cpu-8g"])
    assert exited.value.code == 1
    err = capsys.readouterr().err
    [line] = [li for li in err.splitlines() if li.startswith("zoo: ")]
    assert line.startswith(
        "zoo: error: plugin 'clumsy': engine 'clumsy': server_command() returned dict"
    )
    assert "Traceback" not in err
    # A later `zoo plugins` (another process) shows what that command met.
    code, out, _ = _invoke(capsys, "plugins", "--json")
    assert code == 0
    clumsy = next(p for p in json.loads(out)["plugins"] if p["name"] == "clumsy")
    assert clumsy["problems"] == []  # nothing wrong at registration ...
    [seen] = clumsy["earlier_problems"]  # ... but the launch hit this
    assert seen["where"] == "engine 'clumsy'.server_command"
    assert seen["message"].startswith("engine 'clumsy': server_command() returned dict")
    _, out, _ = _invoke(capsys, "plugins")
    assert "! engine 'clumsy': server_command() returned dict" in out and "(seen 20" in out
