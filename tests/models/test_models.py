"""Shapes, the fusion block's use of the image, embeddings, init, save/load, pipeline."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from lugpi_cli.errors import UserError
from lugpi_cli.models import (
    FusionTeacher,
    ImageClassifier,
    ModelOutput,
    TextClassifier,
    build_teacher,
    load_model,
    read_model_config,
    xavier_init_,
)

from .builders import LABELS, TEXTS, make_batch

B = len(TEXTS)


def small_teacher(text_model, image_dim=16, **kw):
    kw = {"hidden": 24, "ffn_dim": 40, "num_heads": 8, **kw}
    torch.manual_seed(0)
    return FusionTeacher.from_pretrained(text_model, image_dim, 3, labels=LABELS, **kw)


# -- shapes -------------------------------------------------------------------------


def test_fusion_shapes_distilbert_projects_image(tiny_distilbert, distil_tok):
    model = small_teacher(tiny_distilbert, image_dim=16).eval()
    assert isinstance(model.image_proj, nn.Linear) and model.image_proj.in_features == 16
    assert model.image_proj.out_features == 32 == model.text_width
    out = model(make_batch(distil_tok, image_dim=16))
    assert isinstance(out, ModelOutput)
    assert out.logits.shape == (B, 3) and out.embedding.shape == (B, 24)
    assert out.logits.dtype == torch.float32
    assert (out.embedding >= 0).all()  # ReLU embedding
    assert model.embedding_dim == 24 and model.modality == "both"


def test_fusion_shapes_bert_identity_projection_and_token_types(tiny_bert, bert_tok):
    model = small_teacher(tiny_bert, image_dim=48, hidden=20).eval()
    assert isinstance(model.image_proj, nn.Identity)
    batch = make_batch(bert_tok, image_dim=48)
    assert "token_type_ids" in batch
    out = model(batch)
    assert out.logits.shape == (B, 3) and out.embedding.shape == (B, 20)


def test_token_type_ids_reach_bert_and_are_dropped_for_distilbert(tiny_distilbert, distil_tok, tiny_bert, bert_tok):
    distil = TextClassifier.from_pretrained(tiny_distilbert, 3).eval()
    batch = make_batch(distil_tok)
    with torch.no_grad():
        plain = distil(batch).logits
        extra = distil(dict(batch, token_type_ids=torch.ones_like(batch["input_ids"]), sample_id=["x"] * B)).logits
    torch.testing.assert_close(plain, extra, rtol=0, atol=0)

    bert = small_teacher(tiny_bert, image_dim=48).eval()
    batch = make_batch(bert_tok, image_dim=48)
    with torch.no_grad():
        a = bert(batch).logits
        b = bert(dict(batch, token_type_ids=torch.ones_like(batch["token_type_ids"]))).logits
    assert not torch.allclose(a, b, atol=1e-5)


def test_fusion_accepts_pooled_image_vector(tiny_distilbert, distil_tok):
    model = small_teacher(tiny_distilbert).eval()
    batch = make_batch(distil_tok)
    batch["image_tokens"] = batch["image_tokens"][:, 0]  # (B, D)
    assert model(batch).logits.shape == (B, 3)


def test_image_classifier_shapes_tokens_or_pooled():
    model = ImageClassifier(16, 3, hidden=24).eval()
    tokens = torch.randn(B, 5, 16).half()
    out = model({"image_tokens": tokens})
    assert out.logits.shape == (B, 3) and out.embedding.shape == (B, 24)
    pooled = model({"image_tokens": tokens[:, 0]})
    torch.testing.assert_close(out.logits, pooled.logits)
    manual = torch.relu(model.proj(tokens[:, 0].float()))
    torch.testing.assert_close(out.embedding, manual)
    torch.testing.assert_close(out.logits, model.classifier(manual))


def test_text_classifier_shapes(tiny_distilbert, distil_tok):
    model = TextClassifier.from_pretrained(tiny_distilbert, labels=LABELS).eval()
    out = model(make_batch(distil_tok))  # image tokens are ignored
    assert out.logits.shape == (B, 3) and out.embedding.shape == (B, 32)
    assert model.embedding_dim == 32 and model.num_labels == 3
    assert model.id2label == dict(enumerate(LABELS))


def test_build_teacher_dispatches_on_modality(tiny_distilbert):
    kw = {"num_labels": 3, "text_model": tiny_distilbert, "image_dim": 16, "hidden": 24, "ffn_dim": 40}
    assert type(build_teacher("both", **kw)) is FusionTeacher
    assert type(build_teacher("text", **kw)) is TextClassifier
    assert type(build_teacher("image", **kw)) is ImageClassifier
    with pytest.raises(UserError, match="modality 'audio'") as e:
        build_teacher("audio", **kw)
    assert "both, text, image" in e.value.hint
    with pytest.raises(UserError, match="needs a text model"):
        build_teacher("both", num_labels=3, image_dim=16)
    with pytest.raises(UserError, match="image feature width"):
        build_teacher("image", num_labels=3)


def test_bad_init_heads_and_missing_model_are_user_errors(tiny_distilbert, tmp_path):
    with pytest.raises(UserError, match="init 'kaiming'"):
        FusionTeacher.from_pretrained(tiny_distilbert, 16, 3, init="kaiming")
    with pytest.raises(UserError, match="not divisible by num_heads=5"):
        FusionTeacher.from_pretrained(tiny_distilbert, 16, 3, num_heads=5)
    missing = tmp_path / "no-such-model"
    with pytest.raises(UserError, match="no-such-model"):
        TextClassifier.from_pretrained(str(missing), 3)


# -- the fusion block uses the image ------------------------------------------------------


def test_fusion_logits_depend_on_image_and_respect_mask(tiny_distilbert, distil_tok):
    model = small_teacher(tiny_distilbert).eval()
    batch = make_batch(distil_tok)
    with torch.no_grad():
        base = model(batch).logits

        other = dict(batch, image_tokens=batch["image_tokens"] + 1)
        assert not torch.allclose(model(other).logits, base, atol=1e-4)

        # mask the last two patches: changing them no longer matters
        mask = torch.ones(B, 5, dtype=torch.bool)
        mask[:, 3:] = False
        masked = model(dict(batch, image_mask=mask)).logits
        assert not torch.allclose(masked, base, atol=1e-5)  # masking removed information
        changed = batch["image_tokens"].clone()
        changed[:, 3:] = 9
        torch.testing.assert_close(model(dict(batch, image_tokens=changed, image_mask=mask)).logits, masked)
        # an int mask means the same
        torch.testing.assert_close(model(dict(batch, image_mask=mask.long())).logits, masked)
        # ...but changing an unmasked patch does
        changed[:, 1] = 9
        assert not torch.allclose(model(dict(batch, image_tokens=changed, image_mask=mask)).logits, masked, atol=1e-4)


def test_fusion_ignores_text_padding(tiny_distilbert, distil_tok):
    """A sample's output does not depend on how much padding the batch adds."""
    model = small_teacher(tiny_distilbert).eval()
    batch = make_batch(distil_tok)
    alone = {k: v[1:2] for k, v in make_batch(distil_tok).items()}
    short = distil_tok([TEXTS[1]], return_tensors="pt")
    alone.update(short)
    with torch.no_grad():
        torch.testing.assert_close(model(alone).logits[0], model(batch).logits[1], atol=1e-5, rtol=1e-4)


