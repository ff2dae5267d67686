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


def test_sentence_transformers_module_folders_come_with_the_model() -> None:
    """1_Pooling/config.json (and a Dense layer's weights) are part of the model: without
    them sentence-transformers builds another model from modules.json than the card's."""
    listing = _paths(
        [
            "config.json",
            "modules.json",
            "sentence_bert_config.json",
            "model.safetensors",
            "pytorch_model.bin",
            "tokenizer.json",
            "1_Pooling/config.json",
            "2_Dense/config.json",
            "2_Dense/model.safetensors",
            "2_Dense/pytorch_model.bin",
            "onnx/model.onnx",
            "openvino/openvino_model.xml",
        ]
    )
    chosen = [f.path for f in select_weights(listing, hub="h", repo="r")]
    assert chosen == [
        "1_Pooling/config.json",
        "2_Dense/config.json",
        "2_Dense/model.safetensors",
        "config.json",
        "model.safetensors",
        "modules.json",
        "sentence_bert_config.json",
        "tokenizer.json",
    ]


def test_numbered_folders_are_not_taken_without_modules_json() -> None:
    listing = _paths(["config.json", "model.safetensors", "1_Pooling/config.json"])
    chosen = [f.path for f in select_weights(listing, hub="h", repo="r")]
    assert chosen == ["config.json", "model.safetensors"]
