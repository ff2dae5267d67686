"""zoo on a real multi-node Ray cluster, run in a namespace of its own.

Ray binds 127.0.0.1 only when loopback is the one interface (elsewhere it takes the host's
address and rewrites 127.0.0.1 to it), so the suite runs in ``unshare -n -p -f --mount-proc``:
a network namespace with only ``lo`` up, and a pid namespace whose pid 1 (bash) reaps every
process a test kills and whose end takes every process left with it (no Ray process leaks).

Outside it, first, what needs the network: the llamacpp engine environment, built by zoo
itself in the shared cache (as tests/e2e does), and the SmolLM2 GGUF. Then the inner pytest
session runs ``tests/cluster/inside/check_*.py`` (named so that this outer run does not
collect them) and must pass; its output is shown when it does not.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
INSIDE = Path(__file__).with_name("inside")
# The inner session's limit; the suite itself takes a few minutes on 2 cores.
INNER_TIMEOUT_S = 840


def env_cache() -> Path:
    """The engine environments tests/e2e builds and reuses (``ZOO_TEST_ENV_CACHE``)."""
    return Path(os.environ.get("ZOO_TEST_ENV_CACHE") or REPO / ".venv" / "zoo-test-envs")


def inner_files() -> list[str]:
    return sorted(str(path.relative_to(REPO)) for path in INSIDE.glob("check_*.py"))


def namespace_command(files: list[str], basetemp: Path) -> list[str]:
    """The inner session in a fresh network + pid namespace. bash stays pid 1 (no ``exec``):
    it reaps the daemonised Ray processes a test kills, as init does on a real machine (with
    pytest as pid 1 a killed raylet would stay a zombie and its workers serve on)."""
    pytest_line = shlex.join(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-rA",
            # Its own temp root: in the pid namespace the outer run's lock pids are invisible,
            # so a shared /tmp/pytest-of-* would look abandoned and be pruned.
            f"--basetemp={basetemp}",
            *files,
        ]
    )
    script = f"ip link set lo up && {pytest_line}; status=$?; exit $status"
    # --kill-child: if unshare is killed (the timeout below), its child, the namespace's pid 1,
    # is killed too, and with it every process in the namespace.
    return [
        "unshare",
        "-n",
        "-p",
        "-f",
        "--mount-proc",
        "--kill-child=SIGKILL",
        "bash",
        "-c",
        script,
    ]


@pytest.fixture(scope="module")
def llamacpp_env(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """zoo builds the llamacpp environment in the shared cache (a no-op once built)."""
    cache = env_cache()
    env = {
        **os.environ,
        "ZOO_ENVS_DIR": str(cache),
        "ZOO_HOME": str(tmp_path_factory.mktemp("install")),
    }
    done = subprocess.run(
        [sys.executable, "-m", "zoo", "engines", "install", "llamacpp"],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
        check=False,
    )
    assert done.returncode == 0, f"zoo engines install llamacpp:\n{done.stdout}\n{done.stderr}"
    assert "llamacpp: ready" in done.stdout, done.stdout
    return cache


@pytest.mark.timeout(INNER_TIMEOUT_S + 300)
def test_the_cluster_suite_passes_in_its_namespace(
    llamacpp_env: Path, smollm2_gguf: Path, tmp_path: Path
) -> None:
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        pytest.fail("the cluster suite needs unshare (util-linux) and ip (iproute2)")
    files = inner_files()
    assert files, f"no check_*.py in {INSIDE}"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("RAY_") and k not in ("ZOO_CLUSTER", "PYTEST_ADDOPTS")
    }
    env.update(
        ZOO_ENVS_DIR=str(llamacpp_env),
        ZOO_TEST_SMOLLM2_GGUF=str(smollm2_gguf),
        # Each Ray node's temp dir goes under here (short: Ray's unix sockets live there).
        ZOO_TEST_RAY_TMP=str(Path(tempfile.gettempdir()) / f"zoo-ray-{os.getpid()}"),
        PYTHONDONTWRITEBYTECODE="1",
    )
    started = time.monotonic()
    try:
        done = subprocess.run(
            namespace_command(files, tmp_path / "inner"),
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=INNER_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as expired:
        out = (
            (expired.stdout or b"").decode(errors="replace")
            if isinstance(expired.stdout, bytes)
            else (expired.stdout or "")
        )
        pytest.fail(f"the inner cluster suite ran past {INNER_TIMEOUT_S} s:\n{out[-20000:]}")
    finally:
        shutil.rmtree(env["ZOO_TEST_RAY_TMP"], ignore_errors=True)
    took = time.monotonic() - started
    output = done.stdout + done.stderr
    print(f"inner cluster suite: rc {done.returncode} in {took:.0f} s\n{output[-6000:]}")
    assert done.returncode == 0, (
        f"the inner cluster suite failed ({done.returncode}):\n{output[-20000:]}"
    )
