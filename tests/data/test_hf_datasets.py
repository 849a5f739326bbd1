"""Hugging Face `datasets` input: save_to_disk directories and Hub ids (offline)."""

from __future__ import annotations

import pytest

datasets = pytest.importorskip("datasets")

from lugpi_cli.data import load_dataset  # noqa: E402
from lugpi_cli.data import hf  # noqa: E402
from lugpi_cli.errors import UserError  # noqa: E402


def _part(n: int, offset: int = 0, labels=("neg", "pos"), class_label: bool = True, **extra):
    feature = datasets.ClassLabel(names=list(labels)) if class_label else datasets.Value("string")
    columns = {
        "text": [f"review {i + offset} was {('bad', 'good', 'odd')[i % len(labels)]}" for i in range(n)],
        "label": [i % len(labels) if class_label else labels[i % len(labels)] for i in range(n)],
        "prompt": [f"a photo of a {('cat', 'dog', 'cow')[i % len(labels)]} {i % 4}" for i in range(n)],
        **extra,
    }
    features = datasets.Features({"text": datasets.Value("string"), "label": feature,
                                  "prompt": datasets.Value("string"),
                                  **{k: datasets.Value("string") for k in extra}})
    return datasets.Dataset.from_dict(columns, features=features)


@pytest.fixture
def saved(tmp_path):
    """A DatasetDict with train / validation / test and a split lugpi has no use for."""
    dd = datasets.DatasetDict({"train": _part(40), "validation": _part(8, 100), "test": _part(12, 200),
                               "unsupervised": _part(6, 300)})
    path = tmp_path / "reviews-hf"
    dd.save_to_disk(str(path))
    return path


def test_dataset_dict_splits_and_class_label_names(saved):
    ds = load_dataset(str(saved), prompt_col="prompt")
    assert ds.name == "reviews-hf"
    assert ds.label_names == ["neg", "pos"]
    assert {k: len(v) for k, v in ds.splits.items()} == {"train": 40, "validation": 8, "test": 12}
    assert ds.skipped == {"split unsupervised": 6}
    first = ds.splits["validation"][0]
    assert first.text == "review 100 was bad" and first.prompt == "a photo of a cat 0" and first.label == 0
    assert ds.origin["kind"] == "save_to_disk"
    assert set(ds.origin["fingerprints"]) == {"train", "validation", "test", "unsupervised"}


def test_class_label_ids_are_kept_even_when_names_do_not_sort(tmp_path):
    dd = datasets.DatasetDict({"train": _part(12, labels=("pos", "neg")), "test": _part(4, 50, labels=("pos", "neg"))})
    dd.save_to_disk(str(tmp_path / "d"))
    ds = load_dataset(str(tmp_path / "d"))
    assert ds.label_names == ["pos", "neg"]  # ClassLabel order, not sorted
    assert ds.splits["test"][0].label == 0 and ds.splits["test"][0].text.endswith("bad")


def test_ids_are_stable_and_the_fingerprint_follows_content(saved, tmp_path):
    a = load_dataset(str(saved))
    b = load_dataset(None, data=saved)
    assert [s.id for s in a.samples()] == [s.id for s in b.samples()]
    assert a.fingerprint() == b.fingerprint()
    assert len({s.id for s in a.samples()}) == 60
    edited = datasets.load_from_disk(str(saved))
    edited["test"] = edited["test"].map(lambda row: {"text": row["text"] + "!"})
    edited.save_to_disk(str(tmp_path / "v2" / "reviews-hf"))  # the same name: the directory's
    c = load_dataset(str(tmp_path / "v2" / "reviews-hf"))
    assert c.fingerprint() != a.fingerprint()
    assert [s.id for s in c.samples("test")] == [s.id for s in a.samples("test")]
    assert c.origin["fingerprints"]["test"] != a.origin["fingerprints"]["test"]


def test_limit_is_a_stratified_subset(saved):
    full = load_dataset(str(saved))
    small = load_dataset(str(saved), max_per_split=4)
    assert {k: len(v) for k, v in small.splits.items()} == {"train": 4, "validation": 4, "test": 4}
    assert {s.id for s in small.samples()} <= {s.id for s in full.samples()}
    assert sorted(s.label for s in small.samples("train")) == [0, 0, 1, 1]


def test_a_single_dataset_is_carved_like_a_table(tmp_path):
    _part(50, class_label=False).save_to_disk(str(tmp_path / "one"))
    ds = load_dataset(str(tmp_path / "one"))
    assert ds.label_names == ["neg", "pos"]
    assert {k: len(v) for k, v in ds.splits.items()} == {"train": 40, "validation": 4, "test": 6}


