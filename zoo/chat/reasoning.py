"""Tell a reasoning model's thinking from its answer in streamed text.

Servers that parse reasoning themselves send it in a delta field (``reasoning_content``, or
``reasoning``; ``zoo.chat.client``); others stream it inline between the family's
``reasoning_start_tag`` and ``reasoning_end_tag`` (``<think>``/``</think>``). A tag may be cut
across two chunks, so text that could be the start of a tag is held back until the next chunk
says whether it is one.
"""

from __future__ import annotations

from typing import NamedTuple

REASONING = "reasoning"
ANSWER = "answer"


class Piece(NamedTuple):
    kind: str  # REASONING or ANSWER
    text: str


class ReasoningSplitter:
    """Feed streamed text, get pieces of thinking and answer; ``flush`` at the end."""

    def __init__(self, start_tag: str | None, end_tag: str | None) -> None:
        # Both tags or none: a start with no end could never be closed.
        self._tags = (start_tag, end_tag) if start_tag and end_tag else None
        self._held = ""
        self._thinking = False
        # Whitespace right after a tag (the "\n\n" after </think>) is layout, not text.
        self._trim = False

    @property
    def thinking(self) -> bool:
        """Whether the text so far ends inside the reasoning."""
        return self._thinking

    def feed(self, text: str) -> list[Piece]:
        if self._tags is None:
            return self._emit(ANSWER, text)
        pieces: list[Piece] = []
        buffer = self._held + text
        self._held = ""
        while buffer:
            tag = self._tags[1] if self._thinking else self._tags[0]
            found = buffer.find(tag)
            if found >= 0:
                pieces += self._emit(self._kind, buffer[:found])
                buffer = buffer[found + len(tag) :]
                self._thinking = not self._thinking
                self._trim = True
                continue
            keep = _partial_tag(buffer, tag)
            pieces += self._emit(self._kind, buffer[: len(buffer) - keep])
            self._held = buffer[len(buffer) - keep :]
            break
        return pieces

    def flush(self) -> list[Piece]:
        """What is still held back (a stream that ended in what looked like a tag's start)."""
        held, self._held = self._held, ""
        return self._emit(self._kind, held)

    @property
    def _kind(self) -> str:
        return REASONING if self._thinking else ANSWER

    def _emit(self, kind: str, text: str) -> list[Piece]:
        if self._trim:
            text = text.lstrip()
            self._trim = not text
        return [Piece(kind, text)] if text else []


def _partial_tag(text: str, tag: str) -> int:
    """The length of the longest end of ``text`` that is a start of ``tag``."""
    for size in range(min(len(text), len(tag) - 1), 0, -1):
        if tag.startswith(text[-size:]):
            return size
    return 0
