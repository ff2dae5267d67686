"""The RST builders: catalog text is shown exactly as written and never becomes markup."""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st

from zoo.docs import rst

# Printable text as spec files contain it (no control characters; YAML would reject most).
catalog_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1
).filter(lambda s: s.strip())


def _paragraph_text(check: Callable[[str], list[str]], source: str) -> str:
    import docutils.core

    assert check(source) == [], source
    doctree = docutils.core.publish_doctree(source, settings_overrides={"report_level": 5})
    return doctree.astext()


@settings(max_examples=200, deadline=None)
@given(catalog_text)
def test_text_round_trips_through_docutils(rst_problems, value: str) -> None:
    assert _paragraph_text(rst_problems, rst.text(value)) == " ".join(value.split())


@settings(max_examples=200, deadline=None)
@given(catalog_text)
def test_literal_round_trips_through_docutils(rst_problems, value: str) -> None:
    assert _paragraph_text(rst_problems, "x " + rst.literal(value) + " y") == (
        "x " + " ".join(value.split()) + " y"
    )


@settings(max_examples=100, deadline=None)
@given(catalog_text)
def test_prose_keeps_words_and_makes_backticks_code(rst_problems, value: str) -> None:
    source = rst.prose(value.replace("`", "'") + " `code`s")
    text = _paragraph_text(rst_problems, source)
    assert text == " ".join(value.replace("`", "'").split()) + " codes"


def test_link_keeps_url_and_label(rst_problems) -> None:
    source = rst.link("org/model <v2>", "https://example.org/org/model")
    assert rst_problems(source) == []
    import docutils.core

    doctree = docutils.core.publish_doctree(source)
    reference = next(iter(doctree.findall(lambda n: n.tagname == "reference")))
    assert reference["refuri"] == "https://example.org/org/model"
    assert reference.astext() == "org/model <v2>"


def test_list_table_with_multiline_cells_parses(rst_problems) -> None:
    table = rst.list_table(["A", "B"], [["one", rst.line_block(["``x``", "``y``"])], ["", "two"]])
    assert rst_problems(table) == []
