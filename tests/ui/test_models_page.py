"""The Models pages over real HTTP against a real gateway: the catalog listed and filtered
(by the form and by the script's API, one rule), a family's builds with their sizes, fit and
tag, the gateway's models of it within the key's scope, and catalog text shown as text."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.serve.gateway_helpers import Running, running_gateway, serve_files, write_catalog
from zoo.catalog.catalog import Catalog, load_catalog
from zoo.serve.config import ApiKey
from zoo.serve.types import ModelEntry
from zoo.testing.hubserver import HubServer

from .ui_helpers import Browser

KEY = "models-page-key-0123456789"
CHAT_ONLY = "models-page-chat-only-0123"
MARKUP = "<img src=x onerror=alert(1)><b>bold</b>"
# A family no engine of the test gateway runs (it serves GGUF Q8_0 only).
UNRUNNABLE = """\
name: mp-big
description: "A family in a format the test engine lacks, says {markup}."
context_length: 32768
languages: [en, fr]
abilities: [chat, tools]
homepage: "https://example.com/mp-big?a=1&b=2"
specs:
  - format: pytorch
    size: 7
    quantizations: [none]
    sources:
      huggingface:
        model_id: test/mp-big
"""
EMBEDDER = """\
name: mp-emb
description: A tiny embedding family.
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
        model_id: test/mp-emb-GGUF
        file: mp-emb.{quantization}.gguf
