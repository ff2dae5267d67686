"""One registry per spec format: what each quantization name means, for lint, memory and choice.

For every format a spec can have (``zoo.catalog.model.FORMATS``) the registry lists the
quantization names that really exist, each as a ``Quant``:

- ``bits``: effective bits per weight of a *whole model*, block scales and the tensors a format
  keeps at higher precision (embeddings, output head) included. Memory estimates use it.
- ``rank``: the precision class that orders candidates: 16 for 16-bit floats, 8 for Q8_0, 4 for
  Q4_K_M, a half step more for mixes that keep some layers at a higher precision.
- ``kind``: how the weights are stored ("float", "native", "block", "k-quant", "i-quant",
  "ternary", "int", "affine", "nf4", "fp8", "fp4", "mixed", "hybrid").

Lint (``zoo.catalog.quantizations``) accepts exactly the names ``lookup`` knows, so a name that
validates is one that memory estimates and ranking understand; ``lookup`` answers None for any
other name, never a default. ``info`` stays total (it guesses for names typed by hand) and is
the one place a default is used; the catalog walk in ``tests/engines`` proves no shipped
(format, quantization) reaches it.

The same word means different things in different formats ("none" is the checkpoint's 16-bit
weights in pytorch but FP8 in an fp8 repository; "4bit" is MLX's affine 4.5 bits or GPTQ's 4.6),
so every question takes the spec's format as ``fmt``. Without it, formats are tried in
``SEARCH_ORDER``. Names match case-insensitively (``q4_k_m`` is ``Q4_K_M``) but otherwise
exactly: ``Q4-K-M`` and ``"Q4_K_M "`` are not names (``find``/``same`` fold '-' and '_' for what
users type).

Precision follows the format guide of the Seed-Coder GGUF cards: BF16 where the hardware has
native BF16, then F16, then the highest-precision quantization. BF16 on hardware without it
falls back to FP32 arithmetic and runs slowly, so it is ranked below every 4-bit-or-better
quantization (still above 3-bit and lower ones, whose quality loss is worse than slowness).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache, lru_cache


@dataclass(frozen=True)
class Quant:
    """What one quantization name of one format means."""

    name: str  # the usual spelling
    bits: float  # effective bits per weight of a whole model, for memory estimates
    rank: float  # precision class, for ordering candidates
    kind: str
    core: str | None = None  # float kinds and hybrids: "bf16", "f16" or "f32"
    aliases: tuple[str, ...] = ()  # other spellings of the same thing
    known: bool = True  # False only for ``info``'s guesses

    @property
    def nominal(self) -> float:
        """The precision class (older name of ``rank``)."""
        return self.rank

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)


# Kept for callers of the first version of this module.
QuantInfo = Quant

# --- GGUF (llama.cpp) ----------------------------------------------------------------------
# Whole-model figures, output tensor and embeddings included, for large models (where memory
# decides). K-quant mixes: llama.cpp's quantize README, measured on Llama 2 70B (its 7B files
# run 0.04 bits more). Q2_K's mix has shrunk since that README (it says 3.40): llama-quantize's
# own table now gives 2.96 GiB for Llama-3-8B's 8.03e9 weights, 3.17 bits. Block quants are
# ggml's block sizes (18 bytes per 32 weights for Q4_0); their Q6_K output tensor adds 0.01 bits
# on a 70B. Cross-check from another source: unsloth's DeepSeek-R1 671B is 404 GB at Q4_K_M
# (4.82 bits) and 713 GB at Q8_0 (8.50). i-quants, ternary and Q1_0/Q2_0 have no whole-model
# size in either table; their figure is the tensor type's own, which llama-quantize prints.
_Q2_K = 3.17
# bartowski's "_L" (and "_XL" on Q3_K_L) keep embeddings and output at Q8_0; unsloth's "_XL"
# dynamic quants raise a few sensitive tensors the same way. bartowski's Llama-3.1-8B Q4_K_L is
# 5.31 GB against 4.92 GB for Q4_K_M (+0.39 bits); bigger models gain less: +0.3.
_BUMP = 0.3


def _k(bits: float, bump: float) -> float:
    return round(bits + bump, 2)


_GGUF_BASE: tuple[Quant, ...] = (
    Quant("F32", 32.0, 16.0, "float", core="f32", aliases=("FP32",)),
    Quant("F16", 16.0, 16.0, "float", core="f16", aliases=("FP16",)),
    Quant("BF16", 16.0, 16.0, "float", core="bf16"),
    # Block quants: 32 weights and one 16-bit scale (and minimum, for _1) per block.
    Quant("Q8_0", 8.5, 8.0, "block", aliases=("Q8",)),
    Quant("Q5_1", 6.0, 5.0, "block"),
    Quant("Q5_0", 5.5, 5.0, "block"),
    Quant("Q4_1", 5.0, 4.0, "block"),
    Quant("Q4_0", 4.5, 4.0, "block"),
    # ggml's 1-bit and 2-bit blocks: 18 bytes per 128 weights, 18 bytes per 64 weights.
    Quant("Q2_0", 2.25, 2.0, "block"),
    Quant("Q1_0", 1.125, 1.0, "block"),
    # K-quant mixes. llama-quantize names Q2_K "Q2_K - Medium" and takes Q3_K/Q4_K/Q5_K for the
    # _M mixes; uploaders also write the bare bit count (microsoft's Phi-3 "q4" is Q4_K_M, 2.39
    # GB for 3.8B weights) and size letters on Q6_K, which has no mixes.
    Quant("Q6_K", 6.56, 6.0, "k-quant", aliases=("Q6_K_M", "Q6_K_S", "Q6")),
    Quant("Q6_K_L", _k(6.56, _BUMP), 6.0, "k-quant"),
    Quant("Q6_K_XL", _k(6.56, _BUMP), 6.0, "k-quant"),
    Quant("Q5_K_M", 5.65, 5.0, "k-quant", aliases=("Q5_K", "Q5")),
    Quant("Q5_K_S", 5.5, 5.0, "k-quant"),
    Quant("Q5_K_L", _k(5.65, _BUMP), 5.0, "k-quant"),
    Quant("Q5_K_XL", _k(5.65, _BUMP), 5.0, "k-quant"),
    Quant("Q4_K_M", 4.80, 4.0, "k-quant", aliases=("Q4_K", "Q4")),
    Quant("Q4_K_S", 4.53, 4.0, "k-quant"),
    Quant("Q4_K_L", _k(4.80, _BUMP), 4.0, "k-quant"),
    Quant("Q4_K_XL", _k(4.80, _BUMP), 4.0, "k-quant"),
    Quant("Q3_K_L", 4.19, 3.0, "k-quant"),
    Quant("Q3_K_M", 3.85, 3.0, "k-quant", aliases=("Q3_K", "Q3")),
    Quant("Q3_K_S", 3.47, 3.0, "k-quant"),
    Quant("Q3_K_XL", _k(4.19, _BUMP), 3.0, "k-quant"),
    Quant("Q2_K", _Q2_K, 2.0, "k-quant", aliases=("Q2_K_M", "Q2")),
    Quant("Q2_K_S", _Q2_K, 2.0, "k-quant"),
    Quant("Q2_K_L", _k(_Q2_K, _BUMP), 2.0, "k-quant"),
    Quant("Q2_K_XL", _k(_Q2_K, _BUMP), 2.0, "k-quant"),
    # unsloth's Q2_K_XS (DeepSeek-V3/R1): smaller than Q2_K_S, about 207 GB for 671e9 weights.
    Quant("Q2_K_XS", 2.5, 2.0, "k-quant"),
    # unsloth's Q8_K_XL: Q8_0 with a few tensors left at BF16.
    Quant("Q8_K_XL", _k(8.5, _BUMP), 8.0, "k-quant"),
    # i-quants: only these combinations exist (ggml's types).
    Quant("IQ4_NL", 4.5, 4.0, "i-quant"),
    Quant("IQ4_NL_XL", _k(4.5, _BUMP), 4.0, "i-quant"),
    Quant("IQ4_XS", 4.25, 4.0, "i-quant"),
    Quant("IQ3_M", 3.66, 3.0, "i-quant"),
    Quant("IQ3_S", 3.44, 3.0, "i-quant"),
    Quant("IQ3_XS", 3.3, 3.0, "i-quant"),
    Quant("IQ3_XXS", 3.06, 3.0, "i-quant"),
    Quant("IQ2_M", 2.7, 2.0, "i-quant"),
    Quant("IQ2_S", 2.5, 2.0, "i-quant"),
    Quant("IQ2_XS", 2.31, 2.0, "i-quant"),
    Quant("IQ2_XXS", 2.06, 2.0, "i-quant"),
    Quant("IQ1_M", 1.75, 1.0, "i-quant"),
    Quant("IQ1_S", 1.56, 1.0, "i-quant"),
    Quant("TQ2_0", 2.06, 2.0, "ternary"),
    Quant("TQ1_0", 1.69, 1.0, "ternary"),
    # MXFP4 is 17 bytes per 32 weights (4.25 bits). llama-quantize's MXFP4_MOE puts the expert
    # tensors in MXFP4 and every other tensor in Q8_0 (8.5 bits); experts are 90-98 % of an MoE
    # (gpt-oss-120b 98 % -> 4.33 bits, Qwen3-30B-A3B-like 95 % -> 4.46): 4.5. "MXFP4" is
    # gpt-oss as OpenAI publishes it (experts MXFP4, the rest BF16): 60.8 GiB for 116.83e9
    # weights in its model card, 4.47 bits.
    Quant("MXFP4_MOE", 4.5, 4.0, "fp4"),
    Quant("MXFP4", 4.5, 4.0, "fp4"),
)
# uploaders' prefixes: unsloth's dynamic quants (UD-) and mradermacher's imatrix quants (i1-).
# Neither changes the storage of the bulk of the weights, so neither changes the figure.
_GGUF_PREFIX = re.compile(r"(?:UD-|i1-)", re.IGNORECASE)
# Mungert's hybrids (bf16_q8_0, f16_q4_k) keep attention and output layers, about a quarter of
# the weights, in the float type and quantize the rest.
_GGUF_HYBRID = re.compile(r"(BF16|F16|F32)_(.+)", re.IGNORECASE)
_HYBRID_SHARE = 0.25

# --- safetensors-based formats ------------------------------------------------------------
# GPTQ and AWQ store 4-bit weights in groups of 128 with a 16-bit scale and a packed zero per
# group (4.16 bits) and keep embeddings and the output head at 16 bits. That layout gives
# TheBloke's Llama-2-70B-GPTQ 4bit-128g its 36.65 GB (32k vocabulary: 4.25 bits); today's
# vocabularies are larger: Qwen2.5-72B-Instruct has 2.49e9 embedding and head weights, so 70.2e9
# at 4.16 bits plus those at 16 is 41.5 GB, 4.56 bits (Seed-OSS-36B 4.69; a 7B 5.9). The figures
# are for large models with such vocabularies: Int8 8.19 -> 8.5, Int3 3.15 -> 3.6, Int2 -> 2.6.
_INT4, _INT8, _INT3, _INT2 = 4.6, 8.5, 3.6, 2.6
# QuantTrio's Int4-Int8Mix keep sensitive layers at Int8 (Lite fewest, Medium most). How many
# is not published in a form kept here: assumed 5 % (Lite), 10 % (Compact), 15 % (Medium and
# plain) of the weights, i.e. 4.6 + share × 3.9 bits.
_INT_MIX = 0.5  # a mix ranks half a class above its base
_GPTQ: tuple[Quant, ...] = (
    Quant("Int4", _INT4, 4.0, "int", aliases=("4bit", "4bits", "Int4-W4A16", "Int4-W4A8")),
    Quant("Int8", _INT8, 8.0, "int", aliases=("8bit", "8bits", "Int8-W8A16", "Int8-W8A8")),
    Quant("Int3", _INT3, 3.0, "int", aliases=("3bit", "3bits")),
    Quant("Int2", _INT2, 2.0, "int", aliases=("2bit", "2bits")),
    Quant("Int4-Int8Mix-Lite", 4.8, 4.0 + _INT_MIX, "mixed"),
    Quant("Int4-Int8Mix-Compact", 5.0, 4.0 + _INT_MIX, "mixed"),
    Quant("Int4-Int8Mix-Medium", 5.2, 4.0 + _INT_MIX, "mixed"),
    Quant("Int4-Int8Mix", 5.2, 4.0 + _INT_MIX, "mixed"),
)
_AWQ: tuple[Quant, ...] = (
    # QuantTrio names its 4-bit AWQ repositories "AWQ" and "AWQ-Lite" (which keeps fewer
    # tensors at 16 bits than "AWQ"): both store the bulk of the weights as Int4.
    Quant("Int4", _INT4, 4.0, "int", aliases=("4bit", "4bits", "AWQ", "AWQ-Lite")),
    Quant("Int8", _INT8, 8.0, "int", aliases=("8bit", "8bits")),
    # QuantTrio's FP16Mix leaves some layers at FP16; assumed a tenth: 4.6 + 0.1 × 11.4.
    Quant("AWQ-FP16Mix", 5.7, 4.0 + _INT_MIX, "mixed"),
)
# mlx_lm quantizes every Linear and Embedding in groups of 64 with a 16-bit scale and bias
# (bits + 0.5); MXFP4 is 4 bits plus an 8-bit scale per 32, MXFP8 8 bits plus one per 32,
# NVFP4 4 bits plus an FP8 scale per 16.
_MLX: tuple[Quant, ...] = (
    *(Quant(f"{n}bit", n + 0.5, float(n), "affine") for n in (8, 6, 5, 4, 3, 2)),
    Quant("mxfp8", 8.25, 8.0, "fp8"),
    # mlx-community's GLM-5 8bit-MXFP8: 8-bit affine and MXFP8 layers.
    Quant("8bit-MXFP8", 8.5, 8.0, "mixed"),
    Quant("mxfp4", 4.25, 4.0, "fp4"),
    Quant("nvfp4", 4.5, 4.0, "fp4"),
    Quant("bf16", 16.0, 16.0, "float", core="bf16"),
    Quant("fp16", 16.0, 16.0, "float", core="f16"),
    Quant("fp32", 32.0, 16.0, "float", core="f32"),
    Quant("none", 16.0, 16.0, "native"),
)
# FP8 checkpoints keep embeddings and the head in BF16; per-tensor or 128×128-block scales are
# negligible. Qwen3-32B-FP8 computed: 1.56e9 weights at 16 bits plus 31.2e9 at 8 is 34.3 GB,
# 8.37 bits (a 4B with tied embeddings: 8.8).
_FP8_BITS = 8.4
# NVFP4 is 4.5 bits on the quantized layers (E2M1 plus an FP8 scale per 16); ModelOpt keeps
# embeddings and head at 16 bits: 4.6 for a 120B MoE, 5.0 for gemma's 31B and 262k vocabulary.
_NVFP4_BITS = 4.8
# bitsandbytes: NF4 with double quantization is 4.13 bits on the linear layers (blocks of 64),
# embeddings and head stay 16-bit: a Llama-3-70B is 68.5e9 × 4.13 + 2.1e9 × 16 bits, 39.6 GB,
# 4.5 bits. LLM.int8 keeps one scale per row: 8.5 with the 16-bit embeddings.
_BNB4, _BNB8 = 4.5, 8.5
_PYTORCH: tuple[Quant, ...] = (
    # "none" is the weights as published, nearly always BF16 today.
    Quant("none", 16.0, 16.0, "native"),
    Quant("bf16", 16.0, 16.0, "float", core="bf16"),
    Quant("fp16", 16.0, 16.0, "float", core="f16"),
    Quant("fp32", 32.0, 16.0, "float", core="f32"),
    Quant("fp8", _FP8_BITS, 8.0, "fp8"),
    # Repositories published pre-quantized (inclusionAI's Ling-3.0-*-int4): as GPTQ/AWQ.
    Quant("Int4", _INT4, 4.0, "int"),
    Quant("Int8", _INT8, 8.0, "int"),
    # Quantized on load by bitsandbytes.
    Quant("4-bit", _BNB4, 4.0, "nf4"),
    Quant("8-bit", _BNB8, 8.0, "int"),
)
_BNB: tuple[Quant, ...] = (
    Quant("4-bit", _BNB4, 4.0, "nf4", aliases=("4bit", "nf4")),
    Quant("fp4", _BNB4, 4.0, "fp4"),
    Quant("8-bit", _BNB8, 8.0, "int", aliases=("8bit",)),
)
_FP8: tuple[Quant, ...] = (
    # "none" in an fp8 spec is the repository as published: FP8 (Qwen3-4B-Instruct-2507-FP8).
    Quant("fp8", _FP8_BITS, 8.0, "fp8", aliases=("fp8-dynamic", "none")),
)
_FP4: tuple[Quant, ...] = (
    Quant("fp4", _NVFP4_BITS, 4.0, "fp4", aliases=("nvfp4",)),
    # MXFP4 (4.25 bits) on the quantized layers, 16-bit embeddings and head: gpt-oss, 4.47.
    Quant("mxfp4", 4.5, 4.0, "fp4"),
)

REGISTRY: dict[str, tuple[Quant, ...]] = {
    "ggufv2": _GGUF_BASE,
    "pytorch": _PYTORCH,
    "gptq": _GPTQ,
    "awq": _AWQ,
    "fp8": _FP8,
    "bnb": _BNB,
    "fp4": _FP4,
    "mlx": _MLX,
}
FORMATS = tuple(REGISTRY)
# Formats tried, in order, when a question comes without one.
SEARCH_ORDER = ("ggufv2", "pytorch", "mlx", "gptq", "awq", "bnb", "fp8", "fp4")


@cache
def _index(fmt: str) -> dict[str, Quant]:
    return {n.upper(): q for q in REGISTRY[fmt] for n in q.names}


def entries(fmt: str) -> tuple[Quant, ...]:
    """The quantizations of ``fmt`` (empty for a format zoo does not know)."""
    return REGISTRY.get(fmt, ())


@lru_cache(maxsize=4096)
def lookup(name: str, fmt: str) -> Quant | None:
    """What ``name`` means in ``fmt``, or None when the registry does not know it.

    Never a default: this is what lint accepts and what the catalog walk checks.
    """
    if fmt not in REGISTRY:
        return None
    if fmt != "ggufv2":
        return _index(fmt).get(name.upper())
    core = name[m.end() :] if (m := _GGUF_PREFIX.match(name)) else name
    base = _index("ggufv2").get(core.upper())
    if base is not None:
        return base
    hybrid = _GGUF_HYBRID.fullmatch(core)
    if hybrid is None:
        return None
    rest = _index("ggufv2").get(hybrid.group(2).upper())
    if rest is None or rest.kind == "float":
        return None
    bits = _HYBRID_SHARE * 16.0 + (1 - _HYBRID_SHARE) * rest.bits
    return Quant(name, round(bits, 2), rest.rank, "hybrid", core=hybrid.group(1).lower())


def pattern(fmt: str) -> str:
    """A regular expression for the names of ``fmt`` (match with IGNORECASE, fullmatch).

    For messages and docs; ``lookup`` is the authority and agrees with it (tested).
    """
    names = [n for q in entries(fmt) for n in q.names]
    words = _alternatives(names)
    if fmt != "ggufv2":
        return words
    quantized = _alternatives(n for q in entries(fmt) if q.kind != "float" for n in q.names)
    return f"(?:{_GGUF_PREFIX.pattern})?(?:(?:BF16|F16|F32)_(?:{quantized})|{words})"


def _alternatives(names: Iterable[str]) -> str:
    # Longest first, so that a regex engine tries "Q4_K_M" before "Q4".
    return "|".join(re.escape(n) for n in sorted(set(names), key=lambda n: (-len(n), n)))


def canonical(name: str) -> str:
    """The comparison key for a quantization name: upper case, '-' and '_' alike."""
    return name.strip().upper().replace("-", "_")


def same(a: str, b: str) -> bool:
    return canonical(a) == canonical(b)


def find(name: str, available: tuple[str, ...] | list[str]) -> str | None:
    """The spelling of ``name`` in ``available`` (case-insensitive), or None."""
    key = canonical(name)
    return next((q for q in available if canonical(q) == key), None)


@lru_cache(maxsize=4096)
def info(name: str, *, fmt: str | None = None) -> Quant:
    """What ``name`` means in ``fmt`` (else in the first format that knows it); total.

    A name no format knows gets a guess marked ``known=False``: its digits as the precision
    class and half a bit for scales, 16 bits when it has none.
    """
    tried = (fmt,) if fmt in REGISTRY else ()
    for other in (*tried, *SEARCH_ORDER):
        found = lookup(name, other) or lookup(name.strip(), other)
        if found is not None:
            return found
    digits = re.search(r"\d+", name)
    nominal = min(float(digits.group()), 16.0) if digits else 16.0
    bits = nominal + 0.5 if nominal < 16 else 16.0
    return Quant(name, bits, nominal, "unknown", known=False)


def bits_per_weight(name: str, *, fmt: str | None = None) -> float:
    return info(name, fmt=fmt).bits


def precision_score(name: str, *, bf16: bool, gpu: bool, fmt: str | None = None) -> float:
    """Higher is more precise *for this hardware*; used to order candidates.

    ``bf16``: the device that computes has native BF16. ``gpu``: it is a GPU (engines there
    cast a BF16 checkpoint to FP16 when BF16 is missing, which costs nothing).
    """
    q = info(name, fmt=fmt)
    if (q.kind == "float" and q.core == "bf16") or (q.kind == "native" and bf16):
        return 17.0 if bf16 else 3.5
    if q.kind == "native":
        return 16.5 if gpu else 3.5
    if q.kind == "float":
        return 16.5 if q.core == "f16" else 16.0
    if q.kind == "hybrid":
        # Better than the plain quantization, if the core precision runs natively.
        bonus = 0.5 if (q.core == "f16" or bf16) else 0.0
        return q.rank + bonus
    return q.rank


# Quantizations at or above this precision score count as "good quality": a larger model
# at such a quantization is preferred to a smaller one at higher precision.
GOOD_QUALITY = 4.0
