"""Helpers for the plugin tests: fake installed distributions and reading warning lines."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

# The ``install_plugin`` fixture: (entry-point name, module source) -> the module's name.
InstallPlugin = Callable[[str, str], str]


def fake_distribution(root: Path, name: str, entry: str, module_source: str) -> None:
    """A minimal installed distribution on ``root``: metadata, an entry point, its module."""
    info = root / f"{name.replace('-', '_')}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    module = entry.split("=")[1].strip()
    (info / "entry_points.txt").write_text(f"[zoo]\n{entry}\n")
    (root / f"{module}.py").write_text(module_source)


def warnings(stderr: str) -> list[str]:
    """The warning lines zoo printed."""
    return [line for line in stderr.splitlines() if line.startswith("zoo: warning:")]
