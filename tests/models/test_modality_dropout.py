"""The fusion teacher's modality dropout (MSD): whole-batch drops, per-sample drops, no leaks, save/load."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file, save_file

from lugpi_cli.errors import UserError
from lugpi_cli.models import FusionTeacher, build_teacher, load_model, read_model_config

from .builders import LABELS, TEXTS, make_batch
from .test_learning import BATCH, synthetic

B = len(TEXTS)
TEXT_KEYS = ("input_ids", "attention_mask", "token_type_ids")


def teacher(text_model, p=0.0, **kw):
    kw = {"hidden": 24, "ffn_dim": 40, "num_heads": 8, "dropout": 0.0, **kw}
    torch.manual_seed(0)
    model = FusionTeacher.from_pretrained(text_model, 16, 3, labels=LABELS, modality_dropout=p, **kw)
    with torch.no_grad():  # non-zero placeholders, as after training, so that they matter in the tests
        model.text_placeholder.normal_()
        model.image_placeholder.normal_()
    return model


def forced(model, drop_text, drop_image):
    """Make the per-sample draw return these rows (B,) bool."""
    model._draw_drops = lambda bsz, device: (torch.tensor(drop_text), torch.tensor(drop_image))


def deterministic_train(model):
    """Train mode (per-sample dropout active) with no other randomness: fusion dropout 0, text encoder in eval."""
    model.train()
    model.text_encoder.eval()
    return model


def test_default_is_the_plain_teacher(tiny_distilbert, distil_tok):
    model = teacher(tiny_distilbert).train()
    assert model.modality_dropout == 0.0 and model.model_config["modality_dropout"] == 0.0
    model._draw_drops = None  # p = 0 never draws: calling it would fail
    batch = make_batch(distil_tok)
    model(batch)
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(batch).logits, model(batch, drop="none").logits, rtol=0, atol=0)
    assert type(build_teacher("both", num_labels=3, text_model=tiny_distilbert, image_dim=16, hidden=24,
                              ffn_dim=40, modality_dropout=0.4)).__name__ == "FusionTeacher"  # fmt: skip
    assert build_teacher("both", num_labels=3, text_model=tiny_distilbert, image_dim=16, hidden=24, ffn_dim=40,
                         modality_dropout=0.4).modality_dropout == 0.4  # fmt: skip


def test_drop_text_sees_no_text(tiny_distilbert, distil_tok):
    model = teacher(tiny_distilbert, 0.5).eval()
    batch = make_batch(distil_tok)
    other = dict(batch, input_ids=torch.randint(5, 60, batch["input_ids"].shape))
    image_only = {"image_tokens": batch["image_tokens"]}  # no text keys at all
    with torch.no_grad():
        a = model(batch, drop="text")
        torch.testing.assert_close(model(other, drop="text").logits, a.logits, rtol=0, atol=0)
        torch.testing.assert_close(model(image_only, drop="text").logits, a.logits, rtol=0, atol=0)
        assert not torch.allclose(model(batch).logits, a.logits, atol=1e-4)
        moved = dict(batch, image_tokens=batch["image_tokens"] + 1)
        assert not torch.allclose(model(moved, drop="text").logits, a.logits, atol=1e-4)  # but it sees the image


def test_drop_image_sees_no_image(tiny_distilbert, distil_tok):
    model = teacher(tiny_distilbert, 0.5).eval()
    batch = make_batch(distil_tok)
    text_only = {k: v for k, v in batch.items() if k != "image_tokens"}
    with torch.no_grad():
        a = model(batch, drop="image")
        torch.testing.assert_close(model(text_only, drop="image").logits, a.logits, rtol=0, atol=0)
        moved = dict(batch, image_tokens=batch["image_tokens"] * 3 + 1)
        torch.testing.assert_close(model(moved, drop="image").logits, a.logits, rtol=0, atol=0)
        assert not torch.allclose(model(batch).logits, a.logits, atol=1e-4)


def test_per_sample_drops_match_whole_batch_drops(tiny_distilbert, distil_tok):
    """Masked per-sample dropping in training == the whole-batch drop of eval, row by row; masked tokens don't leak."""
    model = deterministic_train(teacher(tiny_distilbert, 0.5))
    batch = make_batch(distil_tok)
    forced(model, [True, False, False, False], [False, True, False, False])
    with torch.no_grad():
        mixed = model(batch).logits
        model.eval()
        expected = torch.stack([
            model(batch, drop="text").logits[0], model(batch, drop="image").logits[1],
            model(batch, drop="none").logits[2], model(batch, drop="none").logits[3],
        ])  # fmt: skip
        torch.testing.assert_close(mixed, expected, atol=1e-5, rtol=1e-4)

        deterministic_train(model)
        forced(model, [True] * B, [False] * B)
        all_text = model(batch).logits
        other_text = dict(batch, input_ids=torch.randint(5, 60, batch["input_ids"].shape))
        torch.testing.assert_close(model(other_text).logits, all_text, rtol=0, atol=0)  # masked text is not read
        forced(model, [False] * B, [True] * B)
        all_image = model(batch).logits
        other_image = dict(batch, image_tokens=torch.randn(batch["image_tokens"].shape).half())
        torch.testing.assert_close(model(other_image).logits, all_image, rtol=0, atol=0)


