"""Reference embeddings and rerank scores, computed in-process in the Transformers engine's
environment, for every engine's embedding and rerank tests to compare with.

Two independent references each: plain Transformers (``AutoModel`` + pooling over the
attention mask + L2 normalization; ``AutoModelForSequenceClassification`` logits) and
sentence-transformers itself (``SentenceTransformer.encode``, ``CrossEncoder.predict``). An
engine that agrees with both is computing the model, not copying one library's quirk.

Torch lives in that environment, not the test's: each function takes its interpreter (see
``transformers_python``) and runs a short script there, so the test process stays light.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

# Runs in the engine env: plain Transformers, pooled as sentence-transformers' modules do.
_POOLED = """
import json, sys
import torch
from transformers import AutoModel, AutoTokenizer
job = json.loads(sys.stdin.read())
tokenizer = AutoTokenizer.from_pretrained(job["folder"])
model = AutoModel.from_pretrained(job["folder"], dtype=torch.float32).eval()
vectors, counts = [], []
with torch.no_grad():
    for text in job["texts"]:  # one at a time: no padding to reason about
        batch = tokenizer([text], truncation=True, max_length=job["max_length"],
                          return_tensors="pt")
        hidden = model(**batch).last_hidden_state[0]
        counts.append(int(batch["attention_mask"].sum()))
        if job["pooling"] == "cls":
            pooled = hidden[0]
        elif job["pooling"] == "last":
            pooled = hidden[-1]
        elif job["pooling"] == "max":
            pooled = hidden.max(dim=0).values
        else:
            pooled = hidden.mean(dim=0)
        if job["normalize"]:
            pooled = torch.nn.functional.normalize(pooled, p=2, dim=0)
        vectors.append(pooled.tolist())
print(json.dumps({"vectors": vectors, "tokens": counts}))
"""

_SENTENCE_TRANSFORMERS = """
import json, sys
from sentence_transformers import SentenceTransformer
job = json.loads(sys.stdin.read())
model = SentenceTransformer(job["folder"], device="cpu", local_files_only=True)
vectors = model.encode(job["texts"], convert_to_numpy=True)
print(json.dumps({"vectors": vectors.tolist(), "max_seq_length": model.max_seq_length}))
"""

_LOGITS = """
import json, sys
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer
job = json.loads(sys.stdin.read())
tokenizer = AutoTokenizer.from_pretrained(job["folder"])
model = AutoModelForSequenceClassification.from_pretrained(job["folder"], dtype=torch.float32)
model.eval()
scores = []
with torch.no_grad():
    for document in job["documents"]:
        batch = tokenizer(job["query"], document, truncation=True, return_tensors="pt")
        scores.append(float(model(**batch).logits[0, 0]))
print(json.dumps({"logits": scores}))
"""

_CROSS_ENCODER = """
import json, sys
from sentence_transformers import CrossEncoder
job = json.loads(sys.stdin.read())
model = CrossEncoder(job["folder"], device="cpu", local_files_only=True)
scores = model.predict([(job["query"], d) for d in job["documents"]], convert_to_numpy=True)
print(json.dumps({"scores": [float(s) for s in scores]}))
"""


def transformers_python(env_dir: Path, zoo_env: Mapping[str, str] | None = None) -> Path:
    """The Transformers engine's interpreter in ``env_dir`` (``ZOO_ENVS_DIR``), built by
    ``zoo engines install transformers`` when it is not there yet."""
    python = env_dir / "transformers" / "bin" / "python"
    env = dict(zoo_env or os.environ, ZOO_ENVS_DIR=str(env_dir))
    done = subprocess.run(
        [sys.executable, "-m", "zoo", "engines", "install", "transformers"],
        capture_output=True,
        text=True,
        env=env,
        timeout=1800,
    )
    if done.returncode != 0 or not python.exists():
        raise RuntimeError(f"no Transformers environment:\n{done.stdout}\n{done.stderr}")
    return python


def _run(python: Path, script: str, job: Mapping[str, Any]) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["HF_HUB_OFFLINE"] = "1"
    done = subprocess.run(
        [str(python), "-c", script],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    if done.returncode != 0:
        raise RuntimeError(f"reference script failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def pooled_embeddings(
    python: Path,
    folder: Path,
    texts: Sequence[str],
    *,
    pooling: str = "mean",
    normalize: bool = True,
    max_length: int = 256,
) -> tuple[list[list[float]], list[int]]:
    """Plain-Transformers vectors for ``texts`` and the tokens each was cut to."""
    job = {
        "folder": str(folder),
        "texts": list(texts),
        "pooling": pooling,
        "normalize": normalize,
        "max_length": max_length,
    }
    out = _run(python, _POOLED, job)
    return out["vectors"], out["tokens"]


def sentence_transformers_embeddings(
    python: Path, folder: Path, texts: Sequence[str]
) -> list[list[float]]:
    """``SentenceTransformer(folder).encode(texts)``: the model as its own library runs it."""
    vectors: list[list[float]] = _run(
        python, _SENTENCE_TRANSFORMERS, {"folder": str(folder), "texts": list(texts)}
    )["vectors"]
    return vectors


def rerank_logits(python: Path, folder: Path, query: str, documents: Sequence[str]) -> list[float]:
    """The cross-encoder's raw logit for each (query, document) pair, plain Transformers."""
    job = {"folder": str(folder), "query": query, "documents": list(documents)}
    logits: list[float] = _run(python, _LOGITS, job)["logits"]
    return logits


def cross_encoder_scores(
    python: Path, folder: Path, query: str, documents: Sequence[str]
) -> list[float]:
    """``CrossEncoder(folder).predict(pairs)``: a sigmoid of the logit for one-label models."""
    job = {"folder": str(folder), "query": query, "documents": list(documents)}
    scores: list[float] = _run(python, _CROSS_ENCODER, job)["scores"]
    return scores


_TOKENIZE = """
import json, sys
from transformers import AutoTokenizer
job = json.loads(sys.stdin.read())
print(json.dumps({"ids": AutoTokenizer.from_pretrained(job["folder"])(job["text"])["input_ids"]}))
"""


def token_ids(python: Path, folder: Path, text: str) -> list[int]:
    """The model's tokenizer's ids for ``text``, special tokens included."""
    ids: list[int] = _run(python, _TOKENIZE, {"folder": str(folder), "text": text})["ids"]
    return ids


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


def order(scores: Sequence[float]) -> list[int]:
    """Document indexes, best score first (what a rerank's results list)."""
    return sorted(range(len(scores)), key=lambda i: -scores[i])
