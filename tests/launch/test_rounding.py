"""A need and a budget that differ never print alike ("needs 18.9 GiB, more than 18.9 GiB")."""

from __future__ import annotations

import random

from zoo.memory import GIB, gib, gib_pair


def _value(text: str) -> float:
    number, unit = text.split()
    return float(number.replace(",", "")) * (1 if unit == "bytes" else GIB)


def test_close_amounts_get_the_decimals_that_tell_them_apart() -> None:
    need, budget = int(18.94 * GIB), int(18.91 * GIB)
    assert gib(need) == gib(budget) == "18.9 GiB"  # the bug: one decimal each
    assert gib_pair(need, budget) == ("18.94 GiB", "18.91 GiB")
    assert gib_pair(int(30.1 * GIB), int(18.8 * GIB)) == ("30.1 GiB", "18.8 GiB")  # usual case
    assert gib_pair(GIB, GIB) == ("1.0 GiB", "1.0 GiB")  # equal amounts stay short
    assert gib_pair(GIB + 1, GIB) == ("1,073,741,825 bytes", "1,073,741,824 bytes")


def test_unequal_amounts_never_print_equal_and_keep_their_order() -> None:
    rng = random.Random(14)  # noqa: S311 (test data, not secrets)
    for _ in range(5000):
        budget = rng.randrange(1, 200 * GIB)
        need = budget + rng.choice([-1, 1]) * rng.randrange(1, GIB // 4)
        shown_need, shown_budget = gib_pair(need, budget)
        assert shown_need != shown_budget, (need, budget)
        assert (_value(shown_need) > _value(shown_budget)) == (need > budget)


def test_a_memory_reason_groups_by_its_budget_however_precisely_it_is_printed() -> None:
    from zoo.cli.launch_cmd import _reason_key

    group = "needs more than the 18.9 GiB of RAM usable here"
    assert _reason_key("needs 30.1 GiB, more than the 18.9 GiB of RAM usable here") == group
    assert _reason_key("needs 18.95 GiB, more than the 18.94 GiB of RAM usable here") == group
    close = f"needs {GIB + 1:,} bytes, more than the {GIB:,} bytes of RAM usable here"
    assert _reason_key(close) == "needs more than the 1.0 GiB of RAM usable here"
    assert _reason_key("gptq needs a CUDA GPU") == "gptq needs a CUDA GPU"


def test_the_launch_never_says_needs_x_more_than_x() -> None:
    """Through resolution: a host whose budget is a hair below the need says two amounts."""
    from dataclasses import replace

    from zoo.host import BUILTIN_PROFILES
    from zoo.plugins import get_engines, get_hubs
    from zoo.registry import catalog_with_plugins
    from zoo.resolve import Request, candidates, memory_budget

    catalog, engines, hubs = catalog_with_plugins(), get_engines(), get_hubs()
    base = BUILTIN_PROFILES["cpu-24g"]
    request = Request(model="qwen3", size=30.0, quantization="Q4_0", engine="llamacpp")
    need = candidates(catalog, request, engines, base, hubs=hubs)[0].memory_bytes
    assert need is not None
    low, high = 1, 256 * GIB  # the largest RAM whose budget is still below the need
    while high - low > 1:
        middle = (low + high) // 2
        fits = memory_budget(replace(base, ram_bytes=middle), "cpu") >= need
        low, high = (low, middle) if fits else (middle, high)
    edge = replace(base, ram_bytes=low, name="edge")
    assert gib(need) == gib(memory_budget(edge, "cpu"))  # one decimal each would read alike
    (dropped,) = candidates(catalog, request, engines, edge, hubs=hubs)
    assert not dropped.kept
    shown = dropped.reason.removeprefix("needs ").split(", more than the ")
    assert shown[0] != shown[1].split(" of ")[0]
