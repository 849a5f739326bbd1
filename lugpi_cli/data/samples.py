"""Samples, data sets, sample ids and deterministic split carving.

Every loader turns its source into :class:`Sample` objects whose ``split`` is
the split *of the source distribution* (``train``/``validation``/``test``) and
hands them to :func:`assemble`, which carves the splits the source lacks,
optionally caps each split, and returns a :class:`Dataset`.

Sample ids
    ``id = sha256(canonical_json([dataset name, source split, source identity]))[:16]``.
    The split in the id is the split the sample has *in the source*: a review
    carved from IMDB's train folder into validation keeps the id it has in
    train, so ids do not move when ``validation_fraction`` or ``seed`` change.

Carving
    A carved split takes, in every class separately, the ``round(fraction * n)``
    samples that come first when the class is ordered by
    ``sha256([salt, seed, sample id])``. That is a seeded permutation that does
    not depend on file order, machine or the other classes. A class keeps at
    least one sample in the split it is carved from.

Capping (``max_per_split``)
    At most N samples per split, stratified: every class gets a share of N
    proportional to its size (largest remainders get the leftover places), and
    takes its first samples in sorted-id order (ids are hashes, so that is a
    fixed pseudo-random subset). Validation is carved before capping, so a
    capped split is always a subset of the uncapped one.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from typing import Any, Iterable

from lugpi_cli.errors import UserError
from lugpi_store.keys import fingerprint

#: Bump when any loader's cleaning or id scheme changes what a sample holds;
#: it is part of every :meth:`Dataset.fingerprint`.
PREPROCESSING_VERSION = 1

#: Split names, in the order :attr:`Dataset.splits` keeps them.
SPLITS = ("train", "validation", "test")

ID_LENGTH = 16


def sample_id(dataset: str, split: str, identity: Any) -> str:
    """The stable id of the sample ``identity`` in ``split`` of ``dataset``.

    >>> sample_id("imdb", "train", "aclImdb/train/pos/0_9.txt")
    '4f2b17a3bf3d968b'
    """
    return fingerprint([dataset, split, identity])[:ID_LENGTH]


@dataclass(frozen=True)
class Sample:
    """One example: what the text model reads and what the diffusion model draws."""

    id: str
    text: str
    prompt: str
    label: int
    split: str
    #: Second segment of a pair task (CWI: the target phrase). Tokenize with
    #: ``tokenizer(text, text_pair)`` so the tokenizer adds its own separator.
    text_pair: str | None = None


@dataclass
class Dataset:
    """A labelled data set, split into train / validation / test."""

    name: str
    label_names: list[str]
    splits: dict[str, list[Sample]]
    source: str
    skipped: dict[str, int] = field(default_factory=dict)
    #: Where a Hugging Face data set came from (Hub id, config, revision, ``datasets``' own fingerprint per
    #: split); empty for other sources. Not part of :meth:`fingerprint`, which hashes the content.
    origin: dict[str, Any] = field(default_factory=dict)
    _fingerprint: str | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def num_labels(self) -> int:
        return len(self.label_names)

    def samples(self, splits: str | Iterable[str] | None = None) -> list[Sample]:
        """Samples of ``splits`` (one name, several, or all when None), split by split."""
        if splits is None:
            names = list(self.splits)
        elif isinstance(splits, str):
            names = [splits]
        else:
            names = list(splits)
        unknown = [s for s in names if s not in self.splits]
        if unknown:
            raise UserError(
                f"data set {self.name!r} has no split {unknown[0]!r}",
                f"choose from: {', '.join(self.splits)}",
            )
        return [s for name in names for s in self.splits[name]]

    def fingerprint(self) -> str:
        """Content hash of the data set: the same samples give the same hex digest anywhere.

        Hashes ``[name, PREPROCESSING_VERSION, label_names, [(split, id, label, content)...]]``
        where ``content`` is the first 16 hex of the hash of (text, text_pair,
        prompt), so an edited file (same row numbers, new text) never reuses a
        stale cache. Computed once and cached: do not mutate ``splits`` afterwards.
        """
        if self._fingerprint is None:
            rows = [
                [s.split, s.id, s.label, _content_digest(s)]
                for split in self.splits
                for s in self.splits[split]
            ]
            self._fingerprint = fingerprint([self.name, PREPROCESSING_VERSION, list(self.label_names), rows])
        return self._fingerprint

    def display_text(self, sample: Sample, sep: str = "[SEP]") -> str:
        """``"sentence [SEP] target"`` for pair samples, else the text."""
        if sample.text_pair is None:
            return sample.text
        return f"{sample.text} {sep} {sample.text_pair}"

    def __repr__(self) -> str:
        sizes = ", ".join(f"{k}={len(v)}" for k, v in self.splits.items())
        return f"Dataset(name={self.name!r}, labels={self.num_labels}, {sizes})"


def _content_digest(sample: Sample) -> str:
    h = hashlib.sha256()
    for part in (sample.text, sample.text_pair, sample.prompt):
        data = b"\x00" if part is None else b"\x01" + part.encode("utf-8")
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()[:16]


def carve(samples: list[Sample], fraction: float, *, seed: int, salt: str) -> tuple[list[Sample], list[Sample]]:
    """Split ``samples`` into (kept, carved), carving ``fraction`` of every class.

    Deterministic and independent of the order of ``samples``; both lists keep
    the input order.
    """
    by_label: dict[int, list[Sample]] = defaultdict(list)
    for s in samples:
        by_label[s.label].append(s)
    chosen: set[str] = set()
    for group in by_label.values():
        n = len(group)
        k = min(math.floor(n * fraction + 0.5), n - 1) if n > 1 else 0
        if k <= 0:
            continue
        ranked = sorted(group, key=lambda s: (fingerprint([salt, seed, s.id]), s.id))
        chosen.update(s.id for s in ranked[:k])
    kept = [s for s in samples if s.id not in chosen]
    carved = [s for s in samples if s.id in chosen]
    return kept, carved


def cap(samples: list[Sample], limit: int) -> list[Sample]:
    """At most ``limit`` samples, stratified by label, first in sorted-id order (input order kept)."""
    if len(samples) <= limit:
        return list(samples)
    counts = Counter(s.label for s in samples)
    total = len(samples)
    quota = {label: limit * n // total for label, n in counts.items()}
    left = limit - sum(quota.values())
    by_remainder = sorted(counts, key=lambda lab: (-(limit * counts[lab] % total), lab))
    for label in by_remainder[:left]:
        quota[label] += 1
    by_label: dict[int, list[Sample]] = defaultdict(list)
    for s in samples:
        by_label[s.label].append(s)
    keep: set[str] = set()
    for label, group in by_label.items():
        keep.update(s.id for s in sorted(group, key=lambda s: s.id)[: quota[label]])
    return [s for s in samples if s.id in keep]


def check_fraction(name: str, value: float) -> None:
    """UserError unless ``0 <= value < 1``."""
    if not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise UserError(f"{name} must be a fraction in [0, 1), got {value!r}", f"for example {name}=0.1")


def assemble(
    name: str,
    label_names: list[str],
    samples: list[Sample],
    *,
    source: str,
    skipped: dict[str, int] | None = None,
    validation_fraction: float = 0.1,
    test_fraction: float | None = None,
    seed: int = 0,
    max_per_split: int | None = None,
) -> Dataset:
    """Build a :class:`Dataset` from samples tagged with their source split.

    A missing validation split is carved from train (``validation_fraction``,
    seeded by ``seed``). A missing test split is carved from train only when
    ``test_fraction`` is given; test carving always uses seed 0, so every run
    of a study is evaluated on the same test set whatever its ``seed``.
    """
    check_fraction("validation_fraction", validation_fraction)
    if test_fraction is not None:
        check_fraction("test_fraction", test_fraction)
    if max_per_split is not None and (not isinstance(max_per_split, int) or max_per_split < 1):
        raise UserError(f"max_per_split must be a positive integer, got {max_per_split!r}")

    ids = Counter(s.id for s in samples)
    dup = next((i for i, n in ids.items() if n > 1), None)
    if dup is not None:  # loaders guarantee distinct identities; this guards the contract
        raise ValueError(f"duplicate sample id {dup} in data set {name!r}")

    splits: dict[str, list[Sample]] = {s: [] for s in SPLITS}
    for s in samples:
        splits[s.split].append(s)

    if not splits["test"] and test_fraction is not None:
        kept, carved = carve(splits["train"], test_fraction, seed=0, salt="test")
        splits["train"], splits["test"] = kept, [replace(s, split="test") for s in carved]
    if not splits["validation"]:
        kept, carved = carve(splits["train"], validation_fraction, seed=seed, salt="validation")
        splits["train"], splits["validation"] = kept, [replace(s, split="validation") for s in carved]
    if max_per_split is not None:
        splits = {k: cap(v, max_per_split) for k, v in splits.items()}
    return Dataset(name=name, label_names=list(label_names), splits=splits, source=source, skipped=dict(skipped or {}))


def dataset_summary(ds: Dataset) -> dict[str, Any]:
    """Sizes, label counts and distinct prompts per split (what ``lugpi data show --json`` prints)."""
    splits = {}
    for split, items in ds.splits.items():
        counts = Counter(s.label for s in items)
        splits[split] = {
            "samples": len(items),
            "labels": {name: counts.get(i, 0) for i, name in enumerate(ds.label_names)},
            "distinct_prompts": len({s.prompt for s in items}),
        }
    return {
        "name": ds.name,
        "source": ds.source,
        "labels": list(ds.label_names),
        "skipped": dict(ds.skipped),
        "splits": splits,
        **({"origin": dict(ds.origin)} if ds.origin else {}),
    }