def test_split_and_id_columns(tmp_path):
    n = 30
    split = [("train", "train", "dev", "test")[i % 4] for i in range(n)]
    ids = [f"doc-{i}" for i in range(n)]
    _part(n, split=split, uid=ids).save_to_disk(str(tmp_path / "cols"))
    ds = load_dataset(str(tmp_path / "cols"), split_col="split", id_col="uid")
    assert {k: len(v) for k, v in ds.splits.items()} == {"train": 16, "validation": 7, "test": 7}
    from lugpi_cli.data.samples import sample_id

    assert ds.splits["validation"][0].id == sample_id("cols", "train", "doc-2")


def test_column_errors_name_the_column_and_the_choices(saved, tmp_path):
    with pytest.raises(UserError, match="no column 'body'") as err:
        load_dataset(str(saved), text_col="body")
    assert "'text'" in err.value.hint
    datasets.Dataset.from_dict({"sentence": ["a", "b"], "y": [0, 1]}).save_to_disk(str(tmp_path / "other"))
    with pytest.raises(UserError, match="none given and no column 'text'") as err:
        load_dataset(str(tmp_path / "other"))
    assert "--text-col" in err.value.hint and "'sentence'" in err.value.hint


def test_an_unseen_test_label_and_hub_options_elsewhere_are_errors(tmp_path, saved):
    dd = datasets.DatasetDict({"train": _part(6, labels=("a", "b", "c")).filter(lambda r: r["label"] < 2),
                               "test": _part(6, labels=("a", "b", "c"))})
    dd.save_to_disk(str(tmp_path / "unseen"))
    with pytest.raises(UserError, match="label 'c' \\(test\\) never occurs in the train split"):
        load_dataset(str(tmp_path / "unseen"))
    with pytest.raises(UserError, match="--data-revision applies to Hugging Face Hub data sets"):
        load_dataset(str(saved), data_revision="v1")
    with pytest.raises(UserError, match="--data-config applies"):
        load_dataset("imdb", data_config="plain_text")


def test_hub_id_goes_through_load_dataset_with_config_and_revision(monkeypatch, saved):
    calls = []

    def fake_load_dataset(path, name=None, *, revision=None):
        calls.append((path, name, revision))
        return datasets.load_from_disk(str(saved))

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    ds = load_dataset("someone/reviews", data_config="plain", data_revision="abc123")
    assert calls == [("someone/reviews", "plain", "abc123")]
    assert ds.name == "someone/reviews:plain" and ds.label_names == ["neg", "pos"]
    assert ds.origin == {**ds.origin, "kind": "hub", "id": "someone/reviews", "config": "plain", "revision": "abc123"}
    assert len(ds.splits["train"]) == 40


def test_unknown_hub_id_offline_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "cache"))
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    with pytest.raises(UserError, match="cannot load the Hugging Face data set 'nobody-xyz/no-such-set'") as err:
        load_dataset("nobody-xyz/no-such-set")
    assert "HF_HUB_OFFLINE is set" in err.value.message and "save_to_disk" in err.value.hint


def test_what_counts_as_a_hub_id(tmp_path, saved):
    assert hf.is_hub_id("stanfordnlp/imdb")
    assert not hf.is_hub_id("imdb") and not hf.is_hub_id("a/b/c") and not hf.is_hub_id(str(saved))
    assert hf.is_saved_dataset(saved) and hf.is_saved_dataset(saved / "train")
    assert not hf.is_saved_dataset(tmp_path)


def test_a_name_with_data_pointing_at_a_saved_directory_or_a_hub_id(monkeypatch, saved):
    ds = load_dataset("my-reviews", data=saved)
    assert ds.name == "my-reviews" and len(ds.splits["test"]) == 12
    assert ds.splits["test"][0].id != load_dataset(str(saved)).splits["test"][0].id  # the name is in the id
    calls = []
    monkeypatch.setattr(datasets, "load_dataset", lambda path, name=None, *, revision=None: calls.append(path)
                        or datasets.load_from_disk(str(saved)))
    assert load_dataset("imdb-hub", data="someone/reviews").name == "imdb-hub" and calls == ["someone/reviews"]


def test_later_stages_find_a_hub_data_set_by_name_in_the_snapshot(monkeypatch, saved, tmp_path):
    from lugpi_cli.data.snapshot import DatasetRequest, resolve_dataset
    from lugpi_store import Store

    calls = []
    monkeypatch.setattr(datasets, "load_dataset", lambda path, name=None, *, revision=None: calls.append(path)
                        or datasets.load_from_disk(str(saved)))
    store = Store(tmp_path / "store", create=True)
    first = resolve_dataset(DatasetRequest("someone/reviews"), store)
    again = resolve_dataset(DatasetRequest("someone/reviews", limit=2), store)  # no Hub call: the snapshot
    assert calls == ["someone/reviews"] and again.fingerprint() != first.fingerprint()
    assert {s.id for s in again.samples()} <= {s.id for s in first.samples()}
    assert again.origin["kind"] == "hub"
    resolve_dataset(DatasetRequest("someone/reviews", data_revision="v2"), store)  # an option: read again
    assert calls == ["someone/reviews", "someone/reviews"]
