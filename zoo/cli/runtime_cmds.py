"""Placeholder: filled in by the work that owns this command group."""

from __future__ import annotations

import typer

# Top-level command names this module adds (lets the CLI skip loading plugins for them).
COMMANDS: tuple[str, ...] = ()


def register(app: typer.Typer) -> None:
    return None
