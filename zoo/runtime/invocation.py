"""From a Plan to the server command that runs: one function for the dry run and the launch.

``invocation(plan, engine, files, ...)`` builds the ``LaunchContext`` from the plan alone, asks
the engine for its ``ServerCommand`` and adds the environment zoo gives every server. Where the
engine cannot check an API key or serve the model under its name, zoo's proxy takes the public
address and the engine listens on a private loopback port; the command is built a second time
for that address. Embedding models and rerankers always get the proxy (``pooling``): it makes
their answers the same on every engine (``zoo.serve.pooling``), as ``zoo serve`` does. The
dry run calls the same function with the files not yet downloaded, so
what it prints (argv and environment, the key hidden) is what runs.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from zoo import kinds
from zoo.engine import LaunchContext, ServerCommand
from zoo.errors import UsageError

if TYPE_CHECKING:
    from zoo.engine import Engine
    from zoo.plan import Plan

# Engine flags that would move the server away from the address zoo records, checks and warns
# about; ``zoo launch --host/--port`` set them instead.
_ADDRESS_FLAGS = ("--host", "--port", "--bind", "--listen")
REDACTED = "***"
# Given to every server: the files are downloaded already, and nothing reports home.
BASE_ENV: Mapping[str, str] = {"HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}


@dataclass(frozen=True)
class ModelFiles:
    """What the engine is given: the model (a folder, or the first GGUF file) and a projector."""

    model_path: str
    projector_path: str | None = None


@dataclass(frozen=True)
class Invocation:
    """The engine's server command for a plan, and where it and clients connect."""

    command: ServerCommand
    context: LaunchContext
    public_host: str
    public_port: int
    engine_port: int
    proxied: bool
    # What clients must send (zoo's proxy checks it when proxied); never printed.
    api_key: str | None = field(repr=False)
    # What the server's environment gets on top of zoo's own: ``BASE_ENV``, the engine's
    # ``ServerCommand.env`` and, for an engine running in its own venv, a PYTHONPATH of
    # ``runner`` (the folder ``zoo.runtime.envs.runner_path`` links the plugin into).
    env: Mapping[str, str] = field(default_factory=dict, repr=False)
    runner: Path | None = None
    # zoo's proxy as it runs when ``proxied`` (its key comes in its environment, never here).
    proxy_argv: tuple[str, ...] = ()

    @property
    def engine_api_key(self) -> str | None:
        """The key the engine itself checks (readiness probes send it), if any."""
        return self.context.api_key

    @property
    def request_model(self) -> str | None:
        """The model name requests to the engine carry ("" or None: none needed)."""
        if self.command.request_model is not None:
            return self.command.request_model
        return self.context.served_name

    def shown_argv(self) -> tuple[str, ...]:
        """The argv with the API key (if an engine put it there) replaced by ``***``."""
        return redact(self.command.argv, self.api_key)

    def shown_env(self) -> tuple[tuple[str, str], ...]:
        """The added environment, sorted, with the API key replaced by ``***``."""
        names = sorted(self.env)
        return tuple(zip(names, redact([self.env[n] for n in names], self.api_key), strict=True))


def _as_word(secret: str) -> re.Pattern[str]:
    """``secret`` wherever it is not part of a longer word (``KEY``, ``--api-key=KEY``,
    ``a,KEY``, ``{"key": "KEY"}``): a short key such as ``k`` is not found inside ``ok``."""
    before = "(?<![A-Za-z0-9])" if secret[0].isalnum() else ""
    after = "(?![A-Za-z0-9])" if secret[-1].isalnum() else ""
    return re.compile(before + re.escape(secret) + after)


def redact(argv: tuple[str, ...] | list[str], secret: str | None) -> tuple[str, ...]:
    if not secret:
        return tuple(argv)
    word = _as_word(secret)
    return tuple(word.sub(REDACTED, arg) for arg in argv)


def holds(argv: tuple[str, ...] | list[str], secret: str | None) -> bool:
    """Whether ``secret`` is a word of one of ``argv``'s arguments."""
    return bool(secret) and redact(argv, secret) != tuple(argv)


def needs_proxy(command: ServerCommand, api_key: str | None) -> bool:
    """A proxy is needed to rename the model in requests, or to check a key for the engine."""
    return command.request_model is not None or (bool(api_key) and not command.api_key_enforced)


