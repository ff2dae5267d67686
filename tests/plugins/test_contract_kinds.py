"""``Capabilities.kinds`` is checked when a plugin registers an engine: a kind zoo does not know
(a typo such as "embeddings") would make the engine silently serve nothing."""

from __future__ import annotations

import pytest
from plugin_helpers import InstallPlugin, warnings
from typer.testing import CliRunner

from zoo.engine import Capabilities
from zoo.plugin_contract import capabilities_problems
from zoo.plugins import get_engines, new_plugin_manager, plugin_manager, plugin_records

FORMATS = {"pytorch": ("*",)}


def test_known_kinds_pass() -> None:
    for kinds in (("llm",), ("embedding", "rerank"), ("llm", "embedding", "rerank")):
        assert capabilities_problems(Capabilities(formats=FORMATS, kinds=kinds)) == []


def test_an_unknown_kind_is_named_with_the_known_ones() -> None:
    assert capabilities_problems(Capabilities(formats=FORMATS, kinds=("embeddings",))) == [
        (
            "kinds names 'embeddings', not a model kind zoo knows (llm, embedding, rerank): "
            "did you mean 'embedding'?"
        )
    ]
    # Nothing close: the known ones are the hint; each unknown kind is one problem.
    assert capabilities_problems(Capabilities(formats=FORMATS, kinds=("llm", "image", "tts"))) == [
        "kinds names 'image', not a model kind zoo knows (llm, embedding, rerank)",
        "kinds names 'tts', not a model kind zoo knows (llm, embedding, rerank)",
    ]


TYPO_ENGINE = """\
from zoo import hookimpl
from zoo.engine import Capabilities, Engine, ServerCommand


class Vectors(Engine):
    name = "vectors"
    display_name = "Vectors"
    capabilities = Capabilities(formats={"pytorch": ("*",)}, kinds=("embeddings",))

    def server_command(self, ctx):
        return ServerCommand(argv=(ctx.python, "-m", "vectors.server"))


@hookimpl
def zoo_register_engines():
    return [Vectors()]
"""


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """A zoo command as a fresh process runs it, with all it printed on stderr."""
    from zoo.cli.app import _needs_plugin_commands, build_app, modules_for

    plugin_manager.cache_clear()
    capsys.readouterr()
    argv = list(args)
    app = build_app(with_plugins=_needs_plugin_commands(argv), modules=modules_for(argv))
    assembling = capsys.readouterr().err
    result = CliRunner().invoke(app, argv)
    return result.exit_code, result.stdout, assembling + result.stderr


def test_a_kind_typo_in_a_plugin_is_one_warning_and_listed_by_zoo_plugins(
    install_plugin: InstallPlugin, capsys: pytest.CaptureFixture[str]
) -> None:
    install_plugin("vectors", TYPO_ENGINE)
    problem = (
        "zoo_register_engines(): engine 'vectors' left out: capabilities: kinds names "
        "'embeddings', not a model kind zoo knows (llm, embedding, rerank): did you mean "
        "'embedding'?"
    )
    pm = new_plugin_manager()
    engines = get_engines(pm)
    assert "vectors" not in engines and "llamacpp" in engines
    [record] = [r for r in plugin_records(pm) if r.name == "vectors"]
    assert record.problems == [problem]
    # A command that meets it prints one warning line naming the plugin and the fix.
    code, out, err = _cli(capsys, "engines", "--host-profile", "cpu-8g")
    assert code == 0 and "llamacpp" in out
    [line] = warnings(err)
    assert line.startswith(f"zoo: warning: plugin 'vectors': {problem} (")
    # `zoo plugins` lists it under the plugin.
    code, out, err = _cli(capsys, "plugins")
    assert code == 0, err
    assert f"! {problem}" in out
