"""Launching a model that is already running prints its endpoint instead of starting a second
one (detached and foreground alike), unless `--new`; dry runs still plan, with a note.

A real SmolLM2 on llama.cpp (the engine environment tests/e2e builds and caches), its GGUF
from a local hub server.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from launch_helpers import SMOLLM2_NAME, SMOLLM2_REPO, SMOLLM2_REVISION, env_cache, zoo

from zoo.runtime.process import free_port
from zoo.testing.hubserver import HubServer

pytestmark = pytest.mark.slow
MODEL = "smollm2-135m-instruct"
LAUNCH = ("launch", MODEL, "--hub", "huggingface", "--engine", "llamacpp")


def _instances() -> list[dict[str, object]]:
    done = zoo("ps", "--json")
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout)["instances"])


def _ok(*args: str) -> tuple[str, str]:
    done = zoo(*args, timeout=300)
    assert done.returncode == 0, f"zoo {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout, done.stderr


def test_a_running_model_is_pointed_at_not_started_again_unless_new(
    hub_server: HubServer, smollm2_gguf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZOO_ENVS_DIR", str(env_cache()))
    hub_server.add_repo(
        SMOLLM2_REPO, {SMOLLM2_NAME: smollm2_gguf.read_bytes()}, commit=SMOLLM2_REVISION
    )
    _ok(*LAUNCH, "--detach", "--", "--threads", "1")
    try:
        [first] = _instances()
        endpoint = str(first["endpoint"])
        for mode in ((), ("--detach",)):  # foreground and detached alike
            out, err = _ok(*LAUNCH, *mode)
            assert out.startswith(f"{MODEL} is already running (llamacpp, ggufv2 Q4_1)"), out
            assert f"endpoint: {endpoint}" in out and f"zoo stop {first['id']}" in out
            assert not err.startswith("zoo: ")  # no plan line: nothing is fetched or started
            assert [i["id"] for i in _instances()] == [first["id"]]
        # What was asked matches what runs (any case of the quantization): the note, the plan.
        out, _ = _ok("launch", MODEL, "-q", "q4_1", "--dry-run")
        assert out.startswith("model:") and f"note: {MODEL} is already running" in out
        assert endpoint in out
        out, err = _ok("launch", MODEL, "--json")
        assert json.loads(out)["model"] == MODEL  # stdout stays one JSON document
        assert f"is already running (llamacpp, ggufv2 Q4_1) at {endpoint}" in err
        # Another port was asked for: that is not the running instance.
        out, _ = _ok("launch", MODEL, "--dry-run", "--port", str(free_port("127.0.0.1")))
        assert "already running" not in out
        # --new starts a second one beside it.
        out, _ = _ok(*LAUNCH, "--new", "--detach", "--", "--threads", "1")
        assert "is ready" in out and "already running" not in out
        both = _instances()
        assert len(both) == 2 and all(i["status"] == "running" for i in both)
        assert len({i["port"] for i in both}) == 2
    finally:
        zoo("stop", "--all")
    assert _instances() == []
