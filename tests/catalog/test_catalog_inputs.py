"""Hostile and broken input: every case ends in positioned problems, never an exception."""

from __future__ import annotations

from pathlib import Path

import pytest
from catalog_helpers import VALID, check, codes, family_text

from zoo.catalog import yamlpos
from zoo.catalog.validate import check_file


def check_bytes(tmp_path: Path, raw: bytes) -> list[str]:
    path = tmp_path / "spec.yaml"
    path.write_bytes(raw)
    result = check_file(path, "spec.yaml")
    assert result.data is None
    for problem in result.problems:
        assert problem.line >= 1 and problem.column >= 1, problem
    return [str(p) for p in result.problems]


def test_an_empty_file(tmp_path: Path) -> None:
    assert check_bytes(tmp_path, b"") == [
        "spec.yaml:1:1: error[E100]: the file is empty (no YAML document)"
    ]


def test_a_file_of_comments_only(tmp_path: Path) -> None:
    assert "E100" in check_bytes(tmp_path, b"# nothing here\n\n# still nothing\n")[0]


def test_binary_data_points_at_the_first_nul(tmp_path: Path) -> None:
    lines = check_bytes(tmp_path, b"name: x\nab\x00\x01\x02")
    assert lines == ["spec.yaml:2:3: error[E100]: binary data (a NUL byte): not a YAML file"]


def test_non_utf8_text_points_at_the_bad_byte(tmp_path: Path) -> None:
    lines = check_bytes(tmp_path, "name: x\ndescription: caf\u00e9\n".encode("latin-1"))
    assert lines == ["spec.yaml:2:17: error[E100]: not UTF-8 text: byte 0xe9 is invalid"]


def test_a_utf8_byte_order_mark_is_fine(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + family_text("bom").encode())
    result = check_file(path)
    assert result.ok
    assert result.problems == []  # the $schema comment is still the first line


def test_tabs_for_indentation_say_so(tmp_path: Path) -> None:
    text = family_text("tabs").replace("  - format: pytorch", "\t- format: pytorch")
    (line,) = check_bytes(tmp_path, text.encode())
    assert line.startswith("spec.yaml:8:1: error[E101]: ")
    assert "a tab: indent with spaces" in line


def test_a_50_megabyte_file_is_refused_without_reading_it(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    with path.open("wb") as handle:
        handle.write(b"name: huge\ndescription: ")
        handle.truncate(50 * 1024 * 1024)
    result = check_file(path, "huge.yaml")
    assert [str(p) for p in result.problems] == [
        "huge.yaml:1:1: error[E100]: file is 52.4 MB; a spec file may be at most 4 MiB"
    ]


def test_a_billion_laughs_is_stopped(tmp_path: Path) -> None:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for index in range(1, 10):
        previous, name = chr(ord("a") + index - 1), chr(ord("a") + index)
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{previous}"] * 10) + "]")
    (line,) = check_bytes(tmp_path, ("\n".join(lines) + "\n").encode())
    assert "error[E103]" in line and "alias" in line


def test_aliases_within_the_budget_are_expanded() -> None:
    text = family_text("alias").replace("languages: [en]", "languages: &langs [en]") + (
        "extra: {copy: *langs}\n"
    )
    result = check(text)
    assert result.ok
    assert result.data is not None and result.data["extra"] == {"copy": ["en"]}


@pytest.mark.parametrize("opener", ["[", "{a: "])
def test_deep_flow_nesting(tmp_path: Path, opener: str) -> None:
    (line,) = check_bytes(tmp_path, (opener * 5000).encode())
    assert "error[E10" in line  # E101 from the parser's own limit or E103 from ours


def test_deep_block_nesting(tmp_path: Path) -> None:
    text = "".join(" " * (2 * depth) + f"k{depth}:\n" for depth in range(300))
    (line,) = check_bytes(tmp_path, text.encode())
    assert line == "spec.yaml:65:129: error[E103]: nested more than 64 levels deep"


def test_a_second_document_is_refused() -> None:
    result = check(VALID + "---\nname: other\n")
    assert codes(result) == ["E104"]
    assert (result.problems[0].line, result.problems[0].column) == (30, 1)


