"""Frozen text features for probes: mean-pooled last hidden states, cached in the store.

Feature key = ``record_key(text-encoder fingerprint, hash of text and pair)``,
so a second probe (or another data set with the same sentences) reads them.
"""

from __future__ import annotations

import hashlib
from typing import Any, Sequence

import numpy as np

from lugpi_cli import hub
from lugpi_cli.data.samples import Sample
from lugpi_store import Store, encode_array, fingerprint, record_key


def text_fingerprint(model: str, max_length: int) -> tuple[str, dict[str, Any]]:
    config = {"stage": "text-embed", **hub.model_identity(model), "pooling": "mean", "max_length": max_length}
    return fingerprint(config), config


def _text_digest(sample: Sample) -> str:
    return hashlib.sha256(f"{sample.text}\0{sample.text_pair or ''}".encode()).hexdigest()[:32]


def embed_texts(store: Store, samples: Sequence[Sample], model: str, *, batch_size: int = 32, max_length: int = 256,
                device: str = "cpu") -> np.ndarray:
    """(n, H) float32 sentence vectors: mean of the last hidden states over real tokens."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    fp, config = text_fingerprint(model, max_length)
    keys = [record_key(fp, _text_digest(s)) for s in samples]
    cached = store.get_many("features", keys)
    todo = [i for i, v in enumerate(cached) if v is None]
    if todo:
        tokenizer = hub.load(AutoTokenizer.from_pretrained, model, what="text encoder's tokenizer")
        encoder = hub.load(AutoModel.from_pretrained, model, what="text encoder").eval().to(device)
        store.register("features", fp, config)
        max_length = min(max_length, getattr(encoder.config, "max_position_embeddings", max_length) or max_length)
        for start in range(0, len(todo), batch_size):
            chunk = todo[start:start + batch_size]
            texts = [samples[i].text for i in chunk]
            pairs = [samples[i].text_pair for i in chunk]
            batch = tokenizer(texts, pairs if pairs[0] is not None else None, truncation=True,
                              max_length=max_length, padding=True, return_tensors="pt").to(device)
            with torch.inference_mode():
                hidden = encoder(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            vectors = ((hidden * mask).sum(1) / mask.sum(1).clamp(min=1)).float().cpu().numpy()
            store.put_many("features", [(keys[i], encode_array(v.astype(np.float16))) for i, v in zip(chunk, vectors)])
            for i, v in zip(chunk, vectors):
                cached[i] = v
    return np.stack([np.asarray(v, dtype=np.float32) for v in cached])
