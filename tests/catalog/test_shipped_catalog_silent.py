"""The shipped catalog validates with no problem at all: not an error, not a warning.

Every fact lint (zoo.catalog.lint_facts) runs over every shipped family here, so a family
added or re-imported with a wrong size, activated size, part list, format or a flattened chat
template fails the suite instead of shipping as noise in `zoo validate`."""

from __future__ import annotations

from zoo.catalog.catalog import builtin_catalog_dir, check_files, spec_files
from zoo.catalog.validate import duplicate_problems


def test_zoo_validate_is_silent_on_the_shipped_catalog() -> None:
    files = spec_files([builtin_catalog_dir()])
    assert len(files) > 300  # the whole catalog, not a test subset
    results = check_files(files, problems_only=True)
    problems = [p for r in results for p in r.problems] + duplicate_problems(results)
    assert not problems, "\n".join(str(p) for p in problems[:40])
