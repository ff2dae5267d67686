"""The Models pages: the catalog with search and filters, and one family's builds.

``GET /`` (a browser) and ``GET /ui/models`` list the catalog. The filters are a GET form, so
the page works without a script: ``q`` (the catalog's own search), ``kind``, ``ability``,
``format``, and the two costly ones, ``fits`` (some build runs on the chosen host) and
``downloaded`` (some build is in a hub cache), with ``host`` (this machine or a built-in
profile) to judge ``fits`` against. The page renders every family the costly filters keep and
hides those the cheap ones drop, so the script can filter as one types by asking
``GET /ui/api/models`` (the same rule, in this module only) which families still match.

``GET /ui/models/{family}`` is one family: the gateway's configured models of it (with load
and unload), and every (spec, quantization) with its download size, the memory and speed
estimated on the chosen host (``zoo.fit.family_rows``, what ``zoo show`` prints), whether it
fits and is downloaded, and buttons to download (``zoo.serve.ui.downloads``) and load it by
its tag. A GET changes nothing: the tags are computed, not looked up with ``gateway.entry``
(which adds a catalog model to the served ones).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from starlette.datastructures import QueryParams
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import BaseRoute

    from zoo.catalog.model import Family
    from zoo.fit import QuantRow
    from zoo.host import Host
    from zoo.serve.ui.site import Ui

PATH = "/ui/models"
# Longer than any search anyone types (the catalog's search is linear in it).
MAX_QUERY = 200


@dataclass(frozen=True)
class Filters:
    """What the models page's form asks for ("" / False: no filter)."""

    q: str = ""
    kind: str = ""
    ability: str = ""
    format: str = ""
    fits: bool = False
    downloaded: bool = False
    host: str = ""  # "" this machine, else a built-in host profile's name

    @property
    def costly(self) -> bool:
        return self.fits or self.downloaded


class BadFilter(ValueError):
    """A filter value the page cannot use; its message is one line for the page."""


def routes(ui: Ui) -> list[BaseRoute]:
    from starlette.routing import Route

    async def listing(request: Request) -> Response:
        return await index(ui, request)

    async def family_page(request: Request) -> Response:
        return await _family_page(ui, request)

    async def matching(request: Request) -> Response:
        return await _matching(ui, request)

    return [
        Route(PATH, listing, methods=["GET"]),
        Route(PATH + "/{family:path}", family_page, methods=["GET"]),
        Route("/ui/api/models", matching, methods=["GET"]),
    ]


# --- reading the form -------------------------------------------------------------------------


def read_filters(params: QueryParams) -> Filters:
    """The filters a query string asks for; a BadFilter names the first value that is wrong."""
    from zoo.catalog.model import FORMATS
    from zoo.kinds import KIND_NAMES

    def choice(name: str, choices: tuple[str, ...]) -> str:
        value = params.get(name, "").strip()
        if value and value not in choices:
            raise BadFilter(f"unknown {name} {value[:40]!r}: choose one of {', '.join(choices)}")
        return value

    q = params.get("q", "").strip()
    if len(q) > MAX_QUERY or not q.isprintable():
        raise BadFilter(f"the search is not {MAX_QUERY} printable characters or fewer")
    return Filters(
        q=q,
        kind=choice("kind", KIND_NAMES),
        ability=choice("ability", abilities()),
        format=choice("format", FORMATS),
        fits=params.get("fits", "") not in ("", "0"),
        downloaded=params.get("downloaded", "") not in ("", "0"),
        host=choice("host", host_profiles()),
    )


def abilities() -> tuple[str, ...]:
    from zoo.kinds import ABILITIES

    return ABILITIES


def host_profiles() -> tuple[str, ...]:
    from zoo.host import BUILTIN_PROFILES

    return tuple(BUILTIN_PROFILES)


def planning_host(ui: Ui, profile: str) -> Host:
    """The host builds are judged on: the gateway's own, or a built-in profile with the
    gateway's opt-ins (a request names a profile, never a file: no path comes from a URL)."""
    from zoo.host import BUILTIN_PROFILES

    here = ui.gateway.backend.host
    if not profile:
        return here
    return BUILTIN_PROFILES[profile].with_opt_in(here.opt_in)


