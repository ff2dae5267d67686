"""The tiny Llama's greedy answer computed with numpy, independently of every engine.

The end-to-end agreement test compares each engine with this one reference instead of with the
other engines, so a broken engine fails alone and names itself. It is the Hugging Face Llama
forward pass written out (RMSNorm, rotate-half RoPE, grouped-query attention, SiLU MLP) in
float64, so the engines' float32 rounding is the only difference left.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Reference:
    text: str
    tokens: tuple[int, ...]
    # The smallest gap between the best and the second-best logit over the generated steps:
    # an engine that disagrees on a step this close may only be rounding differently.
    closest_call: float


def _rms_norm(x: np.ndarray, weight: np.ndarray, eps: float) -> np.ndarray:
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * weight


def _rope(x: np.ndarray, theta: float) -> np.ndarray:
    """Rotate (tokens, heads, head_dim) by position, Hugging Face's rotate-half layout."""
    tokens, _, dim = x.shape
    inv_freq = 1.0 / theta ** (np.arange(0, dim, 2, dtype=np.float64) / dim)
    angles = np.arange(tokens, dtype=np.float64)[:, None] * inv_freq[None, :]
    cos = np.concatenate([np.cos(angles)] * 2, axis=-1)[:, None, :]
    sin = np.concatenate([np.sin(angles)] * 2, axis=-1)[:, None, :]
    half = dim // 2
    rotated = np.concatenate([-x[..., half:], x[..., :half]], axis=-1)
    return np.asarray(x * cos + rotated * sin)


def _logits(ids: list[int], w: dict[str, np.ndarray], config: dict[str, object]) -> np.ndarray:
    """The next-token logits after ``ids``."""
    heads = int(config["num_attention_heads"])  # type: ignore[call-overload]
    kv_heads = int(config["num_key_value_heads"])  # type: ignore[call-overload]
    dim = int(config["head_dim"])  # type: ignore[call-overload]
    eps = float(config["rms_norm_eps"])  # type: ignore[arg-type]
    theta = float(config["rope_theta"])  # type: ignore[arg-type]
    tokens = len(ids)
    causal = np.triu(np.full((tokens, tokens), -np.inf), k=1)
    x = w["model.embed_tokens.weight"][ids]
    for i in range(int(config["num_hidden_layers"])):  # type: ignore[call-overload]
        p = f"model.layers.{i}."
        h = _rms_norm(x, w[p + "input_layernorm.weight"], eps)
        q = _rope((h @ w[p + "self_attn.q_proj.weight"].T).reshape(tokens, heads, dim), theta)
        k = _rope((h @ w[p + "self_attn.k_proj.weight"].T).reshape(tokens, kv_heads, dim), theta)
        v = (h @ w[p + "self_attn.v_proj.weight"].T).reshape(tokens, kv_heads, dim)
        k = np.repeat(k, heads // kv_heads, axis=1)
        v = np.repeat(v, heads // kv_heads, axis=1)
        scores = np.einsum("qhd,khd->hqk", q, k) / np.sqrt(dim) + causal
        scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
        scores /= scores.sum(axis=-1, keepdims=True)
        attended = np.einsum("hqk,khd->qhd", scores, v).reshape(tokens, heads * dim)
        x = x + attended @ w[p + "self_attn.o_proj.weight"].T
        h = _rms_norm(x, w[p + "post_attention_layernorm.weight"], eps)
        gate = h @ w[p + "mlp.gate_proj.weight"].T
        up = h @ w[p + "mlp.up_proj.weight"].T
        x = x + (gate / (1 + np.exp(-gate)) * up) @ w[p + "mlp.down_proj.weight"].T
    last = _rms_norm(x[-1], w["model.norm.weight"], eps)
    return np.asarray(last @ w["lm_head.weight"].T)


def greedy(hf_folder: Path, messages: list[dict[str, str]], max_tokens: int) -> Reference:
    """What a chat completion at temperature 0 answers, from the model folder's own files."""
    from jinja2 import Template
    from safetensors.numpy import load_file
    from tokenizers import Tokenizer

    config = json.loads((hf_folder / "config.json").read_text())
    settings = json.loads((hf_folder / "tokenizer_config.json").read_text())
    tokenizer = Tokenizer.from_file(str(hf_folder / "tokenizer.json"))
    weights = {
        name: tensor.astype(np.float64)
        for name, tensor in load_file(str(hf_folder / "model.safetensors")).items()
    }
    prompt = Template(settings["chat_template"]).render(
        messages=messages, add_generation_prompt=True
    )
    ids = tokenizer.encode(prompt, add_special_tokens=False).ids
    generated: list[int] = []
    closest = float("inf")
    for _ in range(max_tokens):
        logits = _logits(ids + generated, weights, config)
        second, best = np.sort(logits)[-2:]
        closest = min(closest, float(best - second))
        token = int(np.argmax(logits))
        if token == config["eos_token_id"]:
            break
        generated.append(token)
    text = tokenizer.decode(generated, skip_special_tokens=True)
    return Reference(text, tuple(generated), closest)
