"""The Running page: every model instance the gateway holds, its memory against its place's
budget, its work, and its engine's log streamed live.

``GET /ui/running`` renders the table; ``GET /ui/api/running`` is the same view as JSON, which
the page's script polls to update the rows in place. ``GET /ui/api/logs/{model}`` streams the
engine's log as server-sent events: its last lines, then each new one, until the instance the
stream began with leaves. The log's path comes only from the backend (by the instance id the
scheduler holds), never from the request. What a page shows as text (sizes, durations) is
worded here once, so the server-rendered rows and the script's updates read alike.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import BaseRoute

    from zoo.host import Host
    from zoo.serve.scheduler import ModelState
    from zoo.serve.ui.site import Ui

PATH = "/ui/running"
API = "/ui/api/running"
LOGS = "/ui/api/logs/"
LOG_LINES = 200  # what a log stream starts with
POLL_S = 0.5  # how often a log stream looks for new lines
STREAM_S = 20.0  # a stream's longest life (see follow); the browser resumes the next at once
RETRY_MS = 500  # how soon an EventSource reconnects
HEARTBEAT_S = 15.0  # a comment after this long without a line (finds a gone client, keeps proxies)
MAX_LINE = 16 * 1024  # a longer "line" (a progress bar without newlines) is sent in pieces
READ_BYTES = 64 * 1024
RESIDENT = ("loading", "ready", "unloading")  # states that hold memory (the scheduler's)
NONE = "—"
# The worded cells of a row (its ``show``), which the script fills by ``data-field``.
ROW_FIELDS = (
    "name",
    "status",
    "engine",
    "quantization",
    "memory",
    "requests",
    "tps",
    "keep_alive",
    "error",
)
_BREAKS = re.compile(rb"\r\n|\r|\n")
# Terminal colour and cursor codes: engines colour their logs; a browser would show them as junk.
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


def routes(ui: Ui) -> list[BaseRoute]:
    from starlette.routing import Route

    async def index(request: Request) -> Response:
        return _index(ui, request)

    async def api(request: Request) -> Response:
        from starlette.responses import JSONResponse

        return JSONResponse(view(ui, request), headers={"Cache-Control": "no-store"})

    async def logs(request: Request) -> Response:
        return _logs(ui, request)

    return [
        Route(PATH, index, methods=["GET"]),
        Route(API, api, methods=["GET"]),
        Route(LOGS + "{model:path}", logs, methods=["GET"]),
    ]


# -- the view ------------------------------------------------------------------------------


def visible(ui: Ui, request: Request) -> list[ModelState]:
    """The scheduler's models this request's key may see (a scoped key learns nothing of the
    others; a model without an entry, left over from a config reload, only a key of all)."""
    from zoo.serve.ui.actions import allowed

    key = request.scope.get("zoo.key")
    everything = key is None or not key.models
    out = []
    for state in ui.gateway.scheduler.snapshot():
        entry = ui.gateway.entries.get(state.name)
        if entry is None:
            if everything:
                out.append(state)
        elif allowed(request, entry):
            out.append(state)
    return out


def view(ui: Ui, request: Request) -> dict[str, Any]:
    """What the page shows: ``rows`` (resident instances), ``places`` (each memory budget and
    what all resident models use of it: a fact of the machine, no names) and ``failed`` (models
    whose last load failed, with why)."""
    scheduler = ui.gateway.scheduler
    now = scheduler.clock()
    budgets = scheduler.budgets
    shown = visible(ui, request)
    rows = [row(ui, s, budgets, now) for s in shown if s.status in RESIDENT]
    failed = [
        {"name": s.name, "show": {"name": s.name, "error": s.last_error or "the load failed"}}
        for s in shown
        if s.status == "failed"
    ]
    every = places(scheduler.snapshot(), budgets, ui.gateway.backend.host)
    return {"rows": rows, "places": every, "failed": failed}


def row(ui: Ui, state: ModelState, budgets: dict[str, int], now: float) -> dict[str, Any]:
    """One instance as the table and its script see it: values, and their wording in ``show``."""
    engine, quantization = _engine_of(ui, state.name)
    budget = budgets.get(state.place) if state.place else None
    fraction = _fraction(state.memory_bytes, budget)
    left = max(0.0, state.expires_at - now) if state.expires_at is not None else None
    tps = ui.gateway.metrics.history.tokens_per_second(state.name)
    return {
        "name": state.name,
        "status": state.status,
        "engine": engine,
        "quantization": quantization,
        "place": state.place,
        "memory_bytes": state.memory_bytes,
        "budget_bytes": budget,
        "fraction": fraction,
        "in_flight": state.in_flight,
        "queued": state.queued,
        "tokens_per_second": tps,
        "keep_alive_left_s": left,
        "pinned": state.pinned,
        "last_error": state.last_error,
        "show": {
            "name": state.name,
            "status": state.status,
            "engine": engine or NONE,
            "quantization": quantization or NONE,
            "memory": memory_text(state.memory_bytes, budget, state.place),
            "requests": f"{state.in_flight} in flight, {state.queued} queued",
            "tps": f"{tps:.1f}",
            "keep_alive": keep_alive_text(state, left),
            "error": state.last_error or NONE,
        },
    }


def places(states: list[ModelState], budgets: dict[str, int], host: Host) -> list[dict[str, Any]]:
    """Each place this machine has (and any other a model uses): used of its budget, and for
    GPU memory the GPUs it pools (the scheduler budgets them together, as llama.cpp spreads
    a model's layers over all of them)."""
    from zoo.memory import gib

    used: dict[str, int] = {}
    for s in states:
        if s.status in RESIDENT and s.place:
            used[s.place] = used.get(s.place, 0) + (s.memory_bytes or 0)
    # The gateway budgets every place zoo knows; a Linux box has no unified memory to show.
    has = {"GPU memory": bool(host.cuda_gpus), "unified memory": host.apple_silicon}
    names = [p for p, b in budgets.items() if (b > 0 and has.get(p, True)) or p in used]
    names += [p for p in used if p not in names]
    out = []
    for place in names:
        budget = budgets.get(place) or None
        amount = used.get(place, 0)
        gpus = host.cuda_gpus if place == "GPU memory" else ()
        detail = ", ".join(f"{g.name} ({gib(g.memory_bytes)})" for g in gpus)
        out.append(
            {
                "place": place,
                "used_bytes": amount,
                "budget_bytes": budget,
                "fraction": _fraction(amount, budget),
                "show": {
                    "place": place,
                    "memory": memory_text(amount, budget, None),
                    "detail": detail,
                },
            }
        )
    return out


def _engine_of(ui: Ui, name: str) -> tuple[str | None, str | None]:
    """The engine and quantization of the plan the model runs with (None: no plan here)."""
    from zoo.errors import ZooError
    from zoo.serve.errors import GatewayError

    entry = ui.gateway.entries.get(name)
    if entry is None:
        return None, None
    try:
        plan = ui.gateway.backend.plan(entry)  # cached: the plan it was started with
    except (ZooError, GatewayError):
        return None, None
    return plan.engine, plan.quantization


def _fraction(amount: int | None, budget: int | None) -> float | None:
    if amount is None or not budget:
        return None
    return round(min(1.0, amount / budget), 4)


def memory_text(amount: int | None, budget: int | None, place: str | None) -> str:
    from zoo.memory import gib

    if amount is None:
        return NONE
    where = f" {place}" if place else ""
    if not budget:
        return f"{gib(amount)}{where} (no budget)"
    return f"{gib(amount)} of {gib(budget)}{where}"


def keep_alive_text(state: ModelState, left: float | None) -> str:
    """How long the model stays once idle, as the scheduler will do it."""
    if state.status != "ready":
        return NONE
    if state.in_flight:
        return "in use"
    if state.pinned:
        return "pinned"
    if left is None:
        return "forever"
    from zoo.serve.ui.render import duration

    return duration(left)


def _index(ui: Ui, request: Request) -> Response:
    from zoo.serve.ui.render import page

    blank = {"fraction": None, "status": "", "name": "", "place": ""}
    context = {
        "view": view(ui, request),
        # What the script clones for an instance (a place, a failure) that appears later.
        "blank_row": blank | {"show": dict.fromkeys(ROW_FIELDS, "")},
        "blank_place": blank | {"show": {"place": "", "memory": "", "detail": ""}},
        "blank_failed": blank | {"show": {"name": "", "error": ""}},
    }
    return page(request, "running.html", context, active=PATH, title="Running")


# -- the engine's log ----------------------------------------------------------------------


def _logs(ui: Ui, request: Request) -> Response:
    from starlette.responses import StreamingResponse

    from zoo.serve.errors import ModelNotFound

    name = request.path_params["model"]
    state = next((s for s in visible(ui, request) if s.name == name), None)
    path = None
    if state is not None and state.status in RESIDENT and state.instance_id is not None:
        path = ui.gateway.backend.log_path(state.instance_id)
    if state is None or state.instance_id is None or path is None:
        # One answer for unknown, not running and not yours: a scoped key learns nothing.
        raise ModelNotFound(f"no running model named {name!r} whose log this key may read")
    resume = resume_offset(request.headers.get("last-event-id", ""), state.instance_id)
    return StreamingResponse(
        follow(ui, name, state.instance_id, path, resume=resume),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
    )


def resume_offset(last_event_id: str, instance_id: str) -> int | None:
    """Where a reconnecting EventSource's stream left off (its ``Last-Event-ID`` is
    ``INSTANCE:OFFSET``, as ``follow`` sends): None for another instance or no id."""
    instance, _, offset = last_event_id.partition(":")
    if instance != instance_id or not offset.isdigit():
        return None
    return int(offset)


def _still_there(ui: Ui, name: str, instance_id: str) -> bool:
    """Whether the scheduler still serves ``name`` with this instance and the backend still
    runs it (a gateway stopping its engines ends the streams too)."""
    scheduler, backend = ui.gateway.scheduler, ui.gateway.backend
    held = any(s.name == name and s.instance_id == instance_id for s in scheduler.snapshot())
    return held and backend.log_path(instance_id) is not None


async def follow(
    ui: Ui, name: str, instance_id: str, path: Path, *, resume: int | None = None
) -> AsyncIterator[str]:
    """The log at ``path`` as server-sent events: a ``reset`` and its last LOG_LINES lines
    (or, for a reconnect, what came after ``resume``), then each new line, until instance
    ``instance_id`` of ``name`` leaves (an ``end`` event). Event ids carry the offset read.

    Each stream lasts at most STREAM_S, then the browser reconnects and resumes: uvicorn lets
    a stopping gateway wait for open answers, and a log could otherwise hold it forever.
    Starlette ends the generator when the client goes; the heartbeat's write notices too.
    """
    import asyncio
    import time

    from zoo.runtime import process

    try:
        handle = await asyncio.to_thread(path.open, "rb")  # held across awaits: finally closes
    except OSError:
        yield _event("the log cannot be read", "end")
        return
    try:
        size = handle.seek(0, 2)
        yield f"retry: {RETRY_MS}\n\n"
        if resume is not None and resume <= size:
            offset = handle.seek(resume)
        else:
            # Following starts where the tail ends: a line written in between is sent once.
            offset = size
            yield _event("the log's last lines follow", "reset")
            for line in await asyncio.to_thread(process.tail, path, LOG_LINES, until=offset):
                yield _event(_clean(line))
        # No data: the browser takes the id and dispatches nothing.
        yield _event("", "mark", f"{instance_id}:{offset}")
        pending = b""
        began = quiet_since = time.monotonic()
        while True:
            running = _still_there(ui, name, instance_id)
            chunk = handle.read(READ_BYTES)
            while chunk:  # what was written: all of it, in bounded reads
                offset += len(chunk)
                lines, pending = split_lines(pending + chunk)
                for i, line in enumerate(lines):
                    # The last line of a batch carries where the next stream would start.
                    last = i == len(lines) - 1
                    mark = f"{instance_id}:{offset - len(pending)}" if last else None
                    yield _event(line, "", mark)
                    quiet_since = time.monotonic()
                chunk = handle.read(READ_BYTES)
            if not running:
                if pending.strip():
                    yield _event(_clean(pending.decode("utf-8", errors="replace")))
                yield _event(f"{name} stopped: the log ends here", "end")
                return
            now = time.monotonic()
            if now - began >= STREAM_S:
                return  # no `end`: the browser reconnects with the last id and resumes
            if now - quiet_since >= HEARTBEAT_S:
                yield ": still here\n\n"
                quiet_since = now
            await asyncio.sleep(POLL_S)
    finally:
        handle.close()


def split_lines(data: bytes) -> tuple[list[str], bytes]:
    """The complete, non-blank lines of ``data`` (any line ending; an over-long one in pieces)
    and the unfinished rest."""
    *complete, rest = _BREAKS.split(data)
    pieces = [part[i : i + MAX_LINE] for part in complete for i in range(0, len(part), MAX_LINE)]
    while len(rest) > MAX_LINE:
        pieces.append(rest[:MAX_LINE])
        rest = rest[MAX_LINE:]
    lines = [_clean(piece.decode("utf-8", errors="replace")) for piece in pieces]
    return [line for line in lines if line.strip()], rest


def _clean(line: str) -> str:
    return _ANSI.sub("", line)


def _event(data: str, kind: str = "", mark: str | None = None) -> str:
    """One server-sent event; ``data`` holds no line break (it is one log line), ``mark`` is
    its id (what a reconnect sends back as ``Last-Event-ID``)."""
    head = f"event: {kind}\n" if kind else ""
    if mark is not None:
        head += f"id: {mark}\n"
    return f"{head}data: {data}\n\n"