# --- the listing ------------------------------------------------------------------------------


def cheap_matches(ui: Ui, filters: Filters) -> set[str]:
    """The families the search, kind, ability and format filters keep (the rule the page's
    script asks for as one types)."""
    from zoo.catalog.views import summary_matches

    catalog = ui.gateway.catalog
    searched = {f.name for f in catalog.search(filters.q)} if filters.q else None
    return {
        summary["name"]
        for summary in catalog.summaries()
        if (searched is None or summary["name"] in searched)
        and summary_matches(
            summary,
            kind=filters.kind or None,
            ability=filters.ability or None,
            fmt=filters.format or None,
        )
    }


def costly_matches(ui: Ui, filters: Filters, names: list[str]) -> list[str]:
    """``names`` the fits and downloaded filters keep (each builds the family and asks the
    engines or the hub caches: seconds for the whole catalog, so only on request)."""
    from zoo import config
    from zoo.errors import ZooError
    from zoo.fit import any_downloaded, default_request, fits

    if not filters.costly:
        return names
    backend = ui.gateway.backend
    host = planning_host(ui, filters.host)
    default_hub = config.default_hub().value
    kept = []
    for name in names:
        try:
            family = ui.gateway.catalog.get(name)
            if filters.downloaded and not any_downloaded(
                family, backend.hubs, default_hub=default_hub
            ):
                continue
            if filters.fits and not fits(
                family, host, backend.engines, backend.hubs, request=default_request(family)
            ):
                continue
        except ZooError:  # a family the catalog cannot judge fits nothing
            continue
        kept.append(name)
    return kept


def listing_rows(ui: Ui, filters: Filters) -> list[dict[str, Any]]:
    """Every family the costly filters keep, in name order, each marked ``shown`` when the
    cheap ones keep it too."""
    from zoo.catalog.model import context_label
    from zoo.fit import size_range

    summaries = {s["name"]: s for s in ui.gateway.catalog.summaries()}
    kept = costly_matches(ui, filters, list(summaries))
    shown = cheap_matches(ui, filters)
    rows = []
    for name in kept:
        summary = summaries[name]
        rows.append(
            {
                "name": name,
                "description": summary["description"],
                "kind": summary["kind"],
                "kind_title": _kind_title(summary["kind"]),
                "abilities": summary["abilities"],
                "formats": summary["formats"],
                "sizes": summary["sizes"],
                "download": size_range(*summary["download_bytes"]),
                "context": context_label(summary["context_length"]),
                "shown": name in shown,
            }
        )
    return rows


def form_choices() -> dict[str, Any]:
    """The form's select options: (value, label) pairs."""
    from zoo.catalog.model import FORMATS
    from zoo.kinds import KINDS

    return {
        "kinds": [(k.name, k.title) for k in KINDS.values()],
        "abilities": abilities(),
        "formats": FORMATS,
        "hosts": host_profiles(),
    }


async def index(ui: Ui, request: Request) -> Response:
    """The models page (also the browser's ``/``)."""
    import asyncio

    from zoo.serve.ui.render import page

    notice = ""
    try:
        filters = read_filters(request.query_params)
    except BadFilter as error:
        filters, notice = Filters(), f"{error}; showing every model"
    # The costly filters build families and stat caches: off the event loop.
    rows = await asyncio.to_thread(listing_rows, ui, filters)
    context = {
        "filters": filters,
        "rows": rows,
        "shown": sum(1 for r in rows if r["shown"]),
        "notice": notice,
        **form_choices(),
    }
    return page(request, "models.html", context, active="/", title="Models")


async def _matching(ui: Ui, request: Request) -> Response:
    """``GET /ui/api/models``: the names the cheap filters keep, for the page's script."""
    import asyncio

    from starlette.responses import JSONResponse

    from zoo.serve.errors import InvalidRequest

    try:
        filters = read_filters(request.query_params)
    except BadFilter as error:
        raise InvalidRequest(str(error)) from None
    names = await asyncio.to_thread(cheap_matches, ui, replace(filters, fits=False))
    return JSONResponse({"families": sorted(names)})


def _kind_title(kind: str) -> str:
    from zoo.kinds import KINDS

    found = KINDS.get(kind)
    return found.title if found is not None else kind


