"""The gateway's core: a request's model name → an entry → a lease on a loaded model → the
engine's answer, passed through while the lease is held.

The routes (``zoo.serve.app`` for OpenAI, ``zoo.serve.ollama`` for Ollama) call
``Gateway.complete``; what is served comes from the config's entries plus, with no config,
what is already downloaded (and, with ``allow_download``, anything in the catalog).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from zoo.errors import ZooError
from zoo.serve.errors import GatewayError, InvalidRequest, ModelNotFound, NotDownloaded
from zoo.serve.proxy import Answer, Forwarder
from zoo.serve.types import GatewayBackend, ModelEntry

if TYPE_CHECKING:
    from zoo.catalog.catalog import Catalog
    from zoo.catalog.model import Family
    from zoo.serve.config import ApiKey
    from zoo.serve.metrics import Metrics
    from zoo.serve.scheduler import Scheduler


@dataclass
class Gateway:
    """What the routes share: the catalog, the entries, the scheduler and the forwarder.

    ``api_keys`` empty means no key is needed; a config reload replaces them (and ``entries``).
    """

    catalog: Catalog
    entries: dict[str, ModelEntry]
    scheduler: Scheduler
    backend: GatewayBackend
    forwarder: Forwarder
    metrics: Metrics
    allow_download: bool = False
    api_keys: tuple[ApiKey, ...] = ()
    # The entries that came from the config file (a reload replaces these, not the models
    # served on request because they were downloaded).
    config_names: frozenset[str] = frozenset()
    started_at: float = field(default_factory=time.time)
    # The address it listens on: the web UI refuses foreign Host headers on a loopback one.
    bind_host: str = "127.0.0.1"

    def lookup(self, name: object) -> ModelEntry:
        """The entry ``name`` reads as (its name, an alias, or a catalog tag form), changing
        nothing: a catalog model outside the config is not added (``entry`` does that)."""
        from zoo.errors import NotFoundError
        from zoo.serve.names import resolve_name

        if not isinstance(name, str) or not name.strip():
            raise InvalidRequest("the request names no model: set `model`")
        try:
            return resolve_name(name, self.entries, self.catalog, discovered=True)
        # A ZooError's str ends with its hint (the did-you-mean) already.
        except NotFoundError as error:
            raise ModelNotFound(str(error)) from error
        except ZooError as error:
            raise InvalidRequest(str(error)) from error

    def entry(self, name: object) -> ModelEntry:
        """The entry a request names, to serve it: a catalog model outside the config joins
        the served ones when it is downloaded (or downloads are allowed)."""
        entry = self.lookup(name)
        if entry.name not in self.entries:
            # A catalog model the config does not list: servable once downloaded, or with
            # --allow-download (a request must not start a 70 GB download by surprise).
            if not (self.allow_download or self.backend.downloaded(entry)):
                raise NotDownloaded(
                    f"{name} is not downloaded and not listed in the gateway config: "
                    f"run `zoo download {entry.family}` or start zoo serve with --allow-download"
                )
            entry = replace(entry, download=self.allow_download)
            self.entries[entry.name] = entry
            self.scheduler.update_entries(self.entries)
        return entry

    def family(self, entry: ModelEntry) -> Family:
        """The entry's family; a 404 when the catalog no longer has it (a removed spec, a
        reload), the same JSON error on every route."""
        try:
            return self.catalog.get(entry.family)
        except ZooError as error:
            raise ModelNotFound(f"{entry.name}: {error}") from error

    def check_kind(self, entry: ModelEntry, path: str, *, asked: str | None = None) -> None:
        """A 400 naming the right route when ``path`` does not serve the entry's kind (chat
        for an embedding model, embeddings for a language model), before anything starts.
        ``asked``: the client's path when it is not ``path`` (``/v1/fim``), for the message."""
        from zoo.kinds import kind_of_route
        from zoo.serve.pooling import check_kind

        if kind_of_route(path) is None:
            return  # a route of no kind (Ollama's, a test's): nothing to check
        check_kind(entry, self.family(entry), path, asked=asked)

    async def complete(
        self,
        name: str,
        body: dict[str, Any],
        path: str,
        *,
        route: str,
        timings: dict[str, float] | None = None,
    ) -> tuple[ModelEntry, Answer, contextlib.AsyncExitStack]:
        """Forward ``body`` to ``path`` on the model ``name`` names, with a lease held until
        the returned stack is closed (after the last byte of the answer, or when the client
        goes away). ``timings["lease"]``, when given, is set to the seconds spent waiting for
        the model (its load, or a swap)."""
        entry = self.entry(name)
        self.check_kind(entry, path)
        keep_alive = pop_keep_alive(body)
        stack = contextlib.AsyncExitStack()
        leases = open_leases.get()
        if leases is not None:
            leases.append(stack)
        started = time.monotonic()
        try:
            upstream = await stack.enter_async_context(
                self.scheduler.lease(entry.name, keep_alive=keep_alive)
            )
            if timings is not None:
                timings["lease"] = time.monotonic() - started
            answer = await self.forwarder.send(
                upstream,
                path,
                body,
                name,
                on_usage=lambda p, c: self.metrics.tokens_used(entry.name, p, c),
            )
        except BaseException as error:
            await stack.aclose()
            self.metrics.request_done(entry.name, route, _status(error), time.monotonic() - started)
            raise
        stack.callback(
            lambda: self.metrics.request_done(
                entry.name, route, answer.status, time.monotonic() - started
            )
        )
        stack.push_async_callback(answer.close)
        return entry, answer, stack