def test_fusion_gradients_reach_text_encoder_and_image_projection(tiny_distilbert, distil_tok):
    model = small_teacher(tiny_distilbert).train()
    out = model(make_batch(distil_tok))
    out.logits.sum().backward()
    assert model.image_proj.weight.grad.abs().sum() > 0
    assert model.text_encoder.embeddings.word_embeddings.weight.grad.abs().sum() > 0


def test_fusion_rejects_wrong_image_width(tiny_distilbert, distil_tok):
    model = small_teacher(tiny_distilbert)
    with pytest.raises(ValueError, match="D=16"):
        model(make_batch(distil_tok, image_dim=8))


# -- the text classifier's embedding ---------------------------------------------------------


def test_text_embedding_is_classifier_input_distilbert(tiny_distilbert, distil_tok):
    model = TextClassifier.from_pretrained(tiny_distilbert, labels=LABELS).eval()
    batch = make_batch(distil_tok)
    with torch.no_grad():
        out = model(batch)
        hf = model.model
        h = hf.distilbert(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        manual = torch.relu(hf.pre_classifier(h[:, 0]))
    assert model.head_name == "classifier"
    torch.testing.assert_close(out.embedding, manual)
    torch.testing.assert_close(hf.classifier(out.embedding), out.logits)


def test_text_embedding_is_pooler_output_bert(tiny_bert, bert_tok):
    model = TextClassifier.from_pretrained(tiny_bert, 2).eval()
    batch = make_batch(bert_tok)
    with torch.no_grad():
        out = model(batch)
        pooled = model.model.bert(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], token_type_ids=batch["token_type_ids"]
        ).pooler_output
    assert out.embedding.shape == (B, 48)
    torch.testing.assert_close(out.embedding, pooled)


