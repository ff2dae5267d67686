"""The chat client against a real HTTP server on loopback that streams what engines stream."""

from __future__ import annotations

import socket

import pytest
from chat_loopback import Server, event

from zoo.chat.client import ChatClient, ChatError
from zoo.chat.reasoning import ANSWER, REASONING, Piece


def test_streams_answer_and_reasoning_field_and_sends_options_and_key(server: Server) -> None:
    server.reply = [
        event({"role": "assistant"}),
        event({"reasoning_content": "Hmm."}),
        event({"content": "Par"}),
        event({"content": "is."}, finish="length"),
        b"data: [DONE]\n\n",
    ]
    with ChatClient(server.url, "smol", api_key="k-123") as client:
        pieces = list(client.stream([{"role": "user", "content": "q"}], {"temperature": 0}))
        assert pieces == [Piece(REASONING, "Hmm."), Piece(ANSWER, "Par"), Piece(ANSWER, "is.")]
        assert client.outcome.finish_reason == "length"
        assert client.alive()
    assert server.requests == [
        {
            "model": "smol",
            "messages": [{"role": "user", "content": "q"}],
            "stream": True,
            "temperature": 0,
        }
    ]
    assert server.headers == ["Bearer k-123"]


def test_inline_think_tags_are_split_with_the_familys_tags(server: Server) -> None:
    server.reply = [event({"content": "<think>a</th"}), event({"content": "ink>b"})]
    with ChatClient(server.url, "smol", reasoning_tags=("<think>", "</think>")) as client:
        assert list(client.stream([], {})) == [Piece(REASONING, "a"), Piece(ANSWER, "b")]
        assert not ChatClient(server.url, "other").alive()  # not a model it serves


def test_server_errors_are_one_line_with_its_message(server: Server) -> None:
    server.status = 503
    with (
        ChatClient(server.url, "smol") as client,
        pytest.raises(ChatError, match="answered 503: model is loading"),
    ):
        list(client.stream([], {}))
    server.status = 401
    with ChatClient(server.url, "smol") as client, pytest.raises(ChatError, match="ZOO_API_KEY"):
        list(client.stream([], {}))


def test_an_error_event_mid_stream_is_reported(server: Server) -> None:
    server.reply = [event({"content": "a"}), b'data: {"error": {"message": "out of memory"}}\n\n']
    with ChatClient(server.url, "smol") as client, pytest.raises(ChatError, match="out of memory"):
        list(client.stream([], {}))


def test_a_connection_cut_mid_answer_says_so(server: Server) -> None:
    server.cut = True
    server.reply = [event({"content": "a"})]
    with (
        ChatClient(server.url, "smol") as client,
        pytest.raises(ChatError, match="broke mid-answer"),
    ):
        list(client.stream([], {}))


def test_nothing_listening_is_one_friendly_line() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with ChatClient(f"http://127.0.0.1:{port}/v1", "smol") as client:
        with pytest.raises(ChatError, match="cannot reach"):
            list(client.stream([], {}))
        assert not client.alive()
