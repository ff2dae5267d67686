"""A small catalog and hub for `zoo pull` / `zoo rm` / `zoo cache list` tests.

Three GGUF families on two repositories of the local hub server: ``toy-gguf`` (Q4_0, Q8_0)
and ``toy-twin`` (Q4_0 only) name the same ``toy-Q4_0.gguf`` in ``org/toy-GGUF``, so that file
is shared; ``toy-other`` has a repository of its own. ``toy-folder`` is a model folder
(pytorch) on ``org/toy-folder``.
"""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from zoo.testing.hubserver import GeneratedFile, HubServer

MB = 1024 * 1024

_GGUF = """\
name: {name}
description: A toy model for cache tests.
context_length: 2048
languages: [en]
abilities: [chat]
specs:
  - format: ggufv2
    size: 0.1
    quantizations: [{quants}]
    sources:
      huggingface:
        model_id: {repo}
        file: {file}
"""

_FOLDER = """\
name: toy-folder
description: A toy model folder for cache tests.
context_length: 2048
languages: [en]
abilities: [chat]
specs:
  - format: pytorch
    size: 0.1
    quantizations: [none]
    sources:
      huggingface:
        model_id: org/toy-folder
"""


def install(server: HubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server.add_repo(
        "org/toy-GGUF",
        {"toy-Q4_0.gguf": GeneratedFile(MB, 1), "toy-Q8_0.gguf": GeneratedFile(2 * MB, 2)},
    )
    server.add_repo("org/other-GGUF", {"other-Q4_0.gguf": GeneratedFile(3 * MB, 3)})
    server.add_repo(
        "org/toy-folder",
        {
            "config.json": '{"model_type": "llama"}',
            "model.safetensors": GeneratedFile(MB // 2, 4),
            "README.md": "# toy\n",
        },
    )
    specs = tmp_path / "specs"
    specs.mkdir()
    for name, quants, repo, file in (
        ("toy-gguf", "Q4_0, Q8_0", "org/toy-GGUF", "toy-{quantization}.gguf"),
        ("toy-twin", "Q4_0", "org/toy-GGUF", "toy-{quantization}.gguf"),
        ("toy-other", "Q4_0", "org/other-GGUF", "other-{quantization}.gguf"),
    ):
        (specs / f"{name}.yaml").write_text(
            _GGUF.format(name=name, quants=quants, repo=repo, file=file)
        )
    (specs / "toy-folder.yaml").write_text(_FOLDER)
    monkeypatch.setenv("ZOO_CATALOG_PATH", str(specs))


@click.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.pass_context
def _zoo(ctx: click.Context) -> None:
    from zoo.cli.app import main

    main(ctx.args)  # the CLI's own error boundary: one-line errors and their exit codes


def invoke(*args: str) -> Result:
    """``zoo ARGS`` as the command line runs it (stdin not a terminal); stderr in output."""
    return CliRunner().invoke(_zoo, list(args))


def run(*args: str) -> str:
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    return result.output


def hf_storage(repo: str) -> Path:
    from zoo.hubs.huggingface import HuggingFaceHub

    return HuggingFaceHub().storage(repo)


def blobs(repo: str) -> list[int]:
    """Sizes of the repository's blobs on disk (what deleting a file must free)."""
    folder = hf_storage(repo) / "blobs"
    return sorted(p.stat().st_size for p in folder.iterdir()) if folder.is_dir() else []
