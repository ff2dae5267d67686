"""Render time of the model pages for 1,000 generated families (target: under 2 s).

    .venv/bin/python bench/docs_render.py [--families 1000] [--repeat 5]

Families come from ``zoo.docs.synthetic`` (three specs each: pytorch, GPTQ with one repository
per quantization, GGUF with nine quantizations and split parts); engines and hubs are the
installed plugins'. Prints the median of the repeats; the render is pure (no disk I/O).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--families", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    from zoo.docs.context import DocsContext
    from zoo.docs.render import render_pages
    from zoo.docs.synthetic import families

    items = families(args.families)
    ctx = DocsContext.from_plugins()
    times = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        pages = render_pages(items, ctx)
        times.append(time.perf_counter() - start)
    size = sum(len(text) for text in pages.values())
    print(
        f"rendered {len(pages)} pages ({args.families} families, {size / 1e6:.1f} MB of RST) "
        f"on {platform.machine()} with {platform.python_version()}: median "
        f"{statistics.median(times):.2f} s, min {min(times):.2f} s over {args.repeat} runs"
    )


if __name__ == "__main__":
    main()
