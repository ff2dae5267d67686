"""The UI's routes, assembled from one module per page, and what those modules share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import BaseRoute

    from zoo.serve.gateway import Gateway
    from zoo.serve.ui.session import Sessions


@dataclass
class Ui:
    """What every page's routes get: the gateway they show and the browser sessions."""

    gateway: Gateway
    sessions: Sessions


def routes(ui: Ui) -> list[BaseRoute]:
    """Every route under /ui/ (the models page is also ``/`` for a browser: ``home``)."""
    from starlette.routing import Mount
    from starlette.staticfiles import StaticFiles

    from zoo.serve.ui import (
        actions,
        downloads,
        login,
        metrics_page,
        models,
        playground,
        running,
    )
    from zoo.serve.ui.render import STATIC

    return [
        *login.routes(ui),
        *actions.routes(ui),
        *models.routes(ui),
        *downloads.routes(ui),
        *running.routes(ui),
        *playground.routes(ui),
        *metrics_page.routes(ui),
        Mount("/ui/static", app=StaticFiles(directory=STATIC), name="static"),
    ]


async def home(ui: Ui, request: Request) -> Response:
    """``GET /`` from a browser: the models page."""
    from zoo.serve.ui import models

    return await models.index(ui, request)
