"""A tiny random-weight Llama model, written both in Hugging Face format and as GGUF.

Made from scratch in about a second: a byte-level BPE tokenizer trained with ``tokenizers`` on a
few sentences (ASCII only, so every token decodes to valid text), a ChatML chat template, and
random float32 weights from a fixed seed. The same weights go to ``model.safetensors`` (read by
Transformers, MLX and vLLM) and to ``tiny.gguf`` (read by llama.cpp), so greedy outputs can be
compared across engines. head_dim is 32 because vLLM's CPU attention needs one of its sizes.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

HIDDEN = 64
INTERMEDIATE = 128
LAYERS = 2
HEADS = 2
KV_HEADS = 1
HEAD_DIM = 32
CONTEXT = 512
RMS_EPS = 1e-5
ROPE_THETA = 10000.0
SPECIALS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "What is the capital of France? The capital of France is Paris.",
    "Hello, how are you today? I am fine, thank you!",
    "Models answer questions; engines serve models; zoo launches engines.",
    "user assistant system 0123456789 abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ",
]


def _tokenizer() -> object:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    # Only the bytes seen in the corpus (plus newline): no token can decode to half a character.
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    seen = {c for line in [*CORPUS, "\n"] for c in line.encode()}
    byte_chars = _bytes_to_unicode()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=list(SPECIALS),
        show_progress=False,
        initial_alphabet=[byte_chars[b] for b in sorted(seen) if byte_chars[b] in alphabet],
    )
    tok.train_from_iterator([*CORPUS, "\n", *("\n".join(CORPUS),)], trainer=trainer)
    return tok


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's printable stand-ins for bytes (the ByteLevel alphabet, by byte value)."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    table = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def _weights(vocab: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)

    def rand(*shape: int, scale: float = 0.2) -> np.ndarray:
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    w: dict[str, np.ndarray] = {"model.embed_tokens.weight": rand(vocab, HIDDEN, scale=1.0)}
    for i in range(LAYERS):
        p = f"model.layers.{i}."
        w[p + "input_layernorm.weight"] = (1 + rand(HIDDEN, scale=0.05)).astype(np.float32)
        w[p + "post_attention_layernorm.weight"] = (1 + rand(HIDDEN, scale=0.05)).astype(np.float32)
        w[p + "self_attn.q_proj.weight"] = rand(HEADS * HEAD_DIM, HIDDEN)
        w[p + "self_attn.k_proj.weight"] = rand(KV_HEADS * HEAD_DIM, HIDDEN)
        w[p + "self_attn.v_proj.weight"] = rand(KV_HEADS * HEAD_DIM, HIDDEN)
        w[p + "self_attn.o_proj.weight"] = rand(HIDDEN, HEADS * HEAD_DIM)
        w[p + "mlp.gate_proj.weight"] = rand(INTERMEDIATE, HIDDEN)
        w[p + "mlp.up_proj.weight"] = rand(INTERMEDIATE, HIDDEN)
        w[p + "mlp.down_proj.weight"] = rand(HIDDEN, INTERMEDIATE)
    w["model.norm.weight"] = np.ones(HIDDEN, dtype=np.float32)
    w["lm_head.weight"] = rand(vocab, HIDDEN, scale=1.0)
    return w


def write_hf(folder: Path, seed: int = 0) -> dict[str, np.ndarray]:
    """Write config, tokenizer and weights in Hugging Face format; return the weights."""
    from safetensors.numpy import save_file

    folder.mkdir(parents=True, exist_ok=True)
    tok = _tokenizer()
    tok.save(str(folder / "tokenizer.json"))  # type: ignore[attr-defined]
    vocab = tok.get_vocab_size()  # type: ignore[attr-defined]
    ids = {s: tok.token_to_id(s) for s in SPECIALS}  # type: ignore[attr-defined]
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": HIDDEN,
        "intermediate_size": INTERMEDIATE,
        "num_hidden_layers": LAYERS,
        "num_attention_heads": HEADS,
        "num_key_value_heads": KV_HEADS,
        "head_dim": HEAD_DIM,
        "vocab_size": vocab,
        "max_position_embeddings": CONTEXT,
        "rms_norm_eps": RMS_EPS,
        "rope_theta": ROPE_THETA,
        "hidden_act": "silu",
        "tie_word_embeddings": False,
        "torch_dtype": "float32",
        "bos_token_id": ids["<|endoftext|>"],
        "eos_token_id": ids["<|im_end|>"],
        "attention_bias": False,
        "mlp_bias": False,
    }
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    (folder / "generation_config.json").write_text(
        json.dumps(
            {
                "bos_token_id": ids["<|endoftext|>"],
                "eos_token_id": ids["<|im_end|>"],
                "do_sample": False,
            }
        )
    )
    (folder / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "PreTrainedTokenizerFast",
                "model_max_length": CONTEXT,
                "bos_token": "<|endoftext|>",
                "eos_token": "<|im_end|>",
                "pad_token": "<|endoftext|>",
                "unk_token": None,
                "add_bos_token": False,
                "add_eos_token": False,
                "chat_template": CHAT_TEMPLATE,
                "clean_up_tokenization_spaces": False,
                "added_tokens_decoder": {
                    str(ids[s]): {
                        "content": s,
                        "special": True,
                        "lstrip": False,
                        "rstrip": False,
                        "normalized": False,
                        "single_word": False,
                    }
                    for s in SPECIALS
                },
            },
            indent=2,
        )
    )
    (folder / "special_tokens_map.json").write_text(
        json.dumps(
            {
                "bos_token": "<|endoftext|>",
                "eos_token": "<|im_end|>",
                "pad_token": "<|endoftext|>",
            }
        )
    )
    weights = _weights(vocab, seed)
    save_file(weights, str(folder / "model.safetensors"), metadata={"format": "pt"})
    return weights


def _rope_permute(w: np.ndarray, heads: int) -> np.ndarray:
    """HF Llama rotates halves of each head; GGUF's llama rotates pairs: reorder the rows."""
    rows = w.shape[0]
    return w.reshape(heads, 2, rows // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


GGUF_NAMES = {
    "input_layernorm": "attn_norm",
    "post_attention_layernorm": "ffn_norm",
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}


def write_gguf(hf_folder: Path, weights: dict[str, np.ndarray], path: Path) -> Path:
    """The same model as one f32 GGUF file, with the GPT-2-style tokenizer llama.cpp reads."""
    import gguf

    tokenizer = json.loads((hf_folder / "tokenizer.json").read_text())
    vocab: dict[str, int] = tokenizer["model"]["vocab"]
    for added in tokenizer.get("added_tokens", []):
        vocab[added["content"]] = added["id"]
    tokens = [t for t, _ in sorted(vocab.items(), key=lambda item: item[1])]
    merges = [m if isinstance(m, str) else " ".join(m) for m in tokenizer["model"]["merges"]]
    types = [gguf.TokenType.CONTROL if t in SPECIALS else gguf.TokenType.NORMAL for t in tokens]

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("tiny-random-llama")
    writer.add_context_length(CONTEXT)
    writer.add_embedding_length(HIDDEN)
    writer.add_block_count(LAYERS)
    writer.add_feed_forward_length(INTERMEDIATE)
    writer.add_head_count(HEADS)
    writer.add_head_count_kv(KV_HEADS)
    writer.add_key_length(HEAD_DIM)
    writer.add_value_length(HEAD_DIM)
    writer.add_rope_dimension_count(HEAD_DIM)
    writer.add_rope_freq_base(ROPE_THETA)
    writer.add_layer_norm_rms_eps(RMS_EPS)
    writer.add_vocab_size(len(tokens))
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("gpt-2")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    writer.add_bos_token_id(vocab["<|endoftext|>"])
    writer.add_eos_token_id(vocab["<|im_end|>"])
    writer.add_add_bos_token(False)
    writer.add_chat_template(CHAT_TEMPLATE)

    writer.add_tensor("token_embd.weight", weights["model.embed_tokens.weight"])
    for i in range(LAYERS):
        for hf_name, short in GGUF_NAMES.items():
            suffix = "weight"
            tensor = weights[f"model.layers.{i}.{hf_name}.{suffix}"]
            if hf_name == "self_attn.q_proj":
                tensor = _rope_permute(tensor, HEADS)
            elif hf_name == "self_attn.k_proj":
                tensor = _rope_permute(tensor, KV_HEADS)
            writer.add_tensor(f"blk.{i}.{short}.weight", np.ascontiguousarray(tensor))
    writer.add_tensor("output_norm.weight", weights["model.norm.weight"])
    writer.add_tensor("output.weight", weights["lm_head.weight"])
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def make(folder: Path, seed: int = 0) -> tuple[Path, Path]:
    """Write the HF folder ``folder/hf`` and ``folder/gguf/tiny-random-llama-F32.gguf``."""
    hf = folder / "hf"
    weights = write_hf(hf, seed)
    gguf_dir = folder / "gguf"
    gguf_dir.mkdir(parents=True, exist_ok=True)
    return hf, write_gguf(hf, weights, gguf_dir / "tiny-random-llama-F32.gguf")


if __name__ == "__main__":
    import sys

    print(make(Path(sys.argv[1])))
