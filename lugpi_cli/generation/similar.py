"""``--reuse-similar``: reuse the image of a near-identical prompt instead of drawing a new one.

Prompts are embedded with the diffusion pipeline's own text encoder (the
pooled CLIP text embedding its UNet is conditioned on), L2-normalised, and
searched with faiss (inner product = cosine) against the prompts whose images
already exist. A prompt whose best match reaches the threshold gets a copy of
that image under its own key — so every later stage reads it like any other —
and a ``reused/<key>`` record in ``meta`` says from which prompt and how
similar. Off by default: with it, which prompt was drawn first decides which
image two near-duplicates share.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

REUSED_PREFIX = "reused/"


def prompt_vectors(pipe: Any, prompts: Sequence[str], batch_size: int = 64) -> np.ndarray:
    """(n, d) float32 unit vectors from the pipeline's (first) text encoder."""
    import torch

    tokenizer, encoder = pipe.tokenizer, pipe.text_encoder
    limit = int(getattr(tokenizer, "model_max_length", 77) or 77)
    out = []
    with torch.inference_mode():
        for start in range(0, len(prompts), batch_size):
            ids = tokenizer(list(prompts[start:start + batch_size]), padding="max_length", max_length=limit,
                            truncation=True, return_tensors="pt").input_ids.to(encoder.device)
            result = encoder(ids)
            pooled = getattr(result, "text_embeds", None)
            if pooled is None:
                pooled = result.pooler_output
            out.append(pooled.float().cpu().numpy())
    vectors = np.concatenate(out) if out else np.zeros((0, 1), np.float32)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


class PromptIndex:
    """Prompts with images, searchable by cosine similarity (faiss ``IndexFlatIP``)."""

    def __init__(self, dim: int):
        import faiss

        self.index = faiss.IndexFlatIP(dim)
        self.positions: list[int] = []

    def add(self, vectors: np.ndarray, positions: Sequence[int]) -> None:
        if len(positions):
            self.index.add(np.ascontiguousarray(vectors, dtype=np.float32))
            self.positions.extend(positions)

    def best(self, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(similarity, position) of each query's nearest prompt; position -1 when the index is empty."""
        if not self.positions:
            return np.full(len(vectors), -np.inf), np.full(len(vectors), -1)
        sims, ids = self.index.search(np.ascontiguousarray(vectors, dtype=np.float32), 1)
        return sims[:, 0], np.array([self.positions[i] if i >= 0 else -1 for i in ids[:, 0]])
