"""Engine environments built for real with venv + pip (a tiny package from the pip index)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from zoo.plan import Environment
from zoo.runtime import envs


def reqs_env(*requirements: str, uninstall: tuple[str, ...] = ()) -> Environment:
    """The environment of an engine named "reqs" with these requirements."""
    return Environment("reqs", tuple(requirements), uninstall)


def test_current_interpreter_is_used_when_it_has_everything() -> None:
    status = envs.env_status(reqs_env("pyyaml>=6", "httpx"))
    assert (status.ready, status.kind, status.python) == (True, "current", sys.executable)


def test_missing_when_nothing_is_built() -> None:
    status = envs.env_status(reqs_env("six==1.17.0", "no-such-dist-zoo"))
    assert (status.ready, status.kind) == (False, "missing")
    assert "zoo engines install reqs" in status.reason


def test_requirements_hash_ignores_order_and_spacing() -> None:
    assert envs.requirements_hash(["a>=1", "b"]) == envs.requirements_hash(["b", "a >=1"])
    assert envs.requirements_hash(["a"]) != envs.requirements_hash(["a"], ["c"])


def test_local_version_label_satisfies_a_pin() -> None:
    from importlib.metadata import version

    pinned = version("pyyaml")
    assert envs.satisfied_here([f"pyyaml=={pinned}"])
    assert not envs.satisfied_here(["pyyaml==0.0.1"])


@pytest.mark.slow
def test_built_reused_and_rebuilt_when_requirements_change(tmp_path: Path) -> None:
    lines: list[str] = []
    engine = reqs_env("six")
    built = envs.ensure_env(engine, lines.append)
    assert (built.ready, built.kind) == (True, "venv")
    assert built.python and Path(built.python).is_relative_to(envs.envs_dir())
    assert any("Installing six" in line for line in lines)
    check = subprocess.run([built.python, "-c", "import six, yaml"], capture_output=True)
    assert b"No module named 'yaml'" in check.stderr  # isolated from zoo's own packages
    assert subprocess.run([built.python, "-c", "import six"]).returncode == 0

    marker = Path(built.python).parents[1] / envs.MARKER
    stamp = marker.stat().st_mtime_ns
    lines.clear()
    again = envs.ensure_env(engine, lines.append)
    assert again.python == built.python and lines == []
    assert marker.stat().st_mtime_ns == stamp

    changed = reqs_env("six", "iniconfig", uninstall=("six",))
    assert envs.env_status(changed).kind == "stale"
    rebuilt = envs.ensure_env(changed, lines.append)
    assert rebuilt.kind == "venv" and marker.stat().st_mtime_ns != stamp
    assert rebuilt.python is not None
    assert subprocess.run([rebuilt.python, "-c", "import iniconfig"]).returncode == 0
    assert subprocess.run([rebuilt.python, "-c", "import six"], capture_output=True).returncode != 0


@pytest.mark.slow
def test_a_failed_install_says_why_and_leaves_no_ready_env() -> None:
    engine = reqs_env("zoo-no-such-package-anywhere==9.9")
    with pytest.raises(envs.EnvError, match="could not install reqs's requirements"):
        envs.ensure_env(engine)
    assert not envs.env_status(engine).ready


def test_the_runner_folder_links_the_plugin_and_an_unwritable_one_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from runtime_helpers import FakeEngine

    monkeypatch.setenv("ZOO_ENVS_DIR", str(tmp_path / "envs"))
    engine = FakeEngine()
    folder = envs.runner_path(engine)
    assert folder == envs.runner_dir(engine)
    assert (folder / "zoo").resolve() == Path(envs.__file__).parent.parent.resolve()
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    monkeypatch.setenv("ZOO_ENVS_DIR", str(blocked))
    with pytest.raises(envs.EnvError, match=r"could not prepare .* for the fake engine"):
        envs.runner_path(engine)
