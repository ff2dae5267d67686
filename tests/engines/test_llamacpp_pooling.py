"""llama.cpp's embedding and reranking modes: the server command by kind, and the runner's
xllamacpp parameters (against a stand-in module, and against the real xllamacpp when the
engine's environment is built)."""

from __future__ import annotations

import argparse
import enum
import json
import os
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from zoo.catalog.model import EmbeddingFacts, Family, RerankFacts, Spec
from zoo.engine import Engine, LaunchContext
from zoo.errors import ZooError

REPO = Path(__file__).resolve().parents[2]
RUNNER = REPO / "plugins" / "zoo-llamacpp" / "zoo_llamacpp" / "runner.py"
BASE = ["--model", "/m.gguf", "--port", "9"]


def family(kind: str, **facts: object) -> Family:
    facts.setdefault("abilities", ())
    return Family(
        name=f"a-{kind}-model",
        description="",
        context_length=512,
        languages=("en",),
        specs=(Spec(format="ggufv2", size=0.02, quantizations=("F16",), sources=()),),
        kind=kind,
        **facts,  # type: ignore[arg-type]
    )


def command(engine: Engine, fam: Family) -> tuple[str, ...]:
    ctx = LaunchContext(
        family=fam,
        spec=fam.specs[0],
        quantization="F16",
        model_path="/m/model.gguf",
        served_name="m",
        port=8011,
        context_length=256,
        python="/envs/e/bin/python",
    )
    return engine.server_command(ctx).argv


def test_llamacpp_serves_every_kind(engines: dict[str, Engine]) -> None:
    assert engines["llamacpp"].capabilities.kinds == ("llm", "embedding", "rerank")


def test_embedding_models_start_in_embedding_mode_with_their_pooling(
    engines: dict[str, Engine],
) -> None:
    llamacpp = engines["llamacpp"]
    mean = command(llamacpp, family("embedding", embedding=EmbeddingFacts(384, pooling="mean")))
    assert mean[-4:] == ("--kind", "embedding", "--pooling", "mean")
    assert mean[mean.index("--ctx-size") + 1] == "256"
    # No pooling in the spec: none passed, so llama.cpp pools as the GGUF says.
    own = command(llamacpp, family("embedding", embedding=EmbeddingFacts(384)))
    assert own[-2:] == ("--kind", "embedding") and "--pooling" not in own
    raw = command(
        llamacpp, family("embedding", embedding=EmbeddingFacts(8, pooling="cls", normalized=False))
    )
    assert raw[-3:] == ("--pooling", "cls", "--no-normalize")


def test_rerankers_start_in_reranking_mode(engines: dict[str, Engine]) -> None:
    llamacpp = engines["llamacpp"]
    assert command(llamacpp, family("rerank"))[-2:] == ("--kind", "rerank")
    llm = command(llamacpp, family("rerank", rerank=RerankFacts("llm")))
    assert llm[-2:] == ("--kind", "rerank")
    assert "--kind" not in command(llamacpp, family("llm", abilities=("chat",)))


def test_what_llamacpp_cannot_pool_is_one_clear_error(engines: dict[str, Engine]) -> None:
    llamacpp = engines["llamacpp"]
    with pytest.raises(ZooError, match=r"llama\.cpp cannot pool by max \(it pools by mean"):
        command(llamacpp, family("embedding", embedding=EmbeddingFacts(384, pooling="max")))
    with pytest.raises(ZooError, match="cannot serve llm-layerwise rerankers"):
        command(llamacpp, family("rerank", rerank=RerankFacts("llm-layerwise")))


def test_resolution_leaves_llamacpp_out_for_what_it_cannot_pool(
    engines: dict[str, Engine],
) -> None:
    """check_family: the family is judged before anything starts, so resolution picks another
    engine (or names the reason) instead of failing at the launch."""
    from zoo.catalog.catalog import Catalog
    from zoo.catalog.model import Source
    from zoo.engine import Capabilities, ServerCommand
    from zoo.errors import UsageError
    from zoo.host import BUILTIN_PROFILES
    from zoo.resolve import Request, resolve

    class MaxPooler(Engine):
        name = "maxpooler"
        display_name = "Max pooler"
        capabilities = Capabilities(formats={"ggufv2": ("*",)}, kinds=("embedding",))

        def server_command(self, ctx: LaunchContext) -> ServerCommand:
            return ServerCommand(argv=("true",))

    llamacpp = engines["llamacpp"]
    host = BUILTIN_PROFILES["cpu-24g"]
    maxed = family("embedding", embedding=EmbeddingFacts(384, pooling="max"))
    assert not llamacpp.check_family(maxed, host)
    assert llamacpp.check_family(family("embedding", embedding=EmbeddingFacts(384)), host)
    source = Source(
        hub="huggingface",
        model_id="org/m-GGUF",
        quantizations=("F16",),
        file="m-{quantization}.gguf",
    )
    spec = replace(maxed.specs[0], sources=(source,))
    catalog = Catalog(families={maxed.name: replace(maxed, specs=(spec,))})
    with pytest.raises(UsageError, match=r"cannot pool by max"):
        resolve(catalog, Request(model=maxed.name), {"llamacpp": llamacpp}, host)
    plan = resolve(
        catalog, Request(model=maxed.name), {"llamacpp": llamacpp, "maxpooler": MaxPooler()}, host
    )
    assert plan.engine == "maxpooler"


