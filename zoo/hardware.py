"""How fast a device reads memory and computes: data-sheet figures, and this CPU measured.

Speed estimates (``zoo.speed``) need two rates per device: memory bandwidth (decoding reads
every active weight once per token) and dense 16-bit compute (prefill). GPUs are looked up by
name in a table of data-sheet figures; a GPU that is not in it has no rates, and its
candidates show no speed rather than a guess. This machine's CPUs are measured once (a large
multi-threaded
memory read, ~0.2 s) and the figure is cached in zoo's cache folder, keyed by what would
change it (CPU model, core count, RAM); ``ZOO_MEMORY_BANDWIDTH`` (GB/s) overrides it.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

GB = 1e9
TFLOPS = 1e12

# name fragment (lower case) -> (bandwidth GB/s, dense FP16/BF16 tensor TFLOP/s), from the
# vendors' data sheets. The longest fragment found in a device's name wins, so "h100 pcie"
# beats "h100".
GPU_RATES: dict[str, tuple[float, float]] = {
    "b200": (8000, 2250),
    "h200": (4800, 989),
    "h100": (3350, 989),  # SXM5 HBM3
    "h100 pcie": (2000, 756),
    "h100 nvl": (3900, 835),
    "gh200": (4000, 989),
    "a100": (2039, 312),  # 80 GB SXM
    "a100-sxm4-40gb": (1555, 312),
    "a100-pcie-40gb": (1555, 312),
    "a100 80gb pcie": (1935, 312),
    "a100-pcie-80gb": (1935, 312),
    "l40s": (864, 362),
    "l40": (864, 181),
    "l4": (300, 121),
    "a10g": (600, 70),
    "a10": (600, 125),
    "t4": (320, 65),
    "v100": (900, 125),
    "rtx 6000 ada": (960, 365),
    "rtx a6000": (768, 155),
    "rtx 5090": (1792, 210),
    "rtx 4090": (1008, 165),
    "rtx 4080": (717, 97),
    "rtx 4070": (504, 58),
    "rtx 3090": (936, 71),
    "rtx 3080": (760, 59),
    "rtx 3060": (360, 25),
    "mi300x": (5300, 1307),
    "mi250": (3277, 362),
    # Apple silicon: the unified memory's bandwidth, the GPU's FP16 compute.
    "apple m1": (68, 2.6),
    "apple m1 pro": (200, 5.2),
    "apple m1 max": (400, 10.4),
    "apple m1 ultra": (800, 21),
    "apple m2": (100, 3.6),
    "apple m2 pro": (200, 6.8),
    "apple m2 max": (400, 13.6),
    "apple m2 ultra": (800, 27),
    "apple m3": (100, 4.1),
    "apple m3 pro": (150, 7.4),
    "apple m3 max": (400, 16.4),
    "apple m4": (120, 4.3),
    "apple m4 pro": (273, 9.2),
    "apple m4 max": (546, 18.4),
}

BANDWIDTH_ENV = "ZOO_MEMORY_BANDWIDTH"
# Which measurement the cached figure came from; a new method measures again.
MEASURE_METHOD = "read-threads-v2"
_CACHE_FILE = "host-bandwidth.json"
# Larger than most CPUs' last-level cache, small enough to read in a few hundredths of a
# second; one thread per core up to 16 (more rarely adds bandwidth), each reading at least
# 16 MiB. The best of 5 rounds: other load on the machine only ever slows a round down.
_PROBE_BYTES = 256 * 1024**2
_PROBE_REPEATS = 5
_PROBE_THREADS = 16
_PROBE_MIN_SHARE = 16 * 1024**2


def gpu_rates(name: str) -> tuple[float | None, float | None]:
    """(bandwidth bytes/s, FLOP/s) of a GPU by its name, or (None, None) if unknown."""
    lowered = " ".join(name.lower().replace("nvidia", "").replace("geforce", "").split())
    found = [key for key in GPU_RATES if key in lowered]
    if not found:
        return None, None
    bandwidth, flops = GPU_RATES[max(found, key=len)]
    return bandwidth * GB, flops * TFLOPS


def cpu_flops(cpu_count: int, flags: set[str]) -> float:
    """Dense FP32 compute of the CPUs, roughly: FMA lanes per cycle × 2.5 GHz × cores."""
    if "avx512f" in flags:
        per_cycle = 64
    elif "avx2" in flags or "asimd" in flags:
        per_cycle = 32
    else:
        per_cycle = 8
    return max(cpu_count, 1) * per_cycle * 2.5e9


def measured_bandwidth(key: str, cache: Path) -> float | None:
    """This machine's RAM bandwidth in bytes/s: ``$ZOO_MEMORY_BANDWIDTH`` (GB/s), else the
    figure cached under ``cache`` for ``key``, else measured now and cached."""
    override = os.environ.get(BANDWIDTH_ENV, "").strip()
    if override:
        try:
            value = float(override)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and value > 0):
            from zoo.errors import UsageError

            raise UsageError(
                f"{BANDWIDTH_ENV}={override[:40]!r} is not a memory bandwidth",
                hint="give GB/s as a positive number, e.g. 20, or unset it to measure",
            )
        return value * GB
    # A figure measured another way is not this one's: the method is part of the key.
    key = f"{MEASURE_METHOD} {key}"
    path = cache / _CACHE_FILE
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(saved, dict) and saved.get("key") == key:
            value = float(saved["bytes_per_second"])
            if value > 0:
                return value
    except (OSError, ValueError, KeyError, TypeError):
        pass
    value = measure_bandwidth()
    try:
        cache.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}")
        temporary.write_text(
            json.dumps({"key": key, "bytes_per_second": value, "measured": time.time()}),
            encoding="utf-8",
        )
        os.replace(temporary, path)
    except OSError:
        pass  # a read-only cache: measured again next time, never an error
    return value


def measure_bandwidth(size: int = _PROBE_BYTES, repeats: int = _PROBE_REPEATS) -> float:
    """Bytes per second this machine's cores read from RAM together, as an engine's threads
    do while decoding: one thread per core (up to ``_PROBE_THREADS``) scans its own share of
    ``size`` bytes with libc's ``memchr`` (a vectorised read that never finds its byte), the
    best of ``repeats`` rounds, each thread timed by its own CPU time so that other load on
    the machine does not lower the figure. ctypes calls release the GIL, so the threads run
    side by side; a single core reaches only a fraction of what all of them do on a server."""
    import ctypes  # here, not at the top: only a measurement needs them (CLI start-up)
    import threading

    threads = max(1, min(os.cpu_count() or 1, _PROBE_THREADS))
    share = max(size // threads, _PROBE_MIN_SHARE)
    try:
        scan = _memchr()
    except (OSError, AttributeError):
        return _copy_bandwidth(size, repeats)
    buffers = [ctypes.create_string_buffer(share) for _ in range(threads)]
    for buffer in buffers:
        ctypes.memset(buffer, 1, share)  # fault every page in before timing
    best = 0.0
    for _ in range(repeats):
        start = threading.Barrier(threads + 1)
        seconds = [0.0] * threads

        def read(
            index: int, start: threading.Barrier = start, seconds: list[float] = seconds
        ) -> None:
            start.wait()
            began = time.thread_time()
            scan(buffers[index], 0, share)
            seconds[index] = time.thread_time() - began

        workers = [threading.Thread(target=read, args=(i,), daemon=True) for i in range(threads)]
        for worker in workers:
            worker.start()
        start.wait()
        for worker in workers:
            worker.join()
        # Each thread's own CPU time, not the wall clock: time another process takes the
        # core for is not counted (a stall on memory is CPU time, a preemption is not).
        best = max(best, sum(share / max(s, 1e-9) for s in seconds))
    return best


def _memchr() -> Any:
    import ctypes

    # The running process's own symbols include libc's (Linux, macOS): no library search.
    scan = ctypes.CDLL(None).memchr
    scan.restype = ctypes.c_void_p
    scan.argtypes = (ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t)
    return scan


def _copy_bandwidth(size: int, repeats: int) -> float:
    """One core's copy rate (read + write), where libc cannot be called."""
    source = bytearray(os.urandom(1024)) * (size // 1024)
    target = bytearray(len(source))
    view = memoryview(target)
    best = float("inf")
    for _ in range(repeats + 1):
        started = time.perf_counter()
        view[:] = source
        best = min(best, time.perf_counter() - started)
    return 2 * len(source) / max(best, 1e-9)
