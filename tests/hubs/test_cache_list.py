"""`zoo cache list`: a header, the zoo model each cached file belongs to, sizes and a total,
through the real Hugging Face client against the local hub server (cache_catalog.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from zoo.testing.hubserver import GeneratedFile, HubServer

from .cache_catalog import MB, install, run


@pytest.fixture
def cached(hub_server: HubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> HubServer:
    """toy-gguf Q4_0 (shared with toy-twin) and Q8_0, toy-other, and the toy-folder model
    folder with a README no spec asks for (fetched with the hub directly, as another tool
    would leave it)."""
    from zoo.hubs.base import FetchRequest
    from zoo.plugins import get_hubs

    install(hub_server, tmp_path, monkeypatch)
    run("pull", "toy-gguf", "-q", "Q4_0")
    run("pull", "toy-gguf", "-q", "Q8_0")
    run("pull", "toy-other")
    files = ("config.json", "model.safetensors", "README.md")
    get_hubs()["huggingface"].fetch(FetchRequest("org/toy-folder", files=files))
    return hub_server


def test_cache_list_names_zoo_models_with_sizes_under_a_header(
    cached: HubServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    lines = run("cache", "list").splitlines()
    assert lines[0].split() == ["MODEL", "HUB", "REPOSITORY", "REVISION", "SIZE"]
    assert max(len(line) for line in lines) <= 80
    rows = {line.split()[0]: line.split()[1:] for line in lines[1:-1]}
    assert rows["toy-gguf:q8_0"][:2] == ["huggingface", "org/toy-GGUF"]
    assert rows["toy-gguf:q8_0"][-2:] == ["2.1", "MB"]
    assert rows["toy-other"][-2:] == ["3.1", "MB"]
    # The model folder is the family's whatever the quantization; the README is nobody's.
    assert rows["toy-folder"][1] == "org/toy-folder" and rows["toy-folder"][-2:] == ["524.3", "KB"]
    assert rows["-"][1] == "org/toy-folder" and rows["-"][-2:] == ["6", "B"]
    # The file two families name is listed under both (wrapped onto a second line at 80).
    shared = next(line for line in lines if line.startswith("toy-gguf:q4_0"))
    assert "org/toy-GGUF" in shared and shared.endswith("1.0 MB")
    assert "toy-twin" in " ".join(lines)
    total = 3 * MB + 3 * MB + MB // 2 + 23 + 6
    assert lines[-1] == f"total {total / 1e6:.1f} MB in 3 cached revisions"


def test_cache_list_json_has_the_same_parts(cached: HubServer) -> None:
    listed = json.loads(run("cache", "list", "--json"))
    entries = {e["repo"]: e for e in listed["entries"]}
    assert set(entries) == {"org/toy-GGUF", "org/other-GGUF", "org/toy-folder"}
    assert listed["bytes"] == sum(e["bytes"] for e in listed["entries"])
    gguf = {p["model"]: p for p in entries["org/toy-GGUF"]["parts"]}
    assert gguf["toy-gguf:q8_0"]["files"] == ["toy-Q8_0.gguf"]
    assert gguf["toy-gguf:q8_0"]["bytes"] == 2 * MB
    shared = gguf["toy-gguf:q4_0, toy-twin"]
    assert shared["bytes"] == MB
    assert [(m["family"], m["quantization"]) for m in shared["models"]] == [
        ("toy-gguf", "Q4_0"),
        ("toy-twin", "Q4_0"),
    ]
    folder = {p["model"]: p for p in entries["org/toy-folder"]["parts"]}
    assert folder[None]["files"] == ["README.md"] and folder[None]["models"] == []
    assert folder["toy-folder"]["files"] == ["config.json", "model.safetensors"]
    assert folder["toy-folder"]["models"][0]["format"] == "pytorch"


def test_cache_list_of_an_empty_cache(hub_server: HubServer) -> None:
    assert run("cache", "list").strip() == "no cached models"
    assert json.loads(run("cache", "list", "--json"))["entries"] == []


_WHEEL_SPEC = """\
name: toy-wheel
description: A model folder shipped as a zip inside a wheel, for cache tests.
context_length: 512
languages: [en]
abilities: [chat]
specs:
  - format: pytorch
    size: 0.01
    quantizations: [none]
    sources:
      pypi:
        model_id: zoo-toy-wheel
        revision: "1.0"
        file: zoo_toy_wheel/model.zip
