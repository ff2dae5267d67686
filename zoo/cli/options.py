"""Options shared by the commands that resolve a model (launch, download, engines --model).

One definition each, so every command spells and explains them the same way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from zoo.host import Host
    from zoo.plan import LaunchOptions
    from zoo.resolve import Request

ModelArgument = Annotated[str, typer.Argument(help="Model family name (see `zoo list`).")]
EngineOption = Annotated[str | None, typer.Option("--engine", "-e", help="Engine to use.")]
FormatOption = Annotated[
    str | None, typer.Option("--format", "-f", help="Spec format (ggufv2, pytorch, ...).")
]
SizeOption = Annotated[
    float | None, typer.Option("--size", "-s", help="Size in billions of parameters.")
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
MinSpeedOption = Annotated[
    float | None,
    typer.Option(
        "--min-speed",
        help="Tokens/s a choice must reach to count as usable (estimated; default 8, 0: any).",
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
    from zoo.host import load_host_profile, opt_in_from_env, this_machine

    names = [n.strip() for item in opt_in or () for n in item.split(",") if n.strip()]
    if names:
        check_opt_in(names)
    if not host_profile:
        return this_machine(names)  # what zoo.launch plans for when given no host
    return load_host_profile(host_profile).with_opt_in([*opt_in_from_env(), *names])


def check_opt_in(names: list[str]) -> None:
    from zoo.errors import UsageError
    from zoo.plugins import get_engines

    known = sorted({v.opt_in for e in get_engines().values() for v in e.variants if v.opt_in})
    for name in names:
        if name not in known:
            raise UsageError(
                f"--opt-in {name!r} is not an engine variant",
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
    size: float | None,
    quantization: str | None,
    hub: str | None,
    context: int | None,
    min_speed: float | None = None,
) -> Request:
    from zoo.resolve import Request

    # "auto" is the default hub choice, spelled out: the same as not naming one.
    return Request(
        model=model,
        engine=engine,
        format=format,
        size=size,
        quantization=quantization,
        hub=None if hub == "auto" else hub,
        context_length=context,
        min_speed=min_speed,
    )
