"""Which Ray cluster ``--cluster`` means: the flag, else ``$ZOO_CLUSTER``, else the settings
file's ``cluster`` key. The one rule, shared by every command that can use a cluster."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

from zoo.errors import UsageError

if TYPE_CHECKING:
    from zoo.config import Config, Setting

CLUSTER_ENV = "ZOO_CLUSTER"
# "HOST:PORT" (the head's GCS address, as `ray start --head` prints it) or "ray://HOST:PORT"
# (Ray Client). A host is a name, an IPv4 address or a bracketed IPv6 address.
_ADDRESS = re.compile(r"^(ray://)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]{0,252}))$")


def check_address(text: str, *, source: str = "--cluster") -> str:
    """``text`` if it names a cluster as ``HOST:PORT`` or ``ray://HOST:PORT``, else UsageError."""
    value = text.strip()
    host, sep, port = value.rpartition(":")
    if (
        sep
        and _ADDRESS.match(host)
        and port.isascii()
        and port.isdigit()
        and 0 < int(port) < 65536
        and host != "ray://"
    ):
        return value
    raise UsageError(
        f"{source}: {text!r} is not a Ray cluster address",
        hint="give HOST:PORT of the head node (as `ray start --head` prints it) or ray://HOST:PORT",
    )


def cluster_setting(
    flag: str | None,
    config: Config | None = None,
    environ: Mapping[str, str] | None = None,
) -> Setting:
    """The cluster to use and where that came from (value None: none), checked: ``flag``
    wins over ``$ZOO_CLUSTER``, which wins over the settings file's ``cluster``."""
    from zoo import config as settings

    env = os.environ if environ is None else environ
    if flag is not None:
        return settings.Setting(check_address(flag), "flag")
    if env.get(CLUSTER_ENV, "").strip():
        source = f"env {CLUSTER_ENV}"
        return settings.Setting(check_address(env[CLUSTER_ENV], source=f"${CLUSTER_ENV}"), source)
    found = (config or settings.load(environ=environ)).get("cluster")
    if found is None:
        return settings.Setting(None, "default")
    return settings.Setting(check_address(str(found.value), source=found.source), found.source)


def cluster_address(flag: str | None, *, environ: Mapping[str, str] | None = None) -> str | None:
    """The cluster to use, checked, or None (``cluster_setting``'s value)."""
    value = cluster_setting(flag, environ=environ).value
    return str(value) if value is not None else None
