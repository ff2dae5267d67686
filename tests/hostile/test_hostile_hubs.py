"""Hostile hubs: servers that lie about sizes, on 127.0.0.1 only."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from zoo.hubs.base import HubError
from zoo.hubs.transfer import download_resumable

pytestmark = pytest.mark.timeout(60)

MB = 1024 * 1024
BODY_MB = 32  # what the lying server sends for a file the hub announced as 1 MB


class _Oversized(BaseHTTPRequestHandler):
    """Answers every GET with BODY_MB of zeros, whatever the file was said to be."""

    sent = 0

    def log_message(self, format: str, *args: object) -> None:
        del format, args

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(BODY_MB * MB))
        self.end_headers()
        try:
            for _ in range(BODY_MB):
                self.wfile.write(bytes(MB))
                type(self).sent += MB
        except OSError:
            return  # the client stopped reading: what a bounded download does


@pytest.fixture
def oversized() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Oversized)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/blob"
    finally:
        server.shutdown()
        server.server_close()


def test_a_body_longer_than_announced_stops_at_the_announced_size(
    oversized: str, tmp_path: Path
) -> None:
    # Was: every byte was written (a server streaming forever filled the disk), then
    # "got 33554432 bytes, expected 1048576", with the oversized partial file left behind.
    dest = tmp_path / "blobs" / "etag"
    with pytest.raises(HubError, match="sent more than the 1048576 bytes announced") as caught:
        download_resumable(oversized, dest, hub="huggingface", label="m.gguf", size=MB)
    assert "\n" not in str(caught.value)
    assert list(dest.parent.iterdir()) == []  # no partial file, no blob
