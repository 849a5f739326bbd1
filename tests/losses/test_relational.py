"""RKD (Park et al. 2019) and SP (Tung & Mori 2019) against explicit Python loops."""

from __future__ import annotations

import pytest
import torch

from lugpi_cli.losses import DistillInputs, RKDLoss, SPLoss, build_loss
from lugpi_cli.losses.relational import pairwise_distances, triplet_cosines
from tests.losses._reference import dot, hard_ce, mean, norm, smooth_l1, sub

# Five samples; student width 3, teacher width 4 (relations need no alignment).
E_S = [[0.5, -1.0, 2.0], [1.5, 0.0, -0.5], [0.0, 1.0, 1.0], [-1.0, 0.5, 0.0], [0.2, 0.2, 0.9]]
E_T = [[1.0, 0.0, 1.0, -1.0], [2.0, 1.0, 0.0, 0.5], [-1.0, 0.5, 0.5, 0.0], [0.0, 0.0, 3.0, 1.0],
       [0.5, -0.5, 0.0, 2.0]]  # fmt: skip
Z_S = [[1.0, 0.0], [0.0, 1.0], [0.5, 0.5], [2.0, -1.0], [0.0, 0.0]]
Y = [0, 1, 1, 0, 1]
B = len(E_S)


def inputs(*, teacher=True, grad=False, e_s=E_S, e_t=E_T):
    return DistillInputs(
        student_logits=torch.tensor(Z_S, requires_grad=grad),
        student_embedding=torch.tensor(e_s, requires_grad=grad),
        labels=torch.tensor(Y),
        teacher_embedding=torch.tensor(e_t) if teacher else None,
    )


# -- the relations, by loops -------------------------------------------------------------------


def distance_matrix(e):
    d = [[norm(sub(e[i], e[j])) for j in range(len(e))] for i in range(len(e))]
    mu = mean(d[i][j] for i in range(len(e)) for j in range(len(e)) if i != j)
    return [[v / mu for v in row] for row in d]


def unit(v):
    n = norm(v)
    return [0.0] * len(v) if n == 0 else [x / n for x in v]


def angle_tensor(e):
    """c[j][i][k] = cos of the angle at e_j between e_i and e_k (0 when degenerate)."""
    n = len(e)
    return [[[dot(unit(sub(e[i], e[j])), unit(sub(e[k], e[j]))) for k in range(n)] for i in range(n)]
            for j in range(n)]  # fmt: skip


def rkd_distance(e_s, e_t):
    ds, dt = distance_matrix(e_s), distance_matrix(e_t)
    return mean(smooth_l1(ds[i][j], dt[i][j]) for i in range(B) for j in range(B))


def rkd_angle(e_s, e_t):
    a_s, a_t = angle_tensor(e_s), angle_tensor(e_t)
    return mean(smooth_l1(a_s[j][i][k], a_t[j][i][k]) for i in range(B) for j in range(B) for k in range(B))


def gram_normalised(e):
    g = [[dot(a, b) for b in e] for a in e]
    return [[v / norm(row) for v in row] for row in g]


def sp_term(e_s, e_t):
    gs, gt = gram_normalised(e_s), gram_normalised(e_t)
    return sum((gs[i][j] - gt[i][j]) ** 2 for i in range(B) for j in range(B)) / B**2


# -- RKD -------------------------------------------------------------------------------------------


def test_relation_matrices_match_loops():
    d = pairwise_distances(torch.tensor(E_T, dtype=torch.float64))
    raw = [[norm(sub(a, b)) for b in E_T] for a in E_T]
    torch.testing.assert_close(d, torch.tensor(raw, dtype=torch.float64))
    c = triplet_cosines(torch.tensor(E_S, dtype=torch.float64))
    torch.testing.assert_close(c, torch.tensor(angle_tensor(E_S), dtype=torch.float64))
    # a non-degenerate entry by hand: the angle at e_1 between e_0 and e_2
    u, v = sub(E_S[0], E_S[1]), sub(E_S[2], E_S[1])
    assert c[1, 0, 2].item() == pytest.approx(dot(u, v) / (norm(u) * norm(v)), rel=1e-12)


@pytest.mark.parametrize(("w_d", "w_a"), [(25.0, 50.0), (1.0, 0.0), (0.0, 2.0), (3.0, 7.0)])
def test_rkd_matches_loops(w_d, w_a):
    out = build_loss("rkd", w_d=w_d, w_a=w_a)(inputs())
    dist, angle = rkd_distance(E_S, E_T), rkd_angle(E_S, E_T)
    expected = hard_ce(Z_S, Y) + w_d * dist + w_a * angle
    assert out.total.item() == pytest.approx(expected, rel=1e-5)
    assert ("dist" in out.parts) == (w_d > 0) and ("angle" in out.parts) == (w_a > 0)
    if w_d > 0:
        assert out.parts["dist"].item() == pytest.approx(dist, rel=1e-5)
    if w_a > 0:
        assert out.parts["angle"].item() == pytest.approx(angle, rel=1e-5)


