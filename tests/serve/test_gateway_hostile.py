"""The gateway against hostile and careless clients, on real processes: clients that go away
mid-stream or while queued, bodies that are not what they should be, bad keys, odd model
names, and the secrets (the engines' private keys and ports) that must never reach a client."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
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


def events(path: Path, *, stream: bool = True) -> list[str]:
    """What the test engines wrote to their ``--events`` file about streamed (or not streamed)
    requests; the launcher's readiness probe is a request too, not streamed."""
    if not path.exists():
        return []
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [line["event"] for line in lines if line["stream"] == stream]


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


def test_a_client_leaving_an_ollama_stream_closes_the_upstream(catalog, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    log = tmp_path / "events.jsonl"
    engine = GatewayEngine("--chunks", "60", "--delay", "0.1", "--events", str(log))
    with running_gateway(catalog, entries("gw-a"), engine=engine) as gw:
        with (
            httpx.Client(timeout=30) as client,
            client.stream("POST", gw.url + "/api/chat", json={"model": "gw-a", **CHAT}) as answer,
        ):
            assert answer.status_code == 200
            assert json.loads(next(answer.iter_lines()))["done"] is False
        assert wait_for(lambda: events(log) == ["start", "gone"], 5), events(log)
        assert wait_for(lambda: model_status(gw, "gw-a")["in_flight"] == 0, 5)


def test_a_client_leaving_a_request_not_streamed_closes_the_upstream(  # type: ignore[no-untyped-def]
    catalog, tmp_path: Path
) -> None:
    """An editor cancelling a FIM request it did not stream: the engine stops generating."""
    log = tmp_path / "events.jsonl"
    engine = GatewayEngine("--delay", "3", "--events", str(log))
    with running_gateway(catalog, entries("gw-a"), engine=engine) as gw:
        post(gw, "/v1/chat/completions", {"model": "gw-a", **CHAT})  # loaded, and warm
        before = len(events(log, stream=False))
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(
                gw.v1 + "/completions",
                json={"model": "gw-a", "prompt": "x"},
                timeout=httpx.Timeout(30, read=0.5),
            )
        assert wait_for(lambda: events(log, stream=False)[before:] == ["start", "gone"], 5), events(
            log, stream=False
        )
        assert wait_for(lambda: model_status(gw, "gw-a")["in_flight"] == 0, 5)


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


# ---- bodies --------------------------------------------------------------------------------


def error_of(answer: httpx.Response, status: int, code: str | None = None) -> str:
    """The OpenAI-shaped error of ``answer``, checked; its message."""
    assert answer.status_code == status, (answer.status_code, answer.text[:500])
    assert answer.headers["content-type"].startswith("application/json")
    error = answer.json()["error"]
    assert set(error) == {"message", "type", "code", "param"}
    if code is not None:
        assert error["code"] == code, error
    assert "Traceback" not in error["message"]
    return str(error["message"])


BAD_BODIES = [
    (b"{not json", "not JSON"),
    (b"\xff\xfe\x00garbage", "not JSON"),
    (b'[{"model": "gw-a"}]', "JSON object"),
    (b'"gw-a"', "JSON object"),
    (b"null", "JSON object"),
    (json.dumps(CHAT).encode(), "`model`"),
    (json.dumps({"model": 7, **CHAT}).encode(), "`model`"),
    (json.dumps({"model": ["gw-a"], **CHAT}).encode(), "`model`"),
    (json.dumps({"model": {"name": "gw-a"}, **CHAT}).encode(), "`model`"),
    (json.dumps({"model": "  ", **CHAT}).encode(), "`model`"),
    (json.dumps({"model": "gw-a", **CHAT, "stream": "yes"}).encode(), "`stream`"),
    (json.dumps({"model": "gw-a", **CHAT, "stream": 1}).encode(), "`stream`"),
    (json.dumps({"model": "gw-a", **CHAT, "keep_alive": "soon"}).encode(), "keep_alive"),
    (json.dumps({"model": "gw-a", **CHAT, "keep_alive": True}).encode(), "keep_alive"),
    (json.dumps({"model": "gw-a", **CHAT, "keep_alive": [5]}).encode(), "keep_alive"),
    (json.dumps({"model": "gw-a", **CHAT, "keep_alive": 1e300}).encode(), "keep_alive"),
    (b'{"model": "gw-a", "keep_alive": NaN}', "keep_alive"),
]


def test_bad_bodies_are_400_and_load_nothing(catalog) -> None:  # type: ignore[no-untyped-def]
    with running_gateway(catalog, entries("gw-a")) as gw:
        for body, says in BAD_BODIES:
            for path in ("/v1/chat/completions", "/v1/completions"):
                message = error_of(post(gw, path, body), 400, "invalid_request")
                assert says in message, (body, path, message)
        # Checked before the model is asked for: nothing was loaded for a bad request.
        assert model_status(gw, "gw-a")["status"] == "idle"


def test_a_bad_keep_alive_on_an_ollama_load_is_400(catalog) -> None:  # type: ignore[no-untyped-def]
    """Ollama loads a model for a request with nothing to generate: its keep_alive is read
    there too."""
    empty: list[tuple[str, dict[str, Any]]] = [
        ("/api/chat", {"messages": []}),
        ("/api/generate", {}),
    ]
    with running_gateway(catalog, entries("gw-a")) as gw:
        for keep_alive in ("soon", [1], True, "1e400"):
            for path, body in empty:
                answer = post(gw, path, {"model": "gw-a", **body, "keep_alive": keep_alive})
                assert answer.status_code == 400, (path, keep_alive, answer.text)
                assert "keep_alive" in answer.json()["error"]
        assert model_status(gw, "gw-a")["status"] == "idle"


def test_a_valid_stream_flag_and_keep_alive_pass(catalog) -> None:  # type: ignore[no-untyped-def]
    with running_gateway(catalog, entries("gw-a")) as gw:
        for extra in (
            {"stream": False},
            {"stream": None},
            {"keep_alive": "1m"},
            {"keep_alive": None},
        ):
            answer = post(gw, "/v1/chat/completions", {"model": "gw-a", **CHAT, **extra})
            assert answer.status_code == 200, (extra, answer.text)


def raw_request(port: int, head: bytes, body: bytes = b"", *, read_first: bool = False) -> bytes:
    """Sends ``head`` (and ``body`` unless the server answers first) on a plain socket; the
    status line and headers the server answered."""
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(head)
        if body and not read_first:
            with contextlib.suppress(OSError):  # the server may hang up before the end
                sock.sendall(body)
        answer = b""
        while b"\r\n\r\n" not in answer:
            piece = sock.recv(65536)
            if not piece:
                break
            answer += piece
        return answer


def test_a_huge_body_is_refused_without_being_read(catalog) -> None:  # type: ignore[no-untyped-def]
    with running_gateway(catalog, entries("gw-a")) as gw:
        port = int(gw.url.rsplit(":", 1)[1])
        # Announced: refused from the headers alone, before a byte of the 50 MB is sent.
        head = (
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % (50 * 2**20)
        )
        started = time.monotonic()
        for path in (b"/v1/chat/completions", b"/api/chat"):
            answer = raw_request(
                port, head.replace(b"/v1/chat/completions", path), b"x", read_first=True
            )
            assert answer.startswith(b"HTTP/1.1 413"), (path, answer[:200])
        assert time.monotonic() - started < 5
        # Not announced (chunked): read only up to the limit, then refused.
        response = httpx.post(
            gw.v1 + "/chat/completions",
            content=(b"x" * 2**20 for _ in range(50)),
            headers={"content-type": "application/json"},
            timeout=60,
        )
        assert "larger than" in error_of(response, 413, "request_too_large")
        # The gateway still answers.
        assert post(gw, "/v1/chat/completions", {"model": "gw-a", **CHAT}).status_code == 200


def test_a_big_body_under_the_limit_is_read_in_linear_time(catalog) -> None:  # type: ignore[no-untyped-def]
    """A body trickled in 64 KiB pieces: gluing each onto the last would copy the body's
    square (7 GB for 30 MB), seconds of a blocked event loop for every other client."""
    with running_gateway(catalog, entries("gw-a")) as gw:
        piece = b" " * 2**16

        def trickle() -> Iterator[bytes]:
            yield b'{"model": "nope", "prompt": "'
            for _ in range(30 * 16):
                yield piece
                time.sleep(0.001)  # each piece arrives on its own
            yield b'"}'

        started = time.monotonic()
        answer = httpx.post(
            gw.v1 + "/completions",
            content=trickle(),
            headers={"content-type": "application/json"},
            timeout=60,
        )
        took = time.monotonic() - started
        error_of(answer, 404, "model_not_found")
        assert took < 5, took


# ---- keys ----------------------------------------------------------------------------------


def test_keys_are_required_and_compared_exactly(catalog) -> None:  # type: ignore[no-untyped-def]
    from zoo.serve.config import ApiKey

    with running_gateway(catalog, entries("gw-a"), keys=(ApiKey("Secret-Key-1"),)) as gw:
        body = {"model": "gw-a", **CHAT}
        refused: list[dict[str, str]] = [
            {},
            {"authorization": ""},
            {"authorization": "Bearer"},
            {"authorization": "Secret-Key-1"},
            {"authorization": "Basic Secret-Key-1"},
            {"authorization": "Token Secret-Key-1"},
            {"authorization": "Bearer secret-key-1"},
            {"authorization": "Bearer SECRET-KEY-1"},
            {"authorization": "Bearer Secret-Key-"},
            {"authorization": "Bearer Secret-Key-12"},
            {"x-api-key": "Secret-Key-1"},
        ]
        for headers in refused:
            for method, path in (("POST", "/v1/chat/completions"), ("GET", "/v1/models")):
                answer = httpx.request(
                    method, gw.url + path, json=body, headers=headers, timeout=30
                )
                error_of(answer, 401, "invalid_api_key")
        # Bytes no key has (not ASCII, not UTF-8) are a wrong key too, not a crash.
        for raw in (b"Bearer \xe9t\xe9", b"Bearer Secret-Key-1\xff", "Bearer ключ".encode()):
            answer = httpx.get(gw.v1 + "/models", headers=[(b"authorization", raw)], timeout=30)
            error_of(answer, 401, "invalid_api_key")
        # The scheme is case-insensitive (RFC 9110 §11.1), the key is not.
        for good in ("Bearer Secret-Key-1", "bearer Secret-Key-1", "BEARER  Secret-Key-1"):
            answer = httpx.get(gw.v1 + "/models", headers={"authorization": good}, timeout=30)
            assert answer.status_code == 200, good
        # /status needs a key as well.
        error_of(httpx.get(gw.url + "/status", timeout=30), 401, "invalid_api_key")
        assert httpx.get(gw.url + "/health", timeout=30).status_code == 200
        # The refusals loaded nothing.
        ok = httpx.get(
            gw.url + "/status", headers={"authorization": "Bearer Secret-Key-1"}, timeout=30
        )
        assert [m["status"] for m in ok.json()["models"]] == ["idle"]


def test_keys_are_compared_in_constant_time() -> None:
    """Read from the code: keys, session keys and CSRF tokens are compared with
    hmac.compare_digest (``zoo.serve.ui.session``), which the auth middleware uses, never
    ``==``."""
    import inspect

    from zoo.serve import app
    from zoo.serve.ui import session

    auth = inspect.getsource(app._Auth)
    assert "matching_key(" in auth and "same_token(" in auth
    assert " == sent" not in auth and "sent ==" not in auth
    for compare in (session.matching_key, session.same_token):
        source = inspect.getsource(compare)
        assert "hmac.compare_digest" in source and "==" not in source


# ---- routes and names ----------------------------------------------------------------------


def test_unknown_routes_and_methods_are_json_errors(catalog) -> None:  # type: ignore[no-untyped-def]
    with running_gateway(catalog, entries("gw-a")) as gw:
        for path in (
            "/v1/nothing",
            "/v2/chat/completions",
            "/v1/models/x/y",
            "/api/pull",
            "/%2e%2e/etc",
        ):
            error_of(httpx.post(gw.url + path, json={}, timeout=30), 404, "not_found")
            error_of(httpx.get(gw.url + path, timeout=30), 404, "not_found")
        message = error_of(httpx.get(gw.v1 + "/chat/completions", timeout=30), 405)
        assert "POST" in message
        assert httpx.get(gw.v1 + "/chat/completions").headers["allow"] == "POST"


ODD_NAMES = [
    "../x",
    "../../etc/passwd",
    "gw-a/../../x",
    "/gw-a",
    "gw-a\\..\\x",
    "%2e%2e%2fx",
    "x" * 10_000,
    "gw-a:" + "9" * 5000 + "b",
    "模型",
    "gw-ä",
    "gw-a\x00",
    "\u202egw-a",
    "gw-a:",
    ":latest",
]


def test_odd_model_names_are_404s_without_a_traceback(catalog) -> None:  # type: ignore[no-untyped-def]
    with running_gateway(catalog, entries("gw-a")) as gw:
        for name in ODD_NAMES:
            started = time.monotonic()
            answer = post(gw, "/v1/chat/completions", {"model": name, **CHAT})
            assert answer.status_code in (400, 404), (name[:50], answer.text[:300])
            error_of(answer, answer.status_code)
            assert time.monotonic() - started < 2, name[:50]
            ollama = post(gw, "/api/chat", {"model": name, **CHAT, "stream": False})
            assert ollama.status_code in (400, 404), (name[:50], ollama.text[:300])
            assert "Traceback" not in ollama.text
        assert model_status(gw, "gw-a")["status"] == "idle"
        # Nothing was added to what the gateway serves.
        assert [m["id"] for m in httpx.get(gw.v1 + "/models").json()["data"]] == ["gw-a"]


def test_an_unknown_model_is_suggested_once(catalog) -> None:  # type: ignore[no-untyped-def]
    with running_gateway(catalog, entries("gw-a")) as gw:
        message = error_of(post(gw, "/v1/chat/completions", {"model": "gw-aa", **CHAT}), 404)
        assert message.count("did you mean") == 1 and "gw-a" in message, message
        ollama = post(gw, "/api/show", {"model": "nothing-like-it"}).json()["error"]
        assert ollama.count("see /v1/models") == 1, ollama


# ---- secrets -------------------------------------------------------------------------------


def engine_secrets(gw: Running) -> list[str]:
    """The loaded engines' private keys and ports, as the gateway's backend holds them."""
    found = []
    for loaded in gw.gateway.backend._loaded.values():
        call = loaded.running.invocation
        assert call is not None and call.engine_api_key
        found += [call.engine_api_key, f":{call.engine_port}"]
    return found


def test_no_client_ever_sees_an_engine_key_or_port(catalog) -> None:  # type: ignore[no-untyped-def]
    from zoo.serve.config import ApiKey

    key = ApiKey("client-key-7")
    auth = {"authorization": "Bearer client-key-7"}
    with running_gateway(catalog, entries("gw-a", "gw-b"), keys=(key,)) as gw:
        seen: list[httpx.Response] = []
        with httpx.Client(base_url=gw.url, headers=auth, timeout=30) as client:
            seen.append(client.post("/v1/chat/completions", json={"model": "gw-a", **CHAT}))
            seen.append(client.post("/v1/completions", json={"model": "gw-b", "prompt": "x"}))
            seen.append(
                client.post("/v1/chat/completions", json={"model": "gw-a", **CHAT, "stream": True})
            )
            seen.append(client.post("/api/chat", json={"model": "gw-a", **CHAT}))
            seen.append(client.post("/api/generate", json={"model": "gw-b", "prompt": "x"}))
            secrets = engine_secrets(gw)
            assert len(secrets) == 4
            for path in ("/v1/models", "/status", "/metrics", "/api/tags", "/api/ps", "/"):
                seen.append(client.get(path))
            seen.append(client.post("/api/show", json={"model": "gw-a"}))
            seen.append(client.post("/v1/chat/completions", json={"model": "gw-x", **CHAT}))
        for answer in seen:
            assert answer.status_code in (200, 404), (answer.request.url, answer.text)
            text = answer.text + json.dumps(dict(answer.headers))
            for secret in [*secrets, "client-key-7"]:
                assert secret not in text, (answer.request.url, secret)
        # What the engine got was its own private key, not the client's.
        echoed = seen[0].json()["choices"][0]["message"]["content"]
        assert "client-key-7" not in echoed
        models = httpx.get(gw.v1 + "/models", headers=auth).json()["data"]
        fields = {field for m in models for field in m}
        assert not fields & {"base_url", "api_key", "port", "upstream", "instance_id", "url"}


def test_a_failed_start_reports_its_log_but_not_the_key(catalog) -> None:  # type: ignore[no-untyped-def]
    engine = GatewayEngine("--mode", "exit")
    with running_gateway(catalog, entries("gw-a"), engine=engine) as gw:
        answer = post(gw, "/v1/chat/completions", {"model": "gw-a", **CHAT})
        message = error_of(answer, 503, "model_load_failed")
        assert "cannot load the model" in message  # the log's tail is there
        plans = list(gw.gateway.backend._plans.values())
        assert plans and plans[0].options.api_key
        assert plans[0].options.api_key not in answer.text
        assert plans[0].options.api_key not in httpx.get(gw.url + "/status").text


# ---- where it listens ----------------------------------------------------------------------


def zoo_cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "ZOO_HOME": str(home),
        "HF_HOME": str(home / "hf"),
        "MODELSCOPE_CACHE": str(home / "ms"),
    }
    env.pop("ZOO_API_KEY", None)
    return subprocess.run(
        [sys.executable, "-m", "zoo", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


def this_machines_other_address() -> str | None:
    """An address of this machine that is not loopback (None: it has none)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: nothing is sent (UDP connect)
            address = str(probe.getsockname()[0])
        except OSError:
            return None
    return None if address.startswith("127.") or address == "0.0.0.0" else address


def gateway_log(home: Path) -> str:
    """What the detached gateway wrote (to its log in zoo's state folder under ``home``)."""
    (log,) = home.rglob("gateway.log")
    return log.read_text()


def can_connect(host: str, port: int) -> bool:
    import socket

    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def test_zoo_serve_binds_this_machine_only_by_default(tmp_path: Path) -> None:
    from zoo.runtime import process

    home, port = tmp_path / "home", process.free_port()
    started = zoo_cli(home, "serve", "--detach", "--port", str(port))
    try:
        assert started.returncode == 0, started.stderr
        assert started.stdout.strip() == f"http://127.0.0.1:{port}/v1"
        status = zoo_cli(home, "serve", "status", "--json")
        assert status.returncode == 0, status.stderr
        record = json.loads(status.stdout)
        assert (record["host"], record["port"]) == ("127.0.0.1", port)
        assert can_connect("127.0.0.1", port)
        other = this_machines_other_address()
        if other is not None:
            assert not can_connect(other, port), f"reachable on {other}"
        log = gateway_log(home)
        assert "warning" not in log.lower()
    finally:
        stopped = zoo_cli(home, "serve", "stop")
    assert stopped.returncode == 0, stopped.stderr
    assert wait_for(lambda: not can_connect("127.0.0.1", port), 30)
    assert zoo_cli(home, "serve", "status").returncode != 0


def test_zoo_serve_warns_when_bound_wider_without_a_key(tmp_path: Path) -> None:
    from zoo.runtime import process

    home, port = tmp_path / "home", process.free_port()
    config = tmp_path / "gateway.yaml"
    config.write_text("models: {}\n")  # nothing to use, even for whoever reaches it
    started = zoo_cli(
        home, "serve", "--detach", "--host", "0.0.0.0", "--port", str(port), "--config", str(config)
    )
    try:
        assert started.returncode == 0, started.stderr
        record = json.loads(zoo_cli(home, "serve", "status", "--json").stdout)
        assert record["host"] == "0.0.0.0"
        log = gateway_log(home)
        assert "warning: serving on 0.0.0.0 without an API key" in log, log
    finally:
        stopped = zoo_cli(home, "serve", "stop")
    assert stopped.returncode == 0, stopped.stderr
    assert wait_for(lambda: not can_connect("127.0.0.1", port), 30)


def test_the_disconnect_watch_lets_errors_out_as_themselves() -> None:
    """The watch runs the app in a task group: an error must leave as itself (not wrapped in an
    ExceptionGroup that every handler above it would miss), and without waiting on the watch."""
    import asyncio

    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.routing import Route

    from zoo.serve.app import _LeaveWhenGone

    async def failing(request: Request) -> Any:
        await request.body()
        raise KeyError("boom")

    app = _LeaveWhenGone(Starlette(routes=[Route("/", failing, methods=["POST"])]))
    sent: list[dict[str, Any]] = []

    async def run() -> None:
        messages = [{"type": "http.request", "body": b"{}", "more_body": False}]

        async def receive() -> dict[str, Any]:
            if messages:
                return messages.pop()
            await asyncio.sleep(60)  # the client stays: only the app's end stops the watch
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {"type": "http", "method": "POST", "path": "/", "headers": [], "query_string": b""}
        await app(scope, receive, send)  # type: ignore[arg-type]

    started = time.monotonic()
    with pytest.raises(KeyError):
        asyncio.run(run())
    assert time.monotonic() - started < 5
    assert sent[0]["status"] == 500


def test_the_configs_listen_is_used_unless_an_option_says_otherwise(tmp_path: Path) -> None:
    from zoo.runtime import process

    home, port, other = tmp_path / "home", process.free_port(), process.free_port()
    config = tmp_path / "gateway.yaml"
    config.write_text(f"listen:\n  host: 127.0.0.1\n  port: {port}\nmodels: {{}}\n")
    started = zoo_cli(home, "serve", "--detach", "--config", str(config))
    try:
        assert started.returncode == 0, started.stderr
        assert started.stdout.strip() == f"http://127.0.0.1:{port}/v1"
        assert json.loads(zoo_cli(home, "serve", "status", "--json").stdout)["port"] == port
    finally:
        assert zoo_cli(home, "serve", "stop").returncode == 0
    assert wait_for(lambda: not can_connect("127.0.0.1", port), 30)
    started = zoo_cli(home, "serve", "--detach", "--config", str(config), "--port", str(other))
    try:
        assert started.stdout.strip() == f"http://127.0.0.1:{other}/v1", started.stderr
    finally:
        assert zoo_cli(home, "serve", "stop").returncode == 0
    assert wait_for(lambda: not can_connect("127.0.0.1", other), 30)
    # A broken config is one message from the command itself, before anything starts.
    config.write_text("listen:\n  port: lots\n")
    broken = zoo_cli(home, "serve", "--detach", "--config", str(config))
    assert broken.returncode != 0
    assert f"{config}:2:9" in broken.stderr and "Traceback" not in broken.stderr, broken.stderr


def test_detach_serves_on_the_free_port_it_printed_for_listen_port_0(tmp_path: Path) -> None:
    """``listen.port: 0`` is chosen once, by the command: the detached child used to pick
    another free port, so the command waited on a port nobody served and failed after 60 s
    while the gateway ran on unseen."""
    home = tmp_path / "home"
    config = tmp_path / "gateway.yaml"
    config.write_text("listen:\n  port: 0\nmodels: {}\n")
    started = zoo_cli(home, "serve", "--detach", "--config", str(config))
    try:
        assert started.returncode == 0, started.stderr
        port = json.loads(zoo_cli(home, "serve", "status", "--json").stdout)["port"]
        assert started.stdout.strip() == f"http://127.0.0.1:{port}/v1"
        assert can_connect("127.0.0.1", port)
    finally:
        assert zoo_cli(home, "serve", "stop").returncode == 0
    assert wait_for(lambda: not can_connect("127.0.0.1", port), 30)


def test_a_reload_replaces_the_api_keys(tmp_path: Path) -> None:
    """A key taken out of the config stops working on `zoo serve reload`, and a new one works
    (the keys were read once at start: a revoked key kept working until a restart)."""
    from zoo.runtime import process

    home, port = tmp_path / "home", process.free_port()
    key_file = tmp_path / "gw.key"
    key_file.write_text("old-key\n")
    key_file.chmod(0o600)
    config = tmp_path / "gateway.yaml"
    config.write_text("models: {}\napi_keys:\n  - key_file: gw.key\n")
    started = zoo_cli(home, "serve", "--detach", "--config", str(config), "--port", str(port))
    url = f"http://127.0.0.1:{port}/v1/models"

    def answer(key: str) -> int:
        headers = {"Authorization": f"Bearer {key}"}
        return httpx.get(url, headers=headers, trust_env=False, timeout=5).status_code

    try:
        assert started.returncode == 0, started.stderr
        assert (answer("old-key"), answer("new-key")) == (200, 401)
        key_file.write_text("new-key\n")
        assert zoo_cli(home, "serve", "reload").returncode == 0
        assert wait_for(lambda: answer("new-key") == 200, 30), gateway_log(home)
        assert answer("old-key") == 401
    finally:
        assert zoo_cli(home, "serve", "stop").returncode == 0
    assert wait_for(lambda: not can_connect("127.0.0.1", port), 30)


def test_the_detached_command_line_spells_out_every_choice(tmp_path: Path) -> None:
    from zoo.serve.server import ServeOptions, serve_argv

    options = ServeOptions(
        host="::1", port=4242, config=tmp_path / "g.yaml", allow_download=True, memory_budget=7
    )
    argv = serve_argv(options)
    assert argv[:5] == ["serve", "--host", "::1", "--port", "4242"]
    assert argv[5:] == [
        "--config",
        str(tmp_path / "g.yaml"),
        "--allow-download",
        "--memory-budget",
        "7",
    ]
    assert serve_argv(ServeOptions()) == ["serve", "--host", "127.0.0.1", "--port", "11435"]


def test_a_lease_is_released_when_its_answer_is_cancelled_before_it_streams() -> None:
    """The window between the engine's answer and the first byte sent on: a stream cancelled
    there never starts its generator, so only the app can give the lease back and close the
    upstream answer."""
    import asyncio

    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import StreamingResponse
    from starlette.routing import Route

    from zoo.serve.app import _LeaveWhenGone
    from zoo.serve.gateway import Gateway, stream_with
    from zoo.serve.metrics import Metrics
    from zoo.serve.proxy import Answer

    held: list[str] = []
    closed: list[str] = []

    class Scheduler:
        @contextlib.asynccontextmanager
        async def lease(self, name: str, *, keep_alive: float | None = None) -> Any:
            held.append(name)
            try:
                yield "upstream"
            finally:
                held.remove(name)

    class Forwarder:
        async def send(self, upstream: str, path: str, body: Any, name: str, **_: Any) -> Answer:
            async def chunks() -> Any:
                yield b"data: {}\n\n"

            async def close() -> None:
                closed.append(name)

            return Answer(200, {}, chunks(), True, close)

    gateway = Gateway(
        catalog=None,  # type: ignore[arg-type]  # exact names need no catalog
        entries={"m": ModelEntry(name="m", family="m")},
        scheduler=Scheduler(),  # type: ignore[arg-type]
        backend=None,  # type: ignore[arg-type]
        forwarder=Forwarder(),  # type: ignore[arg-type]
        metrics=Metrics(),
    )

    async def handler(request: Request) -> Any:
        await request.body()
        _, answer, stack = await gateway.complete("m", {"model": "m"}, "/x", route="chat")
        assert held == ["m"]
        await asyncio.sleep(1)  # the client goes away here, before the answer starts
        return StreamingResponse(stream_with(stack, answer.body))

    app = _LeaveWhenGone(Starlette(routes=[Route("/", handler, methods=["POST"])]))

    async def run() -> None:
        messages = [{"type": "http.request", "body": b"{}", "more_body": False}]

        async def receive() -> dict[str, Any]:
            if messages:
                return messages.pop()
            await asyncio.sleep(0.1)
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            raise AssertionError(f"nothing is sent to a client that left: {message}")

        scope = {"type": "http", "method": "POST", "path": "/", "headers": [], "query_string": b""}
        await app(scope, receive, send)  # type: ignore[arg-type]
        # At once, not whenever the garbage collector finalizes the forgotten lease (and the
        # upstream answer, which nothing else would close).
        assert held == [] and closed == ["m"]

    asyncio.run(run())


def test_a_body_nested_too_deeply_is_a_400(catalog) -> None:  # type: ignore[no-untyped-def]
    deep = b'{"model": "gw-a", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    with running_gateway(catalog, entries("gw-a")) as gw:
        for path in ("/v1/chat/completions", "/api/chat"):
            answer = httpx.post(gw.url + path, content=deep, timeout=30)
            assert answer.status_code == 400, (path, answer.text)
