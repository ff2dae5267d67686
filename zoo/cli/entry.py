"""The ``zoo`` console script: answers ``zoo --version`` before importing the CLI framework.

Everything else goes to ``zoo.cli.app.main``; importing typer is most of zoo's start-up time,
and printing the version needs none of it.
"""

from __future__ import annotations

import sys


def main() -> None:
    if sys.argv[1:] == ["--version"]:
        from zoo import __version__

        print(f"zoo {__version__}")
        return
    from zoo.cli.app import main as app_main

    app_main()
