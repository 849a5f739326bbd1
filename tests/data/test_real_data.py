"""The real corpora in ../shared/data: sizes, cleaning and ids as the paper needs them.

Skipped when the folder is absent. IMDB and 20 Newsgroups are loaded once per
session (conftest); the IMDB load takes several seconds, hence ``slow``.
"""

from __future__ import annotations

import csv
import random
import re
from collections import Counter
from dataclasses import replace

import pytest

from lugpi_cli.data import dataset_summary, load_dataset
from lugpi_cli.data.clean import normalize_whitespace
from lugpi_cli.data.samples import carve, sample_id

from .builders import shared_path

CWI_SIZES = {
    "cwi-news": ("News", 14002, 1764, 2095, 4975),
    "cwi-wikinews": ("WikiNews", 7746, 870, 1287, 4154),
    "cwi-wikipedia": ("Wikipedia", 5551, 694, 870, None),
}
EMAIL = re.compile(r"[\w.+-]+@(?:(?:[\w-]+\.)+[A-Za-z]{2,}\b|\d{1,3}(?:\.\d{1,3}){3})")


def by_id(ds):
    return {s.id: s for s in ds.samples()}


def assert_validation_carving_ignores_order(ds, seed=0):
    """Put validation back into train, shuffle, carve again: the same validation set."""
    source_train = ds.splits["train"] + [replace(s, split="train") for s in ds.splits["validation"]]
    random.Random(7).shuffle(source_train)
    _, carved = carve(source_train, 0.1, seed=seed, salt="validation")
    assert {s.id for s in carved} == {s.id for s in ds.splits["validation"]}


# --- CWI 2018 ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def cwi_sets():
    folder = shared_path("cwi2018-english")
    return {name: load_dataset(name, data=folder) for name in CWI_SIZES}


@pytest.mark.parametrize("name", list(CWI_SIZES))
def test_cwi_split_sizes(cwi_sets, name):
    _, train, dev, test, _ = CWI_SIZES[name]
    ds = cwi_sets[name]
    assert [len(v) for v in ds.splits.values()] == [train, dev, test]
    assert ds.label_names == ["simple", "complex"] and ds.skipped == {}


