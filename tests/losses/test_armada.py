"""ARMADA's student objective: the three manifold variants, the full total by hand, and its heads training."""

from __future__ import annotations

import math

import pytest
import torch

from lugpi_cli.losses import ArmadaLoss, DistillInputs, build_loss
from lugpi_cli.losses.armada import manifold_loss
from tests.losses._reference import dot, hard_ce, matvec, mean, mse, norm, softmax

# Three samples, two classes, student width 3, teacher projection width D = 2.
Z_S1 = [[1.0, -0.5], [0.0, 2.0], [0.3, 0.1]]
Z_T1 = [[3.0, 1.0], [-1.0, 4.0], [0.0, 0.5]]
Z_T2 = [[1.0, 0.0], [0.0, 1.0], [2.0, -2.0]]
P_T = [[1.0, 0.5], [2.0, -1.0], [0.0, 1.5]]
E_S = [[0.5, -1.0, 2.0], [1.5, 0.0, -0.5], [0.0, 1.0, 1.0]]
Y = [0, 1, 0]


def inputs(*, grad=False, p_t=P_T):
    return DistillInputs(
        student_logits=torch.tensor(Z_S1, requires_grad=grad),
        student_embedding=torch.tensor(E_S, requires_grad=grad),
        labels=torch.tensor(Y),
        teacher_logits=torch.tensor(Z_T1),
        teacher_extra={"logits_aux": torch.tensor(Z_T2), "manifold": torch.tensor(p_t)},
    )


def col_mean(rows):
    return [mean(col) for col in zip(*rows)]


def manifold_by_hand(p_s, p_t, kind):
    ms, mt = col_mean(p_s), col_mean(p_t)
    if kind == "cosine":
        return 1 - dot(ms, mt) / (norm(ms) * norm(mt))
    if kind == "euclid":
        return mse(ms, mt)
    return mean(mse(a, b) for a, b in zip(p_s, p_t))


def prob_mse(z_t, z_s, tau):
    return mean(mse(softmax(t, tau), softmax(s, tau)) for t, s in zip(z_t, z_s))


@pytest.mark.parametrize("kind", ["cosine", "euclid", "pointwise"])
def test_manifold_variants(kind):
    p_s = [[0.5, 1.0], [1.0, 0.0], [-0.5, 2.0]]
    got = manifold_loss(torch.tensor(p_s), torch.tensor(P_T), kind).item()
    assert got == pytest.approx(manifold_by_hand(p_s, P_T, kind), rel=1e-6)
    # parallel batch means -> cosine 0; equal batches -> all three 0
    if kind == "cosine":
        assert manifold_loss(2 * torch.tensor(P_T), torch.tensor(P_T), kind).item() == pytest.approx(0, abs=1e-6)
    assert manifold_loss(torch.tensor(P_T), torch.tensor(P_T), kind).item() == pytest.approx(0, abs=1e-6)


def test_manifold_variants_differ():
    """Same batch mean, different samples: only pointwise sees the difference."""
    p_s = [[1.0, 0.5], [0.0, 1.5], [2.0, -1.0]]  # P_T's rows permuted
    assert manifold_by_hand(p_s, P_T, "cosine") == pytest.approx(0, abs=1e-12)
    assert manifold_loss(torch.tensor(p_s), torch.tensor(P_T), "euclid").item() == pytest.approx(0, abs=1e-7)
    assert manifold_loss(torch.tensor(p_s), torch.tensor(P_T), "pointwise").item() > 0.5


@pytest.mark.parametrize("manifold", ["cosine", "euclid", "pointwise"])
@pytest.mark.parametrize(("alpha", "beta", "gamma", "tau"), [(0.5, 1.0, 1.0, 5.0), (0.2, 0.5, 2.0, 2.0), (1.0, 0, 0.5, 1)])
def test_total_matches_hand_computation(manifold, alpha, beta, gamma, tau):
    torch.manual_seed(0)
    loss = build_loss("armada", student_dim=3, teacher_dim=2, alpha=alpha, beta=beta, gamma=gamma, tau=tau,
                      manifold=manifold).prepare(3, 2, num_labels=2)  # fmt: skip
    out = loss(inputs())
    w_p = loss.projection.weight.detach().tolist()
    w_a, b_a = loss.aux_classifier.weight.detach().tolist(), loss.aux_classifier.bias.detach().tolist()
    p_s = matvec(w_p, E_S)
    z_s2 = matvec(w_a, p_s, b_a)
    task = hard_ce(Z_S1, Y) + gamma * hard_ce(z_s2, Y)
    l_out = tau**2 * (prob_mse(Z_T1, Z_S1, tau) + gamma * prob_mse(Z_T2, z_s2, tau))
    expected = alpha * l_out + (1 - alpha) * task + beta * manifold_by_hand(p_s, P_T, manifold)
    assert out.total.item() == pytest.approx(expected, rel=1e-5)
    assert out.parts["ce_aux"].item() == pytest.approx(hard_ce(z_s2, Y), rel=1e-5)
    assert out.parts["out"].item() == pytest.approx(prob_mse(Z_T1, Z_S1, tau), rel=1e-5)
    assert ("manifold" in out.parts) == (beta > 0)


def test_student_side_heads_receive_gradients():
    loss = build_loss("armada", student_dim=3, teacher_dim=2)
    assert loss.projection is not None and loss.projection.bias is None
    assert loss.aux_classifier is None and not loss.prepared  # needs num_labels
    loss.prepare(3, 2, 2)
    assert loss.prepared and tuple(loss.aux_classifier.weight.shape) == (2, 2)
    params = dict(loss.named_parameters())
    assert set(params) == {"projection.weight", "aux_classifier.weight", "aux_classifier.bias"}
    x = inputs(grad=True)
    loss(x).total.backward()
    for name, p in params.items():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert x.student_logits.grad.abs().sum() > 0 and x.student_embedding.grad.abs().sum() > 0


def test_heads_are_created_lazily_and_teacher_fields_follow_the_weights():
    loss = ArmadaLoss()
    assert list(loss.parameters()) == []
    assert loss.teacher_fields == {"logits", "logits_aux", "manifold"}
    out = loss(inputs())
    assert loss.projection.in_features == 3 and loss.projection.out_features == 2
    assert loss.aux_classifier.out_features == 2 and math.isfinite(out.total.item())
    assert ArmadaLoss(alpha=0).teacher_fields == {"manifold"}
    assert ArmadaLoss(beta=0).teacher_fields == {"logits", "logits_aux"}
    assert ArmadaLoss(gamma=0).teacher_fields == {"logits", "manifold"}
    plain = ArmadaLoss(alpha=0, beta=0, gamma=0)
    assert not plain.requires_teacher
    assert plain(inputs()).total.item() == pytest.approx(hard_ce(Z_S1, Y), rel=1e-6)
    assert list(plain.parameters()) == []


def test_shape_errors_are_named():
    loss = build_loss("armada", student_dim=3, teacher_dim=2).prepare(3, 2, 2)
    with pytest.raises(ValueError, match=r'teacher_extra\["manifold"\] shape'):
        loss(inputs(p_t=[[1.0, 2.0, 3.0]] * 3))
    bad = inputs()
    del bad.teacher_extra["logits_aux"]
    with pytest.raises(ValueError, match="logits_aux"):
        loss(bad)
    with pytest.raises(ValueError, match="projection maps width 3 -> 2"):
        loss.prepare(4, 2, 2)
