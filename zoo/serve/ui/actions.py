"""The UI's state changes on models: load one (and keep it for its keep-alive), unload one.

JSON in and out, like the API: ``POST /ui/api/load`` and ``POST /ui/api/unload`` with
``{"model": NAME}`` (a name, alias or catalog tag, as ``/v1`` reads it). The auth middleware
has already checked the key (or session and CSRF token); the key's model scope is checked here.
A load answers once the model is ready, or with the gateway's JSON error saying why not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import BaseRoute

    from zoo.serve.types import ModelEntry
    from zoo.serve.ui.site import Ui


def routes(ui: Ui) -> list[BaseRoute]:
    from starlette.routing import Route

    async def load(request: Request) -> Response:
        return await _load(ui, request)

    async def unload(request: Request) -> Response:
        return await _unload(ui, request)

    return [
        Route("/ui/api/load", load, methods=["POST"]),
        Route("/ui/api/unload", unload, methods=["POST"]),
    ]


async def model_of(
    ui: Ui, request: Request, *, to_serve: bool = True
) -> tuple[ModelEntry, dict[str, Any]]:
    """The entry the JSON body's ``model`` names, if the caller's key may use it.

    ``to_serve``: as a request to serve it reads it (``Gateway.entry``: a catalog model must
    be downloaded first); False for a download, which any catalog build may be.
    """
    from zoo.serve.body import read_json
    from zoo.serve.errors import Forbidden

    body = await read_json(request)
    name = body.get("model")
    entry = ui.gateway.entry(name) if to_serve else ui.gateway.lookup(name)
    if not allowed(request, entry):
        # The name as sent, not the entry it resolved to: an alias's target stays unsaid.
        raise Forbidden(f"this API key may not use {str(name)[:80]!r}")
    return entry, body


def allowed(request: Request, entry: ModelEntry) -> bool:
    """Whether the request's key (None: no keys are set) may use ``entry``."""
    key = request.scope.get("zoo.key")
    return key is None or bool(key.allows(entry))


async def _load(ui: Ui, request: Request) -> Response:
    from starlette.responses import JSONResponse

    from zoo.serve.gateway import pop_keep_alive

    entry, body = await model_of(ui, request)
    keep_alive = pop_keep_alive(body)
    async with ui.gateway.scheduler.lease(entry.name, keep_alive=keep_alive):
        pass
    return JSONResponse({"model": entry.name, "status": "loaded"})


async def _unload(ui: Ui, request: Request) -> Response:
    from starlette.responses import JSONResponse

    entry, _ = await model_of(ui, request)
    unloaded = await ui.gateway.scheduler.unload(entry.name)
    return JSONResponse({"model": entry.name, "unloaded": unloaded})
