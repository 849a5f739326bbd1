"""`lugpi probe` on the prepared workspace's cached features."""

from __future__ import annotations

import json


def test_probe_image_and_text(cli, table, tiny_models):
    out = json.loads(cli("probe", table, "--text-col", "text", "--label-col", "label", "--prompt-col", "prompt",
                         "--encoder", tiny_models["clip"], "--text-encoder", tiny_models["text"], "--k", "3",
                         "--json").stdout)
    assert set(out["results"]) == {f"image ({tiny_models['clip']})", f"text ({tiny_models['text']})"}
    for by_split in out["results"].values():
        assert set(by_split) == {"train", "validation", "test"}
        for r in by_split.values():
            assert 0 <= r["accuracy"] <= 1 and set(r["per_class"]) == {"neg", "pos"}
    again = json.loads(cli("probe", table, "--text-col", "text", "--label-col", "label", "--prompt-col", "prompt",
                           "--no-image", "--text-encoder", tiny_models["text"], "--k", "3", "--json").stdout)
    assert list(again["results"]) == [f"text ({tiny_models['text']})"]  # cached text vectors, same answer
    assert again["results"][f"text ({tiny_models['text']})"] == out["results"][f"text ({tiny_models['text']})"]


def test_probe_without_features(cli, table):
    err = cli("probe", table, "--text-col", "text", "--label-col", "label", "--encoder", "vit", code=1).stderr
    assert "lugpi embed" in err


def test_probe_notes_a_k_as_large_as_a_class(cli, table, tiny_models):
    args = ("probe", table, "--text-col", "text", "--label-col", "label", "--prompt-col", "prompt",
            "--encoder", tiny_models["clip"])
    assert "Note: k=500" in cli(*args, "--k", "500").stdout
    assert "Note:" not in cli(*args, "--k", "1").stdout

