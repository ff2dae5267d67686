"""Download benchmarks against the local hub server (results: bench/RESULTS.md, "Hubs").

1. bytes fetched / bytes needed for one GGUF quantization out of several and for a mixed
   safetensors repository (target 1.00);
2. throughput of zoo's Hugging Face download of a 512 MiB file as a ratio to ``curl``;
3. bytes fetched again after ``kill -9`` at 70 % of a 1 GiB file: zoo vs the plain
   huggingface_hub client. The big files are generated on the fly (nothing on disk but the
   download itself).

Run: ``.venv/bin/python bench/hubs_download.py`` (about a minute; needs ~3 GB of free disk).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from zoo.testing.hubserver import HubServer

MB = 1024 * 1024
ROOT = Path(__file__).resolve().parents[1]
CHILD = """
import sys
from zoo.hubs.base import FetchRequest
from zoo.hubs.huggingface import HuggingFaceHub
if sys.argv[1] == "zoo":
    HuggingFaceHub().fetch(FetchRequest("org/big", files=("big.gguf",)))
else:
    from huggingface_hub import hf_hub_download
    hf_hub_download("org/big", "big.gguf")
"""


def _env(server: HubServer, home: Path) -> None:
    os.environ.update(server.hf_env())
    os.environ.update(server.ms_env())
    os.environ["HF_HOME"] = str(home / "hf")
    os.environ["MODELSCOPE_CACHE"] = str(home / "ms")
    os.environ["ZOO_HOME"] = str(home / "zoo")
    os.environ["HOME"] = str(home)


def bytes_ratio(server: HubServer) -> list[str]:
    sys.path.insert(0, str(ROOT / "tests"))
    from hubs.helpers import make_plan

    from zoo.hubs.download import describe_plan, fetch_plan
    from zoo.hubs.huggingface import HuggingFaceHub
    from zoo.hubs.modelscope import ModelScopeHub
    from zoo.testing.hubserver import GeneratedFile

    hubs = {"huggingface": HuggingFaceHub(), "modelscope": ModelScopeHub()}
    server.add_repo(
        "org/gguf",
        {
            f"m-{q}.gguf": GeneratedFile(s * MB, i)
            for i, (q, s) in enumerate([("Q4_K_M", 20), ("Q8_0", 30), ("F16", 60)])
        },
    )
    server.add_repo(
        "org/mixed",
        {
            "config.json": "{}",
            "tokenizer.json": "{}" * 1000,
            "model-00001-of-00002.safetensors": GeneratedFile(20 * MB, 5),
            "model-00002-of-00002.safetensors": GeneratedFile(10 * MB, 6),
            "model.safetensors.index.json": "{}",
            "pytorch_model.bin": GeneratedFile(30 * MB, 7),
            "consolidated.safetensors": GeneratedFile(30 * MB, 8),
            "m-Q4_0.gguf": GeneratedFile(MB, 9),
            "onnx/model.onnx": GeneratedFile(MB, 10),
        },
    )
    rows = []
    cases = [
        (
            "GGUF Q8_0 of 3 quantizations",
            "huggingface",
            make_plan(
                {"huggingface": {"model_id": "org/gguf", "file": "m-{quantization}.gguf"}},
                quantization="Q8_0",
            ),
        ),
        (
            "GGUF Q8_0 of 3 quantizations",
            "modelscope",
            make_plan(
                {"modelscope": {"model_id": "org/gguf", "file": "m-{quantization}.gguf"}},
                quantization="Q8_0",
            ),
        ),
        (
            "mixed safetensors/bin/gguf/onnx repo",
            "huggingface",
            make_plan(
                {"huggingface": {"model_id": "org/mixed"}}, fmt="pytorch", quantization="none"
            ),
        ),
        (
            "mixed safetensors/bin/gguf/onnx repo",
            "modelscope",
            make_plan(
                {"modelscope": {"model_id": "org/mixed"}}, fmt="pytorch", quantization="none"
            ),
        ),
    ]
    for label, hub, plan in cases:
        server.reset_counters()
        needed = describe_plan(plan, hubs=hubs).bytes or 0
        fetch_plan(plan, progress=False, hubs=hubs)
        sent = server.total_bytes_sent
        rows.append(f"| {label} | {hub} | {needed} | {sent} | {sent / needed:.2f} |")
    return rows


def throughput(server: HubServer, home: Path) -> str:
    from zoo.hubs.base import FetchRequest
    from zoo.hubs.huggingface import HuggingFaceHub
    from zoo.testing.hubserver import GeneratedFile

    size = 512 * MB
    repo = server.add_repo("org/fast", {"fast.gguf": GeneratedFile(size, 11)})
    url = f"{server.url}/org/fast/resolve/{repo.commit}/fast.gguf"
    target = home / "curl.bin"
    start = time.perf_counter()
    subprocess.run(["curl", "-sSf", "-o", str(target), url], check=True)
    curl_s = time.perf_counter() - start
    target.unlink()
    start = time.perf_counter()
    HuggingFaceHub().fetch(FetchRequest("org/fast", files=("fast.gguf",)))
    zoo_s = time.perf_counter() - start
    return (
        f"512 MiB: curl {size / MB / curl_s:.0f} MiB/s, zoo {size / MB / zoo_s:.0f} MiB/s "
        f"(download + sha256 + link), ratio {curl_s / zoo_s:.2f}"
    )


def kill_at_70(server: HubServer, home: Path, client: str) -> str:
    import shutil

    from zoo.testing.hubserver import GeneratedFile

    size = 1024 * MB
    if "org/big" not in server.repos:
        server.add_repo("org/big", {"big.gguf": GeneratedFile(size, 12)})
    shutil.rmtree(home / "hf", ignore_errors=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    slow = server.fault("slow", "big.gguf", delay=0.0005)
    child = subprocess.Popen([sys.executable, "-c", CHILD, client], env=env)
    blobs = home / "hf" / "hub" / "models--org--big" / "blobs"
    while child.poll() is None:
        partial = [p.stat().st_size for p in blobs.glob("*")] if blobs.is_dir() else []
        if partial and max(partial) >= 0.7 * size:
            break
        time.sleep(0.01)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    kept = max((p.stat().st_size for p in blobs.glob("*")), default=0)
    server.faults.remove(slow)
    server.reset_counters()
    subprocess.run([sys.executable, "-c", CHILD, client], env=env, check=True)
    again = server.bytes_sent["org/big/big.gguf"]
    return (
        f"| {client} | {kept / MB:.0f} MiB ({kept / size:.0%}) | {again / MB:.0f} MiB "
        f"| {again / size:.2f} |"
    )


def main() -> None:
    sys.path.insert(0, str(ROOT))
    from zoo.testing.hubserver import HubServer

    with tempfile.TemporaryDirectory(prefix="zoo-bench-") as tmp, HubServer() as server:
        home = Path(tmp)
        _env(server, home)
        print("## bytes fetched / bytes needed")
        print("| case | hub | needed | fetched | ratio |\n|---|---|---|---|---|")
        print("\n".join(bytes_ratio(server)))
        print("\n## throughput vs curl (Hugging Face path, local server)")
        print(throughput(server, home))
        print("\n## bytes fetched again after kill -9 at 70% of a 1 GiB file")
        print("| client | on disk at kill | fetched by the next run | of the file |")
        print("|---|---|---|---|")
        print(kill_at_70(server, home, "zoo"))
        print(kill_at_70(server, home, "huggingface_hub"))


if __name__ == "__main__":
    main()
