"""The real huggingface_hub and modelscope clients downloading from the local hub server."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from zoo.hubs.base import FetchRequest, Hub, HubError
from zoo.hubs.download import describe_plan, fetch_plan
from zoo.hubs.huggingface import HuggingFaceHub
from zoo.hubs.modelscope import ModelScopeHub
from zoo.testing.hubserver import GeneratedFile, HubServer

from .helpers import make_plan

MB = 1024 * 1024
HUBS = {"huggingface": HuggingFaceHub(), "modelscope": ModelScopeHub()}


def _gguf_repo(server: HubServer) -> dict[str, GeneratedFile]:
    files = {
        f"toy-{q}.gguf": GeneratedFile(size, seed)
        for seed, (q, size) in enumerate([("Q4_0", 2 * MB), ("Q8_0", 3 * MB), ("F16", 4 * MB)])
    }
    server.add_repo("org/toy-GGUF", {**files, "README.md": "# toy", "config.json": "{}"})
    return files


def _gguf_plan(hub: str = "huggingface", quantization: str = "Q4_0", **kw: object):
    source = {"model_id": "org/toy-GGUF", "file": "toy-{quantization}.gguf"}
    return make_plan({hub: source}, quantization=quantization, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("hub", ["huggingface", "modelscope"])
def test_one_quantization_out_of_several(hub_server: HubServer, hub: str) -> None:
    files = _gguf_repo(hub_server)
    result = fetch_plan(_gguf_plan(hub, "Q8_0"), progress=False, hubs=HUBS)
    assert [p.name for p in result.files] == ["toy-Q8_0.gguf"]
    assert result.files[0].read_bytes() == files["toy-Q8_0.gguf"].read(0, 3 * MB)
    # Bytes fetched / bytes needed = 1.00: nothing else left the server.
    assert dict(hub_server.bytes_sent) == {"org/toy-GGUF/toy-Q8_0.gguf": 3 * MB}
    again = fetch_plan(_gguf_plan(hub, "Q8_0"), progress=False, hubs=HUBS)
    assert again.bytes_downloaded == 0 and hub_server.total_bytes_sent == 3 * MB


def test_split_parts(hub_server: HubServer) -> None:
    parts = {f"BF16/toy-BF16-0000{i}-of-00002.gguf": GeneratedFile(MB + i, i) for i in (1, 2)}
    hub_server.add_repo("org/split-GGUF", {**parts, "toy-Q4_0.gguf": GeneratedFile(MB, 9)})
    source = {
        "model_id": "org/split-GGUF",
        "file": "toy-{quantization}.gguf",
        "split": {
            "file": "{quantization}/toy-{quantization}-{part}.gguf",
            "parts": {"BF16": ["00001-of-00002", "00002-of-00002"]},
        },
    }
    plan = make_plan({"huggingface": source}, quantization="BF16")
    result = fetch_plan(plan, progress=False, hubs=HUBS)
    assert [p.relative_to(result.root).as_posix() for p in result.files] == sorted(parts)
    assert set(hub_server.bytes_sent) == {f"org/split-GGUF/{p}" for p in parts}


@pytest.mark.parametrize("hub", ["huggingface", "modelscope"])
def test_safetensors_repository_takes_one_weight_set(hub_server: HubServer, hub: str) -> None:
    hub_server.add_repo(
        "org/toy",
        {
            "config.json": '{"model_type": "llama"}',
            "tokenizer.json": "{}",
            "model.safetensors": GeneratedFile(MB, 1),
            "pytorch_model.bin": GeneratedFile(MB, 2),
            "toy-Q4_0.gguf": GeneratedFile(MB, 3),
            "original/consolidated.pth": GeneratedFile(MB, 4),
        },
    )
    plan = make_plan({hub: {"model_id": "org/toy"}}, fmt="pytorch", quantization="none")
    listing = describe_plan(plan, hubs=HUBS)
    assert [f.path for f in listing.files] == ["config.json", "model.safetensors", "tokenizer.json"]
    assert listing.bytes == MB + len('{"model_type": "llama"}') + 2
    result = fetch_plan(plan, progress=False, hubs=HUBS)
    assert sorted(p.name for p in result.root.iterdir()) == [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
    ]
    assert hub_server.total_bytes_sent == listing.bytes


def test_files_fetched_by_the_hf_client_are_reused_without_a_request(hub_server: HubServer) -> None:
    _gguf_repo(hub_server)
    from huggingface_hub import hf_hub_download

    hf_hub_download(
        "org/toy-GGUF",
        "toy-Q4_0.gguf",
        endpoint=hub_server.url,
        cache_dir=str(HuggingFaceHub().cache_root()),
    )
    hub_server.reset_counters()
    result = fetch_plan(_gguf_plan(), progress=False, hubs=HUBS)
    assert result.reason == "huggingface: already in its cache"
    assert hub_server.requests == []


@pytest.mark.parametrize("hub", ["huggingface", "modelscope"])
def test_corrupted_cached_file_is_detected_and_fetched_again(
    hub_server: HubServer, hub: str
) -> None:
    files = _gguf_repo(hub_server)
    first = fetch_plan(_gguf_plan(hub), progress=False, hubs=HUBS)
    path = first.files[0]
    data = bytearray(path.read_bytes())
    data[1000] ^= 0xFF
    path.resolve().write_bytes(bytes(data))
    hub_server.reset_counters()
    second = fetch_plan(_gguf_plan(hub), progress=False, hubs=HUBS)
    assert second.files[0].read_bytes() == files["toy-Q4_0.gguf"].read(0, 2 * MB)
    assert hub_server.bytes_sent["org/toy-GGUF/toy-Q4_0.gguf"] == 2 * MB


@pytest.mark.parametrize("hub", ["huggingface", "modelscope"])
def test_dropped_connection_resumes(hub_server: HubServer, hub: str) -> None:
    files = _gguf_repo(hub_server)
    hub_server.fault("drop", "toy-Q8_0.gguf", after_bytes=MB, times=2)
    result = fetch_plan(_gguf_plan(hub, "Q8_0"), progress=False, hubs=HUBS)
    assert result.files[0].read_bytes() == files["toy-Q8_0.gguf"].read(0, 3 * MB)
    # Continued with Range: the bytes sent before each drop are not sent again.
    assert hub_server.bytes_sent["org/toy-GGUF/toy-Q8_0.gguf"] == 3 * MB
    starts = [_range_start(h) for h in _file_gets(hub_server, "toy-Q8_0.gguf")]
    assert starts == [0, MB, 2 * MB]


def _file_gets(server: HubServer, name: str) -> list[dict[str, str]]:
    """The headers of every GET of the file ``name`` (not its HEADs or the listings): Hugging
    Face names the file in the path, ModelScope in the ``FilePath`` query parameter."""
    from urllib.parse import parse_qs, unquote, urlsplit

    def fetches(request: str) -> bool:
        method, _, target = request.partition(" ")
        url = urlsplit(target)
        named = parse_qs(url.query).get("FilePath") == [name]
        return method == "GET" and (unquote(url.path).endswith(f"/{name}") or named)

    return [
        headers
        for request, headers in zip(server.requests, server.request_headers, strict=True)
        if fetches(request)
    ]


def _range_start(headers: dict[str, str]) -> int:
    """Where a GET asked to start: 0 without a Range header."""
    value = next((v for k, v in headers.items() if k.lower() == "range"), "bytes=0-")
    assert value.startswith("bytes=") and value.endswith("-"), value
    return int(value.removeprefix("bytes=").removesuffix("-"))


@pytest.mark.parametrize("hub", ["huggingface", "modelscope"])
def test_wrong_checksum_is_an_error_naming_the_file(hub_server: HubServer, hub: str) -> None:
    _gguf_repo(hub_server)
    hub_server.fault("checksum", "toy-Q4_0.gguf")
    with pytest.raises(HubError, match=rf"{hub}.*toy-Q4_0\.gguf") as caught:
        fetch_plan(_gguf_plan(hub), progress=False, hubs=HUBS)
    assert "sha256" in str(caught.value).lower() or "hash" in str(caught.value).lower()


@pytest.mark.parametrize("hub", ["huggingface", "modelscope"])
def test_missing_file_and_server_errors_name_the_hub_and_cause(
    hub_server: HubServer, hub: str
) -> None:
    _gguf_repo(hub_server)
    with pytest.raises(HubError, match=rf"{hub}: org/toy-GGUF@\w+ has no file toy-Q2_K\.gguf"):
        fetch_plan(_gguf_plan(hub, "Q2_K"), progress=False, hubs=HUBS)
    hub_server.fault("missing", "toy-Q4_0.gguf")
    with pytest.raises(HubError, match=hub):
        fetch_plan(_gguf_plan(hub), progress=False, hubs=HUBS)


def test_a_lasting_5xx_names_the_hub_and_status(hub_server: HubServer) -> None:
    # Hugging Face only: the modelscope client retries for ~30 s before giving up.
    _gguf_repo(hub_server)
    hub_server.fault("status", "toy-Q4_0.gguf", status=503)
    with pytest.raises(HubError, match=r"huggingface: toy-Q4_0\.gguf: .*HTTP 503"):
        fetch_plan(_gguf_plan(), progress=False, hubs=HUBS)


def test_a_transient_5xx_is_retried(hub_server: HubServer) -> None:
    _gguf_repo(hub_server)
    hub_server.fault("status", "toy-Q4_0.gguf", status=502, times=1)
    result = fetch_plan(_gguf_plan(), progress=False, hubs=HUBS)
    assert result.files[0].stat().st_size == 2 * MB


def test_offline_mode_serves_the_cache_without_requests(
    hub_server: HubServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    _gguf_repo(hub_server)
    fetch_plan(_gguf_plan(), progress=False, hubs=HUBS)
    hub_server.reset_counters()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    result = fetch_plan(_gguf_plan(), progress=False, hubs=HUBS)
    assert result.files[0].is_file() and hub_server.requests == []
    with pytest.raises(HubError, match="HF_HUB_OFFLINE"):
        HuggingFaceHub().fetch(FetchRequest("org/toy-GGUF", files=("toy-F16.gguf",)))
    assert hub_server.requests == []


def test_no_network_serves_the_cache(
    hub_server: HubServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    _gguf_repo(hub_server)
    fetch_plan(_gguf_plan(), progress=False, hubs=HUBS)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    result = HuggingFaceHub().fetch(FetchRequest("org/toy-GGUF", files=("toy-Q4_0.gguf",)))
    assert result.reason == "cached"


def test_hub_fallback_skips_an_unreachable_hub(
    hub_server: HubServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    _gguf_repo(hub_server)
    monkeypatch.setenv("MODELSCOPE_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    source = {"model_id": "org/toy-GGUF", "file": "toy-{quantization}.gguf"}
    plan = make_plan({"modelscope": source, "huggingface": source})
    listing = describe_plan(plan, hubs=HUBS)
    assert listing.hub == "huggingface"
    assert listing.skipped == ("modelscope: unreachable at http://127.0.0.1:9",)
    result = fetch_plan(plan, progress=False, hubs=HUBS)
    assert result.hub == "huggingface"
    # An explicit hub (--hub, $ZOO_HUB: resolution locks the plan) is not swapped for another.
    locked = make_plan(
        {"modelscope": source, "huggingface": source}, hub="modelscope", explicit=True
    )
    with pytest.raises(HubError, match=r"modelscope: cannot reach http://127\.0\.0\.1:9"):
        fetch_plan(locked, progress=False, hubs=HUBS)


def test_line_progress_when_not_a_terminal(
    hub_server: HubServer, capsys: pytest.CaptureFixture[str]
) -> None:
    _gguf_repo(hub_server)
    fetch_plan(_gguf_plan(), progress=True, hubs=HUBS)
    err = capsys.readouterr().err.splitlines()
    assert err == ["downloading toy-Q4_0.gguf (2.1 MB)", "ready toy-Q4_0.gguf (2.1 MB)"]


def test_cache_listing_and_removal(hub_server: HubServer) -> None:
    _gguf_repo(hub_server)
    for hub in ("huggingface", "modelscope"):
        fetch_plan(_gguf_plan(hub), progress=False, hubs=HUBS)
    hubs: dict[str, Hub] = HUBS  # type: ignore[assignment]
    entries = [e for h in hubs.values() for e in h.cache_entries()]
    assert {(e.hub, e.repo, e.files, e.bytes) for e in entries} == {
        ("huggingface", "org/toy-GGUF", ("toy-Q4_0.gguf",), 2 * MB),
        ("modelscope", "org/toy-GGUF", ("toy-Q4_0.gguf",), 2 * MB),
    }
    for hub in hubs.values():
        assert hub.remove("org/toy-GGUF")
        assert not hub.cache_entries()
    assert not any(Path(os.environ["HF_HOME"]).rglob("*.gguf"))
