"""``make demo`` until the launch work lands: check the catalog, then show the demo model.

The launch work replaces this with the real demo (download SmolLM2-135M-Instruct from its PyPI
package, start it and ask it a question).
"""

from __future__ import annotations

import sys

DEMO_MODEL = "smollm2-135m-instruct"


def main() -> int:
    from zoo.catalog.catalog import load_catalog
    from zoo.cli.app import main as zoo

    catalog = load_catalog()
    errors = catalog.errors
    print(f"catalog: {len(catalog)} model families, {len(errors)} problem(s) that skip a file")
    for problem in errors:
        print(f"  {problem}")
    try:
        zoo(["show", DEMO_MODEL])
    except SystemExit as done:
        return int(done.code or 0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
