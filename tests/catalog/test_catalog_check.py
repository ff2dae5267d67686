"""`zoo catalog check` against the local hub server: a small catalog that passes, every planted
error found at its file:line, --fix writing a lock a second check passes with, --resume asking
nothing twice, an unreachable hub as one line, hostile listings refused."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

import pytest

from zoo.catalog.catalog import load_catalog
from zoo.catalog.check import CheckOptions, CheckReport, check_families, chosen_hubs
from zoo.catalog.lock import lock_path, read_lock
from zoo.catalog.model import Family
from zoo.hubs.base import Hub, RemoteFile
from zoo.hubs.huggingface import HuggingFaceHub
from zoo.hubs.modelscope import ModelScopeHub
from zoo.hubs.pypi import PyPIHub
from zoo.testing.hubserver import HubServer

SPEC = """\
# yaml-language-server: $schema=../zoo/catalog/spec.schema.json
name: tiny
description: A tiny model for the online check.
context_length: 2048
languages: [en]
abilities: [chat]
specs:
  - format: ggufv2
    size: 1
    quantizations: [Q4_K_M, Q8_0]
    sources:
      huggingface:
        model_id: org/tiny-GGUF
        revision: main
        file: tiny-{quantization}.gguf
        split:
          file: tiny-{quantization}-{part}.gguf
          parts:
            Q8_0: [00001-of-00002, 00002-of-00002]
        unverified: [quantizations]
  - format: ggufv2
    size: 2
    quantizations: [Q4_0, Q5_0]
    sources:
      huggingface:
        model_id: org/tiny-2-{quantization}-GGUF
        file: tiny.{quantization}.gguf
  - format: pytorch
    size: 2
    quantizations: [none]
    sources:
      huggingface:
        model_id: org/tiny-2
      modelscope:
        model_id: org/tiny-2
        revision: master
