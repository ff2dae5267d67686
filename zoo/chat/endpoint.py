"""Where ``zoo run`` talks to the model: a running instance, the gateway, or its own launch.

In that order: an instance of the model that ``zoo ps`` lists as running and that answers
(one with a key only when ``$ZOO_API_KEY`` is set: an instance ``zoo serve`` or another
``zoo run`` started keeps its private key), then ``zoo serve`` when it is up and lists the
model, otherwise the model is launched for this chat exactly as ``zoo launch`` would launch it
(the same plan), on a free loopback port with a key made for this chat (the engine gets it in
its environment, never in its argv), and tied to this process: ``open_endpoint``'s exit stops
it, and a zoo killed outright takes it along (the start-up watchdog stays armed).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from zoo.errors import UsageError

if TYPE_CHECKING:
    from zoo.catalog.model import Family
    from zoo.plan import Plan
    from zoo.resolve import Request
    from zoo.runtime.launcher import Running

Say = Callable[[str], None]
API_KEY_ENV = "ZOO_API_KEY"
EXIT_WAIT_S = 2.0


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Endpoint:
    """An OpenAI-compatible base URL (``.../v1``), the model name it serves, and its key."""

    base_url: str
    model: str
    family: Family
    how: str  # for /show: "instance 1a2b3c4d", "zoo serve", "launched for this chat"
    api_key: str | None = field(default=None, repr=False)
    running: Running | None = field(default=None, repr=False, compare=False)

    @property
    def launched(self) -> bool:
        return self.running is not None


@contextlib.contextmanager
def open_endpoint(request: Request, *, constrained: bool, say: Say = _stderr) -> Iterator[Endpoint]:
    """The endpoint to talk to ``request``'s model; what was launched is stopped on exit.

    ``constrained``: the user named an engine, quantization, format or size, so only an
    instance that matches the plan is reused, and the gateway (which chooses for itself) is not.
    """
    from zoo import kinds, launch
    from zoo.plan import LaunchOptions

    options = LaunchOptions(host="127.0.0.1", detach=True, api_key=secrets.token_urlsafe(24))
    plan = launch.plan(request, options)
    family = plan.family
    if family.kind != kinds.LLM:
        raise UsageError(
            f"{family.name} is {'an' if family.kind[:1] in 'aeiou' else 'a'} {family.kind} "
            "model: zoo run talks to language models",
            hint=f"serve it with `zoo launch {family.name}`",
        )
    found = _running_instance(plan, request, say=say)
    if found is None and not constrained:
        found = _gateway(family)
    if found is not None:
        yield found
        return
    with _launched(plan, say) as endpoint:
        yield endpoint


def _running_instance(plan: Plan, request: Request, *, say: Say) -> Endpoint | None:
    from zoo import launch
    from zoo.chat.client import ChatClient

    env_key = os.environ.get(API_KEY_ENV) or None
    # The launch's own rule for "this model runs" (family, and what the request named).
    for instance in launch.instances_of(plan, request):
        if instance.api_key and env_key is None:
            say(
                f"zoo run: instance {instance.id} of {instance.model} wants an API key "
                f"(set {API_KEY_ENV} to use it); starting another for this chat"
            )
            continue
        key = env_key if instance.api_key else None
        with ChatClient(instance.endpoint, instance.served_name, api_key=key) as client:
            if client.alive():
                return Endpoint(
                    base_url=instance.endpoint,
                    model=instance.served_name,
                    family=plan.family,
                    how=f"instance {instance.id} (running since zoo launch)",
                    api_key=key,
                )
    return None


def _gateway(family: Family) -> Endpoint | None:
    from zoo.chat.client import ChatClient
    from zoo.runtime.process import url_host
    from zoo.serve.server import running_gateway

    record = running_gateway()
    if record is None:
        return None
    base_url = f"http://{url_host(str(record['host']))}:{record['port']}/v1"
    key = os.environ.get(API_KEY_ENV) or None
    with ChatClient(base_url, family.name, api_key=key) as client:
        if not client.alive():  # not listed there (or a key is wanted): launch instead
            return None
    return Endpoint(
        base_url, family.name, family, how=f"zoo serve (pid {record['pid']})", api_key=key
    )


@contextlib.contextmanager
def _launched(plan: Plan, say: Say) -> Iterator[Endpoint]:
    from zoo import launch
    from zoo.runtime import launcher

    engines = launch._engines()
    if plan.engine not in engines:  # as zoo.launch.run says it
        from zoo.errors import NotFoundError

        raise NotFoundError(f"engine {plan.engine!r} is not installed")
    # The one line `zoo launch` says before a download, then that this instance is the chat's.
    say(launch.plan_line(plan, engines=engines))
    say(f"zoo run: starting {plan.family.name} for this chat; it stops when the chat ends")
    files = launch.model_files(plan, launch.fetch(plan))
    launch.prepare_environment(plan, say)
    running = launcher.start_instance(plan, engines[plan.engine], files, say=_quiet(say), tied=True)
    try:
        instance = running.instance
        yield Endpoint(
            base_url=instance.endpoint,
            model=instance.served_name,
            family=plan.family,
            how=f"instance {instance.id}, launched for this chat",
            api_key=plan.options.api_key,
            running=running,
        )
    finally:
        stop_launched(running)


def stop_launched(running: Running) -> None:
    """Stop a server this chat launched (its proxy too), and disarm its watchdogs."""
    from zoo.runtime import launcher

    try:
        launcher.stop(running.instance, grace=5, reap=running.server, reap_proxy=running.proxy)
    finally:
        for guard in running.guards:
            guard.close()


def server_exited(endpoint: Endpoint) -> str | None:
    """Why the server this chat launched is gone (its status and last log lines), or None."""
    import subprocess

    running = endpoint.running
    if running is None or running.server is None:
        return None
    try:
        # Asked right after the connection broke: a killed engine's sockets close before its
        # process is done exiting, so give it a moment to be seen gone.
        running.server.wait(timeout=EXIT_WAIT_S)
    except subprocess.TimeoutExpired:
        return None
    return (
        f"the {running.instance.engine} server exited with status {running.server.returncode} "
        f"(its log: {running.instance.log_path})"
    )


def _quiet(say: Say) -> Say:
    """The launcher's start-up lines, without the full server command (it is in the log)."""

    def said(line: str) -> None:
        if not line.startswith("Starting "):
            say(line)

    return said
