"""Which Ray cluster ``--cluster`` means: the flag, else ``$ZOO_CLUSTER``, else the settings
file's ``cluster`` key. The one rule, shared by every command that can use a cluster."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from zoo.errors import UsageError

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
        and port.isdigit()
        and 0 < int(port) < 65536
        and host != "ray://"
    ):
        return value
    raise UsageError(
        f"{source}: {text!r} is not a Ray cluster address",
        hint="give HOST:PORT of the head node (as `ray start --head` prints it) or ray://HOST:PORT",
    )


def cluster_address(flag: str | None, *, environ: Mapping[str, str] | None = None) -> str | None:
    """The cluster to use, checked, or None: ``flag`` wins over ``$ZOO_CLUSTER``, which wins
    over the settings file's ``cluster``."""
    env = os.environ if environ is None else environ
    if flag is not None:
        return check_address(flag)
    if env.get(CLUSTER_ENV, "").strip():
        return check_address(env[CLUSTER_ENV], source=f"${CLUSTER_ENV}")
    from zoo import config

    setting = config.load(environ=environ).get("cluster")
    if setting is None:
        return None
    return check_address(str(setting.value), source=setting.source)
