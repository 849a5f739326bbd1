"""Sample ids, split carving, capping, fingerprints and summaries."""

from __future__ import annotations

import hashlib
import pickle
import random
import re
from collections import Counter

import pytest

from lugpi_cli.data import PREPROCESSING_VERSION, Dataset, Sample, dataset_summary
from lugpi_cli.data.samples import assemble, cap, carve, sample_id
from lugpi_cli.errors import UserError


def make_samples(counts: dict[int, int], split: str = "train", name: str = "toy") -> list[Sample]:
    out = []
    for label, n in counts.items():
        for i in range(n):
            ident = f"{label}/{i}"
            out.append(Sample(sample_id(name, split, ident), f"text {ident}", f"prompt {ident}", label, split))
    return out


def test_sample_id_is_16_hex_and_depends_on_every_part():
    a = sample_id("imdb", "train", "aclImdb/train/pos/0_9.txt")
    assert re.fullmatch(r"[0-9a-f]{16}", a)
    assert a == sample_id("imdb", "train", "aclImdb/train/pos/0_9.txt")
    assert a != sample_id("imdb", "test", "aclImdb/train/pos/0_9.txt")
    assert a != sample_id("imdb2", "train", "aclImdb/train/pos/0_9.txt")
    assert sample_id("t", "train", 5) != sample_id("t", "train", "5")


def test_sample_id_is_the_documented_hash():
    # The id scheme is a contract (store keys hold ids): it must never change silently.
    canonical = b'["imdb","train","aclImdb/train/pos/0_9.txt"]'
    assert sample_id("imdb", "train", "aclImdb/train/pos/0_9.txt") == hashlib.sha256(canonical).hexdigest()[:16]
    assert sample_id("cwi-news", "test", ["3P7R", 4, 10, "barren", 1]) == hashlib.sha256(
        b'["cwi-news","test",["3P7R",4,10,"barren",1]]'
    ).hexdigest()[:16]


def test_carve_is_stratified_and_order_independent():
    samples = make_samples({0: 100, 1: 50, 2: 7})
    kept, carved = carve(samples, 0.1, seed=0, salt="validation")
    assert Counter(s.label for s in carved) == {0: 10, 1: 5, 2: 1}
    assert len(kept) + len(carved) == len(samples)
    shuffled = samples[:]
    random.Random(1).shuffle(shuffled)
    _, carved2 = carve(shuffled, 0.1, seed=0, salt="validation")
    assert {s.id for s in carved2} == {s.id for s in carved}


def test_carve_depends_on_seed_and_salt():
    samples = make_samples({0: 200, 1: 200})
    ids = lambda **kw: {s.id for s in carve(samples, 0.1, **kw)[1]}  # noqa: E731
    assert ids(seed=0, salt="validation") != ids(seed=1, salt="validation")
    assert ids(seed=0, salt="validation") != ids(seed=0, salt="test")


def test_carve_keeps_a_singleton_class_in_train_and_zero_fraction_carves_nothing():
    samples = make_samples({0: 20, 1: 1})
    kept, carved = carve(samples, 0.5, seed=0, salt="v")
    assert [s.label for s in carved].count(1) == 0
    assert carve(samples, 0.0, seed=0, salt="v")[1] == []


def test_cap_is_stratified_subset_in_input_order():
    samples = make_samples({0: 60, 1: 30, 2: 10})
    capped = cap(samples, 10)
    assert Counter(s.label for s in capped) == {0: 6, 1: 3, 2: 1}
    positions = [samples.index(s) for s in capped]
    assert positions == sorted(positions)
    quota = Counter(s.label for s in capped)
    for label in (0, 1, 2):  # first ones in sorted-id order
        group = sorted((s for s in samples if s.label == label), key=lambda s: s.id)
        assert {s.id for s in capped if s.label == label} == {s.id for s in group[: quota[label]]}
    assert cap(samples, 1000) == samples


def test_cap_largest_remainders_fill_the_limit():
    samples = make_samples({0: 1, 1: 1, 2: 1})
    assert len(cap(samples, 2)) == 2


def test_assemble_carves_validation_only_when_missing():
    train = make_samples({0: 50, 1: 50})
    ds = assemble("toy", ["a", "b"], train, source="mem")
    assert list(ds.splits) == ["train", "validation", "test"]
    assert len(ds.splits["validation"]) == 10 and len(ds.splits["train"]) == 90
    assert all(s.split == "validation" for s in ds.splits["validation"])
    assert ds.splits["test"] == []
    dev = make_samples({0: 3, 1: 3}, split="validation")
    ds2 = assemble("toy", ["a", "b"], train + dev, source="mem")
    assert len(ds2.splits["train"]) == 100 and ds2.splits["validation"] == dev


def test_carved_sample_keeps_its_source_id():
    train = make_samples({0: 50, 1: 50})
    ds = assemble("toy", ["a", "b"], train, source="mem", seed=3)
    assert {s.id for s in ds.samples()} == {s.id for s in train}


