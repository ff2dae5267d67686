"""Download sizes for the pages: what the lock recorded, else an estimate from the weights.

The lock (``locks/<family>.json``, written by ``zoo catalog check --fix``) gives the bytes of
the very files a download takes; without it the size is parameters × bits per weight
(``zoo.memory.weights_bytes``), shown with "~" so a reader knows which is which.
"""

from __future__ import annotations

from dataclasses import dataclass

from zoo.catalog.model import Family, Spec
from zoo.memory import GIB, weights_bytes


@dataclass(frozen=True)
class Download:
    bytes: int
    recorded: bool  # from the lock; False: estimated

    def words(self) -> str:
        return ("" if self.recorded else "~") + bytes_words(self.bytes)


def bytes_words(n: int) -> str:
    """GiB with one decimal; below 1 GiB in MiB, so small models' quantizations differ."""
    return f"{n / GIB:.1f} GiB" if n >= GIB else f"{max(round(n / 1024**2), 1):,} MiB"


def spec_downloads(spec: Spec) -> dict[str, Download]:
    """Each quantization's download: the first source (the spec's order) whose lock recorded
    its size, else the estimate."""
    from zoo.resolve import recorded_downloads

    recorded: dict[str, int] = {}
    for source in spec.sources:
        for found in recorded_downloads(spec, source):
            if found.bytes and found.quantization not in recorded:
                recorded[found.quantization] = found.bytes
    return {
        q: Download(recorded[q], True) if q in recorded else Download(weights_bytes(spec, q), False)
        for q in spec.quantizations
    }


def smallest_download(family: Family) -> tuple[Spec, str, Download] | None:
    """The family's smallest download over every spec and quantization (None: no specs)."""
    found = [
        (download.bytes, index, spec, q, download)
        for index, spec in enumerate(family.specs)
        for q, download in spec_downloads(spec).items()
    ]
    if not found:
        return None
    _, _, spec, q, download = min(found, key=lambda item: (item[0], item[1]))
    return spec, q, download
