"""A plugin that calls sys.exit() never ends a zoo command: it is reported like any failure."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from hostile_helpers import assert_friendly, zoo

IMPORT_EXIT = "raise SystemExit(3)\n"
HOOK_EXIT = """\
from zoo import hookimpl

@hookimpl
def zoo_register_engines():
    raise SystemExit(4)
"""
CHECK_EXIT = """\
import sys
from zoo import hookimpl
from zoo.engine import Capabilities, Engine

class Quitter(Engine):
    name = "quitter"
    display_name = "Quitter"
    capabilities = Capabilities(formats={"ggufv2": ("Q4_1",)}, accelerators=("cpu",))

    def check(self, spec, quantization, host):
        sys.exit(5)

    def server_command(self, ctx):
        sys.exit(6)

@hookimpl
def zoo_register_engines():
    return [Quitter()]
"""


def _installed(site: Path, name: str, source: str) -> Path:
    """``name`` as an installed distribution with a ``zoo`` entry point, in folder ``site``."""
    (site / name).mkdir(parents=True)
    (site / name / "__init__.py").write_text(source)
    info = site / f"{name}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[zoo]\n{name} = {name}\n")
    return site


@pytest.mark.parametrize(
    ("source", "command", "said"),
    [
        (IMPORT_EXIT, ("list",), "failed to load: SystemExit: 3"),
        (HOOK_EXIT, ("engines",), "zoo_register_engines() raised SystemExit: 4"),
        (CHECK_EXIT, ("engines",), "check() raised SystemExit: 5"),
        (CHECK_EXIT, ("launch", "smollm2-135m-instruct", "--dry-run"), "SystemExit: 5"),
    ],
    ids=["at-import", "in-a-hook", "in-engine-check", "in-check-during-launch"],
)
def test_a_plugin_calling_sys_exit(
    tmp_path: Path, source: str, command: tuple[str, ...], said: str
) -> None:
    # Was: the command ended at once with the plugin's status (3, 4, 5) and printed nothing.
    site = _installed(tmp_path / "site", "quitplug", textwrap.dedent(source))
    result = zoo(*command, env={"PYTHONPATH": str(site)})
    assert_friendly(result)
    assert result.returncode == 0, (result.returncode, result.stderr)
    assert result.stdout.strip()
    [warning] = [line for line in result.stderr.splitlines() if "quitplug" in line]
    assert warning.startswith("zoo: warning: plugin 'quitplug'") and said in warning
