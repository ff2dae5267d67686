"""Plugin failures seen while commands ran, kept so that a later ``zoo plugins`` shows them.

Registration problems (a plugin that fails to load, a hook that returns the wrong thing) are
found again by every process that loads the plugins, ``zoo plugins`` included. A method that
raises in the middle of ``zoo launch`` is only seen by that process, so it is written here:
one entry per plugin and method (the latest wins), dropped when the plugin's version changes
or after a week. Writing is best effort: a read-only state folder never breaks a command.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

FILE_NAME = "plugin-problems.json"
KEEP_SECONDS = 7 * 24 * 3600


@dataclass(frozen=True)
class Remembered:
    """A failure a command saw: where (``"engine 'echo'.server_command"``), what, when."""

    where: str
    message: str
    when: float  # seconds since the epoch


def problems_file() -> Path:
    from zoo.paths import state_dir

    return state_dir() / FILE_NAME


def remember(plugin: str, version: str | None, where: str, message: str) -> None:
    """Keep ``message`` as the latest failure of ``plugin`` at ``where``."""
    now = time.time()
    data = {
        name: kept
        for name, entries in _read().items()
        if (kept := {w: e for w, e in entries.items() if _fresh(e, now)})
    }
    data.setdefault(plugin, {})[where] = {"message": message, "version": version, "when": now}
    path = problems_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        scratch = path.with_name(f".{path.name}.{os.getpid()}")
        scratch.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
        os.chmod(scratch, 0o600)  # messages can carry paths: private like the rest of state
        scratch.replace(path)
    except OSError:
        pass


def remembered(plugin: str, version: str | None) -> list[Remembered]:
    """The kept failures of ``plugin`` at its installed ``version``, oldest first."""
    now = time.time()
    found = []
    for where, entry in _read().get(plugin, {}).items():
        if not isinstance(entry, dict) or entry.get("version") != version:
            continue
        message = entry.get("message")
        if _fresh(entry, now) and isinstance(message, str):
            found.append(Remembered(where, message, float(entry["when"])))
    return sorted(found, key=lambda r: r.when)


def _fresh(entry: object, now: float) -> bool:
    when = entry.get("when") if isinstance(entry, dict) else None
    return isinstance(when, int | float) and now - when < KEEP_SECONDS


def _read() -> dict[str, dict[str, object]]:
    try:
        data = json.loads(problems_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, dict)}
