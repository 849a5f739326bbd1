"""A `datasets` DatasetDict saved to disk, through `data show`, `generate`, `embed` and `train-teacher`."""

from __future__ import annotations

import json

import pytest

datasets = pytest.importorskip("datasets")


@pytest.fixture
def saved(tmp_path):
    labels = datasets.ClassLabel(names=["neg", "pos"])
    features = datasets.Features({"sentence": datasets.Value("string"), "label": labels,
                                  "idx": datasets.Value("int32")})

    def part(n, offset):
        return datasets.Dataset.from_dict({
            "sentence": [f"the film {i + offset} was {('bad', 'good')[i % 2]}" for i in range(n)],
            "label": [i % 2 for i in range(n)], "idx": [i + offset for i in range(n)]}, features=features)

    path = tmp_path / "films-hf"
    datasets.DatasetDict({"train": part(16, 0), "validation": part(4, 100), "test": part(4, 200)}).save_to_disk(
        str(path))
    return path


def test_data_show_reads_the_saved_dataset_dict(cli, saved):
    out = json.loads(cli("data", "show", saved, "--text-col", "sentence", "--id-col", "idx", "--json").stdout)
    assert out["labels"] == ["neg", "pos"] and out["name"] == "films-hf"
    assert {k: v["samples"] for k, v in out["splits"].items()} == {"train": 16, "validation": 4, "test": 4}
    assert out["origin"]["kind"] == "save_to_disk" and set(out["origin"]["fingerprints"]) == {
        "train", "validation", "test"}
    again = json.loads(cli("data", "show", saved, "--text-col", "sentence", "--id-col", "idx", "--json").stdout)
    assert again["fingerprint"] == out["fingerprint"]
    limited = json.loads(cli("data", "show", saved, "--text-col", "sentence", "--limit", "2", "--json").stdout)
    assert {v["samples"] for v in limited["splits"].values()} == {2}


def test_bad_column_and_unknown_hub_id_exit_1(cli, saved, monkeypatch):
    err = cli("data", "show", saved, code=1).stderr
    assert "no column 'text'" in err and "--text-col" in err and "'sentence'" in err and "Traceback" not in err
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    err = cli("data", "show", "nobody-xyz/made-up-set", code=1).stderr
    assert "cannot load the Hugging Face data set 'nobody-xyz/made-up-set'" in err and "Traceback" not in err


@pytest.mark.slow
def test_generate_embed_and_a_teacher_through_it(cli, saved, tiny_models, workspace):
    columns = ["--text-col", "sentence", "--id-col", "idx"]
    first = json.loads(cli("generate", saved, *columns, "--model", tiny_models["sd"], "--steps", "2", "--size", "32",
                           "--batch-size", "8", "--json").stdout)
    assert first["samples"] == 24 and first["generated"] == 24 and first["failed"] == 0
    again = json.loads(cli("generate", saved, *columns, "--model", tiny_models["sd"], "--steps", "2", "--size", "32",
                           "--json").stdout)
    assert (again["generated"], again["reused"]) == (0, 24)
    assert again["dataset_fingerprint"] == first["dataset_fingerprint"]
    embedded = json.loads(cli("embed", saved, *columns, "--encoder", tiny_models["clip"], "--json").stdout)
    assert embedded["samples"] == 24
    teacher = json.loads(cli("train-teacher", saved, *columns, "--encoder", tiny_models["clip"], "--text-model",
                             tiny_models["text"], "--max-length", "16", "--epochs", "1", "--batch-size", "8",
                             "--hidden", "16", "--json").stdout)
    config = json.loads((workspace / "runs" / teacher["run"] / "config.json").read_text())
    assert config["dataset"]["name"] == "films-hf" and config["dataset"]["fingerprint"] == first["dataset_fingerprint"]
    assert config["dataset"]["origin"]["kind"] == "save_to_disk"
    assert set(teacher["metrics"]) >= {"validation", "test"}


def test_a_recipe_names_the_saved_directory(cli, saved, tiny_models, workspace):
    recipe = saved.parent / "films.toml"
    recipe.write_text(f'[dataset]\nname = "films-hf"\ntext_col = "sentence"\nid_col = "idx"\n'
                      f'[generate]\nmodel = "{tiny_models["sd"]}"\nsteps = 2\nsize = "32"\n')
    plan = json.loads(cli("run", recipe, "--dry-run", "--json").stdout)["plan"]
    assert plan[0]["status"].startswith("0 of 24 images cached")
    recipe.write_text(recipe.read_text().replace('id_col = "idx"', 'id_col = "idx"\ndata_revision = "v2"'))
    err = cli("run", recipe, "--dry-run", code=1).stderr
    assert "--data-revision applies to Hugging Face Hub data sets" in err


def test_a_name_with_data_and_data_show_stores_no_snapshot(cli, saved):
    first = json.loads(cli("data", "show", "films", "--data", saved, "--text-col", "sentence", "--json").stdout)
    assert first["name"] == "films"
    err = cli("data", "show", "films", code=1).stderr  # data show never snapshots: the name alone is unknown
    assert "unknown data set 'films'" in err
