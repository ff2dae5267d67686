"""The parts of `zoo run` that need no model: SSE parsing, the reasoning split, settings and
their origins, the chat's commands, multi-line input."""

from __future__ import annotations

import pytest

from zoo.catalog.model import GenerationDefaults
from zoo.chat.commands import run_command
from zoo.chat.reasoning import ANSWER, REASONING, Piece, ReasoningSplitter
from zoo.chat.session import Session
from zoo.chat.settings import Settings
from zoo.chat.sse import StreamFormatError, events
from zoo.chat.terminal import read_message
from zoo.errors import UsageError

CARD = GenerationDefaults(
    temperature=0.2, top_p=0.9, system_prompt="You are SmolLM.", source="https://card"
)


def test_events_join_data_lines_skip_comments_and_stop_at_done() -> None:
    stream = [
        ": keep-alive",
        'data: {"a": 1}',
        "",
        "event: message",
        'data: {"b":',
        "data: 2}",
        "",
        "data: [DONE]",
        "",
        'data: {"after": true}',
        "",
    ]
    assert list(events(stream)) == [{"a": 1}, {"b": 2}]


def test_events_deliver_a_last_event_without_its_blank_line() -> None:
    assert list(events(['data:{"x": "y"}'])) == [{"x": "y"}]


def test_an_event_that_is_not_a_json_object_is_an_error() -> None:
    with pytest.raises(StreamFormatError):
        list(events(["data: [1, 2]", ""]))
    with pytest.raises(StreamFormatError):
        list(events(["data: nonsense", ""]))


def _split(
    chunks: list[str], tags: tuple[str | None, str | None] = ("<think>", "</think>")
) -> list[Piece]:
    splitter = ReasoningSplitter(*tags)
    pieces = [p for c in chunks for p in splitter.feed(c)] + splitter.flush()
    merged: list[Piece] = []
    for piece in pieces:  # adjacent pieces of one kind read as one
        if merged and merged[-1].kind == piece.kind:
            merged[-1] = Piece(piece.kind, merged[-1].text + piece.text)
        else:
            merged.append(piece)
    return merged


def test_reasoning_between_tags_cut_across_chunks_is_told_from_the_answer() -> None:
    chunks = ["<th", "ink>\nLet me", " think.</", "think>\n\nParis", " is it. 1 < 2"]
    assert _split(chunks) == [
        Piece(REASONING, "Let me think."),
        Piece(ANSWER, "Paris is it. 1 < 2"),
    ]


def test_without_tags_everything_is_answer_even_tag_like_text() -> None:
    assert _split(["<think>x</think>y"], (None, None)) == [Piece(ANSWER, "<think>x</think>y")]


def test_text_held_as_a_possible_tag_comes_out_at_the_end() -> None:
    assert _split(["Answer: a <th"]) == [Piece(ANSWER, "Answer: a <th")]


def test_settings_spec_then_command_line_then_set_with_origins() -> None:
    settings = Settings(CARD, options={"temperature": 0.7, "max_tokens": 10})
    assert settings.options() == {"temperature": 0.7, "top_p": 0.9, "max_tokens": 10}
    assert settings.system == "You are SmolLM."
    settings.set("temperature", "0")
    settings.set("top-p", "0.5")
    assert settings.options() == {"temperature": 0.0, "top_p": 0.5, "max_tokens": 10}
    shown = {row.name: row for row in settings.shown()}
    assert (shown["temperature"].value, shown["temperature"].origin) == ("0", "set in this chat")
    assert shown["max_tokens"].origin == "command line"
    assert shown["top_k"].origin == "the server's default"
    settings.unset("temperature")
    settings.unset("top_p")
    assert settings.options()["temperature"] == 0.7  # back to the command line's
    assert {r.name: r for r in settings.shown()}["top_p"].origin == "model spec (https://card)"


def test_an_empty_system_prompt_on_the_command_line_sends_none() -> None:
    settings = Settings(CARD, system="")
    assert settings.system is None
    session = Session(settings)
    assert session.messages("hi") == [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(
    ("name", "value"),
    [("temperature", "-1"), ("top_p", "0"), ("top_k", "1.5"), ("max_tokens", "0"), ("bogus", "1")],
)
def test_invalid_parameters_are_usage_errors(name: str, value: str) -> None:
    with pytest.raises(UsageError):
        Settings(None).set(name, value)


def test_commands_change_the_session() -> None:
    session = Session(Settings(CARD), about=[("name", "smol")])
    session.answered("q", "a")
    assert run_command("/set temperature 0", session).text == "Set temperature to 0."
    assert session.settings.options()["temperature"] == 0
    assert run_command("/set num_predict 32", session).text == "Set max_tokens to 32."
    run_command("/system Be brief.", session)
    assert session.messages("x")[0] == {"role": "system", "content": "Be brief."}
    assert len(session.messages("x")) == 4
    assert run_command("/clear", session).text.startswith("Cleared")
    assert session.messages("x") == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "x"},
    ]
    shown = run_command("/show", session).text
    assert "name:" in shown and "smol" in shown
    assert "temperature" in shown and "set in this chat" in shown
    assert "Be brief." in shown
    assert "/bye" in run_command("/?", session).text
    assert run_command("/bye", session).leave
    with pytest.raises(UsageError, match="unknown command"):
        run_command("/frobnicate", session)


def test_multiline_input_between_triple_quotes() -> None:
    lines = iter(['"""first line', "second line", 'third"""', "not read"])
    prompts: list[str] = []

    def read(prompt: str) -> str:
        prompts.append(prompt)
        return next(lines)

    assert read_message(read) == "first line\nsecond line\nthird"
    assert prompts == [">>> ", "... ", "... "]
    assert read_message(lambda _: '"""one"""') == "one"
    assert read_message(lambda _: "plain") == "plain"
