"""Hostile hubs: servers that lie about sizes, on 127.0.0.1 only."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from hostile_helpers import assert_one_error_line, zoo

from zoo.hubs.base import HubError
from zoo.hubs.modelscope import ModelScopeHub
from zoo.hubs.transfer import download_resumable
from zoo.testing.hubserver import HubServer

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


SPEC = """\
name: toy-ms
description: A toy model on ModelScope.
context_length: 2048
languages: [en]
abilities: [chat]
specs:
  - format: ggufv2
    size: 0.1
    quantizations: [Q4_0]
    sources:
      modelscope:
        model_id: org/toy
        file: toy-{quantization}.gguf
"""


@pytest.mark.parametrize("fault", ["missing", "checksum"])
def test_modelscope_failures_are_one_line_without_the_clients_log(
    hub_server: HubServer, tmp_path: Path, fault: str
) -> None:
    # Was: the modelscope client's own WARNING/ERROR records (with request and response
    # dumps, and one per retry) on stderr above zoo's line.
    hub_server.add_repo("org/toy", {"toy-Q4_0.gguf": bytes(4096)})
    hub_server.fault(fault, repo="org/toy")
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "toy-ms.yaml").write_text(SPEC)
    result = zoo("download", "toy-ms", "--quiet", env={"ZOO_CATALOG_PATH": str(tmp_path / "specs")})
    assert_one_error_line(result, "modelscope:", "org/toy")
    assert result.stderr.count("\n") == 1, result.stderr


def _listing(files: object) -> bytes:
    return json.dumps({"Code": 200, "Data": {"Files": files}}).encode()


LISTINGS = {
    "nested-too-deep": b"[" * 100_000 + b"]" * 100_000,
    "files-not-a-list": _listing({"m.gguf": 1}),
    "entry-not-an-object": _listing(["m.gguf"]),
    "no-path": _listing([{"Type": "blob", "Size": 5}]),
    "text-size": _listing([{"Path": "m.gguf", "Type": "blob", "Size": "huge"}]),
    "negative-size": _listing([{"Path": "m.gguf", "Type": "blob", "Size": -5}]),
    "list-sha256": _listing([{"Path": "m.gguf", "Type": "blob", "Size": 5, "Sha256": ["x"]}]),
}


class _Listing(BaseHTTPRequestHandler):
    body = b""

    def log_message(self, format: str, *args: object) -> None:
        del format, args

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)


@pytest.mark.parametrize("case", list(LISTINGS))
def test_a_modelscope_listing_of_the_wrong_shape(
    case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Was: RecursionError / AttributeError ("internal error" on the command line), or a text
    # or negative size and a list as sha256 taken as they came, to fail deep in the client
    # (a negative size as "cannot reach" the hub).
    handler = type("Handler", (_Listing,), {"body": LISTINGS[case]})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("MODELSCOPE_ENDPOINT", f"http://127.0.0.1:{server.server_address[1]}")
    try:
        with pytest.raises(HubError, match="unexpected listing from the hub"):
            ModelScopeHub().list_files("org/toy")
    finally:
        server.shutdown()
        server.server_close()
