"""Training data: texts from the data set, image features and teacher outputs from the store.

:class:`TrainingData` is a torch ``Dataset`` that reads, per batch, the cached
records it needs with one LMDB read transaction (``__getitems__``), so a
DataLoader worker streams features and teacher outputs from disk instead of
holding them in memory. :class:`Collator` tokenises each text once per run and pads
each batch to its longest sequence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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


PAD_VALUES = {"attention_mask": 0, "special_tokens_mask": 1}  # input_ids / token_type_ids: the tokenizer's own


@dataclass
class Collator:
    """Tokenise texts (pairs for CWI: the tokenizer's own separator), stack features and teacher outputs.

    Each distinct (text, pair) is tokenised once per Collator (i.e. per run) and
    kept in memory unpadded; every batch is then padded to its own longest
    sequence, with the tokenizer's padding side and pad ids -- the same
    ``input_ids`` / ``attention_mask`` / ``token_type_ids`` as tokenising the
    batch with ``padding=True``. :meth:`encode` tokenises a whole split in one
    batched call (``fit`` and ``predict_outputs`` call it before their loaders
    start, like ``Trainer`` users tokenising each split once); texts it has not
    seen are tokenised on first use.
    """

    tokenizer: Any
    max_length: int = 512
    _cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def encode(self, texts: Sequence[str], pairs: Sequence[str | None]) -> None:
        """Tokenise, in one batched call per kind (single / pair), every (text, pair) not yet cached."""
        todo = list(dict.fromkeys(key for key in zip(texts, pairs) if key not in self._cache))
        for paired in (False, True):
            keys = [key for key in todo if (key[1] is not None) == paired]
            if not keys:
                continue
            encoded = self.tokenizer([t for t, _ in keys], [p for _, p in keys] if paired else None,
                                     truncation="only_first" if paired else "longest_first",
                                     max_length=self.max_length)
            names = list(encoded.keys())
            for j, key in enumerate(keys):
                self._cache[key] = {name: encoded[name][j] for name in names}

    def _pad(self, rows: list[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
        """Pad cached encodings to the batch's longest, as ``tokenizer(..., padding=True)`` does."""
        length = max(len(row["input_ids"]) for row in rows)
        left = getattr(self.tokenizer, "padding_side", "right") == "left"
        out: dict[str, torch.Tensor] = {}
        for name in rows[0]:
            value = PAD_VALUES.get(name, self.tokenizer.pad_token_type_id if name == "token_type_ids"
                                   else self.tokenizer.pad_token_id if name == "input_ids" else 0)
            if left:
                padded = [[value] * (length - len(row[name])) + row[name] for row in rows]
            else:
                padded = [row[name] + [value] * (length - len(row[name])) for row in rows]
            out[name] = torch.tensor(padded, dtype=torch.long)
        return out

    @property
    def caches(self) -> bool:
        """Whether tokens are cached (a tokenizer that can pad; without a pad token it raises its own error)."""
        return self.tokenizer is not None and getattr(self.tokenizer, "pad_token_id", None) is not None \
            and hasattr(self.tokenizer, "pad_token_type_id")

    def _tokens(self, texts: list[str], pairs: list[str | None]) -> dict[str, Any]:
        if not self.caches:
            # no pad token: the tokenizer's own call raises its usual error (as before the cache)
            encoded = self.tokenizer(texts, pairs if any(p is not None for p in pairs) else None,
                                     truncation="longest_first" if pairs[0] is None else "only_first",
                                     max_length=self.max_length, padding=True, return_tensors="pt")
            return dict(encoded)
        self.encode(texts, pairs)
        return self._pad([self._cache[key] for key in zip(texts, pairs)])

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        texts = [item["text"] for item in items]
        pairs = [item["text_pair"] for item in items]
        batch: dict[str, Any] = self._tokens(texts, pairs) if self.tokenizer is not None else {}
        batch["labels"] = torch.tensor([item["label"] for item in items], dtype=torch.long)
        batch["index"] = torch.tensor([item["index"] for item in items], dtype=torch.long)
        if "image" in items[0]:
            batch["image_tokens"] = torch.from_numpy(np.stack([np.atleast_2d(item["image"]) for item in items])).float()
        if "teacher" in items[0]:
            for name in items[0]["teacher"]:
                batch[f"teacher_{name}"] = torch.from_numpy(np.stack([item["teacher"][name] for item in items])).float()
        return batch


class Reordered(torch.utils.data.Dataset):
    """``data`` read in the order ``order`` (item ``i`` is ``data[order[i]]``), batches still one read each."""

    def __init__(self, data: Any, order: Sequence[int]):
        self.data, self.order = data, list(order)

    def __len__(self) -> int:
        return len(self.order)

    def __getitems__(self, indices: Sequence[int]) -> list[dict[str, Any]]:
        return self.data.__getitems__([self.order[i] for i in indices])

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.__getitems__([index])[0]


def by_length(collate: Any, data: Any) -> tuple[Any, list[int] | None]:
    """``data`` longest texts first (a :class:`Reordered` view and its order), for passes whose order does not
    matter (validation, prediction): each batch then pads to a length near its own texts', not to the longest
    of a random draw. Unchanged (and ``None``) when ``collate`` does not cache tokens. Ties keep data order."""
    samples = getattr(data, "samples", None)
    if not (isinstance(collate, Collator) and collate.caches and samples):
        return data, None
    pretokenize(collate, data)
    lengths = [len(collate._cache[(s.text, s.text_pair)]["input_ids"]) for s in samples]
    order = sorted(range(len(samples)), key=lambda i: -lengths[i])
    return Reordered(data, order), order


def pretokenize(collate: Any, data: Any) -> None:
    """Tokenise every text of ``data`` (a :class:`TrainingData`) at once, if ``collate`` caches tokens."""
    samples = getattr(data, "samples", None)
    if isinstance(collate, Collator) and collate.caches and samples:
        collate.encode([s.text for s in samples], [s.text_pair for s in samples])
