"""The built-in hubs, registered through the same hook a third-party hub plugin uses."""

from __future__ import annotations

from zoo.hookspecs import hookimpl
from zoo.hubs.base import Hub


@hookimpl
def zoo_register_hubs() -> list[Hub]:
    from zoo.hubs.huggingface import HuggingFaceHub
    from zoo.hubs.modelscope import ModelScopeHub
    from zoo.hubs.pypi import PyPIHub

    return [HuggingFaceHub(), ModelScopeHub(), PyPIHub()]
