"""JSON files a user names on the command line, nested too deep for Python's parser."""

from __future__ import annotations

from pathlib import Path

from hostile_helpers import assert_json_error, assert_one_error_line, zoo

NESTED = "[" * 100_000 + "]" * 100_000


def test_a_host_profile_nested_too_deep(tmp_path: Path) -> None:
    # Was: "internal error: RecursionError: maximum recursion depth exceeded".
    profile = tmp_path / "host.json"
    profile.write_text(NESTED)
    command = ("launch", "smollm2-135m-instruct", "--dry-run", "--host-profile", str(profile))
    assert_one_error_line(zoo(*command), "cannot read host profile")
    assert_json_error(zoo(*command, "--json"), "usage")


def test_an_import_source_nested_too_deep(tmp_path: Path) -> None:
    source = tmp_path / "llm_family.json"
    source.write_text(NESTED)
    result = zoo("import", "xinference", str(source), "--out", str(tmp_path / "out"))
    assert_one_error_line(result, "not readable as JSON")
