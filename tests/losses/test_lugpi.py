"""The LUGPI loss (Eq. 2) against values worked out by hand, term by term."""

from __future__ import annotations

import math

import pytest
import torch

from lugpi_cli.losses import DistillInputs, LugpiLoss, build_loss

# Two samples, three classes, student width 3, teacher width 4 (and 3).
Z_S = [[1.0, -0.5, 0.25], [0.0, 2.0, -1.0]]
Z_T = [[3.0, 1.0, -2.0], [-1.0, 4.0, 0.5]]
Y = [0, 2]
E_S = [[0.5, -1.0, 2.0], [1.5, 0.0, -0.5]]
E_T3 = [[1.0, 0.0, 1.0], [2.0, 1.0, 0.0]]
E_T4 = [[1.0, 0.0, 1.0, -1.0], [2.0, 1.0, 0.0, 0.5]]


# -- the arithmetic, independently of torch ------------------------------------------------


def softmax(row, tau=1.0):
    ex = [math.exp(v / tau) for v in row]
    total = sum(ex)
    return [v / total for v in ex]


def hard_ce(z_s, y):
    return sum(-math.log(softmax(row)[label]) for row, label in zip(z_s, y)) / len(y)


def soft_ce(z_t, z_s, tau, soften):
    out = 0.0
    for t_row, s_row in zip(z_t, z_s):
        t = softmax(t_row, tau)
        s = softmax(s_row, tau if soften == "both" else 1.0)
        out += -sum(tk * math.log(sk) for tk, sk in zip(t, s))
    return out / len(z_t)


def l2(e_t, e_s, reduction):
    out = 0.0
    for a, b in zip(e_t, e_s):
        sq = [(x - y) ** 2 for x, y in zip(a, b)]
        out += sum(sq) if reduction == "sum" else sum(sq) / len(sq)
    return out / len(e_t)


def matvec(w, rows):
    return [[sum(wij * xj for wij, xj in zip(wi, row)) for wi in w] for row in rows]


def inputs(e_t=E_T3, *, teacher=True, grad=False):
    z_s = torch.tensor(Z_S, requires_grad=grad)
    e_s = torch.tensor(E_S, requires_grad=grad)
    return DistillInputs(
        student_logits=z_s,
        student_embedding=e_s,
        labels=torch.tensor(Y),
        teacher_logits=torch.tensor(Z_T) if teacher else None,
        teacher_embedding=torch.tensor(e_t) if teacher else None,
    )


# -- closed-form numbers ---------------------------------------------------------------------


def test_closed_form_paper_defaults():
    """Uniform student: CE = ln 2; teacher t = softmax([8 ln 3, 0] / 8) = (3/4, 1/4), so CE(t, s) = ln 2;
    ||(1, 2) - (0, 0)||^2 = 5. With alpha=3, beta=1: 4 ln 2 + 5."""
    loss = LugpiLoss()
    assert (loss.alpha, loss.beta, loss.tau, loss.soften, loss.tau2, loss.l2_reduction) == (
        3,
        1,
        8,
        "teacher",
        False,
        "sum",
    )
    out = loss(DistillInputs(
        student_logits=torch.zeros(1, 2), student_embedding=torch.zeros(1, 2), labels=torch.tensor([0]),
        teacher_logits=torch.tensor([[8 * math.log(3), 0.0]]), teacher_embedding=torch.tensor([[1.0, 2.0]]),
    ))  # fmt: skip
    assert out.total.item() == pytest.approx(4 * math.log(2) + 5, rel=1e-6)
    assert out.parts["ce"].item() == pytest.approx(math.log(2), rel=1e-6)
    assert out.parts["soft"].item() == pytest.approx(math.log(2), rel=1e-6)
    assert out.parts["l2"].item() == pytest.approx(5, rel=1e-6)


def test_closed_form_soften_both():
    """Student and teacher both [8 ln 3, 0] softened by 8 -> (3/4, 1/4): CE(t, s) = H(3/4, 1/4)."""
    z = torch.tensor([[8 * math.log(3), 0.0]])
    loss = LugpiLoss(soften="both", beta=0)
    out = loss(DistillInputs(student_logits=z, student_embedding=torch.zeros(1, 2), labels=torch.tensor([1]),
                             teacher_logits=z))  # fmt: skip
    entropy = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert out.parts["soft"].item() == pytest.approx(entropy, rel=1e-6)
    # the hard term is never softened: -log softmax([8 ln 3, 0])[1] = log(82)
    assert out.parts["ce"].item() == pytest.approx(math.log(3**8 + 1), rel=1e-6)


# -- every switch against the loops above ------------------------------------------------------


@pytest.mark.parametrize("alpha", [0.0, 3.0, 0.5])
@pytest.mark.parametrize("beta", [0.0, 1.0, 2.5])
@pytest.mark.parametrize("tau", [1.0, 8.0, 2.0])
@pytest.mark.parametrize("soften", ["teacher", "both"])
@pytest.mark.parametrize("tau2", [False, True])
@pytest.mark.parametrize("l2_reduction", ["sum", "mean"])
def test_total_matches_hand_computation(alpha, beta, tau, soften, tau2, l2_reduction):
    loss = LugpiLoss(alpha=alpha, beta=beta, tau=tau, soften=soften, tau2=tau2, l2_reduction=l2_reduction)
    out = loss(inputs())
    ce = hard_ce(Z_S, Y)
    soft = soft_ce(Z_T, Z_S, tau, soften)
    sq = l2(E_T3, E_S, l2_reduction)
    expected = ce + alpha * (tau**2 if tau2 else 1.0) * soft + beta * sq
    assert out.total.item() == pytest.approx(expected, rel=1e-5)
    assert out.parts["ce"].item() == pytest.approx(ce, rel=1e-5)
    assert ("soft" in out.parts) == (alpha > 0)
    assert ("l2" in out.parts) == (beta > 0)
    if alpha > 0:
        assert out.parts["soft"].item() == pytest.approx(soft, rel=1e-5)
    if beta > 0:
        assert out.parts["l2"].item() == pytest.approx(sq, rel=1e-5)


