"""The gateway against hostile and careless clients, on real processes: clients that go away
mid-stream or while queued, bodies that are not what they should be, bad keys, odd model
names, and the secrets (the engines' private keys and ports) that must never reach a client."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from zoo.host import GIB
from zoo.serve.types import ModelEntry
from zoo.testing.hubserver import HubServer

from .gateway_helpers import GatewayEngine, Running, running_gateway, serve_files, write_catalog

NAMES = {"gw-a": False, "gw-b": False}
CHAT = {"messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def catalog(tmp_path: Path, hub_server: HubServer):  # type: ignore[no-untyped-def]
    serve_files(hub_server, list(NAMES))
    return write_catalog(tmp_path / "specs", NAMES)


def entries(*names: str, **fields: object) -> dict[str, ModelEntry]:
    return {n: ModelEntry(name=n, family=n, download=True, **fields) for n in names}  # type: ignore[arg-type]


def events(path: Path) -> list[str]:
    """What the test engines wrote to their ``--events`` file about streamed requests (the
    launcher's readiness probe is a request too, not streamed)."""
    if not path.exists():
        return []
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [line["event"] for line in lines if line["stream"]]


def wait_for(what: Callable[[], bool], timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if what():
            return True
        time.sleep(0.05)
    return what()


def model_status(gw: Running, name: str) -> dict[str, Any]:
    """The model's line in the gateway's /status."""
    models = httpx.get(gw.url + "/status", timeout=10).json()["models"]
    return next(m for m in models if m["name"] == name)


def post(gw: Running, path: str, body: Any, **kw: Any) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"content-type": "application/json", **kw.pop("headers", {})}
    return httpx.post(gw.url + path, content=content, headers=headers, timeout=30, **kw)


# ---- clients that go away --------------------------------------------------------------------


def test_a_client_leaving_mid_stream_closes_the_upstream_and_frees_the_lease(  # type: ignore[no-untyped-def]
    catalog, tmp_path: Path
) -> None:
    log = tmp_path / "events.jsonl"
    engine = GatewayEngine("--chunks", "60", "--delay", "0.1", "--events", str(log))
    with running_gateway(catalog, entries("gw-a"), engine=engine) as gw:
        with (
            httpx.Client(timeout=30) as client,
            client.stream(
                "POST", gw.v1 + "/chat/completions", json={"model": "gw-a", **CHAT, "stream": True}
            ) as answer,
        ):
            assert answer.status_code == 200
            lines = answer.iter_lines()
            assert next(line for line in lines if line.startswith("data:"))
            assert model_status(gw, "gw-a")["in_flight"] == 1
        # The client hung up after one event of sixty: the engine sees its connection dropped
        # (it would otherwise stream for six seconds more), and the lease is given back.
        assert wait_for(lambda: events(log) == ["start", "gone"], 5), events(log)
        assert wait_for(lambda: model_status(gw, "gw-a")["in_flight"] == 0, 5)
        # The model stays loaded and serves the next request.
        again = post(gw, "/v1/chat/completions", {"model": "gw-a", **CHAT})
        assert again.status_code == 200


def test_a_client_leaving_before_its_stream_starts_frees_the_lease(  # type: ignore[no-untyped-def]
    catalog, tmp_path: Path
) -> None:
    """The client gives up while the model loads; the gateway must not keep the lease (or
    the upstream request) of an answer nobody will read."""
    log = tmp_path / "events.jsonl"
    engine = GatewayEngine("--chunks", "60", "--delay", "0.1", "--events", str(log))
    with running_gateway(catalog, entries("gw-a"), engine=engine) as gw:
        with pytest.raises(httpx.ReadTimeout):
            # The cold load takes longer than this client waits.
            httpx.post(
                gw.v1 + "/chat/completions",
                json={"model": "gw-a", **CHAT, "stream": True},
                timeout=httpx.Timeout(30, read=0.05),
            )
        assert wait_for(lambda: model_status(gw, "gw-a")["status"] == "ready")
        time.sleep(0.5)
        assert model_status(gw, "gw-a")["in_flight"] == 0
        # Gone before its turn came: the request was never sent to the engine at all.
        assert events(log) == []


def test_a_client_leaving_while_queued_behind_a_swap_is_dropped(catalog) -> None:  # type: ignore[no-untyped-def]
    engine = GatewayEngine("--chunks", "60", "--delay", "0.1")
    models = {**entries("gw-a"), **entries("gw-b", concurrency=1)}
    with running_gateway(catalog, models, engine=engine, budget=int(1.5 * GIB)) as gw:
        with (
            httpx.Client(timeout=30) as client,
            client.stream(
                "POST", gw.v1 + "/chat/completions", json={"model": "gw-a", **CHAT, "stream": True}
            ) as busy,
        ):
            assert busy.status_code == 200
            # gw-b cannot load until gw-a's stream ends: this client waits, then gives up.
            with pytest.raises(httpx.ReadTimeout):
                httpx.post(
                    gw.v1 + "/chat/completions",
                    json={"model": "gw-b", **CHAT},
                    timeout=httpx.Timeout(30, read=0.5),
                )
            # It left the queue: gw-b's one place is free again (no 429 for the next one).
            assert wait_for(lambda: model_status(gw, "gw-b")["queued"] == 0, 2)
            text = "".join(busy.iter_text())
            assert "[DONE]" in text  # gw-a's stream was never cut
        # Nobody waits for gw-b any more: gw-a is not evicted for it.
        time.sleep(0.5)
        assert model_status(gw, "gw-a")["status"] == "ready"
        assert model_status(gw, "gw-b")["status"] == "idle"
        assert post(gw, "/v1/chat/completions", {"model": "gw-b", **CHAT}).status_code == 200
