"""The curl the launch banner prints asks a language model a question with its spec's
generation defaults (system prompt, temperature, top_p, max_tokens), so what a user pastes
first gets the answer the card's settings give; the body survives the shell."""

from __future__ import annotations

import json
import shlex
import time

from zoo.registry import catalog_with_plugins
from zoo.runtime import launcher, state


def instance(kind: str = "llm", model: str = "smollm2-135m-instruct") -> state.Instance:
    return state.Instance(
        id="abc123",
        model=model,
        engine="llamacpp",
        quantization="Q4_1",
        format="ggufv2",
        served_name=model,
        host="127.0.0.1",
        port=8555,
        pid=1,
        pgid=1,
        log_path="/dev/null",
        started_at=time.time(),
        detached=True,
        api_key=True,
        kind=kind,
    )


def curl_body(text: str) -> dict[str, object]:
    line = next(x for x in text.splitlines() if x.strip().startswith("try:"))
    words = shlex.split(line.split("try:", 1)[1])
    body = json.loads(words[words.index("-d") + 1])
    assert isinstance(body, dict)
    return body


def test_the_curl_carries_the_spec_defaults() -> None:
    family = catalog_with_plugins().get("smollm2-135m-instruct")
    assert family.generation is not None
    body = curl_body(launcher.running_banner(instance(), family))
    messages = body["messages"]
    assert isinstance(messages, list)
    assert messages[0] == {"role": "system", "content": family.generation.system_prompt}
    assert messages[1]["role"] == "user"
    assert body["temperature"] == family.generation.temperature
    assert body["max_tokens"] == family.generation.max_tokens


def test_without_defaults_the_kind_example_is_sent() -> None:
    body = curl_body(launcher.running_banner(instance()))
    assert body["messages"] == [{"role": "user", "content": "Hello!"}]
    embedding = curl_body(launcher.running_banner(instance("embedding", "all-minilm-l6-v2")))
    assert "input" in embedding and "messages" not in embedding


def test_a_quote_in_the_system_prompt_survives_the_shell() -> None:
    from dataclasses import replace

    family = catalog_with_plugins().get("smollm2-135m-instruct")
    assert family.generation is not None
    quoted = replace(family, generation=replace(family.generation, system_prompt="It's 'you'."))
    body = curl_body(launcher.running_banner(instance(), quoted))
    assert body["messages"][0]["content"] == "It's 'you'."  # type: ignore[index]
