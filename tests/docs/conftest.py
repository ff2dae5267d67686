"""Shared fixtures for the documentation tests: a small real catalog, the plugins' engine data,
and a docutils check that knows Sphinx's few extra roles and directives."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import pytest

HERE = Path(__file__).parent
CATALOG = HERE / "data" / "catalog"
GOLDEN = HERE / "golden"


@pytest.fixture
def fixture_catalog() -> Path:
    """seed-oss, seed-coder-8b-base (FIM) and smollm2-135m-instruct (PyPI source)."""
    return CATALOG


@pytest.fixture
def docs_ctx():  # type: ignore[no-untyped-def]
    from zoo.docs.context import DocsContext

    return DocsContext.from_plugins()


def _register_sphinx_names() -> None:
    """Sphinx adds :ref:, :doc:, code-block and toctree; plain docutils needs stand-ins that
    parse their content the same way, so any markup error in our text still shows up."""
    from docutils import nodes
    from docutils.parsers.rst import Directive, directives, roles
    from docutils.parsers.rst.directives.body import CodeBlock

    def xref(name, rawtext, text, lineno, inliner, options=None, content=None):  # type: ignore[no-untyped-def]
        return [nodes.inline(rawtext, text)], []

    class TocTree(Directive):
        has_content = True
        option_spec: ClassVar = {"hidden": directives.flag, "maxdepth": int, "caption": str}

        def run(self):  # type: ignore[no-untyped-def]
            return []

    roles.register_local_role("ref", xref)
    roles.register_local_role("doc", xref)
    directives.register_directive("code-block", CodeBlock)
    directives.register_directive("toctree", TocTree)


@pytest.fixture(scope="session")
def rst_problems() -> Callable[[str], list[str]]:
    """Parse RST with docutils and return every message of level INFO+ that is a real problem
    (warnings and errors; duplicate-name infos are not produced by our pages)."""
    import docutils.core
    from docutils import nodes

    _register_sphinx_names()

    def check(text: str) -> list[str]:
        stream = io.StringIO()
        doctree = docutils.core.publish_doctree(
            text,
            settings_overrides={
                "report_level": 2,
                "halt_level": 5,
                "warning_stream": stream,
                "file_insertion_enabled": False,
                "raw_enabled": False,
            },
        )
        found = [msg.astext() for msg in doctree.findall(nodes.system_message) if msg["level"] >= 2]
        return found + [line for line in stream.getvalue().splitlines() if line]

    return check