def proxy_argv(
    plan: Plan,
    *,
    host: str,
    port: int,
    engine_port: int,
    served_name: str,
    request_model: str | None,
) -> tuple[str, ...]:
    """``python -m zoo.serve.single`` for this plan: the addresses, the names and, for an
    embedding model or a reranker, the facts its body checks and answer shaping need."""
    argv = [sys.executable, "-m", "zoo.serve.single", "--host", host, "--port", str(port)]
    argv += ["--upstream-port", str(engine_port), "--served-name", served_name]
    if request_model is not None:
        argv += ["--request-model", request_model]
    family = plan.family
    argv += ["--kind", family.kind]
    if plan.context_length:
        argv += ["--context-length", str(plan.context_length)]
    facts = family.embedding
    if family.kind == kinds.EMBEDDING and facts is not None:
        argv += ["--dimensions", str(facts.dimensions)]
        if facts.matryoshka_dimensions:
            sizes = ",".join(map(str, facts.matryoshka_dimensions))
            argv += ["--matryoshka-dimensions", sizes]
        if facts.normalized is False:
            argv.append("--unnormalized")
    limits = facts if family.kind == kinds.EMBEDDING else family.rerank
    if limits is not None and not limits.truncate:
        argv.append("--no-truncate")  # the spec's truncate: false
    return tuple(argv)


def check_engine_args(args: tuple[str, ...]) -> None:
    """Refuse engine arguments that would silently move the server off the recorded address."""
    for arg in args:
        flag = arg.split("=", 1)[0]
        # Python's argparse takes any unambiguous prefix (--hos for --host): so do we.
        if len(flag) > 2 and any(known.startswith(flag) for known in _ADDRESS_FLAGS):
            raise UsageError(
                f"the engine argument {flag} would override the address zoo records",
                hint="use zoo launch --host/--port instead",
            )


def invocation(
    plan: Plan,
    engine: Engine,
    files: ModelFiles,
    *,
    port: int,
    engine_port: int = 0,
    pooling: bool = True,
) -> Invocation:
    """The server command ``plan`` leads to on ``files``, for clients on ``port``.

    ``engine_port`` is the private port the engine takes when a proxy stands in front of it
    (0 in a dry run: chosen at launch). The engine is given the key only if it checks keys,
    and keeps it out of its argv (which every
    user of the machine can read): an engine that puts it there is run without it, behind the
    proxy. Everything else comes from the plan. A plugin's ``server_command`` that raises or
    returns something else is reported by the guard ``zoo.plugins`` puts on registered engines
    (one line naming the plugin). ``pooling=False`` (``zoo serve``, which shapes embeddings
    and rerank answers itself) puts no proxy before an embedding model or reranker that needs
    none for its key or name.
    """
    options = plan.options
    check_engine_args(options.extra_args)
    api_key = options.api_key or None
    context = LaunchContext(
        family=plan.family,
        spec=plan.spec,
        quantization=plan.quantization,
        model_path=files.model_path,
        served_name=options.served_name or plan.family.name,
        host=options.host,
        port=port,
        context_length=plan.context_length or None,
        api_key=api_key,
        dtype=options.dtype,
        tensor_parallel_size=options.tensor_parallel_size,
        gpu_memory_fraction=options.gpu_memory_fraction,
        extra_args=options.extra_args,
        python=plan.python,
        device=plan.device,
        variant=plan.variant,
        kv_cache_bytes=plan.memory.kv_cache_bytes or None,
        threads=plan.threads,
        projector_path=files.projector_path,
    )
    command = engine.server_command(context)
    leaked = holds(command.argv, api_key)
    pooled = pooling and plan.family.kind != kinds.LLM
    # Behind the pooling proxy, the proxy checks the key (one place answers 401 for every route).
    checks_key = command.api_key_enforced and not leaked and not pooled
    proxied = needs_proxy(command, api_key) or leaked or pooled
    if proxied:
        # The engine listens privately on loopback; the proxy takes the public address.
        context = replace(
            context, host="127.0.0.1", port=engine_port, api_key=api_key if checks_key else None
        )
        command = engine.server_command(context)
    elif api_key and not checks_key:
        context = replace(context, api_key=None)
        command = engine.server_command(context)
    runner = None
    if plan.python != sys.executable:
        from zoo.runtime.envs import runner_dir

        runner = runner_dir(engine)
    env = {**BASE_ENV, **command.env}
    if runner is not None:
        env["PYTHONPATH"] = str(runner)
    shown_proxy: tuple[str, ...] = ()
    if proxied:
        shown_proxy = proxy_argv(
            plan,
            host=options.host,
            port=port,
            engine_port=engine_port,
            served_name=context.served_name,
            request_model=command.request_model,
        )
    return Invocation(
        command=command,
        context=context,
        public_host=options.host,
        public_port=port,
        engine_port=engine_port if proxied else port,
        proxied=proxied,
        api_key=api_key,
        env=env,
        runner=runner,
        proxy_argv=shown_proxy,
    )
