"""The interactive loop and the script form over a real loopback server: what is printed,
what the conversation keeps."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator

from chat_loopback import Server, event

from zoo.catalog.model import GenerationDefaults
from zoo.chat.client import ChatClient
from zoo.chat.session import Session
from zoo.chat.settings import Settings
from zoo.chat.terminal import answer_once, chat


def _typed(*lines: str) -> Iterator[str]:
    yield from lines


def _reader(lines: Iterator[str]) -> Callable[[str], str]:
    def read(prompt: str) -> str:
        try:
            return next(lines)
        except StopIteration:
            raise EOFError from None

    return read


def test_thinking_is_shown_apart_and_only_the_answer_is_kept(server: Server) -> None:
    server.reply = [
        event({"reasoning_content": "The user greets me."}),
        event({"content": "Hello!"}, finish="stop"),
    ]
    session = Session(Settings(GenerationDefaults(temperature=0.2, system_prompt="Be kind.")))
    out = io.StringIO()
    with ChatClient(server.url, "smol") as client:
        chat(client, session, out=out, read=_reader(_typed("hi", "/set temperature 0", "again")))
    text = out.getvalue()
    assert "Thinking...\nThe user greets me.\n...done thinking.\n\nHello!\n" in text
    assert "Set temperature to 0." in text
    first, second = server.requests
    assert first["messages"] == [
        {"role": "system", "content": "Be kind."},
        {"role": "user", "content": "hi"},
    ]
    assert first["temperature"] == 0.2 and second["temperature"] == 0
    assert second["messages"][2] == {"role": "assistant", "content": "Hello!"}  # no thinking


def test_a_bad_command_is_one_line_and_the_chat_goes_on(server: Server) -> None:
    out = io.StringIO()
    with ChatClient(server.url, "smol") as client:
        chat(
            client,
            Session(Settings(None)),
            out=out,
            read=_reader(_typed("/set temperature hot", "/nope", "/bye", "not read")),
        )
    lines = out.getvalue().splitlines()
    assert "error: 'hot' is not a number" in lines
    assert any(line.startswith("error: unknown command '/nope'") for line in lines)
    assert server.requests == []


def test_script_form_writes_the_answer_alone(server: Server) -> None:
    server.reply = [event({"reasoning": "hidden"}), event({"content": "Paris."})]
    out = io.StringIO()
    with ChatClient(server.url, "smol") as client:
        answer_once(client, Session(Settings(None)), "capital?", out)
    assert out.getvalue() == "Paris.\n"
