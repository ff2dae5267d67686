"""Recording benchmark figures: each script's text goes under its own heading in RESULTS.md."""

from __future__ import annotations

from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def record(heading: str, text: str) -> None:
    """Append ``text`` at the end of the ``heading`` section (created at the end if new)."""
    current = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else "# Benchmarks\n"
    if heading not in current:
        current = current.rstrip("\n") + f"\n\n{heading}\n"
    start = current.index(heading) + len(heading)
    following = current.find("\n## ", start)
    end = len(current) if following < 0 else following
    section = current[start:end].rstrip("\n") + "\n\n" + text.strip("\n") + "\n"
    rest = current[end:]
    RESULTS.write_text(
        current[:start] + section + ("\n" + rest.lstrip("\n") if rest else ""), encoding="utf-8"
    )
