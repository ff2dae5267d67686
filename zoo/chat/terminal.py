"""The chat in a terminal (``zoo run MODEL``) and the one answer for scripts.

Interactive: ``>>>`` prompts read with readline (line editing; the history is kept in zoo's
state folder across runs, readable by this user only), a message between two ``\"\"\"`` may
span lines, answers stream as they arrive, a reasoning model's thinking is shown dimmed
between "Thinking..." and "...done thinking.", Ctrl-C stops the answer being written (it is
not kept in the conversation), Ctrl-D or ``/bye`` leaves.

For scripts (``zoo run MODEL PROMPT``, ``echo hi | zoo run MODEL``): the answer alone on
stdout, no thinking, nothing else; notices go to stderr.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TextIO

from zoo.chat.client import ChatClient, ChatError
from zoo.chat.commands import MULTILINE, Reply, is_command, run_command
from zoo.chat.reasoning import REASONING
from zoo.chat.session import Session
from zoo.errors import UsageError

HISTORY_FILE = "chat_history"
HISTORY_LENGTH = 1000
PROMPT = ">>> "
CONTINUED = "... "
DIM = "\x1b[2m"
RESET = "\x1b[0m"
# Why the server is gone, if it is (a launched engine that crashed): the chat cannot go on.
GoneCheck = Callable[[], "str | None"]


def history_path() -> Path:
    from zoo import paths

    return paths.state_dir() / HISTORY_FILE


def _styled(out: TextIO) -> bool:
    return out.isatty() and not os.environ.get("NO_COLOR")


def answer_once(client: ChatClient, session: Session, prompt: str, out: TextIO) -> str:
    """Stream one answer (no thinking) to ``out``; the text written."""
    written: list[str] = []
    with contextlib.closing(
        client.stream(session.messages(prompt), session.settings.options())
    ) as pieces:
        for piece in pieces:
            if piece.kind == REASONING:
                continue
            out.write(piece.text)
            out.flush()
            written.append(piece.text)
    text = "".join(written)
    if not text.endswith("\n"):
        out.write("\n")
    out.flush()
    if client.outcome.finish_reason == "length":
        print("zoo run: the answer was cut at max_tokens", file=sys.stderr)
    return text


def chat(
    client: ChatClient,
    session: Session,
    *,
    gone: GoneCheck = lambda: None,
    out: TextIO | None = None,
    read: Callable[[str], str] = input,
) -> None:
    """The interactive loop, until ``/bye`` or Ctrl-D."""
    out = out or sys.stdout
    with _history():
        out.write("Send a message (/? for help)\n")
        out.flush()
        while True:
            try:
                message = read_message(read)
            except KeyboardInterrupt:
                out.write("\nUse Ctrl + d or /bye to exit.\n")
                continue
            except EOFError:
                out.write("\n")
                return
            if not message.strip():
                continue
            if is_command(message) and not message.startswith(MULTILINE):
                try:
                    reply = run_command(message, session)
                except UsageError as error:
                    reply = Reply(f"error: {error}")
                if reply.text:
                    out.write(reply.text + "\n")
                if reply.leave:
                    return
                continue
            _exchange(client, session, message, out, gone)


def read_message(read: Callable[[str], str]) -> str:
    """One message: a line, or the lines between two ``\"\"\"`` (the quotes left out)."""
    line = read(PROMPT)
    if not line.lstrip().startswith(MULTILINE):
        return line
    body = line.lstrip()[len(MULTILINE) :]
    lines: list[str] = []
    while True:
        if body.rstrip().endswith(MULTILINE):
            lines.append(body.rstrip()[: -len(MULTILINE)])
            return "\n".join(lines).strip("\n")
        lines.append(body)
        body = read(CONTINUED)


def _exchange(
    client: ChatClient, session: Session, prompt: str, out: TextIO, gone: GoneCheck
) -> None:
    view = _AnswerView(out, styled=_styled(out))
    try:
        with contextlib.closing(
            client.stream(session.messages(prompt), session.settings.options())
        ) as pieces:
            for piece in pieces:
                view.show(piece.kind, piece.text)
    except KeyboardInterrupt:
        view.end()
        out.write("(stopped)\n\n")
        out.flush()
        return
    except ChatError as error:
        view.end()
        why = gone()
        if why is not None:
            raise ChatError(why) from error
        out.write(f"error: {error}\n\n")
        out.flush()
        return
    view.end()
    if client.outcome.finish_reason == "length":
        out.write("(cut at max_tokens: /set max_tokens N for longer answers)\n")
    out.write("\n")
    out.flush()
    session.answered(prompt, view.answer)


class _AnswerView:
    """Writes pieces as they come: thinking dimmed and labelled, then the answer."""

    def __init__(self, out: TextIO, *, styled: bool) -> None:
        self._out = out
        self._styled = styled
        self._thinking = False
        self._answer: list[str] = []

    @property
    def answer(self) -> str:
        return "".join(self._answer).strip()

    def show(self, kind: str, text: str) -> None:
        if kind == REASONING and not self._thinking:
            self._thinking = True
            self._write((DIM if self._styled else "") + "Thinking...\n")
        elif kind != REASONING and self._thinking:
            self._close_thinking()
        self._write(text)
        if kind != REASONING:
            self._answer.append(text)

    def end(self) -> None:
        if self._thinking:
            self._close_thinking()
        if self._answer and not self._answer[-1].endswith("\n"):
            self._write("\n")

    def _close_thinking(self) -> None:
        self._thinking = False
        self._write("\n...done thinking.\n\n" + (RESET if self._styled else ""))

    def _write(self, text: str) -> None:
        self._out.write(text)
        self._out.flush()


@contextlib.contextmanager
def _history() -> Iterator[None]:
    """readline with the history file (read at the start, written at the end)."""
    try:
        import readline
    except ImportError:  # a Python without readline: plain input() still works
        yield
        return
    from zoo.runtime import state

    path = history_path()
    with contextlib.suppress(OSError):
        readline.read_history_file(path)
    readline.set_history_length(HISTORY_LENGTH)
    try:
        yield
    finally:
        with contextlib.suppress(OSError, state.StateError):
            state.private_dirs()
            path.touch(mode=0o600)
            readline.write_history_file(path)