def test_merge_keys_are_refused() -> None:
    text = family_text("merge") + "extra:\n  <<: {a: 1}\n"
    assert codes(check(text)) == ["E104"]


def test_a_mapping_as_a_key_is_refused() -> None:
    assert codes(check(family_text("k") + "extra: {? [a, b] : c}\n")) == ["E104"]


def test_an_unknown_alias() -> None:
    result = check(family_text("k") + "extra: {a: *nowhere}\n")
    assert codes(result) == ["E101"]
    assert "unknown alias *nowhere" in result.problems[0].message


def test_yaml_1_2_scalars_keep_norway_and_underscores_as_text() -> None:
    document, problems = yamlpos.parse("a: no\nb: 1_5\nc: 0x10\nd: 1e3\ne: ~\nf: 2024-01-01\n", "f")
    assert problems == [] and document is not None
    assert document.data == {
        "a": "no",
        "b": "1_5",
        "c": 16,
        "d": 1000.0,
        "e": None,
        "f": "2024-01-01",
    }


def test_a_huge_integer_is_an_error_not_a_crash() -> None:
    result = check(
        family_text("n").replace("context_length: 2048", "context_length: " + "9" * 5000)
    )
    assert codes(result) == ["E101"]


def test_a_top_level_list_is_a_schema_error() -> None:
    result = check("- a\n- b\n")
    assert codes(result) == ["E200"]
    assert result.problems[0].message == "the file must be a mapping, not a list"


def test_control_characters_are_a_positioned_syntax_error(tmp_path: Path) -> None:
    (line,) = check_bytes(tmp_path, b"name: a\x07b\n")
    assert line.startswith("spec.yaml:1:8: error[E101]")


def test_a_missing_file_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    result = check_file(tmp_path / "gone.yaml", "gone.yaml")
    assert codes(result) == ["E100"]


def _strange_folder(tmp_path: Path) -> Path:
    """A catalog folder with one good spec and every kind of entry that is not a file."""
    import os
    import socket

    folder = tmp_path / "specs"
    folder.mkdir()
    (folder / "good.yaml").write_text(family_text("good"))
    os.mkfifo(folder / "fifo.yaml")
    (folder / "zero.yaml").symlink_to("/dev/zero")
    (folder / "pipe-link.yaml").symlink_to(folder / "fifo.yaml")
    (folder / "dir.yaml").mkdir()
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(folder / "sock.yaml"))
    listener.close()
    return folder


EXPECTED_KINDS = {
    "dir.yaml": "a folder",
    "fifo.yaml": "a FIFO (named pipe)",
    "pipe-link.yaml": "a FIFO (named pipe)",
    "sock.yaml": "a socket",
    "zero.yaml": "a character device",
}


@pytest.mark.timeout(30)  # reading the FIFO or /dev/zero would hang or never end
def test_fifos_devices_and_links_to_them_are_skipped_with_a_problem(tmp_path: Path) -> None:
    from zoo.catalog.catalog import load_catalog

    folder = _strange_folder(tmp_path)
    catalog = load_catalog([folder])
    assert list(catalog.families) == ["good"]
    found = {Path(p.path).name: p for p in catalog.problems}
    assert set(found) == set(EXPECTED_KINDS)
    for name, kind in EXPECTED_KINDS.items():
        assert str(found[name]).endswith(f"error[E100]: {kind}, not a spec file: skipped")


@pytest.mark.timeout(30)
@pytest.mark.parametrize("name", sorted(EXPECTED_KINDS))
def test_the_reader_itself_never_opens_them_for_a_read(tmp_path: Path, name: str) -> None:
    folder = _strange_folder(tmp_path)
    result = check_file(folder / name, name)
    assert [str(p) for p in result.problems] == [
        f"{name}:1:1: error[E100]: {EXPECTED_KINDS[name]}, not a spec file: skipped"
    ]


@pytest.mark.timeout(60)
def test_zoo_validate_lists_them(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from zoo.cli.app import build_app

    folder = _strange_folder(tmp_path)
    ran = CliRunner().invoke(build_app(), ["validate", str(folder)])
    assert ran.exit_code == 1
    for name, kind in EXPECTED_KINDS.items():
        assert f"{name}: error[E100]: {kind}, not a spec file: skipped" in ran.output
