"""Downloads started from the web UI: a model's files fetched in the background, with progress.

``POST /ui/api/download {"model": NAME}`` (a name, alias or catalog tag, as ``/v1`` reads it)
starts a job that fetches exactly what the gateway would fetch before launching the model: its
launch plan (``backend.plan``), through ``zoo.launch.fetch`` and the backend's hubs. It answers
202 with the job, or the job already running for that model (one download per model at a
time), or 200 with a finished job when the files are already in a hub cache.
``GET /ui/api/downloads`` lists the jobs of the models the caller's key may use, and
``GET /ui/api/downloads/{job}`` is one of them::

    {"job": "3f9c...", "model": NAME, "state": "running" | "done" | "failed",
     "done_bytes": 1234, "total_bytes": 5678 | null, "files_done": 0, "files_total": 1,
     "error": "one line" | null}

A job is a daemon thread: stopping the gateway abandons it, and the hub layer keeps the cache
sound (partial files are resumed or dropped, never taken for complete ones). Errors become
the job's one-line ``error``, worded as the CLI words them; a traceback goes to the log only.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from zoo.serve.errors import GatewayError

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import BaseRoute

    from zoo.hubs.base import FetchResult, RemoteFile
    from zoo.serve.types import GatewayBackend, ModelEntry
    from zoo.serve.ui.site import Ui

logger = logging.getLogger(__name__)

KEEP_FINISHED = 50  # finished jobs remembered (the page shows what just ended)
_LINE_MAX = 300


class UnknownDownload(GatewayError):
    status = 404
    code = "download_not_found"
    kind = "invalid_request_error"


@dataclass
class Job:
    """One model's download. ``files`` maps each file to (bytes done, bytes total or None);
    hubs report from their own threads (modelscope several at once), hence the lock."""

    id: str
    entry: ModelEntry
    state: str = "running"
    error: str | None = None
    files: dict[str, tuple[int, int | None]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def expect(self, files: Iterable[RemoteFile]) -> None:
        """The files the download will fetch, before any byte comes (totals from the start)."""
        with self._lock:
            for remote in files:
                self.files.setdefault(remote.path, (0, remote.size))

    def report(self, path: str, done: int, total: int | None) -> None:
        """A hub's progress report: the ``ProgressCallback`` ``zoo.launch.fetch`` is given."""
        with self._lock:
            if self.state != "running":
                return
            _, known = self.files.get(path, (0, None))
            self.files[path] = (done, total if total is not None else known)

    def finish(self, result: FetchResult) -> None:
        """Done: the files are those on disk now (a cache hit reports no progress at all)."""
        files: dict[str, tuple[int, int | None]] = {}
        for path in result.files:
            size = path.stat().st_size
            files[path.relative_to(result.root).as_posix()] = (size, size)
        with self._lock:
            self.files = files
            self.state = "done"

    def fail(self, line: str) -> None:
        with self._lock:
            self.state = "failed"
            self.error = line

    def view(self) -> dict[str, Any]:
        """The job as the JSON routes answer it."""
        with self._lock:
            sizes = list(self.files.values())
            state, error = self.state, self.error
        totals = [total for _, total in sizes]
        return {
            "job": self.id,
            "model": self.entry.name,
            "state": state,
            "done_bytes": sum(done for done, _ in sizes),
            "total_bytes": None if None in totals or not sizes else sum(t or 0 for t in totals),
            "files_done": sum(1 for done, total in sizes if total is not None and done >= total),
            "files_total": len(sizes),
            "error": error,
        }


class Downloads:
    """The jobs of one app: at most one running per model, the last ``keep`` finished ones."""

    def __init__(self, keep: int = KEEP_FINISHED) -> None:
        self._keep = keep
        self._jobs: dict[str, Job] = {}  # by id, oldest first
        self._lock = threading.Lock()

    def begin(self, entry: ModelEntry) -> tuple[Job, bool]:
        """The running job of ``entry``'s model, or a new one (True: the caller runs it)."""
        import secrets

        with self._lock:
            self._forget_old()
            for job in self._jobs.values():
                if job.entry.name == entry.name and job.state == "running":
                    return job, False
            job = Job(secrets.token_hex(8), entry)
            self._jobs[job.id] = job
            return job, True

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def jobs(self) -> list[Job]:
        with self._lock:
            return list(self._jobs.values())

    def _forget_old(self) -> None:
        finished = [j.id for j in self._jobs.values() if j.state != "running"]
        for job_id in finished[: max(0, len(finished) - self._keep)]:
            del self._jobs[job_id]


