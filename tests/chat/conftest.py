"""Fixtures of the chat tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from chat_loopback import Server


@pytest.fixture
def server() -> Iterator[Server]:
    """A loopback server answering as an OpenAI-compatible engine (``chat_loopback``)."""
    s = Server()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()
