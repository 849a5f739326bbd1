"""`lugpi embed`: frozen features per distinct image, checked against a direct forward pass."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from lugpi_cli.encoders import EncoderConfig, embed_images, feature_keys, load_encoder
from lugpi_store import Store, close_all

FAST = ["--steps", "2", "--size", "32", "--format", "png"]
TABLE = ["--text-col", "text", "--label-col", "label", "--prompt-col", "prompt"]


@pytest.fixture
def generated(cli, tiny_models, tiny_csv, workspace):
    out = json.loads(cli("generate", tiny_csv, *TABLE, "--model", tiny_models["sd"], *FAST, "--json").stdout)
    return out


def _store(workspace) -> Store:
    return Store(workspace / "store")


def _direct(model_dir, image):
    """An independent forward pass: the model and processor as transformers gives them."""
    from transformers import AutoImageProcessor, AutoModel

    model = AutoModel.from_pretrained(model_dir).eval()
    pixels = AutoImageProcessor.from_pretrained(model_dir)(images=[image], return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        return model, model(pixel_values=pixels)


@pytest.mark.parametrize("name", ["clip", "vit"])
def test_features_match_a_direct_forward(cli, tiny_models, tiny_csv, workspace, generated, name):
    out = json.loads(cli("embed", tiny_csv, *TABLE, "--encoder", tiny_models[name], "--json").stdout)
    assert (out["images"], out["embedded"], out["reused"], out["missing_images"]) == (8, 8, 0, 0)
    store = _store(workspace)
    image_key = store.keys("images")[0]
    record = store.get("features", feature_keys([image_key], out["encoder_fingerprint"])[image_key])
    assert record["tokens"].dtype == np.float16 and record["pooled"].dtype == np.float16
    model, direct = _direct(tiny_models[name], store.get("images", image_key).to_pil().convert("RGB"))
    hidden = direct.last_hidden_state[0].numpy()
    assert record["tokens"].shape == hidden.shape == (17, out["pooled_dim"])
    np.testing.assert_allclose(record["tokens"], hidden, atol=2e-3, rtol=2e-3)
    if name == "clip":  # CLIP: the pooled vector is the post-layernormed CLS token
        with torch.no_grad():
            expected = model.post_layernorm(direct.last_hidden_state[:, 0])[0].numpy()
    else:  # ViT: the CLS token itself (its tanh pooler is not a trained image embedding)
        expected = hidden[0]
    np.testing.assert_allclose(record["pooled"], expected, atol=2e-3, rtol=2e-3)


def test_rerun_embeds_nothing_and_pooled_only_is_separate(cli, tiny_models, tiny_csv, workspace, generated):
    args = ["embed", tiny_csv, *TABLE, "--encoder", tiny_models["clip"], "--json"]
    first = json.loads(cli(*args).stdout)
    again = json.loads(cli(*args).stdout)
    assert (again["embedded"], again["reused"]) == (0, 8)
    pooled = json.loads(cli(*args, "--pooled-only").stdout)
    assert pooled["embedded"] == 8 and pooled["encoder_fingerprint"] != first["encoder_fingerprint"]
    assert pooled["tokens_shape"] is None
    store = _store(workspace)
    key = store.keys("images")[0]
    assert set(store.get("features", feature_keys([key], pooled["encoder_fingerprint"])[key])) == {"pooled"}
    assert store.count("features") == 16


def test_resume_embeds_only_the_rest(tmp_path, tiny_models, cli, tiny_csv, workspace, generated):
    close_all()
    store = _store(workspace)
    keys = store.keys("images")
    config = EncoderConfig(str(tiny_models["vit"]))
    factory_calls = []

    def factory():
        factory_calls.append(1)
        return load_encoder(config, torch.device("cpu"), torch.float32)

    first = embed_images(store, keys[:3], config, factory, batch_size=2)  # "interrupted" after three images
    second = embed_images(store, keys, config, factory, batch_size=2)
    assert (first.embedded, second.embedded, second.reused) == (3, 5, 3)
    third = embed_images(store, keys, config, factory)
    assert third.embedded == 0 and len(factory_calls) == 2  # nothing to do: the encoder is not loaded
    # the first wanted image missing: the shapes still come from a stored feature (not "pooled only")
    absent = keys[0][:17] + b"0" * 32
    partial = embed_images(store, [absent, *keys[:2]], config, factory)
    assert partial.missing_images == 1 and partial.tokens_shape is not None and partial.pooled_dim > 0


def test_embed_before_generate_and_missing_images(cli, tiny_models, tiny_csv, workspace):
    err = cli("embed", tiny_csv, *TABLE, "--encoder", tiny_models["clip"], code=1).stderr
    assert "no images have been generated" in err and "lugpi generate" in err
    cli("generate", tiny_csv, *TABLE, "--model", tiny_models["sd"], *FAST, "--splits", "test", "--limit", "1")
    result = cli("embed", tiny_csv, *TABLE, "--encoder", tiny_models["clip"], code=1)  # 7 of 8 images missing
    assert "7 image(s)" in result.stderr and "lugpi generate" in result.stderr
    assert _store(workspace).count("features") == 1  # what could be embedded is kept
    cli("embed", tiny_csv, *TABLE, "--encoder", tiny_models["clip"], "--splits", "test", "--limit", "1")


def test_unknown_encoder_directory(cli, tiny_csv, generated, tmp_path):
    err = cli("embed", tiny_csv, *TABLE, "--encoder", tmp_path / "nope" / "enc", code=1).stderr
    assert "no such directory" in err


def test_processes_of_a_launch_split_the_images(tiny_models, workspace, generated):
    """``shard=(rank, world size)``: disjoint parts by image-key hash that together cover every image."""
    close_all()
    store = _store(workspace)
    keys = store.keys("images")
    config = EncoderConfig(str(tiny_models["clip"]))
    factory = lambda: load_encoder(config, torch.device("cpu"), torch.float32)  # noqa: E731
    parts = [embed_images(store, keys, config, factory, shard=(rank, 2)) for rank in range(2)]
    assert parts[0].embedded > 0 and parts[1].embedded > 0
    assert [p.embedded + p.other_shards for p in parts] == [8, 8]
    assert parts[0].embedded + parts[1].embedded == store.count("features") == 8
    again = embed_images(store, keys, config, factory)
    assert (again.embedded, again.reused, again.other_shards) == (0, 8, 0)
