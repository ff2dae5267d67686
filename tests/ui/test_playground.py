"""The Playground page over real HTTP against a real gateway: what its page data says of each
model (kind, FIM, sampling defaults) within the key's scope, names escaped, and the /v1
requests its script sends, sent exactly so (session cookie and CSRF header, no key)."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.serve.gateway_helpers import running_gateway, serve_files, write_catalog
from zoo.catalog.catalog import Catalog, load_catalog
from zoo.serve.config import ApiKey
from zoo.serve.types import ModelEntry
from zoo.testing.hubserver import HubServer

from .ui_helpers import Browser

KEY = "playground-key-0123456789"
CHAT_ONLY = "playground-chat-only-0123"
EMBEDDER = """\
name: pg-emb
description: A tiny embedding family for playground tests.
kind: embedding
context_length: 256
languages: [en]
embedding:
  dimensions: 8
  pooling: mean
  normalized: true
specs:
  - format: ggufv2
    size: 0.001
    quantizations: [Q8_0]
    sources:
      huggingface:
        model_id: test/pg-emb-GGUF
        file: pg-emb.{quantization}.gguf
"""
GENERATION = """\
generation:
  temperature: 0.3
  top_p: 0.85
  max_tokens: 300
  system_prompt: "Answer in <b>one</b> line."
