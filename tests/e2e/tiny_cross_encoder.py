"""A tiny random-weight BERT cross-encoder (a reranker), made in a few seconds for e2e tests.

``BertForSequenceClassification`` with one label, two layers, hidden size 64 and two heads
(head_dim 32: vLLM's CPU attention needs one of its sizes), a WordPiece tokenizer over a fixed
``vocab.txt``, random weights from a fixed seed. Saved with ``save_pretrained`` in the BERT
layout, so sentence-transformers' ``CrossEncoder``, vLLM's pooling runner and llama.cpp's
``convert_hf_to_gguf.py`` (``architectures: ["BertForSequenceClassification"]``) all read it.

Torch and Transformers live in the Transformers engine's environment, not in the test's: call
``make(folder, python)`` with that environment's interpreter, and this file runs itself there
(``python tiny_cross_encoder.py FOLDER SEED``). Only the standard library is imported at the
top, so the same file works on both sides.

The weights are drawn wider than BERT's usual 0.02 so the scores of different documents are
far apart: engines round differently, and the order they give must not hinge on rounding.
Both token types embed alike (llama.cpp cannot feed segment ids), so every engine that serves
it must give the same order; a real cross-encoder on llama.cpp can rank differently.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

HIDDEN = 64
INTERMEDIATE = 128
LAYERS = 2
HEADS = 2
CONTEXT = 512
INIT_RANGE = 0.3
SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
# What each special is called in a Transformers tokenizer (pad_token="[PAD]", ...).
ROLES = dict(
    zip(("pad_token", "unk_token", "cls_token", "sep_token", "mask_token"), SPECIALS, strict=True)
)
WORDS = (
    "the a an is are was of to in on and or for with what where who how which that this "
    "cat cats kitten dog dogs animal animals pet pets sat mat sleeps runs "
    "stock stocks market markets fell rose today price prices bank money "
    "paris france capital city london england berlin germany "
    "weather rain sun sunny cold hot model models engine engines zoo search query document"
)
# A query and documents whose tiny-model scores are far apart (checked when the model is made).
QUERY = "where does the cat sleep"
DOCUMENTS = (
    "the cat sleeps on the mat",
    "stock markets fell today",
    "paris is the capital of france",
    "a kitten is a young cat",
    "the weather is cold and rain",
)


def vocabulary() -> list[str]:
    """The WordPiece vocabulary: specials first ([PAD] is 0), characters, pieces, words."""
    chars = [*"abcdefghijklmnopqrstuvwxyz0123456789", *".,?!'-:;()"]
    pieces = ["##" + c for c in "abcdefghijklmnopqrstuvwxyz0123456789"]
    return list(dict.fromkeys([*SPECIALS, *chars, *pieces, *WORDS.split()]))


def make(folder: Path, python: str | os.PathLike[str], seed: int = 0) -> Path:
    """Write the model to ``folder`` with the Transformers environment's ``python``."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["HF_HUB_OFFLINE"] = "1"
    done = subprocess.run(
        [str(python), str(Path(__file__).resolve()), str(folder), str(seed)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    if done.returncode != 0:
        raise RuntimeError(f"could not make the tiny cross-encoder:\n{done.stdout}{done.stderr}")
    return folder


def _wordpiece() -> object:
    """BERT's uncased WordPiece pipeline over ``vocabulary()``, built with ``tokenizers``."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    vocab = {token: i for i, token in enumerate(vocabulary())}
    tok = Tokenizer(models.WordPiece(vocab, unk_token=SPECIALS[1], max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece(prefix="##")
    cls, sep = vocab["[CLS]"], vocab["[SEP]"]
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)],
    )
    return tok


def _build(folder: Path, seed: int) -> None:
    """Runs in the Transformers environment (torch, transformers, tokenizers)."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = BertTokenizerFast(
        tokenizer_object=_wordpiece(),
        do_lower_case=True,
        model_max_length=CONTEXT,
        **ROLES,
    )
    config = BertConfig(
        vocab_size=len(vocabulary()),
        hidden_size=HIDDEN,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        intermediate_size=INTERMEDIATE,
        max_position_embeddings=CONTEXT,
        type_vocab_size=2,
        num_labels=1,
        initializer_range=INIT_RANGE,
        pad_token_id=0,
        architectures=["BertForSequenceClassification"],
        id2label={0: "LABEL_0"},
        label2id={"LABEL_0": 0},
    )
    torch.manual_seed(seed)
    model = BertForSequenceClassification(config).eval()
    # Both segments embed alike, so the scores do not depend on token type ids: llama.cpp
    # feeds every token as segment 0 (its BERT graph has no segment input), the other engines
    # feed the document as segment 1, and with this every engine must give the same order.
    with torch.no_grad():
        types = model.bert.embeddings.token_type_embeddings.weight
        types[1] = types[0]
    model.save_pretrained(str(folder), safe_serialization=True)
    tokenizer.save_pretrained(str(folder))
    # vocab.txt is what llama.cpp's converter and slow BERT tokenizers read.
    (folder / "vocab.txt").write_text("\n".join(vocabulary()) + "\n")
    # The same scores every engine must order identically; a tie would make the test moot.
    with torch.no_grad():
        pairs = ([QUERY] * len(DOCUMENTS), list(DOCUMENTS))
        batch = tokenizer(*pairs, return_tensors="pt", padding=True)
        scores = model(**batch).logits[:, 0].tolist()
    ordered = sorted(scores)
    gap = min(b - a for a, b in itertools.pairwise(ordered))
    if gap < 0.05:
        raise SystemExit(f"seed {seed} gives scores too close to order reliably: {scores}")
    (folder / "zoo-test-scores.json").write_text(json.dumps({"query": QUERY, "logits": scores}))


if __name__ == "__main__":
    _build(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 0)