def test_text_embedding_carries_gradient(tiny_distilbert, distil_tok):
    model = TextClassifier.from_pretrained(tiny_distilbert, 3).train()
    out = model(make_batch(distil_tok))
    assert out.embedding.requires_grad
    out.embedding.pow(2).sum().backward()
    assert model.model.pre_classifier.weight.grad.abs().sum() > 0
    assert not model.model.classifier._forward_pre_hooks  # the hook is removed after each call


@pytest.mark.parametrize("arch", ["distilbert", "bert"])
def test_text_embedding_is_taken_before_the_heads_dropout(arch, tiny_distilbert, distil_tok, tiny_bert, bert_tok):
    """In training e_S is the clean activation the head's dropout reads (what eval mode gives), while the
    logits do see the dropout: the encoder's own dropouts are off here, only the head's is on (p = 0.5)."""
    path, tok = (tiny_distilbert, distil_tok) if arch == "distilbert" else (tiny_bert, bert_tok)
    overrides = (dict(dropout=0.0, attention_dropout=0.0, seq_classif_dropout=0.5) if arch == "distilbert" else
                 dict(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, classifier_dropout=0.5))
    model = TextClassifier.from_pretrained(path, labels=LABELS, **overrides)
    batch = make_batch(tok)
    hf = model.model
    with torch.no_grad():
        clean = model.eval()(batch).embedding
        torch.manual_seed(3)
        out = model.train()(batch)
        if arch == "distilbert":
            h = hf.distilbert(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
            manual = torch.relu(hf.pre_classifier(h[:, 0]))
        else:
            manual = hf.bert(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                             token_type_ids=batch["token_type_ids"]).pooler_output
    torch.testing.assert_close(out.embedding, manual)
    torch.testing.assert_close(out.embedding, clean)
    assert not torch.allclose(hf.classifier(out.embedding), out.logits)  # the head's dropout was active
    assert not any(m._forward_hooks for m in hf.modules() if isinstance(m, torch.nn.Dropout))  # hooks removed


@pytest.mark.parametrize("arch", ["distilbert", "bert"])
def test_text_embedding_after_the_first_forward_hooks_only_the_heads_dropout(arch, tiny_distilbert, distil_tok,
                                                                              tiny_bert, bert_tok, monkeypatch):
    """The first forward finds which dropout feeds the head (hooks on all of them); later forwards hook that one
    and the head only, and give bitwise the same logits and e_S under the same dropout draws."""
    path, tok = (tiny_distilbert, distil_tok) if arch == "distilbert" else (tiny_bert, bert_tok)
    head_dropout = dict(seq_classif_dropout=0.5) if arch == "distilbert" else dict(classifier_dropout=0.5)
    model = TextClassifier.from_pretrained(path, labels=LABELS, **head_dropout).train()  # encoder dropouts on too
    batch = make_batch(tok)
    hooked: list[nn.Module] = []
    register = nn.Module.register_forward_hook

    def counting(module, *args, **kwargs):
        hooked.append(module)
        return register(module, *args, **kwargs)

    monkeypatch.setattr(nn.Module, "register_forward_hook", counting)
    torch.manual_seed(5)
    first = model(batch)
    probed = len(hooked)
    assert model._head_dropout == "dropout"
    assert probed == sum(isinstance(m, nn.Dropout) for m in model.model.modules()) > 1
    torch.manual_seed(5)
    second = model(batch)
    assert hooked[probed:] == [model.model.dropout]
    assert torch.equal(first.logits, second.logits) and torch.equal(first.embedding, second.embedding)
    with torch.no_grad():
        clean = model.eval()(batch).embedding
    model.train()
    if arch == "distilbert":  # with every dropout on, e_S still is the input of the head's dropout
        hf = model.model
        captured = {}
        handle = hf.dropout.register_forward_hook(lambda _m, args, _out: captured.setdefault("x", args[0]))
        try:
            torch.manual_seed(5)
            third = model(batch)
        finally:
            handle.remove()
        torch.testing.assert_close(third.embedding, captured["x"], rtol=0, atol=0)
    assert not torch.allclose(clean, second.embedding)  # the encoder's dropouts were on in training


def test_text_embedding_without_a_head_dropout_hooks_the_head_only(monkeypatch):
    from transformers import GPT2Config, GPT2ForSequenceClassification

    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=50, n_embd=16, n_layer=1, n_head=2, n_positions=16, num_labels=3, pad_token_id=0)
    model = TextClassifier(GPT2ForSequenceClassification(cfg)).train()
    ids = torch.tensor([[5, 6, 7, 0, 0], [8, 9, 10, 11, 12]])
    batch = {"input_ids": ids, "attention_mask": (ids != 0).long()}
    torch.manual_seed(1)
    first = model(batch)
    assert model._head_dropout is None and model._probed  # GPT-2's score reads ln_f's output
    hooked = []
    register = nn.Module.register_forward_hook
    monkeypatch.setattr(nn.Module, "register_forward_hook", lambda m, *a, **k: hooked.append(m) or register(m, *a, **k))
    torch.manual_seed(1)
    second = model(batch)
    assert hooked == []
    assert torch.equal(first.logits, second.logits) and torch.equal(first.embedding, second.embedding)


