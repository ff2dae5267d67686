"""The Playground page: try a servable model from the browser and see the exact request.

``GET /ui/playground[?model=NAME]`` renders a picker of the models the caller's key may use,
grouped by kind, and the view that fits the chosen one: chat for a language model (plus a
fill-in-the-middle view when its family has a FIM template), a similarity matrix for an
embedding model. The page's script sends the same ``/v1`` requests an API client would
(``/v1/chat/completions``, ``/v1/fim``, ``/v1/embeddings``), authenticated by the session
cookie and the CSRF header, so what the page shows as curl and ``openai`` code is what it sent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import BaseRoute

    from zoo.catalog.model import Family
    from zoo.serve.ui.site import Ui

PATH = "/ui/playground"
# Kinds in the picker's order, with the label of their group.
KIND_LABELS = {"llm": "Language models", "embedding": "Embedding models", "rerank": "Rerankers"}


def routes(ui: Ui) -> list[BaseRoute]:
    from starlette.routing import Route

    async def index(request: Request) -> Response:
        return await _index(ui, request)

    return [Route(PATH, index, methods=["GET"])]


def models(ui: Ui, request: Request) -> list[dict[str, Any]]:
    """The servable models this request's key may use, with what the page needs of each."""
    from zoo.errors import ZooError
    from zoo.serve.fim import Fim
    from zoo.serve.gateway import served_models
    from zoo.serve.ui.actions import allowed

    gateway = ui.gateway
    out: list[dict[str, Any]] = []
    for listed in served_models(gateway):
        entry = gateway.entries.get(listed["id"])
        if entry is None or not allowed(request, entry):
            continue
        try:
            family = gateway.catalog.get(entry.family)
        except ZooError:  # served_models already left out what the catalog lacks
            continue
        out.append(
            {
                "id": listed["id"],
                "kind": listed["kind"],
                "aliases": listed["aliases"],
                "abilities": listed["abilities"],
                "status": listed["status"],
                "fim": Fim.from_family(family) is not None,
                "defaults": defaults(family),
            }
        )
    order = list(KIND_LABELS)
    out.sort(key=lambda m: order.index(m["kind"]) if m["kind"] in order else len(order))
    return out


def defaults(family: Family) -> dict[str, Any]:
    """The sampling defaults the family's model card recommends (empty: none given): the
    page's inputs start at them."""
    generation = family.generation
    if generation is None:
        return {}
    values: dict[str, Any] = dict(generation.options())
    if generation.system_prompt:
        values["system_prompt"] = generation.system_prompt
    return values


def inputs(model: dict[str, Any] | None) -> dict[str, Any]:
    """The chat inputs' starting values: the model's defaults, "" where it has none."""
    blank: dict[str, Any] = dict.fromkeys(
        ("system_prompt", "temperature", "top_p", "max_tokens"), ""
    )
    return blank | (model["defaults"] if model is not None else {})


def groups(listed: list[dict[str, Any]]) -> list[tuple[str, list[dict[str, Any]]]]:
    """The picker's option groups: (label, models), in KIND_LABELS order."""
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for model in listed:
        by_kind.setdefault(model["kind"], []).append(model)
    return [(KIND_LABELS.get(kind, kind), items) for kind, items in by_kind.items()]


def _chosen(request: Request, listed: list[dict[str, Any]]) -> tuple[str | None, str]:
    """The model ``?model=`` names (its name or an alias), or the first one; and a line
    saying why the asked one is not shown (empty: nothing to say).

    Not ``gateway.entry``: that adds a catalog model it finds to the served ones, and a GET
    changes nothing.
    """
    asked = request.query_params.get("model")
    first = listed[0]["id"] if listed else None
    if not asked:
        return first, ""
    for model in listed:
        if asked == model["id"] or asked in model["aliases"]:
            return model["id"], ""
    # One message for "unknown" and "not yours": a scoped key learns nothing of other models.
    return first, f"no model named {asked!r} to try here"


async def _index(ui: Ui, request: Request) -> Response:
    from zoo.serve.ui.render import page

    listed = models(ui, request)
    chosen, notice = _chosen(request, listed)
    model = next((m for m in listed if m["id"] == chosen), None)
    data = {"models": listed, "model": chosen}
    return page(
        request,
        "playground.html",
        {
            "groups": groups(listed),
            "model": model,
            "inputs": inputs(model),
            "notice": notice,
            "data": data,
        },
        active=PATH,
        title="Playground",
    )