def _is_web_address(text: str | None) -> bool:
    return bool(text) and str(text).lower().startswith(("https://", "http://"))


# --- one family -------------------------------------------------------------------------------


def served_here(ui: Ui, request: Request, family: Family) -> list[dict[str, Any]]:
    """The gateway's models of ``family`` that this key may use, with their status."""
    from zoo.serve.ui.actions import allowed

    states = {s.name: s for s in ui.gateway.scheduler.snapshot()}
    out = []
    for entry in ui.gateway.entries.values():
        if entry.family != family.name or not allowed(request, entry):
            continue
        state = states.get(entry.name)
        out.append(
            {
                "name": entry.name,
                "aliases": list(entry.aliases),
                "engine": entry.engine or "",
                "quantization": entry.quantization or "",
                "status": state.status if state is not None else "idle",
            }
        )
    return out


def build_rows(ui: Ui, request: Request, family: Family, host: Host) -> list[list[dict[str, Any]]]:
    """The family's builds on ``host`` as tables per spec: each row what ``zoo show`` prints
    plus the tag that loads it (None: no tag names it alone)."""
    from zoo.fit import default_request, family_rows, group_by_spec

    backend = ui.gateway.backend
    rows = family_rows(family, host, backend.engines, backend.hubs, request=default_request(family))
    return [[_build(ui, request, family, row) for row in group] for group in group_by_spec(rows)]


def _build(ui: Ui, request: Request, family: Family, row: QuantRow) -> dict[str, Any]:
    from zoo.hubs.progress import human_bytes
    from zoo.reference import build_tag
    from zoo.serve.errors import GatewayError
    from zoo.serve.ui.actions import allowed

    tag = build_tag(family, row.spec, row.quantization)
    model = f"{family.name}:{tag}" if tag else None
    try:
        # The name the gateway gives it (a configured model serving this build, or the
        # canonical family:TAG), which download jobs and the scheduler know it by; none for a
        # configured model this key may not use (its name stays unsaid).
        found = ui.gateway.lookup(model) if model else None
        entry = found.name if found is not None and allowed(request, found) else None
    except GatewayError:
        entry = None
    return {
        "format": row.format,
        "size": row.size_label,
        "quantization": row.quantization,
        "model": model,
        "entry": entry,
        "download": ("≈ " if row.download_estimated else "") + human_bytes(row.download_bytes),
        "memory": human_bytes(row.memory_bytes) if row.memory_bytes is not None else "—",
        "speed": f"{row.decode_tps:.1f} tok/s" if row.decode_tps is not None else "—",
        "fits": row.fits,
        "reason": row.reason,
        "engine": row.engine or "—",
        "downloaded": bool(row.downloaded),
        "recommended": row.recommended,
    }


async def _family_page(ui: Ui, request: Request) -> Response:
    import asyncio

    from zoo.catalog.model import context_label
    from zoo.errors import ZooError
    from zoo.serve.ui.render import page

    name = request.path_params["family"]
    try:
        family = ui.gateway.catalog.get(name) if len(name) <= MAX_QUERY else None
    except ZooError:
        family = None
    if family is None:
        context = {"name": name[:80], **form_choices()}
        return page(
            request, "model_missing.html", context, active="/", title="No such model", status=404
        )
    notice = ""
    try:
        filters = read_filters(request.query_params)
    except BadFilter as error:
        filters, notice = Filters(), f"{error}; showing this machine"
    host = planning_host(ui, filters.host)
    groups = await asyncio.to_thread(build_rows, ui, request, family, host)
    context = {
        "family": family,
        "kind_title": _kind_title(family.kind),
        "context": context_label(family.context_length),
        # Spec text is untrusted: only a web address becomes a link (never javascript:).
        "homepage": family.homepage if _is_web_address(family.homepage) else None,
        "allow_download": ui.gateway.allow_download,
        "served": served_here(ui, request, family),
        "groups": groups,
        "host": filters.host,
        "host_name": host.name,
        "here": not filters.host,  # actions act on this machine: only offered for it
        "notice": notice,
        **form_choices(),
    }
    return page(request, "model.html", context, active="/", title=family.name)
