"""Server-sent events as OpenAI-compatible servers stream them: ``data:`` lines, blank-line
separated, ending with ``data: [DONE]`` (or the end of the stream).

Only what chat streams use is read: ``data`` fields (several lines of one event are joined
with a newline, as the SSE standard says), comments (``:``) and other fields are skipped.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

DONE = "[DONE]"


class StreamFormatError(ValueError):
    """An event whose data is not a JSON object."""


def events(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    """The JSON objects of a stream's events, in order, until ``[DONE]`` or the end."""
    data: list[str] = []
    for raw in lines:
        line = raw.rstrip("\r\n")
        if not line:
            if data:
                payload = "\n".join(data)
                data = []
                if payload.strip() == DONE:
                    return
                yield _parse(payload)
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        if name == "data":
            data.append(value[1:] if value.startswith(" ") else value)
    if data:  # a stream cut without its final blank line still delivers its last event
        payload = "\n".join(data)
        if payload.strip() != DONE:
            yield _parse(payload)


def _parse(payload: str) -> dict[str, Any]:
    try:
        value = json.loads(payload)
    except ValueError as error:
        raise StreamFormatError(f"an event is not JSON: {payload[:80]!r}") from error
    if not isinstance(value, dict):
        raise StreamFormatError(f"an event is not a JSON object: {payload[:80]!r}")
    return value
