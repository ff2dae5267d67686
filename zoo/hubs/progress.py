"""Download progress: rich bars on a terminal, quiet lines otherwise (logs, CI, pipes).

Hubs report ``(file, bytes done, bytes total)`` through a ProgressCallback, possibly from
several threads (modelscope downloads files in parallel), so updates take a lock.
"""

from __future__ import annotations

import sys
import threading
from typing import Any, TextIO


def human_bytes(count: int | None) -> str:
    if count is None:
        return "? B"
    value = float(count)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{count} B"


class LineProgress:
    """One line when a file starts and one when it is complete: nothing to redraw."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self._started: set[str] = set()
        self._finished: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, path: str, done: int, total: int | None) -> None:
        with self._lock:
            if path not in self._started:
                self._started.add(path)
                if total is None or done < total:
                    print(
                        f"downloading {path} ({human_bytes(total)})", file=self.stream, flush=True
                    )
            if total is not None and done >= total and path not in self._finished:
                self._finished.add(path)
                print(f"ready {path} ({human_bytes(total)})", file=self.stream, flush=True)

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


class BarProgress:
    """rich progress bars: one per file (bytes, speed, ETA) and one for the files overall."""

    def __init__(self, total_files: int | None = None) -> None:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            transient=False,
        )
        self._tasks: dict[str, Any] = {}
        self._finished: set[str] = set()
        self._lock = threading.Lock()
        self._overall = None
        if total_files:
            self._overall = self._progress.add_task("files", total=total_files)

    def __call__(self, path: str, done: int, total: int | None) -> None:
        with self._lock:
            task = self._tasks.get(path)
            if task is None:
                task = self._progress.add_task(path, total=total)
                self._tasks[path] = task
            self._progress.update(task, completed=done, total=total)
            if total is not None and done >= total and path not in self._finished:
                self._finished.add(path)
                if self._overall is not None:
                    self._progress.advance(self._overall)

    def __enter__(self) -> BarProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()


def make_progress(
    enabled: bool, total_files: int | None = None
) -> LineProgress | BarProgress | None:
    """Bars on a terminal, lines when stderr is not one, None when progress is off."""
    if not enabled:
        return None
    if sys.stderr.isatty():
        return BarProgress(total_files)
    return LineProgress()
