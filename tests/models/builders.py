"""Helpers for the model tests: a hand-written WordPiece vocabulary and batches."""

from __future__ import annotations

import string
from pathlib import Path

import torch

WORDS = ("the", "a", "cat", "dog", "sat", "on", "mat", "photo", "of", "is", "good", "bad", "red", "blue", "movie")
LABELS = ["neg", "neu", "pos"]


def write_vocab(path: Path) -> Path:
    chars = string.ascii_lowercase + string.digits + string.punctuation
    toks = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, *chars, *("##" + c for c in chars)]
    path.write_text("\n".join(dict.fromkeys(toks)) + "\n")
    return path


TEXTS = ["the cat sat on the mat", "a bad dog", "good movie", "a photo of a red cat, on a blue mat!"]


def make_batch(tok, texts=TEXTS, *, image_dim=16, patches=5, seed=0) -> dict:
    """Tokenised ``texts`` plus random float16 image tokens (B, patches, image_dim)."""
    batch = dict(tok(list(texts), padding=True, return_tensors="pt"))
    g = torch.Generator().manual_seed(seed)
    batch["image_tokens"] = torch.randn(len(texts), patches, image_dim, generator=g).to(torch.float16)
    return batch
