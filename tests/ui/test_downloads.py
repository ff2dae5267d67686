"""Downloads from the web UI, for real: a real gateway, the real huggingface_hub client and
zoo's transfer fetching from the local hub server, a browser session posting with its CSRF
token and polling the job's progress."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.serve.gateway_helpers import Running, running_gateway, write_catalog
from zoo.catalog.catalog import Catalog
from zoo.runtime import process
from zoo.serve.config import ApiKey
from zoo.serve.types import ModelEntry
from zoo.serve.ui.downloads import Downloads
from zoo.testing.hubserver import GeneratedFile, HubServer

from .ui_helpers import Browser

KEY = "dl-test-key-0123456789"
ALPHA_ONLY = "dl-alpha-only-0123456789"
MB = 1024 * 1024
SIZE = 4 * MB + 123  # four full transfer chunks and a bit: several progress reports
ENTRIES = {
    "alpha": ModelEntry(name="alpha", family="alpha", aliases=("first",)),
    "beta": ModelEntry(name="beta", family="beta"),
    "gamma": ModelEntry(name="gamma", family="gamma"),  # its repository is not on the hub
}


@pytest.fixture
def catalog(tmp_path: Path, hub_server: HubServer) -> Catalog:
    for seed, name in enumerate(["alpha", "beta"]):
        hub_server.add_repo(f"test/{name}-GGUF", {f"{name}.Q8_0.gguf": GeneratedFile(SIZE, seed)})
    return write_catalog(tmp_path / "specs", {"alpha": False, "beta": False, "gamma": False})


def _serve(catalog: Catalog) -> Any:
    # No --allow-download: nothing downloads on a request; the UI's button is the download.
    keys = (ApiKey(KEY), ApiKey(ALPHA_ONLY, models=("alpha",)))
    return running_gateway(catalog, ENTRIES, keys=keys, allow_download=False)


@pytest.fixture
def gateway(catalog: Catalog) -> Iterator[Running]:
    with _serve(catalog) as running:
        yield running


class Session(Browser):
    """A logged-in browser whose posts carry its session's CSRF token."""

    def __init__(self, url: str, key: str) -> None:
        super().__init__(url)
        assert self.login(key).status_code == 303
        self.token = self._token()

    def _token(self) -> str:
        # Every page carries the session's one token: take it from the first that renders
        # (the pages are written by several hands at once; any of them will do).
        for path in ("/", "/ui/playground", "/ui/metrics", "/ui/running"):
            if self.page(path).status_code == 200:
                return self.csrf(path)
        raise AssertionError("no UI page renders")

    def post(self, path: str, body: object, *, csrf: str | None = None) -> httpx.Response:
        return super().post(path, body, csrf=self.token if csrf is None else csrf)


def logged_in(url: str, key: str = KEY) -> Session:
    return Session(url, key)


