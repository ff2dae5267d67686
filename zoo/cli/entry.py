"""The ``zoo`` console script: answers ``zoo --version`` before importing the CLI framework.

Everything else goes to ``zoo.cli.app.main``, which reports every error of a command (see its
module docstring); importing typer is most of zoo's start-up time, and printing the version
needs none of it. Ctrl-C while that import runs is still one line, never a traceback.
"""

from __future__ import annotations

import sys


def main() -> None:
    if sys.argv[1:] == ["--version"]:
        from zoo import __version__

        try:
            print(f"zoo {__version__}", flush=True)
        except BrokenPipeError:
            sys.exit(1)  # `zoo --version | true`: the reader is gone, nothing to report
        return
    try:
        from zoo.cli.app import main as app_main
    except KeyboardInterrupt:
        sys.stderr.write("zoo: interrupted\n")
        sys.exit(130)
    app_main()
