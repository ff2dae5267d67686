"""Options shared by the commands that resolve a model (launch, download, engines --model).

One definition each, so every command spells and explains them the same way. ``model_request``
is where a model reference (``qwen3:8b``, ``zoo.reference``), the flags and the settings file
(``zoo.config``) become one Request; the precedence is flag (or tag) > environment variable >
settings file > built-in default, everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from zoo.catalog.model import Family
    from zoo.config import Config, Setting
    from zoo.host import Host
    from zoo.plan import LaunchOptions
    from zoo.resolve import Request


def complete_model(incomplete: str) -> list[str]:
    """Shell completion for a model reference: family names, then ``name:`` tags."""
    from zoo.cli.completion import model_completions

    return model_completions(incomplete)


ModelArgument = Annotated[
    str,
    typer.Argument(
        help="Model family name, optionally with a tag: qwen3, qwen3:8b, seed-oss:36b-q4_k_m "
        "(see `zoo list`).",
        autocompletion=complete_model,
    ),
]
EngineOption = Annotated[str | None, typer.Option("--engine", "-e", help="Engine to use.")]
FormatOption = Annotated[
    str | None, typer.Option("--format", "-f", help="Spec format (ggufv2, pytorch, ...).")
]
SizeOption = Annotated[
    str | None,
    typer.Option("--size", "-s", help="Size in parameters: 8B, 0.5B, 135M, 30B-A3B (or 8)."),
]
QuantizationOption = Annotated[
    str | None, typer.Option("--quantization", "-q", help="Quantization (any case).")
]
HubOption = Annotated[
    str | None,
    typer.Option("--hub", help="Download from this hub only (also: ZOO_HUB; 'auto': any)."),
]
ContextOption = Annotated[
    int | None, typer.Option("--context", help="Context length in tokens to plan for.")
]


def _check_min_speed(value: float | None) -> float | None:
    # A callback, so every command with --min-speed checks it by the settings file's rule.
    from zoo.config import check_min_speed

    return None if value is None else check_min_speed(value)


MinSpeedOption = Annotated[
    float | None,
    typer.Option(
        "--min-speed",
        help="Tokens/s a choice must reach to count as usable (estimated; default 8, 0: any).",
        callback=_check_min_speed,
    ),
]
HostProfileOption = Annotated[
    str | None,
    typer.Option(
        "--host-profile",
        help="Plan for another machine: a JSON file (Host.to_json) or a built-in profile "
        "(cpu-8g, cpu-24g, rtx4090-24g, h100-80g, m2-32g, ...).",
    ),
]
OptInOption = Annotated[
    list[str] | None,
    typer.Option(
        "--opt-in",
        help="Enable an opt-in engine variant (vllm-cpu, mlx-cpu); also ZOO_ENGINE_OPT_IN.",
    ),
]


# What --dtype accepts: the names every engine maps (see each engine's server_command).
DTYPES = ("auto", "bfloat16", "float16", "float32")


def planning_host(host_profile: str | None, opt_in: list[str] | None) -> Host:
    """The host to plan for: a profile or this machine, plus opt-ins from flags and env.

    An opt-in no installed engine offers is an error naming the ones that exist.
    """
    from zoo import config
    from zoo.host import load_host_profile, opt_in_from_env, this_machine

    names = [n.strip() for item in opt_in or () for n in item.split(",") if n.strip()]
    if names:
        check_opt_in(names)
    before = config.opt_ins()
    if before.source.startswith("file"):
        # The file's list stands in for $ZOO_ENGINE_OPT_IN, which is not set: this_machine
        # and opt_in_from_env below read nothing then.
        check_opt_in(list(before.value), where=f"opt_in ({before.source})")
        names = [*before.value, *names]
    if not host_profile:
        return this_machine(names)  # what zoo.launch plans for when given no host
    return load_host_profile(host_profile).with_opt_in([*opt_in_from_env(), *names])


def check_opt_in(names: list[str], where: str = "--opt-in") -> None:
    from zoo.errors import UsageError
    from zoo.plugins import get_engines

    known = sorted({v.opt_in for e in get_engines().values() for v in e.variants if v.opt_in})
    for name in names:
        if name not in known:
            raise UsageError(
                f"{where} {name!r} is not an engine variant",
                hint=f"variants: {', '.join(known) or 'none installed'}",
            )


def check_dtype(dtype: str | None) -> None:
    from zoo.errors import UsageError

    if dtype is not None and dtype not in DTYPES:
        raise UsageError(f"--dtype {dtype!r} is not one of {', '.join(DTYPES)}")


def check_launch_options(options: LaunchOptions) -> None:
    """Refuse what would fail only after a download: an engine argument that moves the server
    off its recorded address, an API key an engine or a header cannot carry, an address this
    machine cannot bind."""
    from zoo.runtime import process
    from zoo.runtime.invocation import check_engine_args

    check_engine_args(options.extra_args)
    if options.api_key is not None:
        process.check_api_key(options.api_key)
    process.check_bind_host(options.host)


def model_request(
    model: str,
    engine: str | None,
    format: str | None,
    size: str | float | None,
    quantization: str | None,
    hub: str | None,
    context: int | None,
    min_speed: float | None = None,
) -> Request:
    """The Request for a model reference and the flags, with the settings file's defaults.

    The tag is read against the family as the gateway reads it (``zoo.reference.read_tag``);
    a tag and a flag that say different things are a usage error; a tag the family does not
    have names the tags it has. The catalog is read only when there is a tag (or an active
    size, which a Request cannot carry) to check. A ``[models."NAME"]`` default the family or
    the engines lack is a ConfigError naming the file's line (``_check_file_defaults``).
    """
    from zoo import config as settings
    from zoo import reference as ref
    from zoo.resolve import Request

    wanted = ref.reference_with_flags(model, size, quantization, _family)
    file = settings.load()
    size_setting = file.model(wanted.name, "size") if wanted.size is None else None
    request = Request(
        model=wanted.name,
        engine=engine if engine is not None else _model_default(file, wanted.name, "engine"),
        format=format if format is not None else _model_default(file, wanted.name, "format"),
        size=wanted.size
        if size_setting is None
        else ref.parse_size(size_setting.value, what=f"{size_setting.source}: size").total,
        quantization=wanted.quantization or _model_default(file, wanted.name, "quantization"),
        # "auto" is the default hub choice, spelled out: the same as not naming one.
        hub=None if hub == "auto" else hub,
        context_length=context
        if context is not None
        else _model_default(file, wanted.name, "context"),
        default_hub=settings.default_hub(file).value,
        min_speed=settings.min_speed(min_speed, file).value,
    )
    given = {
        "engine": engine,
        "format": format,
        "size": wanted.size,
        "quantization": wanted.quantization,
        "context": context,
    }
    from_file = {
        key: found
        for key in given
        if given[key] is None and (found := file.model(wanted.name, key)) is not None
    }
    if from_file:
        _check_file_defaults(request, from_file)
    return request


# The settings' names of the Request's fields the file can set, in the order resolution checks
# them (an engine before a format, a size before the quantizations of that size).
_REQUEST_FIELDS = {
    "engine": "engine",
    "format": "format",
    "size": "size",
    "quantization": "quantization",
    "context": "context_length",
}


def _check_file_defaults(request: Request, from_file: dict[str, Setting]) -> None:
    """A ``[models."NAME"]`` default the family or the engines lack is the file's mistake: say
    so with its line, by resolution's own checks, added one default at a time to what the
    flags and the tag asked (a mistake in those is reported by the plan, as without a file)."""
    from dataclasses import replace

    from zoo import resolve
    from zoo.config import ConfigError
    from zoo.errors import ZooError
    from zoo.plugins import get_engines

    try:
        family = _family(request.model)
    except ZooError:
        return  # an unknown model: the plan names it
    engines = get_engines()

    def check(asked: Request) -> None:
        # resolve's own checks (private names there): one rule, not a copy that drifts.
        resolve.validate_request(family, asked, engines)
        resolve.context_length(family, asked)

    cleared: dict[str, Any] = {_REQUEST_FIELDS[key]: None for key in from_file}
    asked = replace(request, **cleared)
    try:
        check(asked)
    except ZooError:
        return
    for key, field in _REQUEST_FIELDS.items():
        if key not in from_file:
            continue
        asked = replace(asked, **{field: getattr(request, field)})
        try:
            check(asked)
        except ZooError as error:
            from zoo.catalog.problems import one_line

            where = from_file[key].source.removeprefix("file ")
            # resolve shows some values unquoted; the file's are escaped here (one_line).
            raise ConfigError(
                f"{where}: [models.{family.name}] {key}: {one_line(error.args[0])}",
                hint=error.hint,
            ) from None


def _family(name: str) -> Family:
    from zoo.registry import catalog_with_plugins

    return catalog_with_plugins().get(name)


def _model_default(file: Config, name: str, key: str) -> Any:
    """The settings file's ``[models."NAME"]`` value for ``key`` (types checked on load)."""
    found = file.model(name, key)
    return None if found is None else found.value


def model_settings(file: Config, name: str) -> dict[str, Setting]:
    """The settings file's defaults for one family (for `zoo config show`)."""
    from zoo.config import MODEL_SETTINGS

    found = {key: file.model(name, key) for key in MODEL_SETTINGS}
    return {key: value for key, value in found.items() if value is not None}


@dataclass(frozen=True)
class LaunchDefaults:
    """Where a launched server listens and the key it wants, each with where it came from."""

    host: Setting
    port: Setting
    api_key: Setting


def launch_defaults(
    host: str | None = None, port: int | None = None, api_key: str | None = None
) -> LaunchDefaults:
    """``--host``, ``--port``, ``--api-key`` (or ``$ZOO_API_KEY``) as given, else the settings
    file's, else the built-in defaults (127.0.0.1, a free port, no key)."""
    from zoo import config

    file = config.load()
    return LaunchDefaults(
        host=config.chosen(host, "host", config.DEFAULT_HOST, file),
        port=config.chosen(port, "port", None, file),
        api_key=config.api_key(api_key, file),
    )
