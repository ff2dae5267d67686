"""How long a hub request may wait: to connect, and for each answer (``ZOO_HUB_TIMEOUT``).

Without a read timeout, a server that accepts the connection and never answers hangs
``zoo download`` forever (huggingface_hub sends its API calls with no timeout at all). Every
hub asks ``hub_timeouts()`` at request time and hands the numbers to its client in the
client's own terms.

``ZOO_HUB_TIMEOUT=<seconds>`` sets the read timeout (and caps the connect timeout) of every hub
request, overriding the clients' own defaults; unset, reads wait up to 60 s (a slow CDN can
take that long to start a multi-GB body) and connections up to 10 s, and timeouts the clients
already set themselves are kept.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from zoo.hubs.base import HubError

ENV = "ZOO_HUB_TIMEOUT"
CONNECT_SECONDS = 10.0
READ_SECONDS = 60.0


@dataclass(frozen=True)
class Timeouts:
    connect: float
    read: float
    # True when the user set ZOO_HUB_TIMEOUT: then it wins over a client's own timeouts.
    explicit: bool = False

    def describe(self) -> str:
        """For error lines: which setting to change."""
        return f"{self.read:g} s ({ENV})" if self.explicit else f"{self.read:g} s (set {ENV})"


def hub_timeouts() -> Timeouts:
    """The timeouts for hub requests now (the environment is read on every call)."""
    raw = os.environ.get(ENV, "").strip()
    if not raw:
        return Timeouts(CONNECT_SECONDS, READ_SECONDS)
    try:
        seconds = float(raw)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise HubError(f"{ENV} must be a number of seconds above 0, not {raw!r}")
    return Timeouts(min(CONNECT_SECONDS, seconds), seconds, explicit=True)
