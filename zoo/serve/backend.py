"""Start and stop the gateway's models for real, through the launch path ``zoo launch`` uses.

Each model is planned once (``zoo.launch.plan``: the same resolution, files and command as
``zoo launch``), fetched, its environment built, and started exactly as ``zoo launch`` starts
it, on a free loopback port and with a private key only this gateway knows: an engine that
checks keys checks it itself; one that cannot (Transformers, MLX) gets zoo's single-model
proxy in front, which checks it, so no other local user can reach any engine directly. The
servers are tied to the gateway process: if it dies, kill -9 included, they die too.
Blocking: the scheduler calls these methods in worker threads.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from zoo.errors import ZooError
from zoo.serve.errors import DoesNotFit, GatewayError, LoadFailed, NotDownloaded
from zoo.serve.types import ModelEntry, Upstream

if TYPE_CHECKING:
    from zoo.catalog.catalog import Catalog
    from zoo.engine import Engine
    from zoo.host import Host
    from zoo.hubs.base import FetchResult, Hub, ProgressCallback
    from zoo.plan import Plan
    from zoo.runtime.launcher import Running


@dataclass(frozen=True)
class _Loaded:
    running: Running
    plan: Plan


class LocalBackend:
    """Models as local engine processes on this machine."""

    def __init__(
        self,
        catalog: Catalog,
        engines: Mapping[str, Engine],
        hubs: Mapping[str, Hub],
        host: Host,
        *,
        say: Callable[[str], None] = lambda line: None,
        allow_download: bool = False,
    ) -> None:
        self._catalog = catalog
        self._engines = engines
        self._hubs = hubs
        self._host = host
        self._say = say
        self._allow_download = allow_download
        self._loaded: dict[str, _Loaded] = {}
        self._plans: dict[ModelEntry, Plan] = {}
        self._lock = threading.Lock()

    @property
    def engines(self) -> Mapping[str, Engine]:
        return self._engines

    @property
    def hubs(self) -> Mapping[str, Hub]:
        return self._hubs

    @property
    def host(self) -> Host:
        """The machine models are planned for."""
        return self._host

    def log_path(self, instance_id: str) -> Path | None:
        """The engine log of an instance this backend started and has not stopped."""
        with self._lock:
            loaded = self._loaded.get(instance_id)
        return Path(loaded.running.instance.log_path) if loaded is not None else None

    def plan(self, entry: ModelEntry) -> Plan:
        """The plan ``zoo launch`` would make for ``entry`` here (cached per entry)."""
        from zoo import launch
        from zoo.plan import LaunchOptions
        from zoo.resolve import Request

        with self._lock:
            found = self._plans.get(entry)
        if found is not None:
            return found
        request = Request(
            model=entry.family,
            engine=entry.engine,
            format=entry.format,
            size=entry.size,
            quantization=entry.quantization,
            hub=entry.hub,
            context_length=entry.context_length,
        )
        options = LaunchOptions(
            host="127.0.0.1",
            detach=True,
            # A key only this gateway knows: other local users cannot use an engine directly.
            api_key=secrets.token_urlsafe(24),
            served_name=entry.name,
            extra_args=entry.engine_args,
        )
        try:
            plan = launch.plan(
                request,
                options,
                host=self._host,
                catalog=self._catalog,
                engines=self._engines,
                hubs=self._hubs,
            )
        except ZooError as error:
            raise DoesNotFit(f"{entry.name}: {error}") from error
        with self._lock:
            self._plans[entry] = plan
        return plan

    def plan_memory(self, entry: ModelEntry) -> tuple[int, str]:
        plan = self.plan(entry)
        return plan.memory.total_bytes, plan.memory.place

    def downloaded(self, entry: ModelEntry) -> bool:
        """Whether ``entry``'s files are in a hub cache (no request is made)."""
        from zoo.hubs.download import cached_plan

        try:
            return cached_plan(self.plan(entry), hubs=self._hubs) is not None
        except (ZooError, GatewayError):  # a model that cannot run here is not servable either
            return False

    def download(self, entry: ModelEntry, progress: ProgressCallback) -> FetchResult:
        """Fetch ``entry``'s files into this machine's hub caches, as ``start`` would."""
        from zoo import launch

        return launch.fetch(self.plan(entry), hubs=self._hubs, progress=progress)

    def start(self, entry: ModelEntry) -> Upstream:
        from zoo import launch
        from zoo.runtime import launcher

        plan = self.plan(entry)
        if not (entry.download or self._allow_download or self.downloaded(entry)):
            raise NotDownloaded(
                f"{entry.name} is not downloaded: `zoo pull`/`zoo download {plan.family.name}` "
                "first, list it in the gateway config, or start zoo serve with --allow-download"
            )
        try:
            files = launch.model_files(plan, launch.fetch(plan, hubs=self._hubs, progress=False))
            launch.prepare_environment(plan, self._say)
            running = launcher.start_instance(
                plan,
                self._engines[plan.engine],
                files,
                say=self._say,
                tied=True,
                pooling=False,  # the gateway shapes embeddings and rerank answers itself
            )
        except ZooError as error:
            raise LoadFailed(f"{entry.name} could not start: {error}") from error
        # The instance's own address: the engine, or zoo's proxy in front of it, which serves
        # the entry's name and checks the private key.
        upstream = Upstream(
            base_url=f"http://127.0.0.1:{running.instance.port}",
            request_model=running.instance.served_name,
            api_key=plan.options.api_key,
            instance_id=running.instance.id,
            memory_bytes=plan.memory.total_bytes,
            place=plan.memory.place,
        )
        with self._lock:
            self._loaded[upstream.instance_id] = _Loaded(running, plan)
        return upstream

    def alive(self, upstream: Upstream) -> bool:
        with self._lock:
            loaded = self._loaded.get(upstream.instance_id)
        server = loaded.running.server if loaded else None
        return server is not None and server.poll() is None

    def stop(self, upstream: Upstream) -> None:
        from zoo.runtime import launcher

        with self._lock:
            loaded = self._loaded.pop(upstream.instance_id, None)
        if loaded is None:
            return
        running = loaded.running
        try:
            launcher.stop(running.instance, grace=10, reap=running.server)
        finally:
            for guard in running.guards:
                guard.close()

    def log_tail(self, upstream: Upstream, lines: int = 15) -> str:
        from zoo.runtime import process

        with self._lock:
            loaded = self._loaded.get(upstream.instance_id)
        if loaded is None:
            return ""
        return "\n".join(process.tail(Path(loaded.running.instance.log_path), lines))

    def stop_all(self) -> None:
        with self._lock:
            ids = list(self._loaded)
        for instance_id in ids:
            self.stop(_upstream_of(instance_id))  # one already stopped meanwhile is skipped


def _upstream_of(instance_id: str) -> Upstream:
    return Upstream("", None, None, instance_id, 0, "")