# The leases taken while serving one request, closed by the app when the request ends however
# it ends: a stream cancelled before its first byte never runs its generator's `finally`, so
# stream_with alone would leave the lease held (the model busy forever) and the upstream open.
open_leases: ContextVar[list[contextlib.AsyncExitStack] | None] = ContextVar(
    "open_leases", default=None
)


def _status(error: BaseException) -> int:
    return error.status if isinstance(error, GatewayError) else 499


def pop_keep_alive(body: dict[str, Any]) -> float | None:
    """The request's own keep-alive (Ollama's semantics, also on the OpenAI routes), removed
    from the body: engines do not know it."""
    from zoo.serve.config import parse_duration

    if "keep_alive" not in body:
        return None
    raw = body.pop("keep_alive")
    if raw is None:
        return None
    try:
        return parse_duration(raw)
    except ValueError as error:
        raise InvalidRequest(f"keep_alive {raw!r}: {error}") from error


async def stream_with(
    stack: contextlib.AsyncExitStack, body: AsyncIterator[bytes]
) -> AsyncIterator[bytes]:
    """Yield ``body``, then release the lease (also when the client disconnects)."""
    try:
        async for chunk in body:
            yield chunk
    finally:
        await stack.aclose()


def served_models(gateway: Gateway, *, only: str | None = None) -> list[dict[str, Any]]:
    """Every servable model with its state, for ``/v1/models`` and ``/api/tags`` (``only``:
    just that entry, for ``/api/show`` and the Ollama routes' kind check)."""
    states = {s.name: s for s in gateway.scheduler.snapshot()}
    now_wall, now_clock = time.time(), gateway.scheduler.clock()
    out: list[dict[str, Any]] = []
    for name, entry in gateway.entries.items():
        if only is not None and name != only:
            continue
        try:
            family = gateway.catalog.get(entry.family)
        except ZooError:
            continue
        state = states.get(name)
        status: str = state.status if state is not None else "idle"
        if status == "idle" and not gateway.backend.downloaded(entry):
            status = "not downloaded"
        expires = None
        if state is not None and state.expires_at is not None:
            expires = now_wall + (state.expires_at - now_clock)  # the scheduler's clock → Unix
        out.append(
            {
                "id": name,
                "object": "model",
                "created": int(gateway.started_at),
                "owned_by": "zoo",
                "family": entry.family,
                "aliases": list(entry.aliases),
                "status": "loaded" if status == "ready" else status,
                "loaded": status == "ready",
                "context_length": entry.context_length or family.context_length,
                "kind": family.kind,
                "abilities": list(family.abilities),
                "format": entry.format,
                "quantization": entry.quantization,
                "parameters": entry.size,
                "memory_bytes": state.memory_bytes if state is not None else None,
                "expires_at": expires,
            }
        )
    return out