"""
_ROW = re.compile(r'<tr data-family="([^"]+)"( hidden)?>')


def catalog_in(folder: Path) -> Catalog:
    write_catalog(folder, {"mp-chat": False, "mp-coder": True})
    (folder / "mp-big.yaml").write_text(UNRUNNABLE.format(markup=MARKUP.replace('"', "'")))
    (folder / "mp-emb.yaml").write_text(EMBEDDER)
    return load_catalog([folder], use_cache=False)


@pytest.fixture
def running(tmp_path: Path, hub_server: HubServer) -> Iterator[Running]:
    serve_files(hub_server, ["mp-chat", "mp-coder", "mp-emb"])
    entries = {
        "chatty": ModelEntry(name="chatty", family="mp-chat", aliases=("cc",), download=True),
        "coder": ModelEntry(name="coder", family="mp-coder", download=True),
    }
    keys = (ApiKey(KEY), ApiKey(CHAT_ONLY, models=("chatty",)))
    with running_gateway(
        catalog_in(tmp_path / "specs"), entries, keys=keys, allow_download=False
    ) as served:
        yield served


def logged_in(url: str, key: str = KEY) -> Browser:
    browser = Browser(url)
    assert browser.login(key).status_code == 303
    return browser


def rows(text: str) -> dict[str, bool]:
    """Family name -> shown (rendered without ``hidden``), in page order."""
    return {name: not hidden for name, hidden in _ROW.findall(text)}


def test_the_list_shows_every_family_with_links_and_escaped_text(running: Running) -> None:
    browser = logged_in(running.url)
    for path in ("/", "/ui/models"):
        answer = browser.page(path)
        assert answer.status_code == 200
        assert rows(answer.text) == dict.fromkeys(["mp-big", "mp-chat", "mp-coder", "mp-emb"], True)
    assert 'href="/ui/models/mp-chat"' in answer.text
    assert "4 of 4 model families" in answer.text
    assert MARKUP.replace("'", "") not in answer.text and "<b>bold" not in answer.text
    assert "&lt;img src=x onerror=alert(1)&gt;&lt;b&gt;bold&lt;/b&gt;" in answer.text
    # The kind select has every kind; an embedding family says so instead of abilities.
    assert '<option value="embedding">embedding model</option>' in answer.text
    assert re.search(r"<td data-label=\"Kind\">embedding model</td>", answer.text)


def test_the_form_filters_and_hides_what_the_cheap_filters_drop(running: Running) -> None:
    browser = logged_in(running.url)
    kind = rows(browser.page("/ui/models?kind=embedding").text)
    assert kind == {"mp-big": False, "mp-chat": False, "mp-coder": False, "mp-emb": True}
    searched = browser.page("/ui/models?q=format+lacks").text
    assert rows(searched) == {"mp-big": True, "mp-chat": False, "mp-coder": False, "mp-emb": False}
    assert "1 of 4 model families" in searched
    ability = rows(browser.page("/ui/models?ability=tools&format=pytorch").text)
    assert [n for n, shown in ability.items() if shown] == ["mp-big"]
    nothing = browser.page("/ui/models?q=no-such-words-anywhere").text
    assert re.search(r'<p id="model-none" class="panel">', nothing)  # not hidden
    assert "0 of 4 model families" in nothing


def test_a_bad_filter_is_one_line_and_the_whole_catalog(running: Running) -> None:
    browser = logged_in(running.url)
    answer = browser.page("/ui/models?kind=%3Cscript%3E&q=chat")
    assert answer.status_code == 200
    assert "unknown kind &#39;&lt;script&gt;&#39;: choose one of llm, embedding, rerank" in (
        answer.text
    )
    assert all(rows(answer.text).values())  # no filter applied: nothing half-read
    api = browser.page("/ui/api/models?format=safetensors")
    assert api.status_code == 400
    assert "unknown format 'safetensors'" in api.json()["error"]["message"]
    assert browser.page("/ui/models?host=../../etc/passwd").status_code == 200


def test_the_script_api_applies_the_same_rule(running: Running) -> None:
    browser = logged_in(running.url)
    for query in ("kind=embedding", "q=format+lacks", "ability=generate", "q=tiny&kind=llm"):
        listed = browser.page(f"/ui/api/models?{query}").json()["families"]
        page = rows(browser.page(f"/ui/models?{query}").text)
        assert listed == sorted(n for n, shown in page.items() if shown), query
        assert listed, query
    assert Browser(running.url).page("/ui/api/models").status_code in (303, 401)


def test_fits_and_downloaded_are_judged_on_the_chosen_host(running: Running) -> None:
    from zoo import launch

    browser = logged_in(running.url)
    fitting = rows(browser.page("/ui/models?fits=1").text)
    # No engine here runs pytorch, nor embedding models (the test engine serves chat).
    assert set(fitting) == {"mp-chat", "mp-coder"}
    # On a profile's host too (the test engine runs on any CPU).
    assert set(rows(browser.page("/ui/models?fits=1&host=cpu-8g").text)) == set(fitting)
    assert rows(browser.page("/ui/models?downloaded=1").text) == {}
    gateway = running.gateway
    plan = gateway.backend.plan(gateway.entries["coder"])
    launch.fetch(plan, hubs=gateway.backend.hubs, progress=False)
    assert rows(browser.page("/ui/models?downloaded=1").text) == {"mp-coder": True}
    # Cheap filters on top of a costly one hide rows, they do not drop them.
    both = rows(browser.page("/ui/models?downloaded=1&kind=embedding").text)
    assert both == {"mp-coder": False}


def test_a_familys_page_has_its_builds_tags_and_served_models(running: Running) -> None:
    from zoo.reference import read_tag

    browser = logged_in(running.url)
    answer = browser.page("/ui/models/mp-chat")
    assert answer.status_code == 200
    text = answer.text
    # The gateway's models of the family, each with load and unload.
    assert '<tr data-model="chatty">' in text and "(cc)" in text
    assert 'data-load="chatty"' in text and 'data-unload="chatty"' in text
    assert 'data-model="coder"' not in text
    # The build: its size, memory and fit on this machine, and the tag that loads it.
    assert 'data-build="mp-chat:1m-q8_0"' in text
    assert "recommended" in text and '<span class="ok">yes</span>' in text
    assert 'data-download="mp-chat:1m-q8_0"' in text  # not downloaded yet
    assert 'data-load="mp-chat:1m-q8_0"' in text
    family = running.gateway.catalog.get("mp-chat")
    tag = read_tag(family, "1m-q8_0")
    assert (tag.size, tag.quantization) == (family.specs[0].size, "Q8_0")
    # The tag is what the gateway reads: loading it runs that build.
    assert browser.page("/ui/models/mp-chat").status_code == 200
    loaded = browser.post("/ui/api/load", {"model": "mp-chat:1m-q8_0"})
    assert loaded.status_code == 200, loaded.text
    # The family's one build is the configured model's: one model to the scheduler.
    assert loaded.json() == {"model": "chatty", "status": "loaded"}


def test_a_family_no_engine_runs_says_why_and_offers_no_load(running: Running) -> None:
    browser = logged_in(running.url)
    text = browser.page("/ui/models/mp-big").text
    assert '<span class="warn">no</span>' in text
    assert "data-load=" not in text
    assert "The gateway's config lists no model of this family" in text
    # Catalog text is text (the homepage too: its & escaped in the link).
    assert "<b>bold" not in text
    assert 'href="https://example.com/mp-big?a=1&amp;b=2"' in text
    assert "&lt;b&gt;bold&lt;/b&gt;" in text


def test_a_host_profile_estimates_without_actions(running: Running) -> None:
    browser = logged_in(running.url)
    text = browser.page("/ui/models/mp-chat?host=cpu-8g").text
    assert "Builds on cpu-8g" in text
    assert "data-download=" not in text and 'data-load="mp-chat:' not in text
    bad = browser.page("/ui/models/mp-chat?host=nowhere").text
    assert "unknown host &#39;nowhere&#39;" in bad and "Builds on test-host" in bad


def test_an_unknown_family_is_a_404_page_with_its_name_as_text(running: Running) -> None:
    browser = logged_in(running.url)
    answer = browser.page("/ui/models/%3Cb%3Enope%3C%2Fb%3E")
    assert answer.status_code == 404
    assert "&lt;b&gt;nope&lt;/b&gt;" in answer.text and "<b>nope" not in answer.text


def test_a_scoped_key_sees_only_its_models_of_a_family(running: Running) -> None:
    browser = logged_in(running.url, CHAT_ONLY)
    text = browser.page("/ui/models/mp-coder").text
    assert 'data-model="coder"' not in text
    # The build the configured "coder" serves does not name it either.
    assert 'data-build="mp-coder:1m-q8_0" data-entry=""' in text
    assert 'data-entry="coder"' in logged_in(running.url).page("/ui/models/mp-coder").text
    # A refusal names the model as sent, not the configured one it resolved to.
    refused = browser.post("/ui/api/load", {"model": "mp-coder"})
    assert refused.status_code == 403
    assert refused.json()["error"]["message"] == "this API key may not use 'mp-coder'"
    assert "lists no model of this family that this key may use" in text
    assert 'data-model="chatty"' in browser.page("/ui/models/mp-chat").text