def follow(browser: Session, job: str, timeout: float = 60) -> list[dict[str, Any]]:
    """Every state the job's route answers until it has finished."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = browser.page(f"/ui/api/downloads/{job}")
        assert answer.status_code == 200, answer.text
        seen.append(answer.json())
        if seen[-1]["state"] != "running":
            return seen
        time.sleep(0.03)
    raise AssertionError(f"the download did not finish: {seen[-1]}")


def test_progress_advances_and_ends_with_the_files_sizes(
    gateway: Running, hub_server: HubServer
) -> None:
    hub_server.fault("slow", "*.gguf", delay=0.02)  # about 1.3 s for the file
    browser = logged_in(gateway.url)
    assert not gateway.gateway.backend.downloaded(ENTRIES["alpha"])
    started = browser.post("/ui/api/download", {"model": "alpha"})
    assert started.status_code == 202, started.text
    body = started.json()
    assert body["model"] == "alpha" and body["state"] == "running"
    seen = follow(browser, body["job"])
    running = [s for s in seen if s["state"] == "running"]
    # The size is known before the bytes (the hub's listing), and the bytes climb to it.
    assert any(0 < s["done_bytes"] < SIZE for s in running), running
    for state in running:
        if state["files_total"] == 0:  # the hub's listing has not come yet
            assert state["done_bytes"] == 0 and state["total_bytes"] is None
        else:
            assert state["total_bytes"] == SIZE and state["files_total"] == 1
            assert state["files_done"] == (state["done_bytes"] == SIZE)
            assert state["error"] is None
    # The first MiB takes about 0.3 s to arrive: the size was shown while nothing had.
    assert any(s["done_bytes"] == 0 and s["total_bytes"] == SIZE for s in running), running
    done_bytes = [s["done_bytes"] for s in seen]
    assert done_bytes == sorted(done_bytes)
    assert seen[-1] == {
        "job": body["job"],
        "model": "alpha",
        "state": "done",
        "done_bytes": SIZE,
        "total_bytes": SIZE,
        "files_done": 1,
        "files_total": 1,
        "error": None,
    }
    # Really in the hub cache, where a launch finds it; fetched once, nothing else.
    assert gateway.gateway.backend.downloaded(ENTRIES["alpha"])
    assert dict(hub_server.bytes_sent) == {"test/alpha-GGUF/alpha.Q8_0.gguf": SIZE}
    listed = browser.page("/ui/api/downloads").json()
    assert listed == [seen[-1]]


def test_an_already_downloaded_model_answers_done_without_a_download(
    gateway: Running, hub_server: HubServer
) -> None:
    browser = logged_in(gateway.url)
    first = browser.post("/ui/api/download", {"model": "beta"}).json()
    assert follow(browser, first["job"])[-1]["state"] == "done"
    hub_server.reset_counters()
    again = browser.post("/ui/api/download", {"model": "beta"})
    assert again.status_code == 200
    body = again.json()
    assert body["state"] == "done" and body["job"] != first["job"]
    assert body["done_bytes"] == body["total_bytes"] == SIZE and body["files_done"] == 1
    assert hub_server.total_bytes_sent == 0 and hub_server.requests == []


def test_the_same_model_twice_is_one_job(gateway: Running, hub_server: HubServer) -> None:
    hub_server.fault("slow", "*.gguf", delay=0.02)
    browser = logged_in(gateway.url)
    first = browser.post("/ui/api/download", {"model": "alpha"})
    second = browser.post("/ui/api/download", {"model": "first"})  # its alias
    assert first.status_code == second.status_code == 202
    assert first.json()["job"] == second.json()["job"]
    assert follow(browser, first.json()["job"])[-1]["state"] == "done"
    assert [job["model"] for job in browser.page("/ui/api/downloads").json()] == ["alpha"]
    assert hub_server.total_bytes_sent == SIZE  # downloaded once


def test_a_key_sees_and_starts_only_the_downloads_of_its_models(
    gateway: Running, hub_server: HubServer
) -> None:
    narrow = logged_in(gateway.url, ALPHA_ONLY)
    refused = narrow.post("/ui/api/download", {"model": "beta"})
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "model_not_allowed"
    assert hub_server.total_bytes_sent == 0 and narrow.page("/ui/api/downloads").json() == []
    # Another key's download of beta is not shown to it, not even by its id.
    full = logged_in(gateway.url)
    job = full.post("/ui/api/download", {"model": "beta"}).json()["job"]
    assert follow(full, job)[-1]["state"] == "done"
    assert narrow.page("/ui/api/downloads").json() == []
    hidden = narrow.page(f"/ui/api/downloads/{job}")
    assert hidden.status_code == 404
    assert hidden.json()["error"]["code"] == "download_not_found"
    assert [j["job"] for j in full.page("/ui/api/downloads").json()] == [job]


def test_a_state_change_without_the_csrf_token_is_refused(
    gateway: Running, hub_server: HubServer
) -> None:
    browser = logged_in(gateway.url)
    bare = browser.client.post("/ui/api/download", json={"model": "alpha"})
    assert bare.status_code == 403
    assert bare.json()["error"]["code"] == "browser_request_refused"
    forged = browser.post("/ui/api/download", {"model": "alpha"}, csrf="forged")
    assert forged.status_code == 403
    assert browser.page("/ui/api/downloads").json() == []
    assert hub_server.total_bytes_sent == 0


def test_a_missing_repository_fails_with_one_line(gateway: Running) -> None:
    browser = logged_in(gateway.url)
    started = browser.post("/ui/api/download", {"model": "gamma"})
    assert started.status_code == 202
    last = follow(browser, started.json()["job"])[-1]
    assert last["state"] == "failed" and last["done_bytes"] == 0
    error = last["error"]
    assert isinstance(error, str) and "\n" not in error and "Traceback" not in error
    assert error.startswith("huggingface: ") and "test/gamma-GGUF" in error, error


def test_an_unreachable_hub_fails_with_one_line(
    catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    closed = f"http://127.0.0.1:{process.free_port()}"  # nothing listens there
    monkeypatch.setenv("HF_ENDPOINT", closed)
    with _serve(catalog) as gateway:
        browser = logged_in(gateway.url)
        started = browser.post("/ui/api/download", {"model": "alpha"})
        assert started.status_code == 202
        last = follow(browser, started.json()["job"])[-1]
    assert last["state"] == "failed" and last["done_bytes"] == 0
    error = last["error"]
    assert isinstance(error, str) and "\n" not in error and "Traceback" not in error
    assert error.startswith("no hub can serve alpha: ") and f"unreachable at {closed}" in error


def test_only_the_last_finished_jobs_are_kept() -> None:
    downloads = Downloads(keep=3)
    entries = [ModelEntry(name=f"m{i}", family="f") for i in range(6)]
    running, _ = downloads.begin(entries[0])
    for entry in entries[1:]:
        job, created = downloads.begin(entry)
        assert created
        job.fail("no")
    again, created = downloads.begin(entries[0])
    assert again is running and not created
    # The running job stays; of the five finished ones, the three newest.
    assert [j.entry.name for j in downloads.jobs()] == ["m0", "m3", "m4", "m5"]


def test_a_failed_download_can_be_run_again(gateway: Running, hub_server: HubServer) -> None:
    browser = logged_in(gateway.url)
    # The connection drops after 2 MiB, then at once on every retry: the transfer gives up.
    hub_server.fault("drop", "*.gguf", after_bytes=2 * MB, times=1)
    hub_server.fault("drop", "*.gguf", after_bytes=0)
    failed = follow(browser, browser.post("/ui/api/download", {"model": "alpha"}).json()["job"])
    error = failed[-1]["error"]
    assert failed[-1]["state"] == "failed" and failed[-1]["done_bytes"] == 2 * MB
    assert error.startswith("huggingface: alpha.Q8_0.gguf: download kept failing after 2097152")
    assert "\n" not in error and "run again" in error
    assert not gateway.gateway.backend.downloaded(ENTRIES["alpha"])
    # The hub is back: a new job continues where the first stopped and completes the file.
    hub_server.clear_faults()
    hub_server.reset_counters()
    again = browser.post("/ui/api/download", {"model": "alpha"})
    assert again.status_code == 202
    last = follow(browser, again.json()["job"])[-1]
    assert last["state"] == "done" and last["done_bytes"] == last["total_bytes"] == SIZE
    assert gateway.gateway.backend.downloaded(ENTRIES["alpha"])
    assert hub_server.total_bytes_sent == SIZE - 2 * MB  # only what the drop cut off