def test_forward_parameters_are_inspected_once_per_forward_function(tiny_distilbert, monkeypatch):
    import inspect

    from lugpi_cli.models import common

    calls = []
    signature = inspect.signature
    monkeypatch.setattr(common.inspect, "signature", lambda f: calls.append(f) or signature(f))
    a = TextClassifier.from_pretrained(tiny_distilbert, 3).model
    b = TextClassifier.from_pretrained(tiny_distilbert, 3).model
    first = common.forward_parameters(a)
    assert "input_ids" in first and "token_type_ids" not in first
    assert common.forward_parameters(a) is first and common.forward_parameters(b) is first
    assert len(calls) <= 1  # 0 when an earlier test already inspected DistilBERT's forward

    def forward(input_ids=None, attention_mask=None, token_type_ids=None):  # replaced on one instance only
        raise AssertionError("not called")

    b.forward = forward
    assert "token_type_ids" in common.forward_parameters(b)
    assert "token_type_ids" not in common.forward_parameters(a)


def test_text_embedding_per_token_head_uses_last_non_pad_token():
    """GPT-2 style heads score every token; the embedding is the row the logits come from."""
    from transformers import GPT2Config, GPT2ForSequenceClassification

    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=50, n_embd=16, n_layer=1, n_head=2, n_positions=16, num_labels=3, pad_token_id=0)
    model = TextClassifier(GPT2ForSequenceClassification(cfg)).eval()
    ids = torch.tensor([[5, 6, 7, 0, 0], [8, 9, 10, 11, 12]])
    with torch.no_grad():
        out = model({"input_ids": ids, "attention_mask": (ids != 0).long()})
        h = model.model.transformer(input_ids=ids, attention_mask=(ids != 0).long()).last_hidden_state
    assert model.head_name == "score"
    torch.testing.assert_close(out.embedding, torch.stack([h[0, 2], h[1, 4]]))
    torch.testing.assert_close(model.model.score(out.embedding), out.logits)