class Pooling(enum.IntEnum):
    """xllamacpp.llama_pooling_type, as xllamacpp 2026.10.11549 defines it."""

    LLAMA_POOLING_TYPE_UNSPECIFIED = -1
    LLAMA_POOLING_TYPE_NONE = 0
    LLAMA_POOLING_TYPE_MEAN = 1
    LLAMA_POOLING_TYPE_CLS = 2
    LLAMA_POOLING_TYPE_LAST = 3
    LLAMA_POOLING_TYPE_RANK = 4


class Params:
    """The CommonParams fields the runner touches, with xllamacpp's defaults."""

    def __init__(self) -> None:
        self.model = argparse.Namespace(path="")
        self.cpuparams = argparse.Namespace(n_threads=0)
        self.cpuparams_batch = argparse.Namespace(n_threads=0)
        self.model_alias: set[str] = set()
        self.embedding = False
        self.pooling_type = Pooling.LLAMA_POOLING_TYPE_UNSPECIFIED
        self.embd_normalize = 2
        self.n_ctx, self.n_batch, self.n_ubatch = 0, 2048, 512


XLLAMACPP = argparse.Namespace(CommonParams=Params, llama_pooling_type=Pooling)


def params(*extra: str) -> Params:
    from zoo_llamacpp import runner

    built: Params = runner.build_params(runner.parse_args([*BASE, *extra]), XLLAMACPP)
    return built


def test_runner_embedding_mode_sets_pooling_and_a_batch_as_long_as_the_context() -> None:
    p = params("--kind", "embedding", "--pooling", "mean", "--ctx-size", "256")
    assert p.embedding and p.pooling_type == Pooling.LLAMA_POOLING_TYPE_MEAN
    # An encoder reads a whole input in one micro-batch: it must hold the longest input.
    assert (p.n_ctx, p.n_batch, p.n_ubatch) == (256, 256, 256)
    assert p.embd_normalize == 2
    long = params("--kind", "embedding", "--ctx-size", "8192")
    assert long.pooling_type == Pooling.LLAMA_POOLING_TYPE_UNSPECIFIED  # the GGUF's own
    assert long.n_ubatch == 8192
    assert params("--kind", "embedding", "--pooling", "last").pooling_type == 3
    assert params("--kind", "embedding", "--no-normalize").embd_normalize == -1


def test_runner_rerank_mode_is_llama_servers_reranking() -> None:
    p = params("--kind", "rerank", "--ctx-size", "512")
    assert p.embedding and p.pooling_type == Pooling.LLAMA_POOLING_TYPE_RANK
    assert p.n_ubatch == 512


def test_runner_llm_mode_leaves_embedding_off() -> None:
    p = params("--ctx-size", "4096")
    assert not p.embedding and p.pooling_type == Pooling.LLAMA_POOLING_TYPE_UNSPECIFIED
    assert (p.n_batch, p.n_ubatch) == (2048, 512)  # llama.cpp's own for generation


def test_runner_refuses_pooling_llamacpp_does_not_have() -> None:
    from zoo_llamacpp import runner

    with pytest.raises(SystemExit):
        runner.parse_args([*BASE, "--kind", "embedding", "--pooling", "max"])


# The same parameters against the real xllamacpp, in the engine's environment (the stand-in
# above could drift from it: a renamed field would be set on nothing and silently ignored).
REAL = """
import json, sys
sys.path.insert(0, sys.argv[1])
import runner, xllamacpp
out = {}
for name, extra in json.loads(sys.argv[2]).items():
    p = runner.build_params(runner.parse_args(extra), xllamacpp)
    out[name] = [p.embedding, int(p.pooling_type), p.embd_normalize, p.n_batch, p.n_ubatch]
print(json.dumps(out))
"""


def test_runner_params_on_the_real_xllamacpp() -> None:
    cache = Path(os.environ.get("ZOO_TEST_ENV_CACHE") or REPO / ".venv" / "zoo-test-envs")
    python = cache / "llamacpp" / "bin" / "python"
    if not python.exists():
        pytest.skip("the llama.cpp engine environment is not built (tests/e2e builds it)")
    cases = {
        "embedding": [*BASE, "--kind", "embedding", "--pooling", "cls", "--ctx-size", "300"],
        "raw": [*BASE, "--kind", "embedding", "--no-normalize"],
        "rerank": [*BASE, "--kind", "rerank", "--ctx-size", "512"],
        "llm": BASE,
    }
    done = subprocess.run(
        [str(python), "-c", REAL, str(RUNNER.parent), json.dumps(cases)],
        capture_output=True,
        text=True,
        timeout=120,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    assert got["embedding"] == [True, 2, 2, 300, 300]
    assert got["raw"] == [True, -1, -1, 2048, 512]
    assert got["rerank"] == [True, 4, 2, 512, 512]
    assert got["llm"] == [False, -1, 2, 2048, 512]
