"""ARMADA's teacher-side aligner: outputs, the orthogonal projection stays orthogonal, save/load, learning."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lugpi_cli.errors import UserError
from lugpi_cli.models import ArmadaTeacher, ImageClassifier, ModelOutput, build_teacher, load_model, read_model_config

from .builders import LABELS


def armada(d=48, **kw):
    kw = {"hidden": 32, "labels": LABELS, **kw}
    torch.manual_seed(0)
    return ArmadaTeacher(d, 3, **kw)


def orthogonality_error(w: torch.Tensor) -> float:
    """max |W W^T - I| for orthonormal rows (d_p <= D), max |W^T W - I| for orthonormal columns."""
    gram = w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w
    return (gram - torch.eye(gram.shape[0])).abs().max().item()


def test_outputs_and_shapes():
    model = armada(48, proj_dim=16).eval()
    x = torch.randn(5, 48).half()
    out = model({"image_tokens": x})
    assert isinstance(out, ModelOutput)
    assert out.logits.shape == (5, 3) and out.embedding.shape == (5, 32) and out.logits.dtype == torch.float32
    assert set(out.extra) == {"logits_aux", "manifold"}
    assert out.extra["logits_aux"].shape == (5, 3) and out.extra["manifold"].shape == (5, 16)
    assert (out.embedding >= 0).all()  # ReLU hidden
    w = model.projection_matrix
    torch.testing.assert_close(out.extra["manifold"], x.float() @ w.T)
    torch.testing.assert_close(out.extra["logits_aux"], model.aux_classifier(out.extra["manifold"]))
    torch.testing.assert_close(out.logits, model.classifier(out.embedding))
    assert model.embedding_dim == 32 and model.modality == "image" and model.proj_dim == 16


def test_accepts_vector_token_or_latent_layouts():
    model = armada(64).eval()
    x = torch.randn(3, 64)
    with torch.no_grad():
        base = model({"image_tokens": x}).logits
        for layout in (x[:, None], x.reshape(3, 4, 4, 4), x.reshape(3, 4, 16)):
            torch.testing.assert_close(model({"image_tokens": layout}).logits, base, rtol=0, atol=0)
    with pytest.raises(ValueError, match="expects D=64"):
        model({"image_tokens": torch.randn(3, 17, 64)})  # CLIP-style token sequences are not a vector


def test_default_projection_width_is_min_of_d_and_768(one_thread):
    assert armada(48).proj_dim == 48
    big = armada(1024, hidden=8)
    assert big.proj_dim == 768 and big.projection_matrix.shape == (768, 1024)
    assert orthogonality_error(big.projection_matrix.detach()) < 1e-4


@pytest.mark.parametrize(("d", "proj_dim"), [(48, 16), (16, 24)], ids=["rows", "columns"])
def test_projection_stays_orthogonal_while_training(d, proj_dim, one_thread):
    model = armada(d, proj_dim=proj_dim, dropout=0.0).train()
    w0 = model.projection_matrix.detach().clone()
    assert orthogonality_error(w0) < 1e-5
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.01)
    g = torch.Generator().manual_seed(0)
    for _ in range(300):
        x = torch.randn(32, d, generator=g) * 3
        y = torch.randint(0, 3, (32,), generator=g)
        loss = model.training_loss(model({"image_tokens": x}), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    w = model.projection_matrix.detach()
    assert (w - w0).abs().max() > 1e-2  # it did train
    assert orthogonality_error(w) < 1e-4
    if proj_dim >= d:  # orthonormal columns: an isometry
        x = torch.randn(10, d)
        torch.testing.assert_close((x @ w.T).norm(dim=1), x.norm(dim=1), atol=1e-4, rtol=1e-4)


def test_training_loss_and_where_gradients_go():
    model = armada(48, proj_dim=16).train()
    x, y = torch.randn(8, 48), torch.randint(0, 3, (8,))
    out = model({"image_tokens": x})
    expected = F.cross_entropy(out.logits, y) + 0.5 * F.cross_entropy(out.extra["logits_aux"], y)
    torch.testing.assert_close(ArmadaTeacher.training_loss(out, y, gamma=0.5), expected)

    F.cross_entropy(out.logits, y).backward(retain_graph=True)  # the main head alone does not reach W
    assert all(p.grad is None for p in model.proj.parameters())
    model.zero_grad()
    model.training_loss(out, y).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.proj.parameters() if p.requires_grad)
    assert model.aux_classifier.weight.grad.abs().sum() > 0 and model.mlp[0].weight.grad.abs().sum() > 0


def test_save_load_round_trip(tmp_path, one_thread):
    model = armada(48, proj_dim=16, init="xavier").train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(3):  # move W away from its initial value
        out = model({"image_tokens": torch.randn(8, 48)})
        loss = model.training_loss(out, torch.randint(0, 3, (8,)))
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    model.save(tmp_path / "armada")
    cfg = read_model_config(tmp_path / "armada")
    assert cfg["kind"] == "armada" and cfg["image_dim"] == 48 and cfg["proj_dim"] == 16 and cfg["init"] == "xavier"
    loaded = load_model(tmp_path / "armada")
    assert type(loaded) is ArmadaTeacher and not loaded.training and loaded.model_config == model.model_config
    assert loaded.id2label == dict(enumerate(LABELS))
    x = {"image_tokens": torch.randn(6, 48)}
    with torch.no_grad():
        a, b = model(x), loaded(x)
    torch.testing.assert_close(a.logits, b.logits, rtol=0, atol=0)
    torch.testing.assert_close(a.embedding, b.embedding, rtol=0, atol=0)
    for key in a.extra:
        torch.testing.assert_close(a.extra[key], b.extra[key], rtol=0, atol=0)


def test_build_teacher_arch(tmp_path):
    model = build_teacher("image", arch="armada", num_labels=3, image_dim=40, hidden=16, proj_dim=8, labels=LABELS)
    assert type(model) is ArmadaTeacher and model.proj_dim == 8 and model.embedding_dim == 16
    assert type(build_teacher("image", num_labels=3, image_dim=40, hidden=16)).__name__ == "ImageClassifier"
    with pytest.raises(UserError, match="not modality 'both'"):
        build_teacher("both", arch="armada", num_labels=3, image_dim=40, text_model="x")
    with pytest.raises(UserError, match="arch 'clip'"):
        build_teacher("image", arch="clip", num_labels=3, image_dim=40)
    with pytest.raises(UserError, match="image_dim"):
        build_teacher("image", arch="armada", num_labels=3)
    with pytest.raises(UserError, match="not an ARMADA teacher"):
        ArmadaTeacher.load(ImageClassifier(4, 3, hidden=8).save(tmp_path / "image"))


def test_learns_a_linear_task_through_both_heads(one_thread):
    """y = argmax(A x): the MLP head and the auxiliary head on a 16-dim orthogonal projection of 64 both learn it."""
    d, k = 64, 3
    g = torch.Generator().manual_seed(0)
    a = torch.randn(k, d, generator=g)

    def data(n):
        x = torch.randn(n, d, generator=g)
        return x, (x @ a.T).argmax(-1)

    x_train, y_train = data(2048)
    x_test, y_test = data(1000)
    torch.manual_seed(0)
    model = ArmadaTeacher(d, k, hidden=64, proj_dim=16, dropout=0.1).train()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(250):
        idx = torch.randint(0, 2048, (64,))
        loss = model.training_loss(model({"image_tokens": x_train[idx].half()}), y_train[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        out = model({"image_tokens": x_test})
    acc_main = (out.logits.argmax(-1) == y_test).float().mean().item()
    acc_aux = (out.extra["logits_aux"].argmax(-1) == y_test).float().mean().item()
    assert acc_main > 0.85 and acc_aux > 0.85, (acc_main, acc_aux)
    assert orthogonality_error(model.projection_matrix.detach()) < 1e-4


def test_too_wide_image_features_are_refused_for_training_with_a_way_out():
    from lugpi_cli.models.armada import MAX_IMAGE_DIM

    build_teacher(modality="image", arch="armada", image_dim=MAX_IMAGE_DIM, num_labels=2, hidden=8, proj_dim=4)
    with pytest.raises(UserError, match="16384-dim image features") as info:
        build_teacher(modality="image", arch="armada", image_dim=16384, num_labels=2, hidden=8)
    assert "--vae-size" in info.value.hint
    assert ArmadaTeacher(MAX_IMAGE_DIM + 1, 2, hidden=8, proj_dim=4).image_dim == MAX_IMAGE_DIM + 1  # loading works
