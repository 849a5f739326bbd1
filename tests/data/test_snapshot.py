"""Data set snapshots in the workspace store, `--limit`, and `lugpi data show`."""

from __future__ import annotations

import json

import pytest

from lugpi_cli.data import dataset_summary, load_dataset
from lugpi_cli.data.snapshot import DatasetRequest, latest_snapshot, limit_dataset, resolve_dataset
from lugpi_cli.errors import UserError
from lugpi_store import Store

from .builders import imdb_files, write_tar


@pytest.fixture
def tiny_imdb(tmp_path):
    return write_tar(tmp_path / "aclImdb_v1.tar.gz", imdb_files(per_class=20))


def test_snapshot_round_trip_and_reuse_without_data(tmp_path, tiny_imdb):
    store = Store(tmp_path / "store", create=True)
    first = resolve_dataset(DatasetRequest("imdb", data=tiny_imdb), store)
    tiny_imdb.unlink()  # the files are gone: the snapshot must serve
    again = resolve_dataset(DatasetRequest("imdb"), store)
    assert again.fingerprint() == first.fingerprint()
    assert again.splits == first.splits and again.label_names == first.label_names
    assert latest_snapshot(store, "IMDB").fingerprint() == first.fingerprint()
    # the stored fingerprint is the real one (recomputed from the samples)
    again._fingerprint = None
    assert again.fingerprint() == first.fingerprint()


def test_limit_is_a_stratified_subset_of_the_full_data_set(tmp_path, tiny_imdb):
    full = load_dataset("imdb", data=tiny_imdb)
    small = limit_dataset(full, 4)  # validation holds exactly 4 (10% of 40)
    for split, samples in small.splits.items():
        assert len(samples) == 4
        assert {s.id for s in samples} <= {s.id for s in full.splits[split]}
        assert sorted(s.label for s in samples) == [0, 0, 1, 1]
    assert small.fingerprint() != full.fingerprint()
    assert limit_dataset(full, 4).fingerprint() == small.fingerprint()
    assert limit_dataset(full, 3).splits["train"] != small.splits["train"]
    with pytest.raises(UserError, match="--limit"):
        limit_dataset(full, 0)


def test_data_show_json_and_human(cli, tiny_imdb):
    out = json.loads(cli("data", "show", "imdb", "--data", tiny_imdb, "--json").stdout)
    expected = dataset_summary(load_dataset("imdb", data=tiny_imdb))
    assert out["splits"] == expected["splits"]
    assert out["splits"]["train"]["samples"] + out["splits"]["validation"]["samples"] == 40
    assert out["splits"]["validation"]["labels"] == {"neg": 2, "pos": 2}
    human = cli("data", "show", "imdb", "--data", tiny_imdb, "-n", "1").stdout
    assert "distinct prompts" in human and "<br" not in human


def test_data_show_does_not_create_a_workspace(cli, workspace, tiny_imdb):
    cli("data", "show", "imdb", "--data", tiny_imdb)
    assert not workspace.exists()


def test_data_show_errors(cli, tmp_path):
    err = cli("data", "show", "imdb", "--data", tmp_path, code=1).stderr
    assert "aclImdb_v1.tar.gz" in err and "--data" in err and "Traceback" not in err
    bad = tmp_path / "t.csv"
    bad.write_text("review,stars\nnice,5\n")
    err = cli("data", "show", bad, "--text-col", "text", "--label-col", "stars", code=1).stderr
    assert "text" in err and "review" in err
    assert "--limit" in cli("data", "show", "imdb", "--limit", "0", code=1).stderr


def test_data_download_refuses_what_it_cannot_fetch(cli):
    result = cli("data", "download", "cwi-news", code=1)
    assert "cannot be downloaded automatically" in result.stderr and "by hand" in result.stderr


def test_snapshots_of_one_data_set_from_two_places_merge(tmp_path, tiny_imdb):
    import shutil

    from lugpi_store import maintenance

    elsewhere = tmp_path / "other" / "aclImdb_v1.tar.gz"
    elsewhere.parent.mkdir()
    shutil.copy(tiny_imdb, elsewhere)
    a = Store(tmp_path / "a", create=True)
    b = Store(tmp_path / "b", create=True)
    resolve_dataset(DatasetRequest("imdb", data=tiny_imdb), a)
    resolve_dataset(DatasetRequest("imdb", data=elsewhere), b)
    maintenance.merge(a, [tmp_path / "b"])  # the same content, read from another path: no conflict
    assert latest_snapshot(a, "imdb").source == str(tiny_imdb)
