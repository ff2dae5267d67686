"""``fetch_plan`` reporting to a caller's callback (the web UI's downloads) instead of stderr."""

from __future__ import annotations

import pytest

from zoo.hubs.download import fetch_plan
from zoo.hubs.huggingface import HuggingFaceHub
from zoo.testing.hubserver import GeneratedFile, HubServer

from .helpers import make_plan

MB = 1024 * 1024
HUBS = {"huggingface": HuggingFaceHub()}


def _plan(quantization: str = "Q4_0"):  # type: ignore[no-untyped-def]
    source = {"model_id": "org/cb-GGUF", "file": "cb-{quantization}.gguf"}
    return make_plan({"huggingface": source}, quantization=quantization)


def test_a_callable_gets_every_report_and_nothing_is_drawn(
    hub_server: HubServer, capsys: pytest.CaptureFixture[str]
) -> None:
    hub_server.add_repo("org/cb-GGUF", {"cb-Q4_0.gguf": GeneratedFile(3 * MB + 5, 1)})
    reports: list[tuple[str, int, int | None]] = []

    def seen(path: str, done: int, total: int | None) -> None:
        reports.append((path, done, total))

    result = fetch_plan(_plan(), progress=seen, hubs=HUBS)
    assert result.files[0].stat().st_size == 3 * MB + 5
    done = [r[1] for r in reports]
    # The transfer reports each MiB as it lands, then the file as complete.
    assert len(reports) >= 4 and done == sorted(done) and 0 < done[0] < 3 * MB + 5
    assert {(r[0], r[2]) for r in reports} == {("cb-Q4_0.gguf", 3 * MB + 5)}
    assert reports[-1] == ("cb-Q4_0.gguf", 3 * MB + 5, 3 * MB + 5)
    assert capsys.readouterr().err == ""  # the callback replaces the lines on stderr
    # A cache hit downloads nothing and reports nothing.
    reports.clear()
    again = fetch_plan(_plan(), progress=seen, hubs=HUBS)
    assert again.bytes_downloaded == 0 and reports == []


def test_false_still_reports_nothing_and_true_still_prints_lines(
    hub_server: HubServer, capsys: pytest.CaptureFixture[str]
) -> None:
    files = {f"cb-{q}.gguf": GeneratedFile(2 * MB, n) for n, q in enumerate(["Q4_0", "Q8_0"])}
    hub_server.add_repo("org/cb-GGUF", files)
    fetch_plan(_plan(), progress=False, hubs=HUBS)
    assert capsys.readouterr().err == ""
    fetch_plan(_plan("Q8_0"), progress=True, hubs=HUBS)
    assert capsys.readouterr().err.splitlines() == [
        "downloading cb-Q8_0.gguf (2.1 MB)",
        "ready cb-Q8_0.gguf (2.1 MB)",
    ]
