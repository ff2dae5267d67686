"""Ids, file names and templates that would write outside the cache are refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zoo.hubs.base import FetchRequest, UnsafePathError
from zoo.hubs.huggingface import HuggingFaceHub
from zoo.hubs.modelscope import ModelScopeHub
from zoo.hubs.safety import check_relative_path, check_repo_id, check_revision, safe_join
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
    with pytest.raises(UnsafePathError, match="not a plain"):
        check_repo_id(repo, "huggingface")


def test_plain_names_pass() -> None:
    assert check_repo_id("unsloth/Seed-OSS-36B-Instruct-GGUF", "huggingface")
    # Hugging Face's naming is exactly org/name; a plugin's hub may use a plain name.
    assert check_repo_id("tinymodel", "mirror") == "tinymodel"
    with pytest.raises(UnsafePathError, match="expected 'org/name'"):
        check_repo_id("tinymodel", "huggingface")
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


BAD_REVISIONS = [
    "../x",
    "main/../../x",
    "a..b",
    "/abs",
    "a\\b",
    "ma\0in",
    "main\n",
    "feature/",
    "feature//x",
    "x/.hidden",
    "",
    "m" * 201,
]


@pytest.mark.parametrize("revision", BAD_REVISIONS)
def test_escaping_revisions_are_rejected(revision: str) -> None:
    with pytest.raises(UnsafePathError, match="revision"):
        check_revision(revision)


@pytest.mark.parametrize(
    "revision", ["main", "master", "v1.0", "feature/x", "refs/pr/1", "0.1.2+local", "a" * 40]
)
def test_branches_tags_and_commits_pass(revision: str) -> None:
    assert check_revision(revision) == revision


def test_a_trailing_newline_is_not_part_of_a_plain_name() -> None:
    # Python's `$` matches before a final newline: these passed a `^...$` regex.
    with pytest.raises(UnsafePathError, match="line break"):
        check_repo_id("org/name\n")
    with pytest.raises(UnsafePathError, match="line break"):
        check_relative_path("x\n.gguf")
    with pytest.raises(UnsafePathError, match="line break"):
        check_relative_path("x.gguf\n")


HOSTILE_REVISION = "../../../../escaped"


def test_a_hostile_revision_never_reaches_the_hf_cache(hub_server: HubServer) -> None:
    # The server plays along: it answers a commit for the hostile branch name, so only
    # zoo's check stands between it and refs/../../../../escaped.
    hub_server.add_repo("org/evil", {"model.gguf": b"x" * 10}, revisions=("main", HOSTILE_REVISION))
    hub = HuggingFaceHub()
    escaped = hub.storage("org/evil") / "refs" / HOSTILE_REVISION
    with pytest.raises(UnsafePathError, match="revision"):
        hub.fetch(FetchRequest("org/evil", HOSTILE_REVISION, files=("model.gguf",)))
    assert not escaped.exists()
    assert hub_server.requests == []


def test_a_hostile_revision_never_reaches_the_modelscope_cache(hub_server: HubServer) -> None:
    hub_server.add_repo(
        "org/evil", {"model.gguf": b"x" * 10}, revisions=("master", HOSTILE_REVISION)
    )
    hub = ModelScopeHub()
    escaped = hub.storage("org/evil") / "snapshots" / HOSTILE_REVISION / "model.gguf"
    with pytest.raises(UnsafePathError, match="revision"):
        hub.fetch(FetchRequest("org/evil", HOSTILE_REVISION, files=("model.gguf",)))
    assert not escaped.exists()
    assert hub_server.requests == []
    with pytest.raises(UnsafePathError, match="revision"):
        hub.cached(FetchRequest("org/evil", "main/../..", files=("model.gguf",)))


@pytest.mark.parametrize("hub", ["huggingface", "modelscope"])
def test_a_slashed_branch_downloads_and_is_reused(hub_server: HubServer, hub: str) -> None:
    from zoo.hubs.download import fetch_plan

    hub_server.add_repo(
        "org/branchy", {"toy-Q4_0.gguf": b"weights" * 100}, revisions=("main", "feature/x")
    )
    source = {"model_id": "org/branchy", "revision": "feature/x", "file": "toy-{quantization}.gguf"}
    hubs = {"huggingface": HuggingFaceHub(), "modelscope": ModelScopeHub()}
    result = fetch_plan(make_plan({hub: source}), progress=False, hubs=hubs)
    assert result.files[0].read_bytes() == b"weights" * 100
    if hub == "huggingface":
        # The branch's commit is kept where the client keeps it: refs/feature/x.
        ref = HuggingFaceHub().storage("org/branchy") / "refs" / "feature" / "x"
        assert ref.read_text() == hub_server.repos["org/branchy"].commit
    else:
        assert result.root.relative_to(ModelScopeHub().storage("org/branchy")).as_posix() == (
            "snapshots/feature/x"
        )
    hub_server.reset_counters()
    again = fetch_plan(make_plan({hub: source}), progress=False, hubs=hubs)
    assert again.files == result.files and again.reason.endswith("already in its cache")
    assert hub_server.requests == []


def test_the_hf_client_itself_fetches_a_slashed_branch(hub_server: HubServer) -> None:
    # huggingface_hub sends the branch as one quoted path segment (feature%2Fx): the test
    # server must read it as such, or the test above would pass against a server that lies.
    from huggingface_hub import hf_hub_download

    hub_server.add_repo("org/branchy", {"config.json": "{}"}, revisions=("main", "feature/x"))
    path = hf_hub_download(
        "org/branchy",
        "config.json",
        revision="feature/x",
        endpoint=hub_server.url,
        cache_dir=str(HuggingFaceHub().cache_root()),
    )
    assert Path(path).read_text() == "{}"
    assert any(
        "/revision/feature%2Fx" in r or "/resolve/feature%2Fx/" in r for r in hub_server.requests
    )