def test_l2_reductions_differ_by_the_width():
    s = LugpiLoss(alpha=0, l2_reduction="sum")(inputs()).parts["l2"].item()
    m = LugpiLoss(alpha=0, l2_reduction="mean")(inputs()).parts["l2"].item()
    assert s == pytest.approx(3 * m, rel=1e-6)
    assert s == pytest.approx(l2(E_T3, E_S, "sum"), rel=1e-6)


def test_tau2_scales_only_the_soft_term():
    plain = LugpiLoss(tau=4.0)(inputs())
    hinton = LugpiLoss(tau=4.0, tau2=True)(inputs())
    soft = plain.parts["soft"].item()
    assert hinton.total.item() - plain.total.item() == pytest.approx(3.0 * soft * (16 - 1), rel=1e-5)
    assert {k: v.item() for k, v in hinton.parts.items()} == pytest.approx(
        {k: v.item() for k, v in plain.parts.items()}
    )


# -- what the loss needs -------------------------------------------------------------------------


def test_baseline_needs_no_teacher():
    loss = build_loss("lugpi", alpha=0, beta=0)
    assert not loss.requires_teacher and loss.teacher_fields == frozenset()
    out = loss(inputs(teacher=False))
    assert out.total.item() == pytest.approx(hard_ce(Z_S, Y), rel=1e-6)
    assert set(out.parts) == {"ce"}
    torch.testing.assert_close(out.total, torch.nn.functional.cross_entropy(torch.tensor(Z_S), torch.tensor(Y)))


def test_teacher_fields_follow_the_weights():
    assert LugpiLoss().teacher_fields == {"logits", "embedding"}
    assert LugpiLoss(alpha=0).teacher_fields == {"embedding"}
    assert LugpiLoss(beta=0).teacher_fields == {"logits"}
    assert LugpiLoss(alpha=0).requires_teacher


def test_missing_teacher_output_is_named():
    with pytest.raises(ValueError, match="teacher_logits"):
        LugpiLoss(beta=0)(inputs(teacher=False))
    with pytest.raises(ValueError, match="teacher_embedding"):
        LugpiLoss(alpha=0)(inputs(teacher=False))
    bad = inputs()
    bad.teacher_logits = torch.zeros(2, 4)
    with pytest.raises(ValueError, match="teacher_logits shape"):
        LugpiLoss()(bad)


def test_gradients_reach_the_student_not_the_teacher():
    x = inputs(grad=True)
    x.teacher_logits.requires_grad_(True)
    x.teacher_embedding.requires_grad_(True)
    LugpiLoss()(x).total.backward()
    assert x.student_logits.grad.abs().sum() > 0 and x.student_embedding.grad.abs().sum() > 0
    assert x.teacher_logits.grad is None and x.teacher_embedding.grad is None


def test_parts_are_detached_and_scalars_are_floats():
    out = LugpiLoss()(inputs(grad=True))
    assert out.total.requires_grad
    assert not any(v.requires_grad for v in out.parts.values())
    sc = out.scalars()
    assert set(sc) == {"total", "ce", "soft", "l2"} and all(isinstance(v, float) for v in sc.values())


# -- width alignment ----------------------------------------------------------------------------


def test_aligner_from_known_dims_maps_student_to_teacher_width():
    torch.manual_seed(0)
    loss = build_loss("lugpi", student_dim=3, teacher_dim=4, alpha=0)
    assert loss.aligned and isinstance(loss.aligner, torch.nn.Linear)
    assert loss.aligner.bias is None and tuple(loss.aligner.weight.shape) == (4, 3)
    assert [p is loss.aligner.weight for p in loss.parameters()] == [True]
    x = inputs(E_T4, grad=True)
    out = loss(x)
    w = loss.aligner.weight.detach().tolist()
    assert out.parts["l2"].item() == pytest.approx(l2(E_T4, matvec(w, E_S), "sum"), rel=1e-5)
    out.total.backward()
    assert loss.aligner.weight.grad is not None and loss.aligner.weight.grad.abs().sum() > 0
    assert x.student_embedding.grad.abs().sum() > 0


def test_aligner_is_created_lazily_at_first_forward():
    loss = LugpiLoss()
    assert not loss.aligned and list(loss.parameters()) == []
    out = loss(inputs(E_T4, grad=True))
    assert loss.aligned and loss.aligner.in_features == 3 and loss.aligner.out_features == 4
    out.total.backward()
    assert loss.aligner.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="aligner maps width 3 -> 4"):
        loss(inputs(E_T3))


def test_no_aligner_when_widths_match_or_no_embedding_term():
    assert not build_loss("lugpi", student_dim=3, teacher_dim=3).aligned
    assert not build_loss("lugpi", student_dim=3, teacher_dim=4, beta=0).aligned
    loss = LugpiLoss(beta=0)
    loss(inputs(E_T4))
    assert not loss.aligned