"""
HOSTILE = 'x</script><b onmouseover="1">'
_DATA = re.compile(r'<script type="application/json" id="pg-data">(.*?)</script>', re.S)


def page_data(text: str) -> dict[str, Any]:
    found = _DATA.search(text)
    assert found is not None, text[:500]
    data: dict[str, Any] = json.loads(found.group(1))
    return data


def catalog_in(folder: Path) -> Catalog:
    write_catalog(folder, {"pg-chat": False, "pg-coder": True})
    chat = folder / "pg-chat.yaml"
    chat.write_text(chat.read_text().replace("specs:\n", GENERATION + "specs:\n", 1))
    (folder / "pg-emb.yaml").write_text(EMBEDDER)
    return load_catalog([folder], use_cache=False)


def entries() -> dict[str, ModelEntry]:
    names = {"pg-chat": "pg-chat", "pg-coder": "pg-coder", "pg-emb": "pg-emb"}
    names[HOSTILE] = "pg-chat"  # an entry name is config text, shown as text
    return {n: ModelEntry(name=n, family=f, download=True) for n, f in names.items()}


@pytest.fixture
def gateway(tmp_path: Path, hub_server: HubServer) -> Iterator[str]:
    serve_files(hub_server, ["pg-chat", "pg-coder", "pg-emb"])
    keys = (ApiKey(KEY), ApiKey(CHAT_ONLY, models=("pg-chat",)))
    with running_gateway(catalog_in(tmp_path / "specs"), entries(), keys=keys) as running:
        yield running.url


def logged_in(url: str, key: str = KEY) -> Browser:
    browser = Browser(url)
    assert browser.login(key).status_code == 303
    return browser


def test_the_page_lists_each_model_with_its_kind_fim_and_defaults(gateway: str) -> None:
    browser = logged_in(gateway)
    answer = browser.page("/ui/playground?model=pg-chat")
    assert answer.status_code == 200
    data = page_data(answer.text)
    models = {m["id"]: m for m in data["models"]}
    assert set(models) == {"pg-chat", "pg-coder", "pg-emb", HOSTILE}
    assert [m["kind"] for m in data["models"]] == ["llm", "llm", "llm", "embedding"]
    assert {n: m["fim"] for n, m in models.items()} == {
        "pg-chat": False,
        "pg-coder": True,
        "pg-emb": False,
        HOSTILE: False,
    }
    assert models["pg-chat"]["defaults"] == {
        "temperature": 0.3,
        "top_p": 0.85,
        "max_tokens": 300,
        "system_prompt": "Answer in <b>one</b> line.",
    }
    assert models["pg-coder"]["defaults"] == {}
    assert data["model"] == "pg-chat"
    # The chosen model's defaults fill the inputs; the picker groups by kind.
    assert 'id="pg-temperature" min="0" max="2" step="0.05" value="0.3"' in answer.text
    assert "Answer in &lt;b&gt;one&lt;/b&gt; line.</textarea>" in answer.text
    assert '<optgroup label="Language models">' in answer.text
    assert '<optgroup label="Embedding models">' in answer.text
    assert 'id="pg-chat"' in answer.text and 'id="pg-fim"' not in answer.text
    # The page's own script and style are served (hashed URLs, from this origin).
    assets = re.findall(r'(?:src|href)="(/ui/static/playground\.(?:js|css)\?v=\w+)"', answer.text)
    assert len(assets) == 2
    for asset in assets:
        assert browser.page(asset).status_code == 200


def test_names_are_escaped_in_the_markup_and_the_page_data(gateway: str) -> None:
    browser = logged_in(gateway)
    answer = browser.page("/ui/playground")
    assert HOSTILE not in answer.text and "<b onmouseover" not in answer.text
    # The option's text and value (Jinja writes " as &#34;).
    assert html.escape(HOSTILE).replace("&quot;", "&#34;") in answer.text
    found = _DATA.search(answer.text)
    assert found is not None and "</script>" not in found.group(1)
    assert HOSTILE in {m["id"] for m in page_data(answer.text)["models"]}


def test_the_view_follows_the_model(gateway: str) -> None:
    browser = logged_in(gateway)
    coder = browser.page("/ui/playground?model=pg-coder").text
    # A FIM family without the chat ability opens on the FIM view, chat still one click away.
    assert 'id="pg-fim"' in coder and 'id="pg-chat"' in coder
    assert 'value="fim" checked' in coder
    embedder = browser.page("/ui/playground?model=pg-emb").text
    assert 'id="pg-embed"' in embedder and 'id="pg-chat"' not in embedder
    assert page_data(embedder)["model"] == "pg-emb"


def test_the_keys_scope_decides_what_is_listed(gateway: str) -> None:
    browser = logged_in(gateway, CHAT_ONLY)
    answer = browser.page("/ui/playground?model=pg-coder")
    assert answer.status_code == 200
    data = page_data(answer.text)
    # The scope names a family: the other entry of that family is in it too.
    assert [m["id"] for m in data["models"]] == ["pg-chat", HOSTILE]
    # A model outside the scope is not chosen, with the line an unknown name gets.
    assert data["model"] == "pg-chat"
    assert "no model named &#39;pg-coder&#39; to try here" in answer.text
    unknown = browser.page("/ui/playground?model=nothing-here").text
    assert "no model named &#39;nothing-here&#39; to try here" in unknown
    assert "pg-coder" not in answer.text.replace("&#39;pg-coder&#39;", "")


def stream_text(answer: httpx.Response, field: str) -> str:
    """The text of an OpenAI-style event stream (``field``: "delta" for chat, "text")."""
    text = ""
    for line in answer.text.splitlines():
        if not line.startswith("data: ") or line == "data: [DONE]":
            continue
        choice = json.loads(line[6:])["choices"][0]
        text += choice["delta"].get("content") or "" if field == "delta" else choice["text"]
    return text


def test_the_streamed_chat_the_page_sends_works_with_the_session(gateway: str) -> None:
    browser = logged_in(gateway)
    token = browser.csrf("/ui/playground")
    # The body the page's script builds: system prompt, the conversation, its sampling fields.
    body = {
        "model": "pg-coder",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "hi"},
        ],
        "stream": True,
        "temperature": 0.3,
        "top_p": 0.85,
        "max_tokens": 300,
    }
    # fetch() sends the page's origin with a POST; the cookie travels by itself.
    page_headers = {"X-Zoo-CSRF": token, "Origin": gateway, "Accept": "*/*"}
    bare = browser.client.post(
        "/v1/chat/completions", json=body, headers={"Origin": gateway, "Accept": "*/*"}
    )
    assert bare.status_code == 403
    assert bare.json()["error"]["code"] == "browser_request_refused"
    answer = browser.client.post("/v1/chat/completions", json=body, headers=page_headers)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/event-stream")
    seen = json.loads(stream_text(answer, "delta"))
    assert seen["messages"] == body["messages"] and seen["path"] == "/v1/chat/completions"

    # The FIM view's request: /v1/fim with prefix as prompt, the completion streamed back.
    fim = {
        "model": "pg-coder",
        "prompt": "def f(",
        "suffix": "\n",
        "max_tokens": 64,
        "stream": True,
    }
    infill = browser.client.post("/v1/fim", json=fim, headers=page_headers)
    assert infill.status_code == 200, infill.text
    got = json.loads(stream_text(infill, "text"))
    assert got["prompt"] == "<[fim-suffix]>\n<[fim-prefix]>def f(<[fim-middle]>"
    assert got["path"] == "/v1/completions"


def test_a_scoped_session_cannot_chat_with_another_model(gateway: str) -> None:
    browser = logged_in(gateway, CHAT_ONLY)
    token = browser.csrf("/ui/playground")
    body = {"model": "pg-coder", "messages": [{"role": "user", "content": "x"}], "stream": True}
    answer = browser.client.post(
        "/v1/chat/completions", json=body, headers={"X-Zoo-CSRF": token, "Origin": gateway}
    )
    assert answer.status_code == 403
    assert "pg-coder" in answer.json()["error"]["message"]
