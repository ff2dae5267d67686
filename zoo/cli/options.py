"""Options shared by the commands that resolve a model (launch, download, engines --model).

One definition each, so every command spells and explains them the same way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from zoo.host import Host
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


def planning_host(host_profile: str | None, opt_in: list[str] | None) -> Host:
    """The host to plan for: a profile or this machine, plus opt-ins from flags and env."""
    from zoo.host import detect_host, load_host_profile, opt_in_from_env

    host = load_host_profile(host_profile) if host_profile else detect_host()
    names = [n.strip() for item in opt_in or () for n in item.split(",")]
    return host.with_opt_in([*opt_in_from_env(), *names])


def model_request(
    model: str,
    engine: str | None,
    format: str | None,
    size: float | None,
    quantization: str | None,
    hub: str | None,
    context: int | None,
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
    )
