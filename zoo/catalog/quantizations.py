"""The quantization names lint accepts per format: exactly those of ``zoo.quantization``.

One registry decides what a name means (bits per weight, precision) and whether it is a name
at all, so a spec that validates never reaches a default in memory estimates or ranking.
Quantizers keep inventing names (unsloth's ``UD-Q4_K_XL``, mradermacher's ``i1-IQ3_M``,
Mungert's hybrids ``bf16_q8_0``); the registry composes those prefixes and hybrids from the
real building blocks, and typos such as ``Q4_K_Z``, ``IQ5_XS`` or ``Int5`` are errors. Matching
ignores case, because the registries write ``q4_k_m`` and ``Q4_K_M`` for the same thing.
"""

from __future__ import annotations

from zoo import quantization as registry

# The name grammar per format, derived from the registry: for messages and docs, and the set
# of formats whose names are checked.
GRAMMARS: dict[str, str] = {fmt: registry.pattern(fmt) for fmt in registry.FORMATS}

# Typical names per format for messages ("expected something like …") and docs.
EXAMPLES: dict[str, tuple[str, ...]] = {
    "ggufv2": ("Q4_K_M", "Q8_0", "BF16", "IQ3_XS", "UD-Q4_K_XL", "bf16_q8_0"),
    "gptq": ("Int4", "Int8", "Int3"),
    "awq": ("Int4",),
    "mlx": ("4bit", "8bit", "bf16", "mxfp4"),
    "pytorch": ("none",),
    "bnb": ("4-bit", "8-bit"),
    "fp8": ("fp8",),
    "fp4": ("fp4", "nvfp4"),
}


def is_known(fmt: str, quantization: str) -> bool:
    """Whether ``quantization`` is a real quantization name for ``fmt``.

    Unknown formats accept anything: the schema already reports the format itself.
    """
    return fmt not in GRAMMARS or registry.lookup(quantization, fmt) is not None


def suggestion(fmt: str, quantization: str) -> str:
    """A hint for an unknown name: the closest real name, else a few examples."""
    import difflib

    names = [n for q in registry.entries(fmt) for n in q.names]
    by_case = {n.lower(): n for n in (*EXAMPLES.get(fmt, ()), *names)}
    close = difflib.get_close_matches(quantization.lower(), list(by_case), n=1, cutoff=0.6)
    if close:
        return f"did you mean {by_case[close[0]]!r}?"
    return "expected names like " + ", ".join(EXAMPLES.get(fmt, ()))
