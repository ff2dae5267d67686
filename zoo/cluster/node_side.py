"""What runs on a cluster node (inside Ray tasks and the engine actor), as plain zoo code.

Each node answers for itself: its host profile (detected there, or declared with the Ray label
``zoo.host-profile``), the engines whose environments are built there, the families whose files
its hub caches hold, and the plan for a request made there, with its own catalog, engines,
hubs and engine environments. Nothing here imports ray, so it is tested like any other code.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from zoo.errors import UsageError

if TYPE_CHECKING:
    from zoo.host import Host
    from zoo.hubs.base import FetchResult
    from zoo.plan import LaunchOptions, Plan
    from zoo.resolve import Request
    from zoo.runtime.invocation import ModelFiles

# Ray node labels zoo reads: the node's short name, and a host profile that replaces detection
# (a built-in profile name such as "h100-80g"; Ray's label values cannot hold a path): for
# GPUs the node cannot see itself, and for test clusters with fake GPUs.
NAME_LABEL = "zoo.node"
PROFILE_LABEL = "zoo.host-profile"
# The folder, inside the node's state folder, of the cluster engines' records and logs.
CLUSTER_STATE = "cluster"


def node_name(labels: Mapping[str, str], hostname: str | None = None) -> str:
    """The name zoo shows for a node: its ``zoo.node`` label, else its host name."""
    name = labels.get(NAME_LABEL, "").strip()
    return name or hostname or socket.gethostname()


def node_host(labels: Mapping[str, str], hostname: str | None = None) -> Host:
    """This node's host profile, named after the node."""
    from zoo import config
    from zoo.host import load_host_profile, opt_in_from_env, this_machine

    # The opt-ins this node's user chose: $ZOO_ENGINE_OPT_IN, else the settings file's list.
    opt_in = [*opt_in_from_env(), *(config.opt_ins().value or ())]
    declared = labels.get(PROFILE_LABEL, "").strip()
    if declared:
        try:
            host = load_host_profile(declared).with_opt_in(opt_in)
        except UsageError as error:
            raise UsageError(f"label {PROFILE_LABEL}={declared}: {error}") from None
    else:
        host = this_machine(opt_in)
    return replace(host, name=node_name(labels, hostname))


def report(labels: Mapping[str, str]) -> dict[str, Any]:
    """What ``zoo cluster status`` shows of this node: profile, engines ready, models cached."""
    from zoo import launch
    from zoo.resolve import engine_environment, engine_here
    from zoo.runtime.envs import env_status

    host = node_host(labels)
    engines = launch._engines()
    ready = []
    for name, engine in sorted(engines.items()):
        with contextlib.suppress(Exception):  # one broken plugin must not hide the node
            if engine_here(engine, host).ok and env_status(engine_environment(engine, host)).ready:
                ready.append(name)
    try:
        models = launch.downloaded_families(launch._catalog(), launch._hubs())
    except Exception:  # a catalog that does not load here is reported by planning
        models = []
    return {"host": host.to_json(), "engines_ready": ready, "models": models}


def plan_here(
    request: Request, options: LaunchOptions, labels: Mapping[str, str], address: str
) -> Plan:
    """The plan for ``request`` on this node, its engine bound to the node's cluster address.

    The node's own catalog, engines, hubs and engine environments decide, exactly as
    ``zoo launch`` on the node would; a ZooError says why nothing fits here.
    """
    from zoo import launch

    return launch.plan(request, replace(options, host=address, detach=True), host=node_host(labels))


def use_cluster_state() -> None:
    """Keep the records and logs of the engines this process supervises for the cluster out
    of the node's own state: ``zoo ps`` on the node lists its local instances only (the
    cluster's are Ray's to list), and a local ``zoo stop`` cannot end an engine under its
    actor. For an actor's worker process only (it changes this process's environment)."""
    import os

    from zoo import paths

    os.environ["ZOO_STATE_DIR"] = str(paths.state_dir() / CLUSTER_STATE)


def prepare(
    plan: Plan, say: Callable[[str], None], *, download: bool = True
) -> tuple[FetchResult, ModelFiles]:
    """Set the node up for ``plan``: its files into this node's hub cache (or found there),
    its engine environment built here. What the engine actor does before it starts the
    engine, and what a download from the gateway asks of the node, so both agree.
    ``download=False``: files not cached here are an error, not a download."""
    from zoo import launch
    from zoo.errors import NotFoundError
    from zoo.hubs.download import cached_plan

    if not download and cached_plan(plan, hubs=launch._hubs()) is None:
        raise NotFoundError(
            f"{plan.family.name} is not downloaded on node {plan.host_name}, and downloads "
            "were not allowed for it",
            hint="list it in the gateway config, start zoo serve with --allow-download, or "
            "`zoo download` it on that node",
        )
    fetched = launch.fetch(plan, progress=False)
    files = launch.model_files(plan, fetched)
    launch.prepare_environment(plan, say)
    return fetched, files