"""
# Where each source's hub key is (Source.location): 1-based line, column.
GGUF_AT = (12, 7)
TEMPLATED_AT = (25, 7)
HF_PYTORCH_AT = (32, 7)
MS_PYTORCH_AT = (34, 7)


def gguf_repo(server: HubServer, parts: int = 2) -> None:
    files: dict[str, bytes] = {"README.md": b"# tiny", "tiny-Q4_K_M.gguf": b"q4km" * 8}
    for n in range(1, parts + 1):
        files[f"tiny-Q8_0-{n:05d}-of-{parts:05d}.gguf"] = bytes([n]) * 16
    server.add_repo("org/tiny-GGUF", files)


def serve_all(server: HubServer) -> None:
    gguf_repo(server)
    server.add_repo("org/tiny-2-Q4_0-GGUF", {"tiny.Q4_0.gguf": b"q40" * 5})
    server.add_repo("org/tiny-2-Q5_0-GGUF", {"tiny.Q5_0.gguf": b"q50" * 5})
    server.add_repo(
        "org/tiny-2",
        {
            "config.json": "{}",
            "tokenizer.json": "{}",
            "model.safetensors": b"w" * 64,
            "modeling_tiny.py": "# remote code",
            "tiny.onnx": b"not ours",
        },
    )


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "tiny.yaml").write_text(SPEC)
    return specs


def families(folder: Path) -> list[Family]:
    catalog = load_catalog([folder], use_cache=False)
    assert not catalog.errors, catalog.errors
    return list(catalog.families.values())


HUBS: dict[str, Hub] = {
    "huggingface": HuggingFaceHub(),
    "modelscope": ModelScopeHub(),
    "pypi": PyPIHub(),
}


def run(folder: Path, hubs: dict[str, Hub] | None = None, **options: object) -> CheckReport:
    settings: dict[str, object] = {
        "rate": 0,
        "retries": 1,
        "backoff": 0.01,
        "checkpoint": folder.parent / "checkpoint.jsonl",
        **options,
    }
    return check_families(families(folder), hubs or HUBS, CheckOptions(**settings))  # type: ignore[arg-type]


def where(report: CheckReport) -> list[tuple[str, int, int]]:
    return [(p.code, p.line, p.column) for p in report.problems]


def edit(folder: Path, old: str, new: str) -> None:
    path = folder / "tiny.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


# -- a catalog that passes ---------------------------------------------------------------------


def test_the_sources_at_their_lines() -> None:
    lines = SPEC.splitlines()
    for (line, column), hub in (
        (GGUF_AT, "huggingface"),
        (TEMPLATED_AT, "huggingface"),
        (HF_PYTORCH_AT, "huggingface"),
        (MS_PYTORCH_AT, "modelscope"),
    ):
        assert lines[line - 1][column - 1 :].startswith(hub + ":")


def test_a_catalog_that_is_on_its_hubs_passes(hub_server: HubServer, folder: Path) -> None:
    serve_all(hub_server)
    report = run(folder)
    assert report.problems == []
    # 3 specs: 1 + 1 + 2 sources; 5 repositories (pytorch on two hubs counts twice), PyPI not
    # asked (its listing downloads the wheel), so 2 hubs.
    assert (report.families, report.sources, report.repositories, report.hubs) == (1, 4, 5, 2)
    assert report.summary() == (
        "checked 1 families, 4 sources in 5 repositories on 2 hubs: 0 problems"
    )


def test_each_repository_and_revision_is_asked_once(hub_server: HubServer, folder: Path) -> None:
    serve_all(hub_server)
    run(folder)
    listings = [r for r in hub_server.requests if "/tree/" in r]
    # One tree listing per Hugging Face repository, though org/tiny-GGUF serves 2 quantizations.
    assert len(listings) == 4, listings
    assert sum("org/tiny-GGUF" in r for r in listings) == 1


def test_default_hubs_are_the_cheap_ones() -> None:
    assert set(chosen_hubs(HUBS, ())) == {"huggingface", "modelscope"}
    assert set(chosen_hubs(HUBS, ("pypi",))) == {"pypi"}
    from zoo.errors import UsageError

    with pytest.raises(UsageError, match="unknown hub 'nohub'"):
        chosen_hubs(HUBS, ("nohub",))


# -- planted errors, each at its source's file:line:col ----------------------------------------


def test_a_missing_file_is_found(hub_server: HubServer, folder: Path) -> None:
    serve_all(hub_server)
    hub_server.add_repo("org/tiny-2-Q5_0-GGUF", {"README.md": b"moved"})
    report = run(folder)
    assert where(report) == [("E403", *TEMPLATED_AT)]
    assert "tiny.Q5_0.gguf" in report.problems[0].message
    assert str(report.problems[0]).startswith(f"{folder / 'tiny.yaml'}:25:7: error[E403]: ")


def test_a_missing_repository_is_found(hub_server: HubServer, folder: Path) -> None:
    serve_all(hub_server)
    del hub_server.repos["org/tiny-2-Q4_0-GGUF"]
    report = run(folder)
    assert where(report) == [("E401", *TEMPLATED_AT)]
    assert "org/tiny-2-Q4_0-GGUF not found" in report.problems[0].message


def test_a_bad_revision_is_found(hub_server: HubServer, folder: Path) -> None:
    serve_all(hub_server)
    edit(folder, "revision: main", "revision: v9")
    report = run(folder)
    assert where(report) == [("E402", *GGUF_AT)]
    assert "revision v9 not found" in report.problems[0].message


def test_a_bad_modelscope_revision_is_found(hub_server: HubServer, folder: Path) -> None:
    serve_all(hub_server)
    edit(folder, "revision: master", "revision: v2")
    assert where(run(folder)) == [("E402", *MS_PYTORCH_AT)]


def test_a_wrong_part_count_is_found(hub_server: HubServer, folder: Path) -> None:
    serve_all(hub_server)
    gguf_repo(hub_server, parts=3)
    report = run(folder)
    assert where(report) == [("E404", *GGUF_AT)]
    assert "Q8_0 is split in 3 parts on the hub" in report.problems[0].message
    assert "the spec lists 2" in report.problems[0].message


def test_a_file_split_on_the_hub_but_single_in_the_spec(
    hub_server: HubServer, folder: Path
) -> None:
    serve_all(hub_server)
    hub_server.add_repo(
        "org/tiny-GGUF",
        {
            "tiny-Q4_K_M-00001-of-00002.gguf": b"a",
            "tiny-Q4_K_M-00002-of-00002.gguf": b"b",
            "tiny-Q8_0-00001-of-00002.gguf": b"c",
            "tiny-Q8_0-00002-of-00002.gguf": b"d",
        },
    )
    report = run(folder)
    assert where(report) == [("E404", *GGUF_AT)]
    assert "the spec names one file tiny-Q4_K_M.gguf" in report.problems[0].message


def test_a_listing_without_weights_is_found(hub_server: HubServer, folder: Path) -> None:
    serve_all(hub_server)
    hub_server.add_repo("org/tiny-2", {"config.json": "{}", "README.md": "no weights"})
    report = run(folder)
    # The same repository serves both hubs here: each source is reported at its own line.
    assert where(report) == [("E405", *HF_PYTORCH_AT), ("E405", *MS_PYTORCH_AT)]
    assert "no weights" in report.problems[0].message


# -- --fix and the lock ------------------------------------------------------------------------


def test_fix_writes_a_lock_that_a_second_check_passes_with(
    hub_server: HubServer, folder: Path
) -> None:
    serve_all(hub_server)
    report = run(folder, fix=True)
    assert report.problems == []
    path = lock_path(folder, "tiny")
    assert report.written == [f"wrote {path}: 5 repositories pinned"]
    lock = read_lock(path)
    assert lock is not None
    by_repo = {(r.hub, r.repo): r for r in lock.repos}
    gguf = by_repo[("huggingface", "org/tiny-GGUF")]
    assert (gguf.asked, gguf.commit) == ("main", hub_server.repos["org/tiny-GGUF"].commit)
    # The files a download fetches, no more (README.md is not one of them).
    assert sorted(gguf.files) == [
        "tiny-Q4_K_M.gguf",
        "tiny-Q8_0-00001-of-00002.gguf",
        "tiny-Q8_0-00002-of-00002.gguf",
    ]
    assert gguf.files["tiny-Q4_K_M.gguf"].size == 32
    assert gguf.files["tiny-Q4_K_M.gguf"].sha256 is not None  # LFS files have one
    pytorch = by_repo[("huggingface", "org/tiny-2")]
    # Listing-based: the selection with remote code included, nothing of other formats.
    assert sorted(pytorch.files) == [
        "config.json",
        "model.safetensors",
        "modeling_tiny.py",
        "tokenizer.json",
    ]
    assert by_repo[("modelscope", "org/tiny-2")].asked == "master"
    # The family built again is pinned: downloads fetch the commit, sizes known offline.
    family = families(folder)[0]
    source = family.specs[0].sources[0]
    assert source.revision_for("Q8_0") == gguf.commit
    # A second check asks for the pinned commits and passes.
    hub_server.reset_counters()
    again = run(folder)
    assert again.problems == []
    assert any(gguf.commit in r for r in hub_server.requests)


def test_a_lock_that_cannot_be_written_is_counted_as_a_failure(
    hub_server: HubServer, folder: Path
) -> None:
    serve_all(hub_server)
    # A folder where the lock file goes: no user (root included) can write the lock there.
    lock_path(folder, "tiny").mkdir(parents=True)
    report = run(folder, fix=True)
    assert report.write_failures == 1
    assert report.written[0].startswith("tiny: cannot write ")
    assert report.to_json()["write_failures"] == 1


SHARED_SPEC = """\
# yaml-language-server: $schema=../zoo/catalog/spec.schema.json
name: tiny
description: A repository that holds the safetensors weights and a GGUF file.
context_length: 2048
languages: [en]
abilities: [chat]
specs:
  - format: pytorch
    size: 1
    quantizations: [none]
    sources:
      huggingface:
        model_id: org/shared
        exclude: ["tokenizer.json"]
  - format: ggufv2
    size: 1
    quantizations: [Q4_0]
    sources:
      huggingface:
        model_id: org/shared
        file: shared-{quantization}.gguf
