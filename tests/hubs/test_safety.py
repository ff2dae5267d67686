"""Ids, file names and templates that would write outside the cache are refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zoo.hubs.base import FetchRequest, UnsafePathError
from zoo.hubs.huggingface import HuggingFaceHub
from zoo.hubs.safety import check_relative_path, check_repo_id, safe_join
from zoo.testing.hubserver import HubServer

from .helpers import make_plan

BAD_PATHS = ["../x.gguf", "a/../../x", "/etc/passwd", "a\\..\\b", "a\0b", "C:/x", "", "a//b", "./a"]
BAD_IDS = ["../evil", "org/../x", "org/name/extra", "/abs", "org\\name", "org/na\0me", "..", "org/"]


@pytest.mark.parametrize("path", BAD_PATHS)
def test_escaping_file_names_are_rejected(path: str) -> None:
    with pytest.raises(UnsafePathError, match="outside the cache"):
        check_relative_path(path)


@pytest.mark.parametrize("repo", BAD_IDS)
def test_escaping_repository_ids_are_rejected(repo: str) -> None:
    with pytest.raises(UnsafePathError, match="not a plain"):
        check_repo_id(repo)


def test_plain_names_pass() -> None:
    assert check_repo_id("unsloth/Seed-OSS-36B-Instruct-GGUF")
    assert check_relative_path("BF16/Seed-OSS-36B-Instruct-BF16-00001-of-00002.gguf")


@given(st.text(min_size=1, max_size=40))
def test_any_accepted_path_stays_inside(
    tmp_path_factory: pytest.TempPathFactory, text: str
) -> None:
    root = Path("/srv/cache/root")
    try:
        joined = safe_join(root, text)
    except UnsafePathError:
        return
    assert root in joined.parents


def test_a_template_that_escapes_fails_before_any_request(hub_server: HubServer) -> None:
    from zoo.hubs.download import fetch_plan

    plan = make_plan({"huggingface": {"model_id": "org/m", "file": "../../{quantization}.gguf"}})
    with pytest.raises(UnsafePathError, match=r"\.\./\.\./Q4_0\.gguf"):
        fetch_plan(plan, progress=False, hubs={"huggingface": HuggingFaceHub()})
    assert not [r for r in hub_server.requests if "resolve" in r]


def test_server_returned_paths_that_escape_are_rejected(hub_server: HubServer) -> None:
    hub_server.add_repo("org/evil", {"model.gguf": b"x" * 10})
    hub_server.listing_overrides["org/evil"] = ["../../../home/user/.bashrc"]
    with pytest.raises(UnsafePathError, match="from the server"):
        HuggingFaceHub().fetch(FetchRequest("org/evil", files=("model.gguf",)))
