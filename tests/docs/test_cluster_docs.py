"""docs/cluster.rst is true: every ``zoo`` command on it names commands and options the real
CLI has (from its ``--help``), every ``ray start`` line uses options Ray's ``ray start`` has,
with labels zoo reads and settings and variables Ray knows, the names and numbers it gives are
the code's, and its set-up commands, run as written but for the addresses, make a cluster that
``zoo cluster status`` reads. docs/scaling.rst is in the table of contents next to it."""

from __future__ import annotations

import functools
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "cluster.rst"
SCALING = ROOT / "docs" / "scaling.rst"


def _text(page: Path = PAGE) -> str:
    return page.read_text(encoding="utf-8")


def _flat() -> str:
    return " ".join(_text().split())


def _blocks(language: str) -> list[str]:
    """The page's ``.. code-block:: <language>`` bodies, dedented, in order."""
    lines = _text().splitlines()
    found: list[str] = []
    for index, line in enumerate(lines):
        if line.strip() != f".. code-block:: {language}":
            continue
        body: list[str] = []
        for following in lines[index + 1 :]:
            if following.strip() and not following.startswith(" "):
                break
            body.append(following)
        found.append(textwrap.dedent("\n".join(body)).strip() + "\n")
    return found


def _shell_lines() -> list[str]:
    return [line for block in _blocks("shell") for line in block.splitlines() if line.strip()]


def _words(line: str) -> list[str]:
    """A shell line's words, without a trailing comment."""
    return shlex.split(line, comments=True)


def _zoo_commands() -> list[list[str]]:
    """Every ``zoo ...`` of the page: the shell blocks' lines and the prose's literals."""
    commands = [_words(line) for line in _shell_lines() if line.startswith("zoo ")]
    prose = re.findall(r"``(zoo [^`]*)``", _flat())
    return commands + [p.split() for p in prose]


@functools.cache
def _help(*path: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "zoo", *path, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "200"},
        check=True,
    )
    return done.stdout


def _subcommands(help_text: str) -> set[str]:
    if "\nCommands:\n" not in help_text:
        return set()
    section = help_text.split("\nCommands:\n", 1)[1]
    return {m.group(1) for m in re.finditer(r"^  ([a-z][\w-]*)\s", section, re.MULTILINE)}


def _command_path(words: list[str]) -> tuple[str, ...]:
    """The (sub)command ``words`` runs: ``zoo cluster status ...`` -> ("cluster", "status")."""
    path: list[str] = []
    for word in words[1:]:
        if word.startswith("-") or word not in _subcommands(_help(*path)):
            break
        path.append(word)
    return tuple(path)


