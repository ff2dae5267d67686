"""Only what is needed: one weight set, no files of other formats."""

from __future__ import annotations

import pytest

from zoo.hubs.base import HubError, RemoteFile
from zoo.hubs.select import select_exact, select_weights


def _paths(names: list[str]) -> list[RemoteFile]:
    return [RemoteFile(n, 1) for n in names]


def test_mixed_repository_gives_config_tokenizer_and_safetensors_only() -> None:
    listing = _paths(
        [
            "config.json",
            "generation_config.json",
            "tokenizer.json",
            "tokenizer_config.json",
            "model-00001-of-00002.safetensors",
            "model-00002-of-00002.safetensors",
            "model.safetensors.index.json",
            "pytorch_model.bin",
            "pytorch_model.bin.index.json",
            "consolidated.safetensors",
            "model-Q4_K_M.gguf",
            "onnx/model.onnx",
            "original/consolidated.00.pth",
            "README.md",
            "flax_model.msgpack",
            "weights.npz",
        ]
    )
    chosen = [f.path for f in select_weights(listing, hub="h", repo="r")]
    assert chosen == [
        "config.json",
        "generation_config.json",
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
        "model.safetensors.index.json",
        "tokenizer.json",
        "tokenizer_config.json",
    ]


def test_bin_weights_when_there_are_no_safetensors() -> None:
    listing = _paths(["config.json", "pytorch_model.bin", "tokenizer.model", "training_args.bin"])
    chosen = [f.path for f in select_weights(listing, hub="h", repo="r")]
    assert chosen == ["config.json", "pytorch_model.bin", "tokenizer.model"]


def test_a_repository_without_config_or_weights_is_an_error() -> None:
    with pytest.raises(HubError, match=r"no config\.json"):
        select_weights(_paths(["model.safetensors"]), hub="h", repo="r")
    with pytest.raises(HubError, match="no weights"):
        select_weights(_paths(["config.json", "model.gguf"]), hub="h", repo="r")


def test_missing_exact_file_names_the_file_and_what_exists() -> None:
    with pytest.raises(HubError, match=r"h: r@main has no file m-Q5\.gguf; it has: m-Q4\.gguf"):
        select_exact(_paths(["m-Q4.gguf"]), ["m-Q5.gguf"], hub="h", repo="r", revision="main")


def test_a_sources_exclude_globs_keep_those_files_out() -> None:
    listing = _paths(["config.json", "model.safetensors", "chat_template.jinja", "extra.py"])
    chosen = [
        f.path for f in select_weights(listing, hub="h", repo="r", exclude=("*.py", "chat_*"))
    ]
    assert chosen == ["config.json", "model.safetensors"]
