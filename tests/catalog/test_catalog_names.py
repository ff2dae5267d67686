"""`zoo validate` refuses exactly the ids, revisions and file names a download refuses."""

from __future__ import annotations

import json
import re

import pytest
from catalog_helpers import HEADER, check

from zoo import names
from zoo.catalog.schema import SCHEMA_FILE
from zoo.hubs.base import UnsafePathError
from zoo.hubs.safety import check_relative_path, check_repo_id, check_revision

REPO_IDS = ["org/name", "org/name\n", "org/na\0me", "org/../x", "org/a--b", "name", "-org/x"]
REVISIONS = ["main", "feature/x", "v1.0", "main\n", "a/../b", "../x", "feature/", "x/.y", "a\tb"]
FILES = ["x.gguf", "dir/x.gguf", "x\n.gguf", "x.gguf\n", "../x.gguf", "/x.gguf", "a\\x", "a//x"]
# Invisible formatting characters (category Cf): a bidi override, a zero-width space, a BOM.
FILES += ["model\u202enosj.gguf", "x\u200b.gguf", "\ufeffx.gguf", "dir\u2066/x.gguf"]


def _spec(model_id: str, revision: str | None = None, file: str = "x-{quantization}.gguf") -> str:
    lines = [
        "name: names",
        "description: Names.",
        "context_length: 2048",
        "languages: [en]",
        "abilities: [chat]",
        "specs:",
        "  - format: ggufv2",
        "    size: 1",
        "    quantizations: [Q4_0]",
        "    sources:",
        "      huggingface:",
        f"        model_id: {json.dumps(model_id)}",
        f"        file: {json.dumps(file)}",
    ]
    if revision is not None:
        lines.append(f"        revision: {json.dumps(revision)}")
    return HEADER + "\n".join(lines) + "\n"


def _download_refuses(check: object, value: str) -> bool:
    try:
        check(value)  # type: ignore[operator]
    except UnsafePathError:
        return True
    return False


@pytest.mark.parametrize("model_id", REPO_IDS)
def test_repository_ids(model_id: str) -> None:
    result = check(_spec(model_id))
    refused = _download_refuses(lambda repo: check_repo_id(repo, "huggingface"), model_id)
    assert (not result.ok) is refused, result.problems


@pytest.mark.parametrize("revision", REVISIONS)
def test_revisions(revision: str) -> None:
    result = check(_spec("org/name", revision))
    assert (not result.ok) is _download_refuses(check_revision, revision), result.problems
    # Each wrong revision is reported once, where it is written (line 15 of the spec).
    assert len(result.problems) == (0 if result.ok else 1), result.problems
    assert all(p.line == 15 for p in result.problems)


@pytest.mark.parametrize("file", FILES)
def test_file_names(file: str) -> None:
    result = check(_spec("org/name", file=file))
    assert (not result.ok) is _download_refuses(check_relative_path, file), result.problems


def test_the_schema_revision_pattern_is_the_one_the_hubs_use() -> None:
    schema = json.loads(SCHEMA_FILE.read_text())
    pattern = schema["$defs"]["source"]["properties"]["revision"]["pattern"]
    assert pattern == f"^{names.REVISION_PATTERN}$"


def test_a_family_name_with_a_trailing_newline_is_refused() -> None:
    text = _spec("org/name").replace("name: names", 'name: "names\\n"')
    result = check(text)
    assert [(p.code, p.line) for p in result.problems] == [("E204", 2)]


@pytest.mark.parametrize("char", ["\u202e", "\u200b", "\u200d", "\ufeff", "\u2066", "\u00ad"])
def test_an_invisible_formatting_character_is_refused_in_every_name(char: str) -> None:
    """``model\\u202enosj.gguf`` shows as ``modelfugg.json``: not the name it looks like.
    Refused in spec files and at download time alike, with the same words."""
    code = f"U+{ord(char):04X}"
    result = check(_spec("org/name", file=f"model{char}-{{quantization}}.gguf"))
    assert not result.ok and any(code in p.message for p in result.problems), result.problems
    with pytest.raises(UnsafePathError, match=re.escape(f"invisible formatting character {code}")):
        check_relative_path(f"model{char}.gguf")
    for problem in (
        names.repo_id_problem(f"org/na{char}me", "huggingface"),
        names.revision_problem(f"main{char}"),
        names.relative_path_problem(f"dir{char}/x.gguf"),
    ):
        assert problem == f"contains the invisible formatting character {code}"
    # Visible non-ASCII letters stay allowed in file names.
    assert names.relative_path_problem("café/模型.gguf") is None