# -- init -------------------------------------------------------------------------------


def _checkpoint_state(path):
    from safetensors.torch import load_file

    return load_file(str(path / "model.safetensors"))


def test_pretrained_init_keeps_checkpoint_weights(tiny_distilbert):
    ckpt = _checkpoint_state(tiny_distilbert)
    teacher = small_teacher(tiny_distilbert, init="pretrained")
    enc = teacher.text_encoder.state_dict()
    assert set(ckpt) <= set(enc)
    for k, v in ckpt.items():
        torch.testing.assert_close(enc[k], v, rtol=0, atol=0)
    student = TextClassifier.from_pretrained(tiny_distilbert, 3)
    sd = student.model.state_dict()
    for k, v in ckpt.items():
        torch.testing.assert_close(sd[f"distilbert.{k}"], v, rtol=0, atol=0)


def _assert_xavier(model: nn.Module):
    for name, m in model.named_modules():
        if isinstance(m, nn.LayerNorm):
            assert torch.all(m.weight == 1) and torch.all(m.bias == 0), name
        elif isinstance(m, nn.Linear) and m.bias is not None:
            assert torch.all(m.bias == 0), name
    # a large matrix has the Xavier-normal spread sqrt(2 / (fan_in + fan_out))
    big = max((m for m in model.modules() if isinstance(m, nn.Linear)), key=lambda m: m.weight.numel())
    fan_out, fan_in = big.weight.shape
    assert big.weight.std().item() == pytest.approx((2 / (fan_in + fan_out)) ** 0.5, rel=0.15)


@pytest.mark.parametrize("kind", ["fusion", "text"])
def test_xavier_init_changes_the_weights(tiny_distilbert, kind):
    ckpt = _checkpoint_state(tiny_distilbert)
    if kind == "fusion":
        model = small_teacher(tiny_distilbert, init="xavier")
        sd, prefix = model.text_encoder.state_dict(), ""
        assert torch.all(model.fusion.self_attn.in_proj_bias == 0)
    else:
        model = TextClassifier.from_pretrained(tiny_distilbert, 3, init="xavier")
        sd, prefix = model.model.state_dict(), "distilbert."
    key = "embeddings.word_embeddings.weight"
    assert not torch.allclose(sd[prefix + key], ckpt[key])
    assert not torch.allclose(sd[prefix + "transformer.layer.0.attention.q_lin.weight"],
                              ckpt["transformer.layer.0.attention.q_lin.weight"])  # fmt: skip
    _assert_xavier(model)


def test_xavier_init_zeroes_padding_row():
    emb = nn.Embedding(10, 4, padding_idx=0)
    xavier_init_(emb)
    assert torch.all(emb.weight[0] == 0) and emb.weight[1:].abs().sum() > 0


# -- saving and loading --------------------------------------------------------------------