def test_assemble_test_carving_ignores_seed():
    train = make_samples({0: 100, 1: 100})
    tests = [
        {s.id for s in assemble("toy", ["a", "b"], train, source="m", test_fraction=0.1, seed=seed).splits["test"]}
        for seed in (0, 1, 2)
    ]
    assert len(tests[0]) == 20 and tests[0] == tests[1] == tests[2]
    runs = [assemble("toy", ["a", "b"], train, source="m", test_fraction=0.1, seed=seed) for seed in (0, 1)]
    vals = [{s.id for s in run.splits["validation"]} for run in runs]
    assert vals[0] != vals[1] and len(vals[0]) == 18


def test_max_per_split_is_a_subset_of_the_uncapped_split():
    train = make_samples({0: 100, 1: 60})
    full = assemble("toy", ["a", "b"], train, source="m")
    capped = assemble("toy", ["a", "b"], train, source="m", max_per_split=8)
    assert [len(v) for v in capped.splits.values()] == [8, 8, 0]
    for split in ("train", "validation"):
        assert {s.id for s in capped.splits[split]} <= {s.id for s in full.splits[split]}


@pytest.mark.parametrize("kw", [{"validation_fraction": 1.0}, {"validation_fraction": -0.1},
                                {"test_fraction": 1.5}, {"max_per_split": 0}])
def test_assemble_rejects_bad_options(kw):
    with pytest.raises(UserError):
        assemble("toy", ["a"], make_samples({0: 3}), source="m", **kw)


def test_fingerprint_is_content_based_and_cached():
    train = make_samples({0: 20, 1: 20})
    a = assemble("toy", ["a", "b"], train, source="here")
    b = assemble("toy", ["a", "b"], list(train), source="elsewhere")
    assert re.fullmatch(r"[0-9a-f]{64}", a.fingerprint())
    assert a.fingerprint() == b.fingerprint()  # the source path is not content
    assert a.fingerprint() is a.fingerprint()
    edited = [Sample(s.id, s.text + "!", s.prompt, s.label, s.split) if i == 0 else s for i, s in enumerate(train)]
    assert assemble("toy", ["a", "b"], edited, source="here").fingerprint() != a.fingerprint()
    relabelled = [Sample(s.id, s.text, s.prompt, 1 - s.label, s.split) for s in train]
    assert assemble("toy", ["a", "b"], relabelled, source="here").fingerprint() != a.fingerprint()
    assert assemble("toy", ["b", "a"], train, source="here").fingerprint() != a.fingerprint()
    assert PREPROCESSING_VERSION >= 1


def test_dataset_helpers():
    pair = Sample("0" * 16, "The cat sat.", "cat", 1, "test", text_pair="cat")
    single = Sample("1" * 16, "Just text.", "Just text.", 0, "train")
    ds = Dataset("toy", ["simple", "complex"], {"train": [single], "validation": [], "test": [pair]}, "mem", {})
    assert ds.num_labels == 2
    assert ds.display_text(pair) == "The cat sat. [SEP] cat"
    assert ds.display_text(pair, sep="</s>") == "The cat sat. </s> cat"
    assert ds.display_text(single) == "Just text."
    assert ds.samples() == [single, pair]
    assert ds.samples("test") == [pair]
    assert ds.samples(["test", "train"]) == [pair, single]
    with pytest.raises(UserError, match="no split 'dev'"):
        ds.samples("dev")
    assert repr(ds) == "Dataset(name='toy', labels=2, train=1, validation=0, test=1)"
    with pytest.raises(AttributeError):
        pair.label = 0  # frozen


def test_dataset_summary():
    train = make_samples({0: 30, 1: 10})
    train.append(Sample(sample_id("toy", "train", "dup"), "other", "prompt 0/0", 0, "train"))
    ds = assemble("toy", ["a", "b"], train, source="mem", skipped={"empty text": 2})
    summary = dataset_summary(ds)
    assert summary["name"] == "toy" and summary["source"] == "mem"
    assert summary["labels"] == ["a", "b"] and summary["skipped"] == {"empty text": 2}
    assert list(summary["splits"]) == ["train", "validation", "test"]
    tr = summary["splits"]["train"]
    assert tr["samples"] == len(ds.splits["train"])
    assert sum(tr["labels"].values()) == tr["samples"] and set(tr["labels"]) == {"a", "b"}
    assert summary["splits"]["test"] == {"samples": 0, "labels": {"a": 0, "b": 0}, "distinct_prompts": 0}
    all_prompts = {s.prompt for s in ds.samples()}
    assert len(all_prompts) == 40  # "prompt 0/0" occurs twice


def test_dataset_pickles_for_dataloader_workers():
    ds = assemble("toy", ["a", "b"], make_samples({0: 5, 1: 5}), source="mem")
    fp = ds.fingerprint()
    again = pickle.loads(pickle.dumps(ds))
    assert again.samples() == ds.samples() and again.fingerprint() == fp