"""


def _toy_wheel(folder: Path) -> None:
    """zoo-toy-wheel 1.0: a model folder zipped inside a wheel whose RECORD vouches for it."""
    import base64
    import hashlib
    import io
    import zipfile

    model = io.BytesIO()
    with zipfile.ZipFile(model, "w") as archive:
        archive.writestr("config.json", '{"architectures": ["BertModel"]}')
        archive.writestr("model.safetensors", b"\0" * 4096)
    members = {"zoo_toy_wheel/model.zip": model.getvalue()}
    info = "zoo_toy_wheel-1.0.dist-info"
    rows = []
    for name, data in members.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        rows.append(f"{name},sha256={digest},{len(data)}\n")
    with zipfile.ZipFile(folder / "zoo_toy_wheel-1.0-py3-none-any.whl", "w") as wheel:
        for name, data in members.items():
            wheel.writestr(name, data)
        wheel.writestr(
            f"{info}/METADATA", "Metadata-Version: 2.1\nName: zoo-toy-wheel\nVersion: 1.0\n"
        )
        wheel.writestr(
            f"{info}/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        )
        wheel.writestr(f"{info}/RECORD", "".join(rows) + f"{info}/RECORD,,\n")


def test_files_unpacked_from_a_wheel_belong_to_their_family(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The PyPI hub through pip (a local find-links folder): the files unpacked from the
    spec's archive are the family's in `cache list`, and `rm` removes them."""
    from zoo.hubs.base import FetchRequest
    from zoo.hubs.pypi import PyPIHub

    wheels = tmp_path / "wheels"
    wheels.mkdir()
    _toy_wheel(wheels)
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheels))
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "toy-wheel.yaml").write_text(_WHEEL_SPEC)
    monkeypatch.setenv("ZOO_CATALOG_PATH", str(specs))
    PyPIHub().fetch(FetchRequest("zoo-toy-wheel", "1.0", files=("zoo_toy_wheel/model.zip",)))
    [entry] = json.loads(run("cache", "list", "--json", "--hub", "pypi"))["entries"]
    assert entry["repo"] == "zoo-toy-wheel" and entry["revision"] == "1.0"
    [part] = entry["parts"]
    assert part["model"] == "toy-wheel"
    assert "zoo_toy_wheel/model/model.safetensors" in part["files"]
    assert "removed" in run("rm", "toy-wheel", "--yes")
    assert json.loads(run("cache", "list", "--json", "--hub", "pypi"))["entries"] == []


def test_a_file_every_quantization_names_is_labelled_with_the_spec_not_each_quantization(
    hub_server: HubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A vision GGUF's projector is part of every quantization's plan: one reference for it."""
    hub_server.add_repo(
        "org/eye-GGUF",
        {
            "eye-Q4_0.gguf": GeneratedFile(MB, 5),
            "eye-Q8_0.gguf": GeneratedFile(MB, 6),
            "mmproj-eye.gguf": GeneratedFile(MB // 4, 7),
        },
    )
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "toy-eye.yaml").write_text(
        "name: toy-eye\ndescription: A toy vision model.\ncontext_length: 2048\n"
        "languages: [en]\nabilities: [chat, vision]\nspecs:\n  - format: ggufv2\n"
        "    size: 0.1\n    quantizations: [Q4_0, Q8_0]\n    sources:\n      huggingface:\n"
        "        model_id: org/eye-GGUF\n        file: eye-{quantization}.gguf\n"
        "        multimodal_projectors: [mmproj-eye.gguf]\n"
    )
    monkeypatch.setenv("ZOO_CATALOG_PATH", str(specs))
    run("pull", "toy-eye", "-q", "Q4_0")
    [entry] = json.loads(run("cache", "list", "--json"))["entries"]
    labels = {p["model"]: p["files"] for p in entry["parts"]}
    assert labels == {"toy-eye:q4_0": ["eye-Q4_0.gguf"], "toy-eye": ["mmproj-eye.gguf"]}
    # Removing one quantization keeps the projector the other cached one still needs.
    run("pull", "toy-eye", "-q", "Q8_0")
    out = run("rm", "toy-eye", "-q", "Q4_0", "--yes")
    assert "eye-GGUF/mmproj-eye.gguf  (needed by toy-eye:q8_0)" in out
    [entry] = json.loads(run("cache", "list", "--json"))["entries"]
    assert entry["files"] == ["eye-Q8_0.gguf", "mmproj-eye.gguf"]
    assert "removed 2 files" in run("rm", "toy-eye", "--yes")
