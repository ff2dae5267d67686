"""The gateway end to end on real processes: the official openai client, one endpoint, models
started on demand through the launch path, within a memory budget, streams passed through."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from openai import APIError, APIStatusError, AuthenticationError, OpenAI

from zoo.host import GIB
from zoo.runtime import state
from zoo.serve.config import ApiKey
from zoo.serve.types import ModelEntry
from zoo.testing.hubserver import HubServer

from .gateway_helpers import GatewayEngine, running_gateway, serve_files, write_catalog

NAMES = {"gw-a": False, "gw-b": False, "gw-coder": True}


@pytest.fixture
def catalog(tmp_path: Path, hub_server: HubServer):  # type: ignore[no-untyped-def]
    serve_files(hub_server, list(NAMES))
    return write_catalog(tmp_path / "specs", NAMES)


def entries(*names: str, **fields: object) -> dict[str, ModelEntry]:
    return {n: ModelEntry(name=n, family=n, download=True, **fields) for n in names}  # type: ignore[arg-type]


def seen(text: str) -> dict[str, object]:
    """What the test engine says it received (its answer is that, as JSON)."""
    return json.loads(text)


def test_models_by_name_through_one_endpoint(catalog) -> None:  # type: ignore[no-untyped-def]
    with running_gateway(catalog, entries("gw-a", "gw-b")) as gw:
        client = OpenAI(base_url=gw.v1, api_key="none")
        listed = {m.id: m for m in client.models.list().data}
        assert set(listed) == {"gw-a", "gw-b"}
        for name in ("gw-a", "gw-b"):
            reply = client.chat.completions.create(
                model=name, messages=[{"role": "user", "content": "hi"}]
            )
            assert reply.model == name
            got = seen(reply.choices[0].message.content or "")
            # The engine got its own served name and the private key zoo gave it.
            assert got["model"] == name
        states = {m["id"]: m["status"] for m in httpx.get(gw.v1 + "/models").json()["data"]}
        assert states == {"gw-a": "loaded", "gw-b": "loaded"}
        # zoo ps sees the gateway's instances.
        assert {i.model for i in state.list_instances()} == {"gw-a", "gw-b"}
    assert state.list_instances() == []  # stopped with the gateway


def test_streams_pass_through_with_the_asked_name(catalog) -> None:  # type: ignore[no-untyped-def]
    with running_gateway(catalog, entries("gw-a", aliases=("tiny",))) as gw:
        client = OpenAI(base_url=gw.v1, api_key="none")
        chunks = list(
            client.chat.completions.create(
                model="tiny", messages=[{"role": "user", "content": "hi"}], stream=True
            )
        )
        assert chunks and all(c.model == "tiny" for c in chunks)
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert seen(text)["model"] == "gw-a"


def test_unknown_model_is_404_with_a_suggestion(catalog) -> None:  # type: ignore[no-untyped-def]
    with running_gateway(catalog, entries("gw-a")) as gw:
        client = OpenAI(base_url=gw.v1, api_key="none")
        with pytest.raises(APIStatusError) as error:
            client.chat.completions.create(
                model="gw-aa", messages=[{"role": "user", "content": "x"}]
            )
        assert error.value.status_code == 404
        assert "gw-a" in str(error.value)
        bad = httpx.post(gw.v1 + "/chat/completions", content=b"{not json")
        assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_request"


def test_api_keys_and_their_scope(catalog) -> None:  # type: ignore[no-untyped-def]
    keys = (ApiKey("team-key"), ApiKey("a-only", models=("gw-a",)))
    with running_gateway(catalog, entries("gw-a", "gw-b"), keys=keys) as gw:
        assert httpx.get(gw.url + "/health").status_code == 200  # needs no key
        with pytest.raises(AuthenticationError):
            OpenAI(base_url=gw.v1, api_key="wrong").models.list()
        assert len(OpenAI(base_url=gw.v1, api_key="team-key").models.list().data) == 2
        scoped = OpenAI(base_url=gw.v1, api_key="a-only")
        assert [m.id for m in scoped.models.list().data] == ["gw-a"]
        with pytest.raises(APIStatusError) as error:
            scoped.chat.completions.create(
                model="gw-b", messages=[{"role": "user", "content": "x"}]
            )
        assert error.value.status_code == 403
        assert httpx.get(gw.url + "/metrics").status_code == 401
        # The Ollama routes keep the key's scope too (they listed, showed and ran every model).
        a_only = {"Authorization": "Bearer a-only"}
        tags = httpx.get(gw.url + "/api/tags", headers=a_only).json()["models"]
        assert [m["name"] for m in tags] == ["gw-a"]
        for route, body in [
            ("/api/show", {"model": "gw-b"}),
            ("/api/chat", {"model": "gw-b", "messages": [{"role": "user", "content": "x"}]}),
            ("/api/generate", {"model": "gw-b", "prompt": "x", "stream": False}),
            ("/api/generate", {"model": "gw-b"}),  # a load
            ("/api/generate", {"model": "gw-b", "keep_alive": 0}),  # an unload
        ]:
            refused = httpx.post(gw.url + route, headers=a_only, json=body)
            assert refused.status_code == 403, (route, body, refused.text)
        assert all(s.status == "idle" for s in gw.gateway.scheduler.snapshot())
        shown = httpx.post(gw.url + "/api/show", headers=a_only, json={"model": "gw-a"})
        assert shown.status_code == 200


def test_budget_for_one_of_two_alternating_clients(catalog) -> None:  # type: ignore[no-untyped-def]
    """Two clients alternate between two models that cannot be loaded together: every
    request is answered (queued during swaps, never failed), no stream is cut."""
    engine = GatewayEngine("--chunks", "4", "--delay", "0.05")
    with running_gateway(
        catalog, entries("gw-a", "gw-b"), engine=engine, budget=int(1.5 * GIB)
    ) as gw:
        results: list[str] = []
        errors: list[BaseException] = []

        def client(order: list[str]) -> None:
            api = OpenAI(base_url=gw.v1, api_key="none", max_retries=0, timeout=60)
            try:
                for name in order:
                    stream = api.chat.completions.create(
                        model=name, messages=[{"role": "user", "content": "hi"}], stream=True
                    )
                    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
                    assert seen(text)["model"] == name  # whole: the stream was not cut
                    results.append(name)
            except BaseException as error:
                errors.append(error)

        threads = [
            threading.Thread(target=client, args=(["gw-a", "gw-b"] * 2,)),
            threading.Thread(target=client, args=(["gw-b", "gw-a"] * 2,)),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not errors, errors
        assert len(results) == 8
        metrics = httpx.get(gw.url + "/metrics").text
        evictions = sum(
            float(line.rsplit(" ", 1)[1])
            for line in metrics.splitlines()
            if line.startswith("zoo_evictions_total{")
        )
        assert evictions >= 1


def test_pinned_model_is_never_evicted(catalog) -> None:  # type: ignore[no-untyped-def]
    models = {**entries("gw-a", pinned=True), **entries("gw-b")}
    with running_gateway(catalog, models, budget=int(1.5 * GIB)) as gw:
        client = OpenAI(base_url=gw.v1, api_key="none", max_retries=0)
        client.chat.completions.create(model="gw-a", messages=[{"role": "user", "content": "x"}])
        with pytest.raises(APIStatusError) as error:
            client.chat.completions.create(
                model="gw-b", messages=[{"role": "user", "content": "x"}]
            )
        assert error.value.status_code == 507
        assert "pinned" in str(error.value)
        client.chat.completions.create(model="gw-a", messages=[{"role": "user", "content": "x"}])


def test_keep_alive_expiry_and_per_request_keep_alive(catalog) -> None:  # type: ignore[no-untyped-def]
    with running_gateway(catalog, entries("gw-a", "gw-b", keep_alive=0.5)) as gw:
        client = OpenAI(base_url=gw.v1, api_key="none")
        client.chat.completions.create(model="gw-a", messages=[{"role": "user", "content": "x"}])
        # keep_alive in the body of an OpenAI route (Ollama's semantics): forever, here.
        client.chat.completions.create(
            model="gw-b", messages=[{"role": "user", "content": "x"}], extra_body={"keep_alive": -1}
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            states = {m["id"]: m["status"] for m in httpx.get(gw.v1 + "/models").json()["data"]}
            if states["gw-a"] != "loaded":
                break
            time.sleep(0.1)
        assert states["gw-a"] != "loaded" and states["gw-b"] == "loaded"


def test_concurrency_limit_answers_429(catalog) -> None:  # type: ignore[no-untyped-def]
    engine = GatewayEngine("--delay", "1.0")
    with running_gateway(catalog, entries("gw-a", concurrency=1), engine=engine) as gw:
        OpenAI(base_url=gw.v1, api_key="none").chat.completions.create(
            model="gw-a", messages=[{"role": "user", "content": "warm"}]
        )
        first = threading.Thread(
            target=lambda: httpx.post(
                gw.v1 + "/chat/completions",
                json={"model": "gw-a", "messages": [{"role": "user", "content": "x"}]},
                timeout=30,
            )
        )
        first.start()
        time.sleep(0.3)
        busy = httpx.post(
            gw.v1 + "/chat/completions",
            json={"model": "gw-a", "messages": [{"role": "user", "content": "x"}]},
            timeout=30,
        )
        first.join()
        assert busy.status_code == 429
        assert busy.json()["error"]["code"] == "too_many_requests"


def test_fim_is_rendered_through_the_catalog_template(catalog) -> None:  # type: ignore[no-untyped-def]
    with running_gateway(catalog, entries("gw-coder")) as gw:
        answer = httpx.post(
            gw.v1 + "/completions",
            json={"model": "gw-coder", "prompt": "def f(", "suffix": "    return x\n"},
            timeout=30,
        ).json()
        got = seen(answer["choices"][0]["text"])
        # Suffix-prefix-middle, as the family's template says; no suffix goes upstream.
        assert got["prompt"] == "<[fim-suffix]>    return x\n<[fim-prefix]>def f(<[fim-middle]>"
        assert got["suffix"] == "<none>"
        assert "<[fim-prefix]>" in (got["stop"] or [])
        plain = httpx.post(
            gw.v1 + "/fim",
            json={"model": "gw-coder", "prefix": "a", "suffix": "b"},
            timeout=30,
        ).json()
        assert seen(plain["choices"][0]["text"])["prompt"] == (
            "<[fim-suffix]>b<[fim-prefix]>a<[fim-middle]>"
        )
        no_fim = httpx.post(
            gw.v1 + "/completions", json={"model": "gw-coder-x", "prompt": "a", "suffix": "b"}
        )
        assert no_fim.status_code == 404


def test_fim_output_is_cut_at_the_first_sentinel(catalog) -> None:  # type: ignore[no-untyped-def]
    engine = GatewayEngine("--reply", "x + 1<[fim-prefix]>junk after", "--chunks", "7")
    with running_gateway(catalog, entries("gw-coder"), engine=engine) as gw:
        body = {"model": "gw-coder", "prompt": "a", "suffix": "b"}
        plain = httpx.post(gw.v1 + "/completions", json=body, timeout=30).json()
        assert plain["choices"][0]["text"] == "x + 1"
        client = OpenAI(base_url=gw.v1, api_key="none")
        streamed = client.completions.create(
            model="gw-coder", prompt="a", stream=True, extra_body={"suffix": "b"}
        )
        assert "".join(c.choices[0].text for c in streamed if c.choices) == "x + 1"


def test_a_crashed_engine_is_reported_and_restarted(catalog) -> None:  # type: ignore[no-untyped-def]
    engine = GatewayEngine("--mode", "crash-after", "--chunks", "5")
    with running_gateway(catalog, entries("gw-a"), engine=engine) as gw:
        client = OpenAI(base_url=gw.v1, api_key="none", max_retries=0)
        stream = client.chat.completions.create(
            model="gw-a", messages=[{"role": "user", "content": "x"}], stream=True
        )
        # The answer is cut short by the engine's death: the client is told, not left guessing.
        with pytest.raises(APIError, match="stopped in the middle"):
            list(stream)
        # The next request starts it again (and this one is not streamed: it answers).
        deadline = time.monotonic() + 15
        while True:
            again = httpx.post(
                gw.v1 + "/chat/completions",
                json={"model": "gw-a", "messages": [{"role": "user", "content": "x"}]},
                timeout=30,
            )
            if again.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert again.status_code == 200, again.text


def test_an_engine_that_cannot_start_is_an_error_with_its_log(catalog) -> None:  # type: ignore[no-untyped-def]
    engine = GatewayEngine("--mode", "exit")
    with running_gateway(catalog, entries("gw-a"), engine=engine) as gw:
        answer = httpx.post(
            gw.v1 + "/chat/completions",
            json={"model": "gw-a", "messages": [{"role": "user", "content": "x"}]},
            timeout=60,
        )
        assert answer.status_code == 503
        error = answer.json()["error"]
        assert error["code"] == "model_load_failed"
        assert "cannot load the model" in error["message"]


def test_metrics_count_requests_and_tokens(catalog) -> None:  # type: ignore[no-untyped-def]
    engine = GatewayEngine("--chunks", "4")
    with running_gateway(catalog, entries("gw-a"), engine=engine) as gw:
        client = OpenAI(base_url=gw.v1, api_key="none")
        client.chat.completions.create(model="gw-a", messages=[{"role": "user", "content": "x"}])
        list(
            client.chat.completions.create(
                model="gw-a", messages=[{"role": "user", "content": "x"}], stream=True
            )
        )
        text = httpx.get(gw.url + "/metrics").text
        values = {
            line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line and not line.startswith("#")
        }
        # The engine reported 3 in / 5 out for the plain answer; the stream had 4 events.
        assert values['zoo_tokens_total{direction="in",model="gw-a"}'] == 3
        assert values['zoo_tokens_total{direction="out",model="gw-a"}'] == 5 + 4
        assert values['zoo_requests_total{model="gw-a",route="chat",status="200"}'] == 2
        assert values['zoo_loads_total{model="gw-a"}'] == 1
        assert values['zoo_model_loaded{model="gw-a"}'] == 1


def test_nothing_is_downloaded_by_surprise(catalog) -> None:  # type: ignore[no-untyped-def]
    """A model neither listed for download nor cached is refused (a request must not start a
    big download); one listed in the config, or any with --allow-download, is fetched."""
    listed = {"gw-a": ModelEntry(name="gw-a", family="gw-a", download=True)}
    with running_gateway(catalog, listed, allow_download=False) as gw:
        client = OpenAI(base_url=gw.v1, api_key="none", max_retries=0)
        with pytest.raises(APIStatusError) as error:
            client.chat.completions.create(
                model="gw-b", messages=[{"role": "user", "content": "x"}]
            )
        assert error.value.status_code == 404
        assert "not downloaded" in str(error.value) and "--allow-download" in str(error.value)
        client.chat.completions.create(model="gw-a", messages=[{"role": "user", "content": "x"}])
    # Now that gw-a is in the cache, a gateway that lists nothing serves it all the same.
    with running_gateway(catalog, {}, allow_download=False) as gw:
        client = OpenAI(base_url=gw.v1, api_key="none", max_retries=0)
        reply = client.chat.completions.create(
            model="gw-a", messages=[{"role": "user", "content": "x"}]
        )
        assert reply.model == "gw-a"


class _NoKeyEngine(GatewayEngine):
    """An engine that cannot check a key (like Transformers or MLX)."""

    def server_command(self, ctx):  # type: ignore[no-untyped-def]
        command = super().server_command(ctx)
        return replace(command, env={}, api_key_enforced=False)


def test_an_engine_that_cannot_check_keys_is_not_reachable_around_the_gateway(catalog) -> None:  # type: ignore[no-untyped-def]
    with running_gateway(catalog, entries("gw-a"), engine=_NoKeyEngine()) as gw:
        client = OpenAI(base_url=gw.v1, api_key="none")
        reply = client.chat.completions.create(
            model="gw-a", messages=[{"role": "user", "content": "x"}]
        )
        assert reply.model == "gw-a"
        [instance] = state.list_instances()
        # zoo's proxy stands in front of it and checks the gateway's private key.
        assert instance.proxy_pid is not None
        direct = httpx.post(
            f"http://127.0.0.1:{instance.port}/v1/chat/completions",
            json={"model": "gw-a", "messages": [{"role": "user", "content": "x"}]},
            timeout=10,
        )
        assert direct.status_code == 401


def test_a_reload_keeps_the_models_served_on_request(catalog, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from zoo.serve.server import ServeOptions, _reload

    with running_gateway(catalog, {}) as gw:
        client = OpenAI(base_url=gw.v1, api_key="none")
        client.chat.completions.create(model="gw-a", messages=[{"role": "user", "content": "x"}])
        config = tmp_path / "gateway.yaml"
        config.write_text("models:\n  gw-b:\n    engine: gw\n")
        said: list[str] = []

        async def reload() -> None:  # on the gateway's loop, as its SIGHUP handler runs
            _reload(gw.gateway, ServeOptions(config=config), said.append)

        asyncio.run_coroutine_threadsafe(reload(), gw.loop).result(timeout=10)
        assert "reloaded" in said[0]
        assert set(gw.gateway.entries) == {"gw-a", "gw-b"}
        # gw-a was not unloaded by the reload: it still answers from the same engine.
        states = {m["id"]: m["status"] for m in httpx.get(gw.v1 + "/models").json()["data"]}
        assert states["gw-a"] == "loaded"
