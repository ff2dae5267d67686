"""Shell completion through the real ``zoo`` console script, as the shells call it, and in a
real bash with the script ``zoo completion bash`` prints."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from zoo.cli.completion import join_colons, model_completions

ZOO = Path(sys.executable).with_name("zoo")
SMOL = "smollm2-135m-instruct"


def _zoo(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    assert ZOO.exists(), "the zoo console script is installed in the test environment"
    return subprocess.run(
        [str(ZOO), *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _bash_complete(words: str, cword: int) -> list[str]:
    done = _zoo(
        "completion", COMP_WORDS=words, COMP_CWORD=str(cword), _ZOO_COMPLETE="complete_bash"
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    return done.stdout.split()


def test_bash_protocol_completes_model_names() -> None:
    assert SMOL in _bash_complete("zoo launch smollm2-1", 2)
    found = _bash_complete("zoo download qwen3", 2)
    assert "qwen3" in found and "qwen3-coder" in found
    assert all(name.startswith("qwen3") for name in found)
    # click's spelling of the instruction works too
    done = _zoo(
        "completion", COMP_WORDS="zoo pull smollm2-1", COMP_CWORD="2", _ZOO_COMPLETE="bash_complete"
    )
    assert SMOL in done.stdout.split()


def test_bash_protocol_completes_tags_after_a_colon() -> None:
    # bash hands `qwen3:30` over as three words; the answer is what replaces the last one.
    found = _bash_complete("zoo launch qwen3 : 30", 4)
    assert found == ["30b-a3b"]
    after_colon = _bash_complete("zoo launch qwen3 :", 3)
    assert "8b" in after_colon and "q4_k_m" in after_colon
    combined = _bash_complete("zoo launch seed-oss : 36b-q4_k", 4)
    assert "36b-q4_k_m" in combined and "36b-q4_k_s" in combined


def test_bash_protocol_completes_commands_and_options() -> None:
    assert "config" in _bash_complete("zoo con", 1)
    assert "completion" in _bash_complete("zoo com", 1)
    assert "--size" in _bash_complete("zoo launch --si", 2)


def test_zsh_and_fish_protocols() -> None:
    zsh = _zoo(
        "completion", _ZOO_COMPLETE="complete_zsh", _TYPER_COMPLETE_ARGS="zoo launch qwen3:8b-q4_k"
    )
    assert zsh.returncode == 0, zsh.stderr
    assert '"qwen3\\\\:8b-q4_k_m"' in zsh.stdout
    fish = _zoo(
        "completion",
        _ZOO_COMPLETE="complete_fish",
        _TYPER_COMPLETE_FISH_ACTION="get-args",
        _TYPER_COMPLETE_ARGS="zoo download smollm2-1",
    )
    assert fish.returncode == 0, fish.stderr
    assert SMOL in fish.stdout.split()
    # fish asks first whether there are completions at all (exit 0) or files should be offered
    for words, status in (("zoo launch smollm2-1", 0), ("zoo launch no-such-model-x", 1)):
        asked = _zoo(
            "completion",
            _ZOO_COMPLETE="complete_fish",
            _TYPER_COMPLETE_FISH_ACTION="is-args",
            _TYPER_COMPLETE_ARGS=words,
        )
        assert asked.returncode == status, (words, asked.stderr)


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_scripts_call_back_through_zoo_completion(shell: str) -> None:
    done = _zoo("completion", shell)
    assert done.returncode == 0, done.stderr
    assert "_ZOO_COMPLETE=complete_" in done.stdout
    assert "zoo completion" in done.stdout or "$1 completion" in done.stdout
    source = _zoo("completion", _ZOO_COMPLETE=f"source_{shell}")
    assert source.stdout == done.stdout


def test_unknown_shells_are_one_usage_line() -> None:
    for args in (("completion",), ("completion", "tcsh")):
        done = _zoo(*args)
        assert done.returncode == 2
        assert done.stderr.startswith("zoo: error: ") and done.stderr.count("\n") == 1
        assert "zoo completion bash|zsh|fish" in done.stderr
    wrong = _zoo("completion", _ZOO_COMPLETE="complete_tcsh")
    assert wrong.returncode == 2 and "is not understood" in wrong.stderr


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_a_real_bash_completes_model_names_and_tags() -> None:
    script = f"""
set -e
eval "$({ZOO} completion bash)"
complete -p zoo
COMP_WORDS=(zoo launch smollm2-1); COMP_CWORD=2; COMPREPLY=()
_zoo_completion zoo
printf 'names:%s\\n' "${{COMPREPLY[@]}}"
COMP_WORDS=(zoo launch qwen3 : 8b-q4_k); COMP_CWORD=4; COMPREPLY=()
_zoo_completion zoo
printf 'tags:%s\\n' "${{COMPREPLY[@]}}"
"""
    bin_dir = str(ZOO.parent)
    done = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", script],
        env={**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "complete -o default -F _zoo_completion zoo"
    assert f"names:{SMOL}" in lines
    assert "tags:8b-q4_k_m" in lines
    assert all(not line.startswith("tags:qwen3") for line in lines)


def test_join_colons() -> None:
    assert join_colons(["launch", "qwen3", ":", "8"]) == (["launch", "qwen3:8"], "qwen3:")
    assert join_colons(["launch", "qwen3", ":"]) == (["launch", "qwen3:"], "qwen3:")
    assert join_colons(["launch", "qwen3"]) == (["launch", "qwen3"], "")
    assert join_colons([""]) == ([""], "")


def test_model_completions() -> None:
    assert SMOL in model_completions("smollm2")
    assert model_completions("no-such-model-x") == []
    assert model_completions("no-such-model-x:") == []
    tags = model_completions("qwen3:")
    assert "qwen3:30b-a3b" in tags and "qwen3:q4_k_m" in tags
    assert all(t.startswith("qwen3:") for t in tags)
    assert model_completions("QWEN3:235") == ["qwen3:235b-a22b"]


def test_the_standard_protocol_without_the_completion_word() -> None:
    """`eval "$(_ZOO_COMPLETE=source_bash zoo)"`, as click documents it, works too."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    zoo = Path(sys.executable).with_name("zoo")
    env = {**os.environ, "_ZOO_COMPLETE": "source_bash"}
    script = subprocess.run([str(zoo)], env=env, capture_output=True, text=True, timeout=60)
    assert script.returncode == 0 and "_zoo_completion()" in script.stdout
    env = {
        **os.environ,
        "_ZOO_COMPLETE": "complete_bash",
        "COMP_WORDS": "zoo launch smollm2-135",
        "COMP_CWORD": "2",
    }
    names = subprocess.run([str(zoo)], env=env, capture_output=True, text=True, timeout=60)
    assert "smollm2-135m-instruct" in names.stdout.split()


def test_broken_shell_variables_offer_nothing_quietly() -> None:
    import os
    import subprocess
    import sys
    from pathlib import Path

    zoo = Path(sys.executable).with_name("zoo")
    env = {
        **os.environ,
        "_ZOO_COMPLETE": "complete_bash",
        "COMP_WORDS": "zoo show qwe",
        "COMP_CWORD": "abc",
    }
    done = subprocess.run(
        [str(zoo), "completion"], env=env, capture_output=True, text=True, timeout=60
    )
    assert (done.returncode, done.stdout.strip(), done.stderr) == (0, "", "")
