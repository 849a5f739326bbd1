"""KD (Hinton et al. 2015) and FitNets (Romero et al. 2015) against hand computations."""

from __future__ import annotations

import math

import pytest
import torch

from lugpi_cli.losses import DistillInputs, FitNetLoss, KDLoss, build_loss
from tests.losses._reference import hard_ce, matvec, mean, mse, soft_kl

Z_S = [[1.0, -0.5, 0.25], [0.0, 2.0, -1.0], [0.3, 0.3, -0.2]]
Z_T = [[3.0, 1.0, -2.0], [-1.0, 4.0, 0.5], [0.0, -1.0, 2.0]]
Y = [0, 2, 2]
E_S = [[0.5, -1.0, 2.0], [1.5, 0.0, -0.5], [0.0, 1.0, 1.0]]
E_T = [[1.0, 0.0, 1.0, -1.0], [2.0, 1.0, 0.0, 0.5], [-1.0, 0.5, 0.5, 0.0]]


def inputs(*, teacher=True, grad=False):
    return DistillInputs(
        student_logits=torch.tensor(Z_S, requires_grad=grad),
        student_embedding=torch.tensor(E_S, requires_grad=grad),
        labels=torch.tensor(Y),
        teacher_logits=torch.tensor(Z_T) if teacher else None,
        teacher_embedding=torch.tensor(E_T) if teacher else None,
    )


# -- KD --------------------------------------------------------------------------------------


def test_kd_closed_form():
    """Uniform student, teacher (3/4, 1/4) at tau 2: KL = ln 2 - H(3/4, 1/4), times tau^2 = 4."""
    z_t = torch.tensor([[2 * math.log(3), 0.0]])  # softmax(z_t / 2) = (3/4, 1/4)
    x = DistillInputs(student_logits=torch.zeros(1, 2), student_embedding=torch.zeros(1, 1),
                      labels=torch.tensor([0]), teacher_logits=z_t)  # fmt: skip
    out = KDLoss(lam=0.25, tau=2.0)(x)
    kl = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
    assert out.parts["kl"].item() == pytest.approx(kl, rel=1e-6)
    assert out.total.item() == pytest.approx(0.25 * math.log(2) + 0.75 * 4 * kl, rel=1e-6)


@pytest.mark.parametrize("lam", [0.0, 0.5, 0.9, 1.0])
@pytest.mark.parametrize("tau", [1.0, 4.0, 2.5])
def test_kd_matches_hand_computation(lam, tau):
    out = build_loss("kd", lam=lam, tau=tau)(inputs())
    expected = lam * hard_ce(Z_S, Y) + (1 - lam) * tau**2 * soft_kl(Z_T, Z_S, tau)
    assert out.total.item() == pytest.approx(expected, rel=1e-5)
    assert out.parts["ce"].item() == pytest.approx(hard_ce(Z_S, Y), rel=1e-5)
    assert ("kl" in out.parts) == (lam < 1)
    if lam < 1:
        assert out.parts["kl"].item() == pytest.approx(soft_kl(Z_T, Z_S, tau), rel=1e-5)


def test_kd_equals_torch_batchmean_kl():
    tau = 4.0
    x = inputs()
    ref = torch.nn.functional.kl_div(torch.log_softmax(x.student_logits / tau, -1),
                                     torch.softmax(x.teacher_logits / tau, -1), reduction="batchmean")
    torch.testing.assert_close(KDLoss()(x).parts["kl"], ref)


def test_kd_defaults_fields_and_gradients():
    loss = KDLoss()
    assert (loss.lam, loss.tau) == (0.5, 4.0)
    assert loss.teacher_fields == {"logits"} and loss.requires_teacher
    assert KDLoss(lam=1.0).teacher_fields == frozenset()
    out = KDLoss(lam=1.0)(inputs(teacher=False))
    assert out.total.item() == pytest.approx(hard_ce(Z_S, Y), rel=1e-6)
    with pytest.raises(ValueError, match="teacher_logits"):
        loss(inputs(teacher=False))
    x = inputs(grad=True)
    x.teacher_logits.requires_grad_(True)
    loss(x).total.backward()
    assert x.student_logits.grad.abs().sum() > 0 and x.teacher_logits.grad is None
    bad = inputs()
    bad.teacher_logits = torch.zeros(3, 4)
    with pytest.raises(ValueError, match="teacher_logits shape"):
        loss(bad)


# -- FitNets ---------------------------------------------------------------------------------


def test_fitnet_regressor_and_hint_match_hand_computation():
    torch.manual_seed(0)
    loss = build_loss("fitnet", student_dim=3, teacher_dim=4, beta=2.0)
    assert isinstance(loss.regressor, torch.nn.Linear) and loss.regressor.bias is not None
    assert tuple(loss.regressor.weight.shape) == (4, 3)
    assert {id(p) for p in loss.parameters()} == {id(loss.regressor.weight), id(loss.regressor.bias)}
    assert loss.teacher_fields == {"embedding"}
    x = inputs(grad=True)
    out = loss(x)
    w, b = loss.regressor.weight.detach().tolist(), loss.regressor.bias.detach().tolist()
    regressed = matvec(w, E_S, b)
    hint = mean(mse(r, t) for r, t in zip(regressed, E_T))  # MSE over dims, batch mean
    assert out.parts["hint"].item() == pytest.approx(hint, rel=1e-5)
    assert out.total.item() == pytest.approx(hard_ce(Z_S, Y) + 2.0 * hint, rel=1e-5)
    out.total.backward()
    assert loss.regressor.weight.grad.abs().sum() > 0 and x.student_embedding.grad.abs().sum() > 0


def test_fitnet_sum_reduction_is_the_squared_norm():
    """l2_reduction="sum": beta ||r(e_S) - e_T||^2 summed over dims, batch mean (the README's formula)."""
    torch.manual_seed(0)
    loss = build_loss("fitnet", student_dim=3, teacher_dim=4, beta=0.5, l2_reduction="sum")
    out = loss(inputs())
    w, b = loss.regressor.weight.detach().tolist(), loss.regressor.bias.detach().tolist()
    hint = mean(sum((ri - ti) ** 2 for ri, ti in zip(r, t)) for r, t in zip(matvec(w, E_S, b), E_T))
    assert out.parts["hint"].item() == pytest.approx(hint, rel=1e-5)
    assert out.total.item() == pytest.approx(hard_ce(Z_S, Y) + 0.5 * hint, rel=1e-5)
    with pytest.raises(ValueError, match="mean, sum"):
        build_loss("fitnet", l2_reduction="max")


def test_fitnet_lazy_regressor_and_beta_zero():
    loss = FitNetLoss()
    assert loss.regressor is None and loss.beta == 1.0
    loss(inputs())
    assert (loss.regressor.in_features, loss.regressor.out_features) == (3, 4)
    off = build_loss("fitnet", student_dim=3, teacher_dim=4, beta=0)
    assert off.regressor is None and not off.requires_teacher
    assert off(inputs(teacher=False)).total.item() == pytest.approx(hard_ce(Z_S, Y), rel=1e-6)
    with pytest.raises(ValueError, match="teacher_embedding"):
        FitNetLoss()(inputs(teacher=False))
