"""Training data: texts from the data set, image features and teacher outputs from the store.

:class:`TrainingData` is a torch ``Dataset`` that reads, per batch, the cached
records it needs with one LMDB read transaction (``__getitems__``), so a
DataLoader worker streams features and teacher outputs from disk instead of
holding them in memory. :class:`Collator` tokenises and pads in the worker.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

from lugpi_cli.data.samples import Sample
from lugpi_cli.errors import UserError
from lugpi_store import Store


class TrainingData(torch.utils.data.Dataset):
    """Samples plus, per sample, an optional feature key and teacher-output key."""

    def __init__(self, samples: Sequence[Sample], store: Store | None = None, *,
                 feature_keys: Sequence[bytes] | None = None, feature_field: str = "tokens",
                 teacher_keys: Sequence[bytes] | None = None):
        self.samples = list(samples)
        self.store = store
        self.feature_keys = list(feature_keys) if feature_keys is not None else None
        self.feature_field = feature_field
        self.teacher_keys = list(teacher_keys) if teacher_keys is not None else None
        for name, keys in (("feature", self.feature_keys), ("teacher", self.teacher_keys)):
            if keys is not None and len(keys) != len(self.samples):
                raise ValueError(f"{len(keys)} {name} keys for {len(self.samples)} samples")

    def __len__(self) -> int:
        return len(self.samples)

    def __getitems__(self, indices: Sequence[int]) -> list[dict[str, Any]]:
        features = teacher = None
        if self.store is not None and (self.feature_keys is not None or self.teacher_keys is not None):
            with self.store.reader() as reader:
                if self.feature_keys is not None:
                    features = [reader.get("features", self.feature_keys[i]) for i in indices]
                if self.teacher_keys is not None:
                    teacher = [reader.get("teacher", self.teacher_keys[i]) for i in indices]
        items = []
        for j, i in enumerate(indices):
            sample = self.samples[i]
            item: dict[str, Any] = {"index": i, "text": sample.text, "text_pair": sample.text_pair,
                                    "label": sample.label}
            if features is not None:
                record = features[j]
                if record is None or self.feature_field not in record:
                    raise UserError(f"no {self.feature_field!r} features for sample {sample.id}",
                                    "Run `lugpi embed` (without --pooled-only for the fusion teacher) first.")
                item["image"] = record[self.feature_field]
            if teacher is not None:
                if teacher[j] is None:
                    raise UserError(f"no cached teacher output for sample {sample.id}")
                item["teacher"] = teacher[j]
            items.append(item)
        return items

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.__getitems__([index])[0]


@dataclass
class Collator:
    """Tokenise texts (pairs for CWI: the tokenizer's own separator), stack features and teacher outputs."""

    tokenizer: Any
    max_length: int = 512

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        texts = [item["text"] for item in items]
        pairs = [item["text_pair"] for item in items]
        if self.tokenizer is not None:
            encoded = self.tokenizer(texts, pairs if any(p is not None for p in pairs) else None,
                                     truncation="longest_first" if pairs[0] is None else "only_first",
                                     max_length=self.max_length, padding=True, return_tensors="pt")
            batch: dict[str, Any] = dict(encoded)
        else:
            batch = {}
        batch["labels"] = torch.tensor([item["label"] for item in items], dtype=torch.long)
        batch["index"] = torch.tensor([item["index"] for item in items], dtype=torch.long)
        if "image" in items[0]:
            batch["image_tokens"] = torch.from_numpy(np.stack([np.atleast_2d(item["image"]) for item in items])).float()
        if "teacher" in items[0]:
            for name in items[0]["teacher"]:
                batch[f"teacher_{name}"] = torch.from_numpy(np.stack([item["teacher"][name] for item in items])).float()
        return batch