def test_explicit_drop_overrides_the_random_draw_in_training(tiny_distilbert, distil_tok):
    model = deterministic_train(teacher(tiny_distilbert, 1.0))
    model._draw_drops = None
    batch = make_batch(distil_tok)
    with torch.no_grad():
        train = [model(batch, drop=d).logits for d in ("none", "image", "text")]
        model.eval()
        for d, logits in zip(("none", "image", "text"), train):
            torch.testing.assert_close(model(batch, drop=d).logits, logits, atol=1e-5, rtol=1e-4)


def test_draw_rates_and_placeholder_gradients(tiny_distilbert, distil_tok):
    model = teacher(tiny_distilbert, 0.5)
    torch.manual_seed(0)
    drop_text, drop_image = model._draw_drops(40_000, torch.device("cpu"))
    assert not (drop_text & drop_image).any()
    assert drop_text.float().mean().item() == pytest.approx(0.25, abs=0.01)
    assert drop_image.float().mean().item() == pytest.approx(0.25, abs=0.01)

    model = teacher(tiny_distilbert, 1.0).train()  # every sample loses one modality
    model(make_batch(distil_tok)).logits.sum().backward()
    assert model.text_placeholder.grad is not None or model.image_placeholder.grad is not None
    grads = [p.grad.abs().sum().item() for p in (model.text_placeholder, model.image_placeholder) if p.grad is not None]
    assert max(grads) > 0


def test_bad_drop_and_rate_are_user_errors(tiny_distilbert, distil_tok):
    model = teacher(tiny_distilbert)
    with pytest.raises(UserError, match="drop 'both'"):
        model(make_batch(distil_tok), drop="both")
    with pytest.raises(UserError, match=r"modality_dropout must be in \[0, 1\]"):
        FusionTeacher.from_pretrained(tiny_distilbert, 16, 3, modality_dropout=1.5)


def test_save_load_keeps_rate_and_placeholders(tiny_distilbert, distil_tok, tmp_path):
    model = teacher(tiny_distilbert, 0.3).eval()
    model.save(tmp_path / "t")
    assert read_model_config(tmp_path / "t")["modality_dropout"] == 0.3
    loaded = load_model(tmp_path / "t")
    assert loaded.modality_dropout == 0.3 and loaded.model_config == model.model_config
    batch = make_batch(distil_tok)
    with torch.no_grad():
        for drop in (None, "image", "text"):
            torch.testing.assert_close(loaded(batch, drop=drop).logits, model(batch, drop=drop).logits, rtol=0, atol=0)


def test_loads_a_teacher_saved_before_modality_dropout(tiny_distilbert, distil_tok, tmp_path):
    import json

    model = teacher(tiny_distilbert).eval()
    d = model.save(tmp_path / "old")
    state = {k: v for k, v in load_file(str(d / "model.safetensors")).items() if "placeholder" not in k}
    save_file(state, str(d / "model.safetensors"))
    cfg = json.loads((d / "lugpi_model.json").read_text())
    del cfg["modality_dropout"]
    (d / "lugpi_model.json").write_text(json.dumps(cfg))
    loaded = load_model(d)
    assert loaded.modality_dropout == 0.0 and torch.all(loaded.text_placeholder == 0)
    batch = make_batch(distil_tok)
    with torch.no_grad():
        torch.testing.assert_close(loaded(batch).logits, model(batch).logits, rtol=0, atol=0)


def test_trained_with_dropout_the_image_only_prediction_works(tiny_distilbert, distil_tok, one_thread):
    """The label depends on the image only: t(x) and t(x^v) (text dropped) learn it, t(x^t) (image dropped) cannot."""
    train, y_train = synthetic(distil_tok, 512, seed=0)
    test, y_test = synthetic(distil_tok, 400, seed=1)
    torch.manual_seed(0)
    model = FusionTeacher.from_pretrained(tiny_distilbert, 16, 2, hidden=32, ffn_dim=64, dropout=0.0,
                                          modality_dropout=0.5)  # fmt: skip
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(80):
        idx = torch.randint(0, 512, (BATCH,))
        loss = torch.nn.functional.cross_entropy(model({k: v[idx] for k, v in train.items()}).logits, y_train[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        acc = {d: (model(test, drop=d).logits.argmax(-1) == y_test).float().mean().item()
               for d in ("none", "text", "image")}  # fmt: skip
    assert acc["none"] > 0.85 and acc["text"] > 0.85, acc
    assert acc["image"] < 0.65, acc