"""


def test_a_repository_two_specs_share_passes_after_fix(hub_server: HubServer, folder: Path) -> None:
    (folder / "tiny.yaml").write_text(SHARED_SPEC)
    hub_server.add_repo(
        "org/shared",
        {
            "config.json": "{}",
            "tokenizer.json": "{}",
            "model.safetensors": b"w" * 64,
            "shared-Q4_0.gguf": b"q" * 32,
        },
    )
    assert run(folder, fix=True).problems == []
    lock = read_lock(lock_path(folder, "tiny"))
    assert lock is not None and "shared-Q4_0.gguf" in lock.repos[0].files
    # The GGUF file in the one lock entry is not "missing from the pytorch selection".
    assert [str(p) for p in run(folder).problems] == []
    # The spec's exclude changes: the hub's selection now has a file the lock never recorded.
    edit(folder, 'exclude: ["tokenizer.json"]', "exclude: []")
    codes = [(p.code, "does not record" in p.message) for p in run(folder).problems]
    assert codes == [("E406", True)]


def test_a_size_that_differs_from_the_lock_is_found(hub_server: HubServer, folder: Path) -> None:
    serve_all(hub_server)
    run(folder, fix=True)
    path = lock_path(folder, "tiny")
    data = json.loads(path.read_text())
    for entry in data["repositories"]:
        if entry["repo"] == "org/tiny-2-Q4_0-GGUF":
            entry["files"]["tiny.Q4_0.gguf"]["size"] = 999
    path.write_text(json.dumps(data))
    report = run(folder)
    assert where(report) == [("E406", *TEMPLATED_AT)]
    assert "tiny.Q4_0.gguf is 15 bytes on the hub, the lock says 999" in report.problems[0].message


def test_a_stale_lock_entry_is_found(hub_server: HubServer, folder: Path) -> None:
    serve_all(hub_server)
    run(folder, fix=True)
    edit(folder, "model_id: org/tiny-2\n      modelscope", "model_id: org/tiny-3\n      modelscope")
    edit(folder, "revision: main", "revision: master")
    hub_server.add_repo("org/tiny-3", {"config.json": "{}", "model.safetensors": b"w"})
    report = run(folder)
    messages = {(p.code, p.line): p.message for p in report.problems}
    assert set(messages) == {("E407", 2), ("E407", GGUF_AT[0])}
    assert "org/tiny-2, which no source of tiny names any more" in messages[("E407", 2)]
    assert "made for revision main, the spec asks for master" in messages[("E407", GGUF_AT[0])]
    # --fix drops both and pins what the spec names now; then the check is clean.
    fixed = run(folder, fix=True)
    assert fixed.problems == []
    lock = read_lock(lock_path(folder, "tiny"))
    assert lock is not None
    assert lock.find("huggingface", "org/tiny-2") is None
    assert lock.find("huggingface", "org/tiny-3") is not None
    assert run(folder).problems == []


def test_fix_pins_nothing_for_a_repository_with_problems(
    hub_server: HubServer, folder: Path
) -> None:
    serve_all(hub_server)
    gguf_repo(hub_server, parts=3)
    report = run(folder, fix=True)
    assert where(report) == [("E404", *GGUF_AT)]
    lock = read_lock(lock_path(folder, "tiny"))
    assert lock is not None
    assert lock.find("huggingface", "org/tiny-GGUF") is None
    assert len(lock.repos) == 4


def test_a_broken_lock_is_reported_and_fix_replaces_it(hub_server: HubServer, folder: Path) -> None:
    serve_all(hub_server)
    path = lock_path(folder, "tiny")
    path.parent.mkdir()
    path.write_text("{not json")
    assert [p.code for p in run(folder).problems] == ["E410"]
    assert run(folder, fix=True).problems == []
    assert read_lock(path) is not None
    assert run(folder).problems == []


# -- polite: resumable, one line for a hub that is down ----------------------------------------


def test_resume_asks_nothing_for_repositories_already_done(
    hub_server: HubServer, folder: Path
) -> None:
    serve_all(hub_server)
    checkpoint = folder.parent / "checkpoint.jsonl"
    run(folder)
    lines = checkpoint.read_text().splitlines()
    assert len(lines) == 5
    # A run killed after two answers, in the middle of writing the third.
    checkpoint.write_text("\n".join(lines[:2]) + "\n" + lines[2][: len(lines[2]) // 2])
    done = [tuple(json.loads(line)["key"]) for line in lines[:2]]
    hub_server.reset_counters()
    report = run(folder, resume=True)
    assert report.problems == [] and report.resumed == 2
    api = {"huggingface": "/api/models/", "modelscope": "/api/v1/models/"}
    for hub, _, repo, _ in done:
        asked = [r for r in hub_server.requests if f" {api[hub]}{repo}/" in r]
        assert asked == [], (hub, repo)
    assert hub_server.requests  # the other three were asked
    # Everything is saved now: resuming again makes no request at all.
    hub_server.reset_counters()
    assert run(folder, resume=True).resumed == 5
    assert hub_server.requests == []
    # Without --resume the checkpoint is started afresh.
    run(folder)
    assert hub_server.requests


def test_an_unreachable_hub_is_one_line(
    hub_server: HubServer, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZOO_HUB_TIMEOUT", "2")
    serve_all(hub_server)
    hub_server.stop()
    report = run(folder)
    assert [(p.code, p.line) for p in report.problems] == [("E408", 0), ("E408", 0)]
    text = [str(p) for p in report.problems]
    assert "hub huggingface cannot be reached, 4 repositories not checked" in text[0]
    assert "hub modelscope cannot be reached, 1 repositories not checked" in text[1]
    # Nothing unanswered is saved: a resumed run asks again.
    checkpoint = folder.parent / "checkpoint.jsonl"
    assert not checkpoint.exists() or checkpoint.read_text() == ""


def test_server_errors_are_retried(hub_server: HubServer, folder: Path) -> None:
    serve_all(hub_server)
    flaky = FlakyHub(fail=2)
    report = run(folder, hubs={"huggingface": flaky}, retries=3)
    assert report.problems == []
    assert flaky.failures == 2


def test_server_errors_that_last_make_the_hub_unreachable(
    hub_server: HubServer, folder: Path
) -> None:
    serve_all(hub_server)
    report = run(folder, hubs={"huggingface": FlakyHub(fail=100)}, retries=2)
    assert [p.code for p in report.problems] == ["E408"]
    assert "HTTP 503" in report.problems[0].message


class FlakyHub(HuggingFaceHub):
    """Hugging Face through the test server, answering 503 to the first ``fail`` listings."""

    def __init__(self, fail: int) -> None:
        self.fail = fail
        self.failures = 0

    def list_files(self, repo: str, revision: str | None = None) -> Sequence[RemoteFile]:
        from zoo.hubs.base import HubError

        if self.failures < self.fail:
            self.failures += 1
            raise HubError(f"{self.name}: {repo}: the hub answered HTTP 503")
        return super().list_files(repo, revision)


# -- hostile answers ---------------------------------------------------------------------------


class HostileHub(HuggingFaceHub):
    """Answers with paths that escape, sizes no file has and hashes that are not hex."""

    LISTINGS: ClassVar[dict[str, list[RemoteFile]]] = {
        "org/tiny-GGUF": [
            RemoteFile("../../etc/passwd", 10),
            RemoteFile("tiny-Q4_K_M.gguf", 10**30),
            RemoteFile("tiny-Q8_0-00001-of-00002.gguf", 5, "not-a-sha256"),
            RemoteFile("tiny-Q8_0-00002-of-00002.gguf", -1),
        ],
        "org/tiny-2-Q4_0-GGUF": [RemoteFile("tiny.Q4_0.gguf", 3, "A" * 64)],
        "org/tiny-2-Q5_0-GGUF": [RemoteFile("tiny.Q5_0.gguf", True)],
        "org/tiny-2": [RemoteFile("config.json", 2), RemoteFile("model.safetensors", 8)],
    }

    def revision_commit(self, repo: str, revision: str | None = None) -> str | None:
        return "ab" * 20

    def list_files(self, repo: str, revision: str | None = None) -> Sequence[RemoteFile]:
        return self.LISTINGS[repo]


def test_a_hostile_listing_is_refused_and_never_reaches_the_lock(folder: Path) -> None:
    report = run(folder, hubs={"huggingface": HostileHub()}, fix=True)
    found = {(p.code, p.line) for p in report.problems}
    assert found == {
        ("E409", GGUF_AT[0]),
        ("E403", GGUF_AT[0]),  # the refused entries count as missing
        ("E409", TEMPLATED_AT[0]),
        ("E403", TEMPLATED_AT[0]),
    }
    refused = next(p.message for p in report.problems if p.line == GGUF_AT[0] and p.code == "E409")
    assert "'../../etc/passwd'" in refused and "is not a file size" in refused
    assert "is not 64 hex digits" in refused
    # Only the clean repositories are pinned; a hash in capitals is written as the hubs write it.
    lock = read_lock(lock_path(folder, "tiny"))
    assert lock is not None
    assert sorted(r.repo for r in lock.repos) == ["org/tiny-2", "org/tiny-2-Q4_0-GGUF"]
    q4_0 = lock.find("huggingface", "org/tiny-2-Q4_0-GGUF")
    assert q4_0 is not None and q4_0.files["tiny.Q4_0.gguf"].sha256 == "a" * 64
    assert set(lock.repos[0].files) == {"config.json", "model.safetensors"}


def test_a_listing_that_escapes_through_the_real_client_is_one_problem(
    hub_server: HubServer, folder: Path
) -> None:
    serve_all(hub_server)
    hub_server.listing_overrides["org/tiny-GGUF"] = ["../outside.gguf", "tiny-Q4_K_M.gguf"]
    report = run(folder)
    assert [(p.code, p.line) for p in report.problems] == [("E409", GGUF_AT[0])]


class BuggyHub(HuggingFaceHub):
    def list_files(self, repo: str, revision: str | None = None) -> Sequence[RemoteFile]:
        raise KeyError("siblings")


def test_a_hub_plugin_that_raises_is_a_problem_not_a_crash(
    hub_server: HubServer, folder: Path
) -> None:
    serve_all(hub_server)
    report = run(folder, hubs={"huggingface": BuggyHub()})
    assert {p.code for p in report.problems} == {"E409"}
    assert "hub plugin failed: KeyError" in report.problems[0].message


def test_every_check_code_is_found_by_a_test_here() -> None:
    from zoo.catalog.problems import CODES

    text = Path(__file__).read_text()
    for code in (c for c in CODES if c.startswith("E4")):
        assert f'"{code}"' in text, code


# -- the shipped catalog, served as its specs describe it --------------------------------------


def serve_catalog(server: HubServer, catalog: list[Family]) -> None:
    """Every repository and file the catalog's Hugging Face and ModelScope sources name (tiny
    files: what the check reads is the listing), at every revision the specs ask for."""
    from zoo.resolve import file_selection

    files: dict[str, dict[str, bytes]] = {}
    revisions: dict[str, set[str]] = {}
    for family in catalog:
        for spec in family.specs:
            for source in spec.sources:
                if source.hub not in ("huggingface", "modelscope"):
                    continue
                for q in source.quantizations:
                    repo = source.repo_for(q)
                    exact = file_selection(spec, source, q, HUBS).exact
                    named = (
                        (*exact, *source.multimodal_projectors)
                        if exact is not None
                        else (
                            "config.json",
                            "model.safetensors",
                        )
                    )
                    files.setdefault(repo, {}).update(dict.fromkeys(named, b"x"))
                    revisions.setdefault(repo, {"main", "master"}).add(source.revision or "main")
    for repo, content in files.items():
        server.add_repo(repo, content, revisions=tuple(sorted(revisions[repo])))


# ~2 minutes on two shared cores (a few thousand requests through the real clients).
@pytest.mark.slow
def test_the_shipped_catalog_passes_against_a_hub_serving_its_listings(
    hub_server: HubServer, tmp_path: Path
) -> None:
    from zoo.catalog.catalog import builtin_catalog_dir, spec_files

    # The spec files without any lock: this test is about the specs, not about what the real
    # hubs said when someone ran --fix.
    folder = tmp_path / "shipped"
    folder.mkdir()
    for path in spec_files([builtin_catalog_dir()]):
        (folder / path.name).write_bytes(path.read_bytes())
    catalog = families(folder)
    serve_catalog(hub_server, catalog)
    report = check_families(
        catalog,
        HUBS,
        CheckOptions(rate=0, jobs=8, retries=0, checkpoint=tmp_path / "checkpoint.jsonl"),
    )
    assert [str(p) for p in report.problems] == []
    assert report.families == len(catalog) and report.repositories > 500
    assert report.hubs == 2


# -- the command line --------------------------------------------------------------------------


@pytest.fixture
def only_tiny(monkeypatch: pytest.MonkeyPatch, folder: Path) -> Path:
    from zoo.catalog import catalog

    monkeypatch.setattr(catalog, "builtin_catalog_dir", lambda: folder)
    return folder


def zoo(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    from zoo.cli.app import _run

    status = _run(list(args), as_json="--json" in args, debug=False)
    out, err = capsys.readouterr()
    return status, out, err


def test_cli_check_prints_problems_then_the_summary(
    hub_server: HubServer, only_tiny: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    serve_all(hub_server)
    status, out, _ = zoo(capsys, "catalog", "check", "--rate", "0")
    assert status == 0
    assert out.splitlines()[-1] == (
        "checked 1 families, 4 sources in 5 repositories on 2 hubs: 0 problems"
    )
    del hub_server.repos["org/tiny-2-Q4_0-GGUF"]
    status, out, _ = zoo(capsys, "catalog", "check", "tiny", "--hub", "huggingface", "--rate", "0")
    assert status == 1
    lines = out.splitlines()
    assert lines[0].endswith(
        ":25:7: error[E401]: huggingface: repository org/tiny-2-Q4_0-GGUF not found"
    )
    assert lines[-1].endswith("on 1 hubs: 1 problems")
    status, out, _ = zoo(capsys, "catalog", "check", "--json", "--rate", "0")
    document = json.loads(out)
    assert status == 1 and document["version"] == 1
    assert [p["code"] for p in document["problems"]] == ["E401"]


def test_cli_fix_says_what_it_wrote(
    hub_server: HubServer, only_tiny: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    serve_all(hub_server)
    status, out, _ = zoo(capsys, "catalog", "check", "--fix", "--rate", "0")
    assert status == 0
    assert "locks/tiny.json: 5 repositories pinned" in out
    assert read_lock(lock_path(only_tiny, "tiny")) is not None


def test_cli_fix_fails_when_a_lock_cannot_be_written(
    hub_server: HubServer, only_tiny: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    serve_all(hub_server)
    lock_path(only_tiny, "tiny").mkdir(parents=True)
    status, out, _ = zoo(capsys, "catalog", "check", "--fix", "--rate", "0")
    assert status == 1
    assert "tiny: cannot write" in out


def test_cli_errors_are_one_line(only_tiny: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = zoo(capsys, "catalog", "check", "--hub", "nohub")
    assert status == 2 and out == ""
    assert err.count("\n") == 1 and "unknown hub 'nohub'" in err
    status, _, err = zoo(capsys, "catalog", "check", "no-such-family")
    assert status == 1 and err.count("\n") == 1 and "unknown model" in err


def test_cli_unverified_lists_marks_at_their_lines_without_network(
    only_tiny: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing may be asked
    status, out, _ = zoo(capsys, "catalog", "check", "--unverified")
    assert status == 0
    lines = out.splitlines()
    assert lines[0].endswith(":20:21: tiny ggufv2 1B huggingface org/tiny-GGUF: quantizations"), (
        lines
    )
    assert lines[-1] == "1 unverified marks in 1 families (not yet checked against a hub)"
