"""The quantization names each format really has, as grammars rather than closed lists.

Quantizers keep inventing names (unsloth's ``UD-Q4_K_XL``, mradermacher's ``i1-IQ3_M``,
Mungert's hybrids ``bf16_q8_0``), so each format's vocabulary is a small grammar built from the
real building blocks: llama.cpp's tensor types and size suffixes for GGUF, bit widths for
GPTQ/AWQ/MLX. Every name in Xinference's registry passes; typos such as ``Q4_K_Z``, ``IQ5_XS``
or ``Int5`` do not. Matching ignores case, because the registries write ``q4_k_m`` and
``Q4_K_M`` for the same thing.
"""

from __future__ import annotations

import re
from functools import cache

# --- GGUF (llama.cpp) ----------------------------------------------------------------------
# Legacy block quants Q4_0 … Q8_1 (and the bare Q4/Q6/Q8 some uploaders write).
_LEGACY = r"Q[1-8](?:_[01])?"
# K-quants and their mix sizes: Q4_K_M, Q2_K_L (bigger embeddings), UD-Q8_K_XL.
_K_QUANT = r"Q[2-8]_K(?:_(?:XXS|XS|S|M|L|XL))?"
# i-quants exist only in these combinations (llama.cpp's ggml types); unsloth adds _XL.
_I_QUANT = r"(?:IQ1_(?:S|M)|IQ2_(?:XXS|XS|S|M)|IQ3_(?:XXS|XS|S|M)|IQ4_(?:NL|XS))(?:_XL)?"
_TERNARY = r"TQ[12]_0"
_FLOAT = r"F32|F16|BF16|FP16|FP32"
_MX = r"MXFP4(?:_MOE)?"
_GGUF_CORE = f"{_K_QUANT}|{_I_QUANT}|{_TERNARY}|{_LEGACY}|{_MX}"
# Hybrids keep key tensors in a float type and quantize the rest: bf16_q8_0, f16_q4_K.
_HYBRID = f"(?:BF16|F16|F32)_(?:{_GGUF_CORE})"
# "none" appears in Xinference for GGUF repositories whose file name carries no quant.
_GGUF = f"(?:UD-|i1-)?(?:{_HYBRID}|{_GGUF_CORE}|{_FLOAT})|none"

# --- safetensors-based formats ------------------------------------------------------------
_GPTQ = (
    r"Int[2348](?:-Int8Mix(?:-(?:Compact|Lite|Medium))?|-W[48]A(?:8|16))?"
    r"|[2348]bits?"
)
_AWQ = r"Int[48]|[48]bits?|AWQ(?:-FP16Mix|-Lite)?"
_MLX = r"[2-8]bit(?:-MXFP8)?|bf16|fp16|fp32|mxfp4|mxfp8|nvfp4|none"
# pytorch "none" is the weights as published; 4-bit/8-bit are bitsandbytes on load; a float
# type names a repository published in that precision (Seed-Coder-8B-Reasoning-bf16).
_PYTORCH = r"none|Int4|Int8|fp8|[48]-bit|bf16|fp16|fp32"
_BNB = r"[48]-bit|[48]bit|nf4|fp4"
_FP8 = r"fp8(?:-dynamic)?|none"
_FP4 = r"fp4|nvfp4|mxfp4"

GRAMMARS: dict[str, str] = {
    "ggufv2": _GGUF,
    "gptq": _GPTQ,
    "awq": _AWQ,
    "mlx": _MLX,
    "pytorch": _PYTORCH,
    "bnb": _BNB,
    "fp8": _FP8,
    "fp4": _FP4,
}

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


@cache
def _pattern(fmt: str) -> re.Pattern[str] | None:
    grammar = GRAMMARS.get(fmt)
    return re.compile(f"(?:{grammar})", re.IGNORECASE) if grammar else None


def is_known(fmt: str, quantization: str) -> bool:
    """Whether ``quantization`` is a real quantization name for ``fmt``.

    Unknown formats accept anything: the schema already reports the format itself.
    """
    pattern = _pattern(fmt)
    return pattern is None or pattern.fullmatch(quantization) is not None


def suggestion(fmt: str, quantization: str) -> str:
    """A hint for an unknown name: the closest typical name, else a few examples."""
    import difflib

    examples = EXAMPLES.get(fmt, ())
    by_case = {e.lower(): e for e in examples}
    close = difflib.get_close_matches(quantization.lower(), list(by_case), n=1, cutoff=0.6)
    if close:
        return f"did you mean {by_case[close[0]]!r}?"
    return "expected names like " + ", ".join(examples)
