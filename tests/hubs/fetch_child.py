"""Run by the kill -9 and concurrency tests: fetch one file in a separate process."""

from __future__ import annotations

import sys

from zoo.hubs.base import FetchRequest
from zoo.hubs.huggingface import HuggingFaceHub
from zoo.hubs.modelscope import ModelScopeHub

if __name__ == "__main__":
    hub_name, repo, path = sys.argv[1:4]
    hub = {"huggingface": HuggingFaceHub, "modelscope": ModelScopeHub}[hub_name]()
    result = hub.fetch(FetchRequest(repo, files=(path,)))
    print(result.files[0])