def _has_option(help_text: str, option: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", help_text) is not None


def _options(words: list[str]) -> list[str]:
    return [w.split("=", 1)[0] for w in words if re.fullmatch(r"--?[a-z][\w-]*(=.*)?", w)]


def test_every_zoo_command_on_the_page_exists_with_its_options() -> None:
    commands = _zoo_commands()
    seen = {_command_path(words) for words in commands}
    # The page is about these commands: each must be on it, with --cluster where it has one.
    assert {("cluster", "status"), ("launch",), ("ps",), ("logs",), ("stop",), ("serve",)} <= seen
    for words in commands:
        assert words[0] == "zoo", words
        path = _command_path(words)
        shown = _help(*path)
        for option in _options(words):
            assert _has_option(shown, option), (words, f"zoo {' '.join(path)}", option)
    for path in seen - {()}:
        if path != ("cluster",):
            assert _has_option(_help(*path), "--cluster"), path


def test_every_option_the_prose_names_is_a_real_one() -> None:
    """``--ready-timeout`` and the like, named in sentences: an option of a zoo command the
    page uses, or of ``ray start``."""
    paths = {_command_path(words) for words in _zoo_commands()}
    helps = " ".join(_help(*path) for path in paths)
    named = set(re.findall(r"``(--[a-z][\w-]*)", _flat()))
    assert {"--ready-timeout", "--failover-wait", "--node", "--memory-budget"} <= named
    for option in named:
        assert _has_option(helps, option) or option in _ray_start_options(), option


def _ray_start_options() -> set[str]:
    from ray.scripts.scripts import start

    # Hidden ones too (--labels and --system-config are hidden in Ray 2.60's --help).
    return {opt for param in start.params for opt in param.opts}


def _ray_lines() -> list[list[str]]:
    """The words of each ``ray start`` line, without the variables set before it."""
    found = []
    for line in _shell_lines():
        words = _words(line)
        while words and re.fullmatch(r"[A-Za-z_]\w*=.*", words[0]):
            words = words[1:]
        if words[:2] == ["ray", "start"]:
            found.append(words)
    return found


def _ray_binary() -> bytes:
    import ray

    return (Path(ray.__file__).parent / "_raylet.so").read_bytes()


def test_every_ray_start_line_uses_what_ray_and_zoo_read() -> None:
    from zoo.cluster import node_side
    from zoo.host import BUILTIN_PROFILES

    lines = _ray_lines()
    assert any("--head" in words for words in lines) and any(
        any(w.startswith("--address=") for w in words) for words in lines
    )
    options = _ray_start_options()
    labels: dict[str, str] = {}
    settings: dict[str, object] = {}
    for words in lines:
        for option in _options(words[2:]):
            assert option in options, (words, option)
        for word in words:
            if word.startswith("--labels="):
                for pair in word.split("=", 1)[1].split(","):
                    key, _, value = pair.partition("=")
                    labels[key] = value
            if word.startswith("--system-config="):
                settings.update(json.loads(word.split("=", 1)[1]))
    assert set(labels) == {node_side.NAME_LABEL, node_side.PROFILE_LABEL}
    assert labels[node_side.PROFILE_LABEL] in BUILTIN_PROFILES
    assert f"``{node_side.NAME_LABEL}``" in _text() and f"``{node_side.PROFILE_LABEL}``" in _text()
    # Ray's settings and variables are read in its core library: the names must be there (a
    # RAY_<setting> variable sets <setting>, as RAY_gcs_storage does).
    raylet = _ray_binary()
    assigned = {
        word.split("=", 1)[0]
        for line in _shell_lines()
        for word in _words(line)
        if re.fullmatch(r"RAY_\w+=.*", word)
    }
    variables = assigned | set(re.findall(r"\$(RAY_\w+)", _flat()))
    assert {"RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_gcs_storage"} <= variables
    for name in variables:
        assert name.encode() in raylet or name.removeprefix("RAY_").encode() in raylet, name
    for name in settings:
        assert name.encode() in raylet, name
    assert settings == {
        "health_check_period_ms": 500,
        "health_check_failure_threshold": 3,
        "health_check_timeout_ms": 500,
    }


def test_the_names_and_numbers_are_the_codes() -> None:
    import tomllib

    from zoo import config
    from zoo.cluster import address, connect, instances
    from zoo.serve import cluster_backend

    text = _flat()
    assert f"``${address.CLUSTER_ENV}``" in text
    assert "cluster" in config.SETTINGS and 'cluster = "10.0.0.5:6379"' in text
    assert tomllib.loads(_blocks("toml")[0])["cluster"] == "10.0.0.5:6379"
    assert f"Ray's ``{connect.NAMESPACE}`` namespace" in text
    assert f"within {instances.PLACEMENT_TIMEOUT_S:.0f} seconds" in text
    assert f"``--failover-wait`` seconds ({cluster_backend.FAILOVER_WAIT_S:.0f} by default)" in text
    assert cluster_backend.place_name("gpu1", "GPU memory") == "gpu1: GPU memory"
    assert "``gpu1: GPU memory``" in text
    # The states the page lists are the ones `zoo ps --help` names.
    states = re.search(r"Cluster states: ([a-z, ]+)", " ".join(_help("ps").split()))
    assert states is not None
    listed = re.search(r"Cluster states are ((?:``\w+``,? (?:and )?)+)", text)
    assert listed is not None
    assert set(re.findall(r"``(\w+)``", listed.group(1))) == {
        s.strip() for s in states.group(1).split(",")
    }
    # What is installed is what the distributions are called, with the extra that exists.
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    plugin = tomllib.loads((ROOT / "plugins" / "zoo-llamacpp" / "pyproject.toml").read_text())
    assert "ray" in pyproject["project"]["optional-dependencies"]
    assert f"'{pyproject['project']['name']}[ray]' {plugin['project']['name']}" in text
    assert "``bench/cluster.py``" in text and (ROOT / "bench" / "cluster.py").is_file()


def test_both_pages_are_in_the_table_of_contents() -> None:
    index = _text(ROOT / "docs" / "index.rst")
    toctree = re.findall(r"^   ([\w/-]+)$", index, re.MULTILINE)
    assert "cluster" in toctree and "scaling" in toctree
    assert ":ref:`scaling`" in _text() and ":ref:`cluster`" in _text(SCALING)


def _setup_script(port: int, temp: Path) -> str:
    """The page's set-up lines as a script for one machine: both nodes on 127.0.0.1 (the
    namespace has nothing else), each with its own temp dir and a small object store."""
    lines = []
    for line in _shell_lines():
        if line.startswith("export RAY_AUTH_MODE=") or (
            line.startswith("ray start") and "--system-config" not in line
        ):
            lines.append(line)
    assert len(lines) == 3, lines
    script = []
    for index, original in enumerate(lines):
        line = re.sub(r"10\.0\.0\.\d+", "127.0.0.1", original).replace("6379", str(port))
        if line.startswith("ray start"):
            line += f" --temp-dir={temp / str(index)} --num-cpus=1 --object-store-memory=80000000"
            if "--head" in line:
                line += " --include-dashboard=false"
            else:
                line += " --num-gpus=1"  # the fake GPU that makes the node's h100-80g profile real
        script.append(line)
    return "\n".join(script)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_set_up_commands_make_a_cluster_zoo_reads(tmp_path: Path) -> None:
    from zoo.cluster import node_side

    if shutil.which("unshare") is None or shutil.which("ip") is None:
        pytest.skip("needs unshare (util-linux) and ip (iproute2)")
    probe = subprocess.run(["unshare", "-n", "-p", "-f", "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"cannot make a network namespace here: {probe.stderr.decode().strip()}")
    port = 6379  # the page's port: free in a network namespace of its own
    # Short: Ray's unix sockets live under it (108 bytes at most).
    temp = Path(tempfile.gettempdir()) / f"zd{os.getpid()}"
    script = _setup_script(port, temp)
    script += (
        f"\n{shlex.quote(sys.executable)} -m zoo cluster status --cluster 127.0.0.1:{port} --json"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_") and k != "ZOO_CLUSTER"}
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        HOME=str(tmp_path),  # ~/.ray stays this test's
        ZOO_HOME=str(tmp_path / "zoo"),
        RAY_USAGE_STATS_ENABLED="0",
    )
    try:
        # bash is the pid namespace's init: when it ends, every Ray process in it ends too.
        done = subprocess.run(
            [
                "unshare",
                "-n",
                "-p",
                "-f",
                "--mount-proc",
                "--kill-child=SIGKILL",
                "bash",
                "-c",
                f"set -e\nip link set lo up\n{script}\n",
            ],
            capture_output=True,
            text=True,
            timeout=240,
            env=env,
            cwd=tmp_path,
            check=False,
        )
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    assert done.returncode == 0, f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    document = json.loads(done.stdout[done.stdout.index("{\n") :])
    nodes = {node["name"]: node for node in document["nodes"]}
    assert set(nodes) == {"head", "gpu1"}, nodes
    gpu1 = nodes["gpu1"]
    assert gpu1["alive"] and gpu1["problem"] is None, gpu1
    assert gpu1["labels"][node_side.PROFILE_LABEL] == "h100-80g"
    assert gpu1["host"]["gpus"] and "H100" in gpu1["host"]["gpus"][0]["name"], gpu1["host"]