def test_fusion_save_load_round_trip(tiny_distilbert, distil_tok, tmp_path):
    model = small_teacher(tiny_distilbert, init="xavier").eval()
    batch = make_batch(distil_tok)
    model.save(tmp_path / "teacher", tokenizer=distil_tok)
    cfg = read_model_config(tmp_path / "teacher")
    assert cfg["kind"] == "fusion" and cfg["image_dim"] == 16 and cfg["num_labels"] == 3
    assert cfg["init"] == "xavier" and cfg["text_model"] == str(tiny_distilbert)
    assert cfg["id2label"] == {"0": "neg", "1": "neu", "2": "pos"}
    loaded = load_model(tmp_path / "teacher")
    assert type(loaded) is FusionTeacher and not loaded.training
    assert loaded.model_config == model.model_config
    with torch.no_grad():
        a, b = model(batch), loaded(batch)
    torch.testing.assert_close(a.logits, b.logits, rtol=0, atol=0)
    torch.testing.assert_close(a.embedding, b.embedding, rtol=0, atol=0)


def test_fusion_load_does_not_need_the_original_checkpoint(tiny_bert, bert_tok, tmp_path):
    import shutil

    src = tmp_path / "copy-of-bert"
    shutil.copytree(tiny_bert, src)
    model = small_teacher(src, image_dim=48).eval()
    model.save(tmp_path / "teacher")
    shutil.rmtree(src)
    loaded = FusionTeacher.load(tmp_path / "teacher")
    batch = make_batch(bert_tok, image_dim=48)
    with torch.no_grad():
        torch.testing.assert_close(model(batch).logits, loaded(batch).logits, rtol=0, atol=0)


def test_image_classifier_save_load_round_trip(tmp_path):
    torch.manual_seed(0)
    model = ImageClassifier(16, 3, hidden=24, labels=LABELS, activation="gelu").eval()
    model.save(tmp_path / "img")
    loaded = load_model(tmp_path / "img")
    assert type(loaded) is ImageClassifier and isinstance(loaded.act, nn.GELU)
    x = {"image_tokens": torch.randn(B, 5, 16)}
    with torch.no_grad():
        torch.testing.assert_close(model(x).logits, loaded(x).logits, rtol=0, atol=0)


def test_text_classifier_save_load_round_trip(tiny_distilbert, distil_tok, tmp_path):
    model = TextClassifier.from_pretrained(tiny_distilbert, labels=LABELS).eval()
    batch = make_batch(distil_tok)
    model.save(tmp_path / "student", tokenizer=distil_tok)
    for loaded in (load_model(tmp_path / "student"), TextClassifier.load(tmp_path / "student")):
        assert type(loaded) is TextClassifier and loaded.id2label == dict(enumerate(LABELS))
        with torch.no_grad():
            a, b = model(batch), loaded(batch)
        torch.testing.assert_close(a.logits, b.logits, rtol=0, atol=0)
        torch.testing.assert_close(a.embedding, b.embedding, rtol=0, atol=0)
    assert json.loads((tmp_path / "student" / "lugpi_model.json").read_text())["kind"] == "text"


def test_load_model_refuses_a_non_model_dir(tmp_path):
    with pytest.raises(UserError, match="lugpi_model.json is missing"):
        load_model(tmp_path)


def test_saved_student_works_with_a_plain_transformers_pipeline(tiny_distilbert, distil_tok, tmp_path):
    from transformers import pipeline

    model = TextClassifier.from_pretrained(tiny_distilbert, labels=LABELS).eval()
    d = model.save_pretrained(tmp_path / "hf", tokenizer=distil_tok)
    assert not (d / "lugpi_model.json").exists()
    clf = pipeline("text-classification", model=str(d))
    preds = clf(TEXTS)
    with torch.no_grad():
        expected = model(make_batch(distil_tok)).logits.argmax(-1).tolist()
    assert [p["label"] for p in preds] == [LABELS[i] for i in expected]
    every = clf(TEXTS[0], top_k=None)
    assert sorted(p["label"] for p in every) == sorted(LABELS)
