"""Property tests: whatever the input, validation returns positioned problems and never raises."""

from __future__ import annotations

from typing import Any

import yaml
from catalog_helpers import VALID, check
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from zoo.catalog import yamlpos
from zoo.catalog.problems import CODES

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
BASE: dict[str, Any] = yaml.safe_load(VALID)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(
        [
            "{quantization}",
            "../x",
            "/abs",
            "a\\b",
            "Q4_K_M",
            "Int4",
            "org/name",
            "",
            "none",
            "ggufv2",
            "-1",
            "1_5",
        ]
    ),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)


def paths_in(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(data, dict):
        for key, value in data.items():
            found.extend(paths_in(value, (*prefix, key)))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            found.extend(paths_in(value, (*prefix, index)))
    return found


@st.composite
def broken_specs(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    """The valid spec with one to three random edits: replace, delete or add a value."""
    import copy

    data = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(paths_in(data)[1:]))
        parent = data
        for part in path[:-1]:
            parent = parent[part]
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "replace":
            parent[path[-1]] = draw(values)
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=12))] = draw(values)
        else:
            parent.append(draw(values))
        if not paths_in(data)[1:]:
            break
    return data, action


def assert_well_formed(result: Any, text: str) -> None:
    lines = text.count("\n") + 1
    for problem in result.problems:
        assert problem.code in CODES
        assert 1 <= problem.line <= lines + 1, (problem, text)
        assert problem.column >= 1
        assert "\n" not in problem.message
        assert str(problem).startswith("spec.yaml:")
    if result.ok:
        result.family()  # a file without errors always builds


@SETTINGS
@given(broken_specs())
def test_edited_specs_give_positioned_problems(case: tuple[dict[str, Any], str]) -> None:
    data, _ = case
    text = yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
    result = check(text)
    assert_well_formed(result, text)


@SETTINGS
@given(broken_specs())
def test_a_changed_spec_is_either_valid_or_explains_why(case: tuple[dict[str, Any], str]) -> None:
    data, _ = case
    text = yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
    result = check(text)
    if result.ok:
        family = result.family()
        assert family.name == data["name"]
    else:
        assert any(p.is_error for p in result.problems)


@SETTINGS
@given(st.text(max_size=400))
def test_arbitrary_text_never_raises(text: str) -> None:
    result = check(text)
    assert_well_formed(result, text)


@SETTINGS
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_raise(raw: bytes) -> None:
    text, problems = yamlpos.decode(raw, "spec.yaml")
    if text is not None:
        result = check(text)
        problems = result.problems
    for problem in problems:
        assert problem.line >= 1 and problem.code in CODES


@SETTINGS
@given(st.lists(st.sampled_from(VALID.splitlines()), min_size=1, max_size=40))
def test_shuffled_lines_of_a_valid_spec(lines: list[str]) -> None:
    text = "\n".join(lines) + "\n"
    assert_well_formed(check(text), text)


@SETTINGS
@given(broken_specs())
def test_the_fast_validator_agrees_with_jsonschema(case: tuple[dict[str, Any], str]) -> None:
    """Valid files skip jsonschema, so the compiled check must never call an invalid file valid."""
    from jsonschema import Draft202012Validator

    from zoo.catalog.schema import is_valid, schema

    data, _ = case
    reference = not any(Draft202012Validator(schema()).iter_errors(data))
    assert is_valid(data) is reference


REQUIRED = {
    (): ["name", "description", "context_length", "languages", "abilities", "specs"],
    ("specs", 0): ["format", "size", "sources"],
    ("specs", 0, "sources", "huggingface"): ["model_id"],
}
GARBAGE = st.text(alphabet="abcxyz_!@# ", min_size=1, max_size=8)


def _at(data: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        data = data[part]
    return data


def _positive(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


@st.composite
def surely_broken(draw: st.DrawFn) -> tuple[str, tuple[Any, ...]]:
    """The valid spec with one edit that must be an error, and the path the error is about."""
    import copy

    data = copy.deepcopy(BASE)
    kind = draw(
        st.sampled_from(["drop", "unknown", "number", "quantization", "model_id", "escape"])
    )
    if kind == "drop":
        where = draw(st.sampled_from(sorted(REQUIRED)))
        key = draw(st.sampled_from(REQUIRED[where]))
        parent = data
        for part in where:
            parent = parent[part]
        del parent[key]
        return yaml.safe_dump(data, sort_keys=False), where
    if kind == "unknown":
        where = draw(st.sampled_from(sorted(REQUIRED)))
        parent = data
        for part in where:
            parent = parent[part]
        key = draw(st.text(alphabet="qwvjkz", min_size=3, max_size=10))
        parent[key] = draw(scalars)
        return yaml.safe_dump(data, sort_keys=False), (*where, key)
    if kind == "number":
        target = draw(
            st.sampled_from([("context_length",), ("specs", 0, "size"), ("specs", 1, "size")])
        )
        value = draw(
            st.one_of(st.integers(max_value=0), st.floats(max_value=0), st.text(max_size=5))
        )
        parent = data
        for part in target[:-1]:
            parent = parent[part]
        parent[target[-1]] = value
        text = yaml.safe_dump(data, sort_keys=False)
        # PyYAML writes YAML 1.1, where "1E0" or "0o7" are strings it need not quote; zoo reads
        # YAML 1.2, where they are the positive numbers 1.0 and 7: valid, not broken.
        document, _ = yamlpos.parse(text, "spec.yaml")
        assume(document is not None and not _positive(_at(document.data, target)))
        return text, target
    if kind == "quantization":
        index = draw(st.integers(0, 2))
        data["specs"][0]["quantizations"][index] = draw(GARBAGE)
        return yaml.safe_dump(data, sort_keys=False), ("specs", 0, "quantizations", index)
    if kind == "model_id":
        source = data["specs"][0]["sources"]["huggingface"]
        source["model_id"] = draw(
            st.sampled_from(["a b/c", "org//x", "-x/y", "x/y/z", "x", "org/na..me", "{part}/x"])
        )
        return yaml.safe_dump(data, sort_keys=False), (
            "specs",
            0,
            "sources",
            "huggingface",
            "model_id",
        )
    source = data["specs"][0]["sources"]["huggingface"]
    source["file"] = draw(
        st.sampled_from(
            [
                "../{quantization}.gguf",
                "/{quantization}.gguf",
                "a\\{quantization}.gguf",
                "a/../../{quantization}",
            ]
        )
    )
    return yaml.safe_dump(data, sort_keys=False), ("specs", 0, "sources", "huggingface", "file")


@SETTINGS
@given(surely_broken())
def test_every_broken_spec_gets_an_error_where_it_is_broken(
    case: tuple[str, tuple[Any, ...]],
) -> None:
    text, path = case
    result = check(text)
    assert not result.ok
    errors = [p for p in result.problems if p.is_error]
    assert errors
    document, _ = yamlpos.parse(text, "spec.yaml")
    assert document is not None
    expected = {document.where(path)[0], document.where(path, key=True)[0]}
    assert any(p.line in expected for p in errors), (expected, errors, text)
