"""A table file's data set is found by its name alone once a stage has read the file (issue 12)."""

from __future__ import annotations

import json

import pytest

from lugpi_cli.data.snapshot import DatasetRequest, resolve_dataset
from lugpi_cli.errors import UserError
from lugpi_store import Store

COLUMNS = ["--text-col", "review", "--label-col", "stars"]


@pytest.fixture
def reviews(tmp_path, monkeypatch):
    """``reviews.csv`` in the current directory, as a user has it."""
    rows = ["review,stars"] + [f"review {i}: the {('soup', 'bread', 'tea')[i % 3]} was "
                               f"{('awful', 'fine')[i % 2]},{1 + 4 * (i % 2)}" for i in range(30)]
    (tmp_path / "reviews.csv").write_text("\n".join(rows) + "\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path / "reviews.csv"


@pytest.mark.slow
def test_later_stages_take_the_name_alone(cli, workspace, reviews, tiny_models):
    text = ["--text-model", tiny_models["text"], "--max-length", "32", "--epochs", "1", "--batch-size", "8"]
    gen = json.loads(cli("generate", "reviews.csv", *COLUMNS, "--model", tiny_models["sd"], "--steps", "2",
                         "--size", "32", "--json").stdout)
    assert gen["generated"] == 30
    reviews.unlink()  # from now on only the snapshot in the store can answer to the name
    emb = json.loads(cli("embed", "reviews", "--encoder", tiny_models["clip"], "--json").stdout)
    assert emb["embedded"] == 30
    teacher = json.loads(cli("train-teacher", "reviews", "--encoder", tiny_models["clip"], *text, "--hidden", "32",
                             "--json").stdout)
    assert teacher["status"] == "trained" and teacher["run"].startswith("teacher-reviews-")
    config = json.loads((workspace / "runs" / teacher["run"] / "config.json").read_text())
    assert config["dataset"]["name"] == "reviews" and config["labels"] == ["1", "5"]
    shown = json.loads(cli("data", "show", "Reviews", "--json").stdout)  # names are matched case-blind
    assert shown["fingerprint"] == config["dataset"]["fingerprint"]


def test_a_name_without_a_snapshot_says_what_to_do(cli, workspace, reviews):
    err = cli("embed", "reviews", "--encoder", "openai/clip-vit-base-patch32", code=1).stderr
    assert "unknown data set 'reviews'" in err and "no store yet" in err
    assert "lugpi generate reviews.csv --text-col TEXT --label-col LABEL" in err and "Traceback" not in err
    assert not (workspace / "store").exists()  # nothing created by the failed command
    store = Store(workspace / "store", create=True)
    resolve_dataset(DatasetRequest("reviews.csv", text_col="review", label_col="stars"), store)
    store.flush()
    with pytest.raises(UserError, match="holds no snapshot of that name") as exc:
        resolve_dataset(DatasetRequest("films"), store)
    assert "Names this workspace knows: reviews." in exc.value.hint and "films.csv" in exc.value.hint
    assert resolve_dataset(DatasetRequest("reviews"), store).fingerprint() == resolve_dataset(
        DatasetRequest("reviews.csv", text_col="review", label_col="stars"), store).fingerprint()