def routes(ui: Ui) -> list[BaseRoute]:
    from starlette.routing import Route

    downloads = Downloads()

    async def start(request: Request) -> Response:
        return await _start(ui, downloads, request)

    async def listing(request: Request) -> Response:
        from starlette.responses import JSONResponse

        from zoo.serve.ui.actions import allowed

        jobs = [job.view() for job in downloads.jobs() if allowed(request, job.entry)]
        return JSONResponse(jobs)

    async def one(request: Request) -> Response:
        from starlette.responses import JSONResponse

        from zoo.serve.ui.actions import allowed

        job = downloads.get(request.path_params["job"])
        # Another key's job is as unknown as one that never was: its name says nothing.
        if job is None or not allowed(request, job.entry):
            raise UnknownDownload("no such download: it finished long ago or never was")
        return JSONResponse(job.view())

    return [
        Route("/ui/api/download", start, methods=["POST"]),
        Route("/ui/api/downloads", listing, methods=["GET"]),
        Route("/ui/api/downloads/{job}", one, methods=["GET"]),
    ]


async def _start(ui: Ui, downloads: Downloads, request: Request) -> Response:
    import asyncio

    from starlette.responses import JSONResponse

    from zoo.serve.ui.actions import model_of

    entry, _ = await model_of(ui, request, to_serve=False)
    job, created = downloads.begin(entry)
    if created:
        backend = ui.gateway.backend
        try:
            cached = await asyncio.to_thread(backend.downloaded, entry)
        except BaseException as error:  # the job never ran: it must not stay "running"
            job.fail(error_line(error))
            raise
        if cached:
            # Finding the cached files makes no request: answer with the finished job. (A
            # client gone meanwhile cancels only the wait; the thread still finishes the job.)
            await asyncio.to_thread(_download, backend, job)
        else:
            name = f"zoo-download-{job.id}"
            threading.Thread(target=_download, args=(backend, job), name=name, daemon=True).start()
    answer = job.view()
    return JSONResponse(answer, status_code=202 if answer["state"] == "running" else 200)


def _download(backend: GatewayBackend, job: Job) -> None:
    """Fetch what ``job``'s model needs to launch, as the backend does before starting it."""
    import contextlib

    from zoo import launch
    from zoo.errors import ZooError

    try:
        plan = backend.plan(job.entry)
        # The sizes before the first byte; if the hub cannot say, they come with the bytes
        # and the fetch reports the real failure.
        with contextlib.suppress(ZooError):
            job.expect(launch.describe_download(plan, hubs=backend.hubs).files)
        job.finish(backend.download(job.entry, job.report))
    except Exception as error:
        if not isinstance(error, (ZooError, GatewayError, OSError)):
            logger.exception("downloading %s failed", job.entry.name)
        job.fail(error_line(error))


def error_line(error: BaseException) -> str:
    """What went wrong, on one line, as ``zoo`` prints it (message and hint; an OSError's
    reason and file; anything else as an internal error): never a traceback."""
    from zoo.errors import ZooError

    if isinstance(error, ZooError):
        text = str(error)
    elif isinstance(error, GatewayError):
        text = error.message
    elif isinstance(error, OSError) and error.strerror:
        where = f": {error.filename}" if error.filename is not None else ""
        text = f"{error.strerror}{where}"
    else:
        text = f"internal error: {type(error).__name__}: {error}"
    line = " | ".join(part.strip() for part in text.splitlines() if part.strip())
    return line if len(line) <= _LINE_MAX else line[: _LINE_MAX - 3] + "..."