@pytest.mark.parametrize("name", list(CWI_SIZES))
def test_cwi_target_marking_matches_the_files(cwi_sets, name):
    genre = CWI_SIZES[name][0]
    ds = cwi_sets[name]
    for split, suffix in (("train", "Train"), ("validation", "Dev"), ("test", "Test")):
        path = shared_path("cwi2018-english", f"{genre}_{suffix}.tsv")
        with open(path, encoding="utf-8", newline="") as handle:
            rows = list(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
        samples = ds.splits[split]
        assert len(rows) == len(samples)
        for row, sample in zip(rows, samples):
            assert sample.text == normalize_whitespace(row[1])
            assert sample.text_pair == sample.prompt == normalize_whitespace(row[4])
            assert sample.label == int(row[9])


def test_cwi_news_distinct_prompts(cwi_sets):
    for name, (_, _, _, _, distinct) in CWI_SIZES.items():
        if distinct is not None:
            assert dataset_summary(cwi_sets[name])["splits"]["train"]["distinct_prompts"] == distinct


def test_cwi_ids_unique_and_stable_across_loads(cwi_sets):
    again = load_dataset("cwi-news", data=shared_path())  # the parent folder works too
    first = cwi_sets["cwi-news"]
    assert [s.id for s in again.samples()] == [s.id for s in first.samples()]
    assert len({s.id for s in first.samples()}) == len(first.samples())
    assert again.fingerprint() == first.fingerprint()
    ids = set().union(*({s.id for s in ds.samples()} for ds in cwi_sets.values()))
    assert len(ids) == sum(len(ds.samples()) for ds in cwi_sets.values())


def test_cwi_summary(cwi_sets):
    summary = dataset_summary(cwi_sets["cwi-news"])
    assert summary["splits"]["train"]["labels"] == {"simple": 8459, "complex": 5543}
    assert summary["splits"]["validation"]["samples"] == 1764


# --- IMDB --------------------------------------------------------------------------------


@pytest.mark.slow
def test_imdb_split_sizes_and_stratified_validation(imdb_full):
    assert [len(v) for v in imdb_full.splits.values()] == [22500, 2500, 25000]
    counts = {split: Counter(s.label for s in v) for split, v in imdb_full.splits.items()}
    assert counts == {"train": {0: 11250, 1: 11250}, "validation": {0: 1250, 1: 1250}, "test": {0: 12500, 1: 12500}}
    assert imdb_full.label_names == ["neg", "pos"] and imdb_full.skipped == {}


@pytest.mark.slow
def test_imdb_html_removed(imdb_full):
    assert not [s.id for s in imdb_full.samples() if re.search(r"<\s*br|<\s*/?\s*(i|p|em|hr)\s*/?>", s.text, re.I)]
    assert not [s.id for s in imdb_full.samples() if "&amp;" in s.text or "&quot;" in s.text]
    assert all(s.text == s.prompt and s.text and s.text == normalize_whitespace(s.text) for s in imdb_full.samples())


@pytest.mark.slow
def test_imdb_ids_unique_and_from_member_paths(imdb_full):
    ids = by_id(imdb_full)
    assert len(ids) == 50000
    first_pos = ids[sample_id("imdb", "train", "aclImdb/train/pos/0_9.txt")]
    assert first_pos.label == 1 and first_pos.split in ("train", "validation")
    assert ids[sample_id("imdb", "test", "aclImdb/test/neg/0_2.txt")].split == "test"


@pytest.mark.slow
def test_imdb_validation_carving_ignores_order(imdb_full):
    assert_validation_carving_ignores_order(imdb_full)


# --- 20 Newsgroups -------------------------------------------------------------------------


def test_newsgroups_split_sizes(newsgroups_full):
    ds = newsgroups_full
    assert len(ds.splits["train"]) + len(ds.splits["validation"]) == 11314
    assert len(ds.splits["validation"]) == 1132 and len(ds.splits["test"]) == 7532
    assert len(ds.label_names) == 20 and ds.label_names == sorted(ds.label_names)
    assert ds.label_names[0] == "alt.atheism" and ds.label_names[-1] == "talk.religion.misc"
    val = Counter(s.label for s in ds.splits["validation"])
    train = Counter(s.label for s in ds.splits["train"])
    assert all(abs(val[k] - 0.1 * (val[k] + train[k])) <= 0.5 for k in train)


def test_newsgroups_headers_and_emails_removed(newsgroups_full):
    samples = newsgroups_full.samples()
    assert not [s.id for s in samples if EMAIL.search(s.text)]
    assert not [s.id for s in samples if re.match(r"(From|Subject|Organization|Lines|Reply-To):", s.text)]
    # a post whose only content is its Subject line has an empty body, kept as such
    testing = by_id(newsgroups_full)[sample_id("20newsgroups", "train", "20news-bydate-train/rec.sport.hockey/52654")]
    assert testing.text == testing.prompt == ""
    assert sum(1 for s in samples if not s.text) == 35


def test_newsgroups_latin1_posts_decode(newsgroups_full):
    ids = by_id(newsgroups_full)
    post = ids[sample_id("20newsgroups", "train", "20news-bydate-train/talk.religion.misc/83777")]
    assert "them in¹ the name" in post.text
    post = ids[sample_id("20newsgroups", "train", "20news-bydate-train/sci.med/59055")]
    assert "\ufffd" not in post.text and "ÿ" in post.text


def test_newsgroups_ids_unique_and_validation_ignores_order(newsgroups_full):
    assert len(by_id(newsgroups_full)) == 18846
    assert_validation_carving_ignores_order(newsgroups_full)
