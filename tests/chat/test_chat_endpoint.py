"""Where `zoo run` talks to the model, when something already serves it: a running instance
(one with a key only when $ZOO_API_KEY is set), else the gateway `zoo serve` recorded.

The instance record and the gateway record name this test process as their server (alive),
and a loopback server answers for them; nothing is launched (a launch would fail these tests:
the plan's engine environment is not there)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator

import pytest
from chat_loopback import Server

from zoo.chat.endpoint import open_endpoint
from zoo.resolve import Request
from zoo.runtime import process, state
from zoo.serve.server import record_path

MODEL = "smollm2-135m-instruct"


def _record_instance(server: Server, *, api_key: bool) -> state.Instance:
    me = os.getpid()
    port = int(server.url.rsplit(":", 1)[1].split("/")[0])
    return state.add(
        state.Instance(
            id=state.new_id(),
            model=MODEL,
            engine="llamacpp",
            quantization="Q4_1",
            format="ggufv2",
            served_name=MODEL,
            host="127.0.0.1",
            port=port,
            pid=me,
            pid_start=process.process_start_time(me),
            pgid=me,
            log_path=os.devnull,
            started_at=time.time(),
            detached=True,
            api_key=api_key,
        )
    )


@pytest.fixture
def gateway() -> Iterator[Server]:
    answering = Server()
    answering.models = [MODEL]
    port = answering.httpd.server_address[1]
    me = os.getpid()
    state.private_dirs()
    record = {
        "pid": me,
        "pid_start": process.process_start_time(me),
        "host": "127.0.0.1",
        "port": port,
    }
    record_path().write_text(json.dumps(record))
    yield answering
    record_path().unlink()
    answering.httpd.shutdown()
    answering.httpd.server_close()


@pytest.fixture
def instance_server() -> Iterator[Server]:
    answering = Server()
    answering.models = [MODEL]
    yield answering
    for recorded in state.list_instances():
        state.remove(recorded.id)  # forgotten, never stopped: its "server" is this test
    answering.httpd.shutdown()
    answering.httpd.server_close()


def test_the_gateway_serves_the_model_when_no_instance_does(gateway: Server) -> None:
    with open_endpoint(Request(model=MODEL), constrained=False) as endpoint:
        assert endpoint.base_url == gateway.url
        assert endpoint.how.startswith("zoo serve") and not endpoint.launched
        assert endpoint.family.name == MODEL


def test_a_keyed_instance_is_skipped_without_zoo_api_key(
    gateway: Server, instance_server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ZOO_API_KEY", raising=False)
    _record_instance(instance_server, api_key=True)
    said: list[str] = []
    with open_endpoint(Request(model=MODEL), constrained=False, say=said.append) as endpoint:
        assert endpoint.base_url == gateway.url
    assert any("wants an API key" in line for line in said)


def test_a_running_instance_is_reused_first_with_the_key_from_the_environment(
    gateway: Server, instance_server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZOO_API_KEY", "sekret-1")
    recorded = _record_instance(instance_server, api_key=True)
    with open_endpoint(Request(model=MODEL), constrained=False) as endpoint:
        assert endpoint.base_url == recorded.endpoint != gateway.url
        assert endpoint.api_key == "sekret-1" and endpoint.how.startswith(f"instance {recorded.id}")
        assert not endpoint.launched
    assert recorded.id in {i.id for i in state.list_instances()}  # reused, left running
