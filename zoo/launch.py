"""Launch orchestration: request → plan → files → environment → running server.

What every front end calls (``zoo launch``, ``zoo download``, the demo, the gateway): ``plan``
gathers the inputs resolution must not read itself (this machine, ``$ZOO_HUB``, the installed
engines and hubs, the engine environments) and adds the server command the plan leads to;
``run`` says in one line what it is about to do (``plan_line``), downloads, builds the
environment and starts exactly that command. Each step is a function of the plan, so a dry
run and a real launch cannot disagree. ``running_instance`` finds a live instance that already
serves what was asked, so front ends can point at it instead of starting a second one.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from zoo.errors import NotFoundError
from zoo.resolve import Request, resolve

if TYPE_CHECKING:
    from zoo.catalog.catalog import Catalog
    from zoo.engine import Engine
    from zoo.host import Host
    from zoo.hubs.base import FetchResult, Hub, ProgressCallback
    from zoo.hubs.download import FetchListing
    from zoo.plan import LaunchOptions, Plan
    from zoo.runtime.invocation import ModelFiles
    from zoo.runtime.state import Instance

HUB_ENV = "ZOO_HUB"
Say = Callable[[str], None]
# How long the one-line plan may wait for a hub's listing to learn the download size; past
# it (or when the hub fails) the line says "size unknown" and the download proceeds.
SIZE_LOOKUP_TIMEOUT_S = 5.0


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def plan(
    request: Request,
    options: LaunchOptions | None = None,
    *,
    host: Host | None = None,
    catalog: Catalog | None = None,
    engines: Mapping[str, Engine] | None = None,
    hubs: Mapping[str, Hub] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Plan:
    """The plan for ``request`` on ``host`` (default: this machine), with its server command."""
    from zoo.plan import LaunchOptions
    from zoo.runtime.envs import probe

    catalog = catalog if catalog is not None else _catalog()
    engines = engines if engines is not None else _engines()
    hubs = hubs if hubs is not None else _hubs()
    if host is None:
        from zoo.host import this_machine

        host = this_machine()
    if request.default_hub is None:
        default = (os.environ if environ is None else environ).get(HUB_ENV, "").strip()
        request = replace(request, default_hub=default or None)
    resolved = resolve(
        catalog,
        request,
        engines,
        host,
        hubs=hubs,
        env_probe=probe,
        options=options or LaunchOptions(),
    )
    return with_command(resolved, engines[resolved.engine], hubs)


def with_command(plan: Plan, engine: Engine, hubs: Mapping[str, Hub] | None = None) -> Plan:
    """The plan with the server command it leads to (secrets redacted), built by the same
    function the launch uses, on the cached files where they are already downloaded."""
    from zoo.runtime.invocation import invocation

    files = _preview_files(plan, hubs)
    call = invocation(plan, engine, files, port=plan.options.port or 0)
    return replace(
        plan,
        command=call.shown_argv(),
        command_env=call.shown_env(),
        proxied=call.proxied,
        proxy_command=call.proxy_argv,
    )


def _preview_files(plan: Plan, hubs: Mapping[str, Hub] | None) -> ModelFiles:
    from zoo.hubs.download import cached_plan, planned_root
    from zoo.runtime.invocation import ModelFiles

    try:
        found = cached_plan(plan, hubs=hubs if hubs is not None else _hubs())
    except Exception:  # a preview never fails a dry run; the launch reports it
        found = None
    if found is not None:
        return model_files(plan, found)
    if plan.spec.format != "ggufv2":
        # A hub that knows its folder in advance (PyPI, an unpacked archive): the real path.
        planned = planned_root(plan, hubs=hubs if hubs is not None else _hubs())
        if planned is not None:
            return ModelFiles(str(planned))
    where = f"<{plan.hub}:{plan.repo}>"
    exact = plan.source.selection.exact
    chosen = _gguf_files(plan, exact) if plan.spec.format == "ggufv2" and exact else None
    if chosen is None:
        return ModelFiles(where)
    weights, projector = chosen
    return ModelFiles(f"{where}/{weights}", f"{where}/{projector}" if projector else None)


def _gguf_files(plan: Plan, paths: Sequence[str]) -> tuple[str, str | None] | None:
    """The one rule for what a GGUF engine is given, for the dry run (repository paths) and
    the launch (downloaded files) alike: the first weights file (split parts follow it) and
    the multimodal projector if one is among ``paths``; None without a GGUF file."""
    projectors = {p.rsplit("/", 1)[-1] for s in plan.spec.sources for p in s.multimodal_projectors}
    ggufs = [p for p in paths if p.endswith(".gguf")]
    weights = [p for p in ggufs if p.rsplit("/", 1)[-1] not in projectors] or ggufs
    if not weights:
        return None
    projector = [p for p in ggufs if p.rsplit("/", 1)[-1] in projectors and p not in weights]
    return sorted(weights)[0], projector[0] if projector else None


def model_files(plan: Plan, fetched: FetchResult) -> ModelFiles:
    """What the engine is given: the first GGUF file (split parts follow it) and the
    multimodal projector where the plan fetched one, or the model folder."""
    from zoo.runtime.invocation import ModelFiles

    if plan.spec.format != "ggufv2":
        return ModelFiles(str(fetched.root))
    chosen = _gguf_files(plan, [f.as_posix() for f in fetched.files])
    if chosen is None:
        raise NotFoundError(f"no GGUF file among the downloaded files of {fetched.repo}")
    return ModelFiles(*chosen)


def fetch(
    plan: Plan,
    *,
    hubs: Mapping[str, Hub] | None = None,
    progress: bool | ProgressCallback = True,
) -> FetchResult:
    """Download (or find in the cache) the plan's files through one of its hubs; ``progress``
    as ``zoo.hubs.download.fetch_plan`` takes it (on stderr, none, or a callback's)."""
    from zoo.hubs.download import fetch_plan

    return fetch_plan(plan, progress=progress, hubs=hubs if hubs is not None else _hubs())


def prepare_environment(plan: Plan, say: Say = _stderr) -> None:
    """Build the plan's engine environment if needed; it must give the plan's interpreter."""
    from zoo.runtime.envs import ensure_env
    from zoo.runtime.process import ServerError

    if plan.environment is None:
        return
    # The live status line only where it is drawn on a terminal, not into a caller's sink.
    status = ensure_env(plan.environment, say, live=say is _stderr and sys.stderr.isatty())
    if not status.ready or status.python is None:
        raise ServerError(f"the {plan.engine} environment is not ready: {status.reason}")
    if Path(status.python) != Path(plan.python):
        raise ServerError(
            f"the {plan.engine} environment changed since the plan was made "
            f"({status.python}, planned {plan.python})",
            hint="run the command again",
        )


def describe_download(plan: Plan, *, hubs: Mapping[str, Hub] | None = None) -> FetchListing:
    """What ``fetch`` would download (``zoo download --dry-run``): hub, files, bytes."""
    from zoo.hubs.download import describe_plan

    return describe_plan(plan, hubs=hubs if hubs is not None else _hubs())


def instances_of(plan: Plan, request: Request) -> list[Instance]:
    """The running instances of what ``request`` asks for, newest first: the plan's family,
    and the engine, format, quantization, size and context where the request named them (an
    automatic choice matches whatever runs). The one rule for "this model is running", for
    ``zoo launch`` and ``zoo run`` alike."""
    from zoo import quantization as quant
    from zoo.errors import ZooError
    from zoo.runtime import state

    if request.context_length is not None:
        return []  # instances do not record the context they were given
    several_sizes = len({s.size for s in plan.family.specs}) > 1
    try:
        instances = state.list_instances()
    except ZooError:  # an unreadable state folder: the launch itself reports it
        return []
    return [
        inst
        for inst in reversed(instances)
        if inst.status == "running"
        and inst.model == plan.family.name
        and request.engine in (None, inst.engine)
        and request.format in (None, inst.format)
        and (request.quantization is None or quant.same(request.quantization, inst.quantization))
        and (request.size is None or _same_size(request.size, inst.size, several_sizes))
    ]


def running_instance(plan: Plan, request: Request) -> Instance | None:
    """A running instance of what ``request`` asks (``instances_of``) that also serves as the
    launch options ask: the port and address where given, the served name, no engine
    arguments of its own, and the same API key (checked by asking the instance with it: the
    key is never stored) or none on either side. Else None: the launch starts a new one."""
    options = plan.options
    for inst in instances_of(plan, request):
        if (
            options.port in (None, inst.port)
            and options.host == inst.host
            and options.served_name in (None, inst.served_name)
            and not options.extra_args
            and _same_key(inst, options.api_key)
        ):
            return inst
    return None


def _same_key(inst: Instance, api_key: str | None) -> bool:
    if api_key is None or not inst.api_key:
        return api_key is None and not inst.api_key
    import httpx

    try:
        answer = httpx.get(
            f"{inst.endpoint}/models",
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=3.0,
        )
    except httpx.HTTPError:
        return False
    return answer.status_code == 200


def _same_size(asked: float, running: float | None, several_sizes: bool) -> bool:
    """Whether an instance runs the size asked: its recorded size; an instance an older zoo
    recorded without one matches only where the family has a single size."""
    if running is None:
        return not several_sizes
    return abs(asked - running) < 1e-9


def plan_line(
    plan: Plan,
    *,
    engines: Mapping[str, Engine] | None = None,
    hubs: Mapping[str, Hub] | None = None,
    timeout: float = SIZE_LOOKUP_TIMEOUT_S,
) -> str:
    """The plan in one line, said before anything is downloaded: "zoo: smollm2-135m-instruct
    Q4_1 on llama.cpp (cpu): download 98.6 MB to ~/.cache/huggingface/hub, needs 0.6 GiB,
    ~70 tok/s" ("cached" when the files are there; "size unknown" when the hub cannot tell
    within ``timeout`` seconds)."""
    from zoo.memory import gib
    from zoo.speed import tokens_per_second

    engines = engines if engines is not None else _engines()
    hubs = hubs if hubs is not None else _hubs()
    engine = engines.get(plan.engine)
    name = (engine.display_name if engine is not None else "") or plan.engine
    speed = (
        tokens_per_second(plan.speed.decode_tokens_per_second)
        if plan.speed is not None
        else "speed unknown"
    )
    return (
        f"zoo: {plan.family.name} {plan.quantization} on {name} ({plan.device}): "
        f"{_download_words(plan, hubs, timeout)}, needs {gib(plan.memory.total_bytes)}, {speed}"
    )


def _download_words(plan: Plan, hubs: Mapping[str, Hub], timeout: float) -> str:
    """ "cached", or "download 98.6 MB to FOLDER" (the lock's sizes, else the hub's listing,
    waited for at most ``timeout`` seconds in a thread that is then left to finish)."""
    import threading

    from zoo.hubs.download import cached_plan
    from zoo.hubs.locked import plan_recorded_bytes
    from zoo.hubs.progress import human_bytes

    # A summary never fails a launch: the download itself reports what is wrong.
    with contextlib.suppress(Exception):
        if cached_plan(plan, hubs=hubs) is not None:
            return "cached"
    size: int | None = plan_recorded_bytes(plan, plan.hub)
    root: str | None = None
    if size is None:
        found: list[FetchListing] = []

        def look() -> None:
            with contextlib.suppress(Exception):  # unreachable, offline, a hub's bug
                found.append(describe_download(plan, hubs=hubs))

        worker = threading.Thread(target=look, daemon=True, name="zoo-download-size")
        worker.start()
        worker.join(timeout)
        if found:
            if found[0].cached:
                return "cached"
            size, root = found[0].bytes, found[0].root
    where = _home_short(root or _cache_folder(plan, hubs))
    amount = f" {human_bytes(size)}" if size is not None else ""
    unknown = "" if size is not None else " (size unknown)"
    return f"download{amount}{f' to {where}' if where else ''}{unknown}"


def _cache_folder(plan: Plan, hubs: Mapping[str, Hub]) -> str | None:
    """The folder the plan's first hub caches into (``Hub.cache_root``), if it has one."""
    hub = hubs.get(plan.hub)
    root = hub.cache_root() if hub is not None else None
    return str(root) if root is not None else None


def _home_short(path: str | None) -> str | None:
    if not path:
        return None
    home = str(Path.home())
    if home not in ("", "/") and (path == home or path.startswith(home + os.sep)):
        return "~" + path[len(home) :]
    return path


def run(
    plan: Plan,
    *,
    engines: Mapping[str, Engine] | None = None,
    hubs: Mapping[str, Hub] | None = None,
    say: Say = _stderr,
    out: Callable[[str], None] = print,
) -> Instance:
    """Fetch, build the environment, start, wait for readiness; then return (detached) or
    serve in the foreground until stopped."""
    from zoo.runtime import launcher

    engines = engines if engines is not None else _engines()
    if plan.engine not in engines:
        raise NotFoundError(
            f"engine {plan.engine!r} is not installed; engines: " + ", ".join(sorted(engines))
        )
    engine = engines[plan.engine]
    launcher.check_port(plan.options.host, plan.options.port)
    hubs = hubs if hubs is not None else _hubs()
    say(plan_line(plan, engines=engines, hubs=hubs))
    files = model_files(plan, fetch(plan, hubs=hubs))
    prepare_environment(plan, say)
    running = launcher.start_instance(
        plan, engine, files, say=say, echo_log=not plan.options.detach
    )
    if plan.options.detach:
        out(launcher.banner(running))
        return running.instance
    return launcher.serve_foreground(running, out=out, announce=True)


def downloaded_families(catalog: Catalog, hubs: Mapping[str, Hub]) -> list[str]:
    """The catalog families (in catalog order) some of whose files a hub here has cached: what
    a gateway without a config serves, and what a cluster node reports. No request is made."""
    cached: set[tuple[str, str]] = set()
    for name, hub in hubs.items():
        with contextlib.suppress(Exception):  # a broken cache must not hide the others
            cached.update((name, e.repo) for e in hub.cache_entries())
    found: list[str] = []
    for family in catalog.families.values():
        repos = {
            (source.hub, source.repo_for(q))
            for spec in family.specs
            for source in spec.sources
            for q in source.quantizations
        }
        if repos & cached:
            found.append(family.name)
    return found


def _catalog() -> Catalog:
    from zoo.registry import catalog_with_plugins

    return catalog_with_plugins()


def _engines() -> Mapping[str, Engine]:
    from zoo.plugins import get_engines

    return get_engines()


def _hubs() -> Mapping[str, Hub]:
    from zoo.plugins import get_hubs

    return get_hubs()
