"""Launch orchestration: request → plan → files → environment → running server.

What every front end calls (``zoo launch``, ``zoo download``, the demo, the gateway): ``plan``
gathers the inputs resolution must not read itself (this machine, ``$ZOO_HUB``, the installed
engines and hubs, the engine environments) and adds the server command the plan leads to;
``run`` downloads, builds the environment and starts exactly that command. Each step is a
function of the plan, so a dry run and a real launch cannot disagree.
"""

from __future__ import annotations

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
    from zoo.hubs.base import FetchResult, Hub
    from zoo.hubs.download import FetchListing
    from zoo.plan import LaunchOptions, Plan
    from zoo.runtime.invocation import ModelFiles
    from zoo.runtime.state import Instance

HUB_ENV = "ZOO_HUB"
Say = Callable[[str], None]


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
    plan: Plan, *, hubs: Mapping[str, Hub] | None = None, progress: bool = True
) -> FetchResult:
    """Download (or find in the cache) the plan's files through one of its hubs."""
    from zoo.hubs.download import fetch_plan

    return fetch_plan(plan, progress=progress, hubs=hubs if hubs is not None else _hubs())


def prepare_environment(plan: Plan, say: Say = _stderr) -> None:
    """Build the plan's engine environment if needed; it must give the plan's interpreter."""
    from zoo.runtime.envs import ensure_env
    from zoo.runtime.process import ServerError

    if plan.environment is None:
        return
    status = ensure_env(plan.environment, say)
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
    files = model_files(plan, fetch(plan, hubs=hubs))
    prepare_environment(plan, say)
    running = launcher.start_instance(
        plan, engine, files, say=say, echo_log=not plan.options.detach
    )
    if plan.options.detach:
        out(launcher.banner(running))
        return running.instance
    return launcher.serve_foreground(running, out=out, announce=True)


def _catalog() -> Catalog:
    from zoo.registry import catalog_with_plugins

    return catalog_with_plugins()


def _engines() -> Mapping[str, Engine]:
    from zoo.plugins import get_engines

    return get_engines()


def _hubs() -> Mapping[str, Hub]:
    from zoo.plugins import get_hubs

    return get_hubs()
