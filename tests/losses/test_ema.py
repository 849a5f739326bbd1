"""EMA self-distillation: the loss, mixup CE, the closed-form EMA, and the Beta draws."""

from __future__ import annotations

import math
import statistics

import pytest
import torch
from torch import nn

from lugpi_cli.losses import (
    DistillInputs,
    EmaLoss,
    build_loss,
    ema_update_,
    make_ema_model,
    mixup_lambda,
)
from lugpi_cli.losses.ema import mixed_cross_entropy
from tests.losses._reference import ce, hard_ce, mean, soft_kl

Z_S = [[1.0, -0.5, 0.25], [0.0, 2.0, -1.0]]
Z_EMA = [[0.8, -0.2, 0.0], [0.5, 1.5, -0.5]]
Y = [0, 2]
Y_B = [1, 1]


def inputs(*, teacher=True, lam=None, grad=False):
    extra = {} if lam is None else {"labels_b": torch.tensor(Y_B), "lam": torch.tensor(lam)}
    return DistillInputs(
        student_logits=torch.tensor(Z_S, requires_grad=grad), student_embedding=torch.zeros(2, 4),
        labels=torch.tensor(Y), teacher_logits=torch.tensor(Z_EMA) if teacher else None, student_extra=extra,
    )  # fmt: skip


def test_reads_nothing_from_the_store_and_asks_the_trainer():
    loss = build_loss("ema")
    assert loss.teacher_fields == frozenset() and not loss.requires_teacher
    assert EmaLoss.self_teacher is True and loss.needs_ema_teacher
    assert not EmaLoss(weight=0).needs_ema_teacher
    assert (loss.weight, loss.tau, loss.ema_decay, loss.mixup) == (1.0, 1.0, 0.999, 0.0)
    with pytest.raises(ValueError, match="EMA teacher"):
        loss(inputs(teacher=False))


@pytest.mark.parametrize(("weight", "tau"), [(1.0, 1.0), (0.5, 4.0), (0.0, 2.0)])
def test_loss_matches_hand_computation(weight, tau):
    out = build_loss("ema", weight=weight, tau=tau)(inputs(teacher=weight > 0))
    expected = hard_ce(Z_S, Y) + weight * tau**2 * soft_kl(Z_EMA, Z_S, tau)
    assert out.total.item() == pytest.approx(expected, rel=1e-5)
    assert ("kl" in out.parts) == (weight > 0)


@pytest.mark.parametrize("lam", [1.0, 0.7, 0.25])
def test_mixup_cross_entropy(lam):
    mixed = mean(lam * ce(row, a) + (1 - lam) * ce(row, b) for row, a, b in zip(Z_S, Y, Y_B))
    out = EmaLoss(weight=0.5, tau=2.0)(inputs(lam=lam))
    assert out.parts["ce"].item() == pytest.approx(mixed, rel=1e-5)
    assert out.total.item() == pytest.approx(mixed + 0.5 * 4 * soft_kl(Z_EMA, Z_S, 2.0), rel=1e-5)
    got = mixed_cross_entropy(torch.tensor(Z_S), torch.tensor(Y), torch.tensor(Y_B), lam)
    assert got.item() == pytest.approx(mixed, rel=1e-5)
    with pytest.raises(ValueError, match="lam"):
        mixed_cross_entropy(torch.tensor(Z_S), torch.tensor(Y), torch.tensor(Y_B))


def test_gradients_reach_the_student_not_the_ema_teacher():
    x = inputs(grad=True)
    x.teacher_logits.requires_grad_(True)
    EmaLoss()(x).total.backward()
    assert x.student_logits.grad.abs().sum() > 0 and x.teacher_logits.grad is None


# -- the EMA update ---------------------------------------------------------------------------------


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 2)
        self.bn = nn.BatchNorm1d(2)


def test_ema_update_equals_the_closed_form():
    """p_ema_n = d^n p_0 + (1 - d) sum_{i=1..n} d^(n-i) p_i, for parameters and float buffers."""
    torch.manual_seed(0)
    model = Tiny()
    ema = make_ema_model(model)
    assert not any(p.requires_grad for p in ema.parameters()) and not ema.training
    d, n = 0.9, 5
    p0 = {k: v.detach().clone() for k, v in model.state_dict().items()}
    history = []
    for _ in range(n):
        with torch.no_grad():
            for v in model.parameters():
                v.add_(torch.randn_like(v))
            model.bn.running_mean.add_(torch.randn(2))
            model.bn.num_batches_tracked += 3
        history.append({k: v.detach().clone() for k, v in model.state_dict().items()})
        ema_update_(ema, model, d)
    for key, value in ema.state_dict().items():
        if key.endswith("num_batches_tracked"):
            assert value.item() == history[-1][key].item()  # integer buffers are copied
            continue
        closed = d**n * p0[key] + (1 - d) * sum(d ** (n - i) * history[i - 1][key] for i in range(1, n + 1))
        torch.testing.assert_close(value, closed, rtol=1e-5, atol=1e-6)


def test_ema_update_edge_decays_and_errors():
    torch.manual_seed(1)
    model, other = Tiny(), Tiny()
    ema = make_ema_model(other)
    ema_update_(ema, model, 0.0)  # decay 0: a copy
    for a, b in zip(ema.parameters(), model.parameters()):
        torch.testing.assert_close(a, b)
    before = [p.clone() for p in ema.parameters()]
    ema_update_(ema, other, 1.0)  # decay 1: frozen
    assert all(torch.equal(a, b) for a, b in zip(before, ema.parameters()))
    with pytest.raises(ValueError, match="decay"):
        ema_update_(ema, model, 1.5)
    with pytest.raises(ValueError, match="differ"):
        ema_update_(nn.Linear(3, 2), model, 0.5)


# -- mixup's Beta draws -----------------------------------------------------------------------------


def test_mixup_lambda_is_beta_and_reproducible():
    assert mixup_lambda(0.0) == 1.0
    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    a = [mixup_lambda(0.4, g1) for _ in range(5)]
    assert a == [mixup_lambda(0.4, g2) for _ in range(5)]
    for alpha in (0.4, 2.0):
        g = torch.Generator().manual_seed(0)
        xs = [mixup_lambda(alpha, g) for _ in range(3000)]
        assert all(0.0 <= x <= 1.0 for x in xs)
        var = 1 / (4 * (2 * alpha + 1))  # Beta(a, a): mean 1/2, variance 1 / (4 (2a + 1))
        assert statistics.fmean(xs) == pytest.approx(0.5, abs=4 * math.sqrt(var / 3000))
        assert statistics.pvariance(xs) == pytest.approx(var, rel=0.1)
    with pytest.raises(ValueError, match="finite"):
        mixup_lambda(float("inf"))
