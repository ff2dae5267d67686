"""The Ollama routes: what an Ollama client sends becomes an OpenAI request upstream, and the
engine's OpenAI stream comes back as Ollama's NDJSON. A fake gateway answers with canned
OpenAI SSE bytes and records what it was asked; the official ``ollama`` client talks to the
routes through a real uvicorn server."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import ollama
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.testclient import TestClient

from zoo.catalog.model import FimTemplate
from zoo.serve.errors import LoadFailed, ModelNotFound, TooBusy
from zoo.serve.ollama import ollama_routes

SEED_FIM = FimTemplate(
    "<[fim-prefix]>", "<[fim-suffix]>", "<[fim-middle]>", order=("suffix", "prefix", "middle")
)
NOW = time.time()
MODELS: list[dict[str, Any]] = [
    {
        "id": "smollm2:135m",
        "family": "smollm2",
        "format": "ggufv2",
        "quantization": "Q4_K_M",
        "parameters": 0.135,
        "size": 105_000_000,
        "status": "loaded",
        "memory_bytes": 210_000_000,
        "expires_at": NOW + 300,
        "context_length": 8192,
        "abilities": ["chat", "generate", "tools"],
        "template": "{{ messages }}",
        "license": "apache-2.0",
        "modified_at": NOW - 3600,
    },
    {
        "id": "seed-coder",
        "family": "seed-coder-8b-base",
        "format": "pytorch",
        "quantization": "none",
        "parameters": 8,
        "size": 16_000_000_000,
        "status": "idle",
        "context_length": 32768,
        "abilities": ["generate", "fim"],
        "fim": SEED_FIM,
        "stop_token_ids": [2],
    },
    {
        "id": "pinned",
        "family": "qwen3",
        "parameters": 8,
        "loaded": True,
        "expires_at": None,
        "abilities": ["chat", "reasoning"],
    },
]


def sse(event: Mapping[str, Any] | str) -> bytes:
    data = event if isinstance(event, str) else json.dumps(event)
    return f"data: {data}\n\n".encode()


def chat_sse(*pieces: str, usage: bool = True, finish: str = "stop") -> list[bytes]:
    chunks = [sse({"choices": [{"index": 0, "delta": {"role": "assistant"}}]})]
    chunks += [sse({"choices": [{"index": 0, "delta": {"content": p}}]}) for p in pieces]
    chunks.append(sse({"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]}))
    if usage:
        chunks.append(
            sse({"choices": [], "usage": {"prompt_tokens": 11, "completion_tokens": len(pieces)}})
        )
    return [*chunks, sse("[DONE]")]


def text_sse(*pieces: str) -> list[bytes]:
    chunks = [sse({"choices": [{"index": 0, "text": p, "finish_reason": None}]}) for p in pieces]
    chunks.append(sse({"choices": [{"index": 0, "text": "", "finish_reason": "length"}]}))
    return [*chunks, sse("[DONE]")]


@dataclass
class Call:
    name: str
    body: dict[str, Any]
    path: str


@dataclass
class Answer:
    """One canned upstream answer; ``read`` and ``closed`` tell what the route did with it."""

    chunks: list[bytes]
    status: int = 200
    delay: float = 0.0
    read: int = 0
    closed: bool = False

    def stream(self) -> AsyncIterator[bytes]:
        # Not an async generator: one would be closed when garbage-collected, and the tests
        # must see that the route itself closed the upstream.
        return self

    def __aiter__(self) -> Answer:
        return self

    async def __anext__(self) -> bytes:
        if self.closed or self.read == len(self.chunks):
            raise StopAsyncIteration
        if self.delay:
            await asyncio.sleep(self.delay)
        self.read += 1
        return self.chunks[self.read - 1]

    async def aclose(self) -> None:
        self.closed = True


@dataclass
class FakeGateway:
    version: str = "0.9.0"
    calls: list[Call] = field(default_factory=list)
    answers: list[Answer] = field(default_factory=list)
    answered: list[Answer] = field(default_factory=list)
    raises: Exception | None = None
    loads: list[tuple[str, Any]] = field(default_factory=list)
    unloads: list[str] = field(default_factory=list)

    def list_models(self) -> list[dict[str, Any]]:
        return MODELS

    def show(self, name: str) -> dict[str, Any]:
        for model in MODELS:
            if model["id"] == name:
                return model
        raise ModelNotFound(f"model {name!r} not found, did you mean smollm2:135m?")

    async def complete(
        self, name: str, body: dict[str, Any], path: str
    ) -> tuple[int, Mapping[str, str], AsyncIterator[bytes]]:
        self.show(name)
        self.calls.append(Call(name, body, path))
        if self.raises is not None:
            raise self.raises
        answer = self.answers.pop(0) if self.answers else self.default(path)
        self.answered.append(answer)
        return answer.status, {"content-type": "text/event-stream"}, answer.stream()

    def default(self, path: str) -> Answer:
        if path == "/v1/chat/completions":
            return Answer(chat_sse("Hello", " there", "!"))
        return Answer(text_sse("one", " two"))

    async def load(self, name: str, keep_alive: Any) -> None:
        self.show(name)
        self.loads.append((name, keep_alive))

    async def unload(self, name: str) -> bool:
        self.unloads.append(name)
        return True


@pytest.fixture
def gateway() -> FakeGateway:
    return FakeGateway()


@pytest.fixture
def client(gateway: FakeGateway) -> Iterator[TestClient]:
    with TestClient(Starlette(routes=ollama_routes(gateway))) as test_client:
        yield test_client


def lines(response: Any) -> list[dict[str, Any]]:
    return [json.loads(line) for line in response.text.splitlines() if line]


# ---- describing models -------------------------------------------------------------------


def test_version(client: TestClient) -> None:
    assert client.get("/api/version").json() == {"version": "0.9.0"}


def test_tags_lists_every_model_with_ollama_details(client: TestClient) -> None:
    models = client.get("/api/tags").json()["models"]
    assert [m["name"] for m in models] == ["smollm2:135m", "seed-coder", "pinned"]
    smol = models[0]
    assert smol["model"] == "smollm2:135m"
    assert smol["size"] == 105_000_000
    assert smol["details"] == {
        "parent_model": "",
        "format": "gguf",
        "family": "smollm2",
        "families": ["smollm2"],
        "parameter_size": "135M",
        "quantization_level": "Q4_K_M",
    }
    assert len(smol["digest"]) == 64
    assert models[1]["details"]["parameter_size"] == "8.0B"
    assert models[1]["digest"] != smol["digest"]


def test_ps_lists_loaded_models_with_their_expiry(client: TestClient) -> None:
    models = client.get("/api/ps").json()["models"]
    assert [m["name"] for m in models] == ["smollm2:135m", "pinned"]
    assert models[0]["size"] == 210_000_000
    assert models[0]["context_length"] == 8192
    assert models[0]["expires_at"].startswith(time.strftime("%Y", time.gmtime(NOW + 300)))
    # Kept forever (negative keep-alive, or pinned): a far-off date, as Ollama shows it.
    assert models[1]["expires_at"].startswith("2318-")


def test_show_gives_capabilities_and_context_length(client: TestClient) -> None:
    shown = client.post("/api/show", json={"model": "seed-coder"}).json()
    assert shown["capabilities"] == ["completion", "insert"]
    assert shown["model_info"]["seed-coder-8b-base.context_length"] == 32768
    assert shown["model_info"]["general.parameter_count"] == 8_000_000_000
    smol = client.post("/api/show", json={"name": "smollm2:135m"}).json()
    assert smol["capabilities"] == ["completion", "tools"]
    assert smol["template"] == "{{ messages }}"
    assert smol["license"] == "apache-2.0"


def test_unknown_model_is_an_ollama_error(client: TestClient) -> None:
    response = client.post("/api/show", json={"model": "nope"})
    assert response.status_code == 404
    assert response.json() == {"error": "model 'nope' not found, did you mean smollm2:135m?"}
    response = client.post("/api/chat", json={"model": "nope", "messages": [{"role": "user"}]})
    assert response.status_code == 404
    assert "did you mean" in response.json()["error"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json", "not JSON"),
        (b"[1]", "must be a JSON object"),
        (b"{}", "model is required"),
        (b'{"model": "smollm2:135m", "messages": "hi"}', "messages must be a list"),
        (b'{"model": "smollm2:135m", "messages": [{"content": "x"}]}', "message 1 needs a role"),
        (
            b'{"model": "smollm2:135m", "messages": [{"role": "user"}], "options": {"stop": 3}}',
            "options.stop",
        ),
        (
            b'{"model": "smollm2:135m", "messages": [{"role": "user"}], "format": "yaml"}',
            "format must be",
        ),
    ],
)
def test_bad_requests_are_one_ollama_error(client: TestClient, body: bytes, message: str) -> None:
    response = client.post("/api/chat", content=body)
    assert response.status_code == 400
    assert message in response.json()["error"]


# ---- chat --------------------------------------------------------------------------------


def test_chat_streams_ndjson_by_default(client: TestClient, gateway: FakeGateway) -> None:
    response = client.post(
        "/api/chat",
        json={
            "model": "smollm2:135m",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Hi"},
            ],
            "options": {
                "temperature": 0.2,
                "num_predict": 64,
                "stop": ["\n"],
                "seed": 7,
                "top_k": 5,
            },
            "format": "json",
            "keep_alive": "10m",
        },
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-ndjson"
    got = lines(response)
    assert [g["message"]["content"] for g in got[:-1]] == ["Hello", " there", "!"]
    assert all(g["model"] == "smollm2:135m" and g["done"] is False for g in got[:-1])
    assert got[0]["message"]["role"] == "assistant"
    assert got[0]["created_at"].endswith("Z")
    final = got[-1]
    assert final["done"] is True
    assert final["done_reason"] == "stop"
    assert final["eval_count"] == 3
    assert final["prompt_eval_count"] == 11
    assert final["total_duration"] >= final["eval_duration"] >= 0

    call = gateway.calls[0]
    assert call.path == "/v1/chat/completions"
    assert call.body == {
        "model": "smollm2:135m",
        "temperature": 0.2,
        "seed": 7,
        "max_tokens": 64,
        "stop": ["\n"],
        "response_format": {"type": "json_object"},
        "stream": True,
        "stream_options": {"include_usage": True},
        "keep_alive": "10m",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
        ],
    }
    assert gateway.answered[0].closed


def test_chat_without_streaming_is_one_object(client: TestClient, gateway: FakeGateway) -> None:
    response = client.post(
        "/api/chat",
        json={
            "model": "smollm2:135m",
            "messages": [{"role": "user", "content": "Hi"}],
            "stream": False,
            "format": {"type": "object"},
        },
    )
    answer = response.json()
    assert answer["message"] == {"role": "assistant", "content": "Hello there!"}
    assert answer["done"] is True
    assert answer["model"] == "smollm2:135m"
    assert answer["eval_count"] == 3
    assert gateway.calls[0].body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "response", "schema": {"type": "object"}},
    }
    assert gateway.answered[0].closed


def test_chat_images_become_data_urls(client: TestClient, gateway: FakeGateway) -> None:
    png = "iVBORw0KGgo="
    client.post(
        "/api/chat",
        json={
            "model": "smollm2:135m",
            "messages": [{"role": "user", "content": "What is it?", "images": [png, "/9j/4AA"]}],
            "stream": False,
        },
    )
    assert gateway.calls[0].body["messages"][0]["content"] == [
        {"type": "text", "text": "What is it?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}"}},
        {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AA"}},
    ]


def test_chat_tool_calls_both_ways(client: TestClient, gateway: FakeGateway) -> None:
    calls = [
        {"index": 0, "id": "c1", "function": {"name": "weather", "arguments": '{"city": '}},
        {"index": 0, "function": {"arguments": '"Paris"}'}},
    ]
    gateway.answers.append(
        Answer(
            [
                *(sse({"choices": [{"index": 0, "delta": {"tool_calls": [c]}}]}) for c in calls),
                sse({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}),
                sse("[DONE]"),
            ]
        )
    )
    tools = [{"type": "function", "function": {"name": "weather", "parameters": {}}}]
    history = [
        {"role": "user", "content": "Weather in Oslo and Rome?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"function": {"name": "weather", "arguments": {"city": "Oslo"}}},
                {"function": {"name": "time", "arguments": {}}},
            ],
        },
        {"role": "tool", "tool_name": "time", "content": "noon"},
        {"role": "tool", "tool_name": "weather", "content": "rain"},
    ]
    got = lines(
        client.post(
            "/api/chat", json={"model": "smollm2:135m", "messages": history, "tools": tools}
        )
    )
    assert got[-2]["message"]["tool_calls"] == [
        {"function": {"name": "weather", "arguments": {"city": "Paris"}}}
    ]
    assert got[-1]["done_reason"] == "stop"

    sent = gateway.calls[0].body
    assert sent["tools"] == tools
    assistant = sent["messages"][1]
    ids = [c["id"] for c in assistant["tool_calls"]]
    assert assistant["tool_calls"][0]["function"] == {
        "name": "weather",
        "arguments": '{"city": "Oslo"}',
    }
    # Each tool result answers the call of its tool, as OpenAI servers require.
    assert sent["messages"][2]["tool_call_id"] == ids[1]
    assert sent["messages"][3]["tool_call_id"] == ids[0]


def test_thinking_goes_to_its_own_field(client: TestClient, gateway: FakeGateway) -> None:
    gateway.answers.append(
        Answer(
            [
                sse({"choices": [{"index": 0, "delta": {"reasoning_content": "hmm"}}]}),
                sse({"choices": [{"index": 0, "delta": {"content": "42"}}]}),
                sse("[DONE]"),
            ]
        )
    )
    answer = client.post(
        "/api/chat",
        json={
            "model": "pinned:latest",
            "messages": [{"role": "user", "content": "?"}],
            "stream": False,
        },
    ).json()
    assert answer["message"] == {"role": "assistant", "content": "42", "thinking": "hmm"}
    # ":latest" is the tag Ollama clients add to a bare name: the gateway is asked for the name.
    assert gateway.calls[0].name == "pinned"


# ---- generate ----------------------------------------------------------------------------


def test_generate_with_suffix_renders_the_fim_template_and_cuts_at_a_sentinel(
    client: TestClient, gateway: FakeGateway
) -> None:
    answer = Answer(text_sse("    return a", " + b<[fim-", "suffix]>print()", "never read"))
    gateway.answers.append(answer)
    got = lines(
        client.post(
            "/api/generate",
            json={
                "model": "seed-coder",
                "prompt": "def add(a, b):\n",
                "suffix": "\nprint(add(1, 2))",
                "options": {"temperature": 0, "stop": ["\n\n"]},
            },
        )
    )
    assert "".join(g["response"] for g in got) == "    return a + b"
    assert got[-1]["done"] is True
    assert got[-1]["done_reason"] == "stop"
    # The engine got the exact Seed-Coder prompt (suffix first) as a plain completion.
    call = gateway.calls[0]
    assert call.path == "/v1/completions"
    assert call.body["prompt"] == (
        "<[fim-suffix]>\nprint(add(1, 2))<[fim-prefix]>def add(a, b):\n<[fim-middle]>"
    )
    assert "suffix" not in call.body
    assert call.body["stop"] == ["\n\n", "<[fim-prefix]>", "<[fim-suffix]>", "<[fim-middle]>"]
    assert call.body["stop_token_ids"] == [2]
    assert call.body["max_tokens"] == 256
    # Nothing after the sentinel was read, and the upstream request was closed.
    assert answer.read == 3
    assert answer.closed


def test_generate_with_suffix_needs_a_fim_model(client: TestClient) -> None:
    response = client.post(
        "/api/generate", json={"model": "smollm2:135m", "prompt": "a", "suffix": "b"}
    )
    assert response.status_code == 400
    assert "does not support insert" in response.json()["error"]


def test_generate_on_a_chat_model_uses_its_chat_template(
    client: TestClient, gateway: FakeGateway
) -> None:
    answer = client.post(
        "/api/generate",
        json={"model": "smollm2:135m", "prompt": "Hi", "system": "Be brief.", "stream": False},
    ).json()
    assert answer["response"] == "Hello there!"
    assert answer["done_reason"] == "stop"
    call = gateway.calls[0]
    assert call.path == "/v1/chat/completions"
    assert call.body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
    ]


def test_raw_generate_and_base_models_send_the_prompt_as_is(
    client: TestClient, gateway: FakeGateway
) -> None:
    raw = client.post(
        "/api/generate",
        json={"model": "smollm2:135m", "prompt": "<|im_start|>x", "raw": True, "stream": False},
    ).json()
    assert raw["response"] == "one two"
    assert raw["done_reason"] == "length"
    client.post("/api/generate", json={"model": "seed-coder", "prompt": "import", "stream": False})
    assert [(c.path, c.body["prompt"]) for c in gateway.calls] == [
        ("/v1/completions", "<|im_start|>x"),
        ("/v1/completions", "import"),
    ]


def test_empty_prompt_loads_and_keep_alive_zero_unloads(
    client: TestClient, gateway: FakeGateway
) -> None:
    loaded = client.post("/api/generate", json={"model": "seed-coder", "keep_alive": -1}).json()
    assert loaded["done"] is True
    assert loaded["done_reason"] == "load"
    assert loaded["response"] == ""
    assert gateway.loads == [("seed-coder", -1)]
    unloaded = client.post("/api/chat", json={"model": "seed-coder", "keep_alive": "0s"}).json()
    assert unloaded["done_reason"] == "unload"
    assert unloaded["message"]["content"] == ""
    assert gateway.unloads == ["seed-coder"]
    assert gateway.calls == []


# ---- errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "status"),
    [(TooBusy("smollm2:135m has 10 requests waiting"), 429), (LoadFailed("died", "OOM"), 503)],
)
def test_gateway_errors_keep_their_status(
    client: TestClient, gateway: FakeGateway, error: Exception, status: int
) -> None:
    gateway.raises = error
    response = client.post(
        "/api/chat", json={"model": "smollm2:135m", "messages": [{"role": "user", "content": "x"}]}
    )
    assert response.status_code == status
    assert response.json() == {"error": str(error)}


def test_an_upstream_error_answer_becomes_an_ollama_error(
    client: TestClient, gateway: FakeGateway
) -> None:
    body = {"error": {"message": "context too long", "type": "invalid_request_error"}}
    gateway.answers.append(Answer([json.dumps(body).encode()], status=400))
    response = client.post("/api/generate", json={"model": "seed-coder", "prompt": "x"})
    assert response.status_code == 400
    assert response.json() == {"error": "context too long"}
    assert gateway.answered[0].closed


def test_an_error_in_the_middle_of_a_stream_is_an_error_line(
    client: TestClient, gateway: FakeGateway
) -> None:
    gateway.answers.append(
        Answer([*chat_sse("partial")[:2], sse({"error": {"message": "engine crashed"}})])
    )
    got = lines(
        client.post(
            "/api/chat",
            json={"model": "smollm2:135m", "messages": [{"role": "user", "content": "x"}]},
        )
    )
    assert got[-1] == {"error": "engine crashed"}
    assert got[0]["message"]["content"] == "partial"


# ---- the official ollama client, through a real server -----------------------------------


@dataclass
class Served:
    url: str
    gateway: FakeGateway


@pytest.fixture
def served(gateway: FakeGateway) -> Iterator[Served]:
    app = Starlette(routes=ollama_routes(gateway))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield Served(f"http://127.0.0.1:{sock.getsockname()[1]}", gateway)
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def test_ollama_client_lists_shows_and_sees_running_models(served: Served) -> None:
    client = ollama.Client(host=served.url)
    listed = client.list()
    assert [m.model for m in listed.models] == ["smollm2:135m", "seed-coder", "pinned"]
    assert listed.models[0].details is not None
    assert listed.models[0].details.quantization_level == "Q4_K_M"
    running = client.ps()
    assert [m.model for m in running.models] == ["smollm2:135m", "pinned"]
    assert running.models[0].expires_at is not None
    shown = client.show("seed-coder")
    assert shown.capabilities == ["completion", "insert"]
    assert shown.modelinfo is not None
    assert shown.modelinfo["seed-coder-8b-base.context_length"] == 32768


def test_ollama_client_chats_and_streams(served: Served) -> None:
    client = ollama.Client(host=served.url)
    answer = client.chat("smollm2:135m", messages=[{"role": "user", "content": "Hi"}])
    assert answer.message.content == "Hello there!"
    assert answer.done_reason == "stop"
    assert answer.eval_count == 3

    parts = list(
        client.chat(
            "smollm2:135m",
            messages=[{"role": "user", "content": "Hi"}],
            stream=True,
            keep_alive="1h",
            options={"temperature": 0.5},
        )
    )
    assert "".join(p.message.content or "" for p in parts) == "Hello there!"
    assert parts[-1].done
    sent = served.gateway.calls[-1].body
    assert sent["keep_alive"] == "1h"
    assert sent["temperature"] == 0.5


def test_ollama_client_generates_and_fills_in_the_middle(served: Served) -> None:
    client = ollama.Client(host=served.url)
    assert client.generate("smollm2:135m", "Hi").response == "Hello there!"
    served.gateway.answers.append(Answer(text_sse("x = 1", "<[fim-middle]>junk")))
    streamed = list(client.generate("seed-coder", "a = ", suffix="\nb = 2", stream=True))
    assert "".join(p.response or "" for p in streamed) == "x = 1"
    assert served.gateway.calls[-1].body["prompt"] == (
        "<[fim-suffix]>\nb = 2<[fim-prefix]>a = <[fim-middle]>"
    )


def test_ollama_client_sees_errors(served: Served) -> None:
    client = ollama.Client(host=served.url)
    with pytest.raises(ollama.ResponseError) as missing:
        client.chat("nope", messages=[{"role": "user", "content": "x"}])
    assert missing.value.status_code == 404
    assert "did you mean" in missing.value.error
    served.gateway.answers.append(
        Answer([*chat_sse("so")[:2], sse({"error": {"message": "engine crashed"}})])
    )
    with pytest.raises(ollama.ResponseError, match="engine crashed"):
        list(client.chat("smollm2:135m", messages=[{"role": "user", "content": "x"}], stream=True))


def test_a_client_that_goes_away_closes_the_upstream(served: Served) -> None:
    import httpx

    answer = Answer(chat_sse(*["tok"] * 200), delay=0.02)
    served.gateway.answers.append(answer)
    body = {"model": "smollm2:135m", "messages": [{"role": "user", "content": "x"}]}
    with (
        httpx.Client(base_url=served.url) as http,
        http.stream("POST", "/api/chat", json=body) as response,
    ):
        first = next(response.iter_lines())
        assert json.loads(first)["message"]["content"] == "tok"
    deadline = time.monotonic() + 5
    while not answer.closed:
        assert time.monotonic() < deadline, "the upstream stream was never closed"
        time.sleep(0.02)
    assert answer.read < 50