def test_rkd_defaults_and_invariances():
    loss = RKDLoss()
    assert (loss.w_d, loss.w_a) == (25.0, 50.0) and loss.teacher_fields == {"embedding"}
    # relations of a scaled, shifted copy of the teacher are the teacher's: zero relational loss
    e = torch.tensor(E_T)
    out = loss(inputs(e_s=(3.0 * e + 1.0).tolist()))
    assert out.parts["dist"].item() == pytest.approx(0.0, abs=1e-6)
    assert out.parts["angle"].item() == pytest.approx(0.0, abs=1e-6)
    assert not build_loss("rkd", w_d=0, w_a=0).requires_teacher


def test_rkd_on_a_batch_of_one_is_zero_not_nan():
    """A loader's last batch may hold one sample: no pairs, no triplets, so no relational loss."""
    x = inputs(grad=True, e_s=E_S[:1], e_t=E_T[:1])
    x.student_logits, x.labels = x.student_logits[:1], x.labels[:1]
    out = RKDLoss()(x)
    assert out.parts["dist"].item() == 0.0 and out.parts["angle"].item() == 0.0
    assert torch.isfinite(out.total)
    out.total.backward()
    assert torch.isfinite(x.student_embedding.grad).all()


def test_rkd_gradients_reach_the_student_only():
    x = inputs(grad=True)
    x.teacher_embedding.requires_grad_(True)
    RKDLoss()(x).total.backward()
    assert torch.isfinite(x.student_embedding.grad).all() and x.student_embedding.grad.abs().sum() > 0
    assert x.teacher_embedding.grad is None


def test_rkd_needs_the_teacher_embedding_and_one_batch():
    with pytest.raises(ValueError, match="teacher_embedding"):
        RKDLoss()(inputs(teacher=False))
    with pytest.raises(ValueError, match="batch sizes"):
        RKDLoss()(inputs(e_t=E_T[:4]))


# -- SP --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("gamma", [3000.0, 1.0, 0.0])
def test_sp_matches_gram_loops(gamma):
    out = build_loss("sp", gamma=gamma)(inputs())
    sp = sp_term(E_S, E_T)
    assert out.total.item() == pytest.approx(hard_ce(Z_S, Y) + gamma * sp, rel=1e-5)
    if gamma > 0:
        assert out.parts["sp"].item() == pytest.approx(sp, rel=1e-5)
    else:
        assert "sp" not in out.parts


def test_sp_defaults_and_gradients():
    loss = SPLoss()
    assert loss.gamma == 3000.0 and loss.teacher_fields == {"embedding"}
    assert not SPLoss(gamma=0).requires_teacher
    x = inputs(grad=True)
    loss(x).total.backward()
    assert x.student_embedding.grad.abs().sum() > 0
    # equal (row-normalised) similarities -> zero: a student that is the teacher scaled by 2
    same = loss(inputs(e_s=(2 * torch.tensor(E_T)).tolist()))
    assert same.parts["sp"].item() == pytest.approx(0.0, abs=1e-9)


# -- float32 relations under bf16 autocast ---------------------------------------------------------


@pytest.mark.parametrize("name", ["rkd", "sp"])
def test_relations_are_float32_under_bf16_autocast(name):
    """Under CPU bf16 autocast every relational term equals its float32 value to 1e-5 (the Gram products
    themselves would be off by far more in bf16), and the gradient still reaches the student."""
    from lugpi_cli.losses.relational import pairwise_distances, similarity_matrix

    g = torch.Generator().manual_seed(0)
    e_s = (torch.randn(16, 48, generator=g) + 3.0).requires_grad_(True)  # a shared offset: large Gram entries
    e_t = torch.randn(16, 64, generator=g) + 2.0
    x = DistillInputs(student_logits=torch.randn(16, 2, generator=g), student_embedding=e_s,
                      labels=torch.randint(0, 2, (16,), generator=g), teacher_embedding=e_t)
    loss = build_loss(name)
    exact = loss(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = loss(x)
        raw = (pairwise_distances(e_s.detach()), similarity_matrix(e_s.detach()))  # what bf16 would give
    terms = ("dist", "angle") if name == "rkd" else ("sp",)
    for term in terms:
        assert mixed.parts[term].dtype == torch.float32
        assert mixed.parts[term].item() == pytest.approx(exact.parts[term].item(), rel=1e-5, abs=1e-7), term
    assert not torch.allclose(raw[0].float(), pairwise_distances(e_s.detach()), rtol=1e-3)  # bf16 would be off
    assert not torch.allclose(raw[1].float(), similarity_matrix(e_s.detach()), rtol=1e-4)
    mixed.total.backward()
    assert e_s.grad is not None and e_s.grad.abs().sum() > 0
