"""``zoo run MODEL [PROMPT]`` (alias ``zoo chat``): talk to a model in the terminal, or get one
answer for a script.

The model is the one ``zoo launch`` would run: a running instance of it is reused, else the
gateway when ``zoo serve`` lists it, else it is launched for this chat and stopped when the
chat ends (``zoo.chat.endpoint``). Requests carry the family's generation defaults from its
spec unless the command line or ``/set`` says otherwise (``zoo.chat.settings``).
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated

import typer

from zoo.cli.options import (
    ContextOption,
    EngineOption,
    FormatOption,
    HubOption,
    MinSpeedOption,
    ModelArgument,
    QuantizationOption,
    SizeOption,
    model_request,
)

if TYPE_CHECKING:
    from zoo.chat.endpoint import Endpoint

COMMANDS: tuple[str, ...] = ("run", "chat")

PromptArgument = Annotated[
    list[str] | None,
    typer.Argument(
        help="Ask this and print the answer (also: text on stdin). Without it: a chat.",
        show_default=False,
    ),
]


def run(
    model: ModelArgument,
    prompt: PromptArgument = None,
    engine: EngineOption = None,
    format: FormatOption = None,
    size: SizeOption = None,
    quantization: QuantizationOption = None,
    hub: HubOption = None,
    context: ContextOption = None,
    min_speed: MinSpeedOption = None,
    system: Annotated[
        str | None,
        typer.Option("--system", help='System prompt (default: the spec\'s; "" for none).'),
    ] = None,
    temperature: Annotated[
        float | None, typer.Option("--temperature", help="Sampling temperature (0: greedy).")
    ] = None,
    top_p: Annotated[float | None, typer.Option("--top-p", help="Nucleus sampling mass.")] = None,
    top_k: Annotated[
        int | None, typer.Option("--top-k", help="Sample from the K likeliest.")
    ] = None,
    min_p: Annotated[
        float | None, typer.Option("--min-p", help="Minimum token probability.")
    ] = None,
    repetition_penalty: Annotated[
        float | None, typer.Option("--repetition-penalty", help="Penalty for repeated tokens.")
    ] = None,
    max_tokens: Annotated[
        int | None, typer.Option("--max-tokens", help="Longest answer in tokens.")
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Sampling seed.")] = None,
) -> None:
    """Chat with a model in the terminal, or print one answer (PROMPT or stdin).

    Reuses a running instance of the model or `zoo serve`, else launches it for the chat
    and stops it at the end. The spec's generation defaults apply unless overridden here or
    with /set in the chat; /? lists the chat's commands.
    """
    from zoo.chat.client import ChatClient, ChatError
    from zoo.chat.endpoint import open_endpoint, server_exited
    from zoo.chat.session import Session
    from zoo.chat.settings import PARAMETERS, Settings
    from zoo.chat.terminal import answer_once, chat
    from zoo.errors import UsageError

    flags = {
        "temperature": temperature,
        "top_p": top_p,
        "top_k": top_k,
        "min_p": min_p,
        "repetition_penalty": repetition_penalty,
        "max_tokens": max_tokens,
        "seed": seed,
    }
    options: dict[str, float | int] = {}
    for name, value in flags.items():
        if value is not None:
            try:
                options[name] = PARAMETERS[name](str(value))
            except UsageError as error:
                raise UsageError(f"--{name.replace('_', '-')}: {error}") from None
    question = " ".join(prompt or ()).strip()
    interactive = not question and sys.stdin.isatty()
    if not interactive:
        question = _with_stdin(question)
        if not question:
            raise UsageError("nothing to ask: the prompt is empty", hint="give a PROMPT")
    request = model_request(
        model,
        engine=engine,
        format=format,
        size=size,
        quantization=quantization,
        hub=hub,
        context=context,
        min_speed=min_speed,
    )
    # A reference with a tag (qwen3:8b) or a flag narrows the choice: reuse only what matches.
    constrained = any(
        getattr(request, name) is not None
        for name in ("engine", "format", "size", "quantization", "context_length")
    )
    with (
        _sigterm_interrupts(),
        open_endpoint(request, constrained=constrained) as endpoint,
        ChatClient(
            endpoint.base_url,
            endpoint.model,
            api_key=endpoint.api_key,
            reasoning_tags=(
                endpoint.family.reasoning_start_tag,
                endpoint.family.reasoning_end_tag,
            ),
        ) as client,
    ):
        session = Session(
            Settings(endpoint.family.generation, options=options, system=system),
            about=_about(endpoint),
        )
        if interactive:
            chat(client, session, gone=lambda: server_exited(endpoint))
            return
        try:
            answer_once(client, session, question, sys.stdout)
        except ChatError as error:
            why = server_exited(endpoint)
            raise ChatError(why) if why else error from error


def _with_stdin(question: str) -> str:
    """The prompt with what stdin holds (a file piped in) after it, as ``ollama run`` does."""
    if sys.stdin is None or sys.stdin.isatty():
        return question
    piped = sys.stdin.read().strip()
    return f"{question}\n\n{piped}".strip() if question else piped


def _about(endpoint: Endpoint) -> list[tuple[str, str]]:
    from zoo.catalog.model import context_label

    family = endpoint.family
    return [
        ("name", family.name),
        ("endpoint", endpoint.base_url),
        ("served by", endpoint.how),
        ("context", context_label(family.context_length)),
    ]


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM ends the chat like Ctrl-C: what was launched is stopped (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def register(app: typer.Typer) -> None:
    app.command("run", no_args_is_help=True)(run)
    # The alias: the same command under the name other tools use for it.
    app.command("chat", no_args_is_help=True, help="Alias of `zoo run`.")(run)
