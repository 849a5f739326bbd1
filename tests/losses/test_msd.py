"""MSD: the three weightings on hand-made teacher outputs, and the meta-learned weighting learning."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lugpi_cli.losses import (
    DistillInputs,
    LossOptionError,
    MetaWeightNet,
    MsdLoss,
    build_loss,
    meta_weight_step,
)
from lugpi_cli.models.common import ModelOutput
from tests.losses._reference import hard_ce, kl, mean, softmax

LN2, LN3 = math.log(2), math.log(3)
# Two samples, three classes. Sample 0: t(x) = (1/2, 1/4, 1/4), t(x^t) uniform, t(x^v) = (1/4, 1/2, 1/4).
# Sample 1: t(x) = (1/4, 1/4, 1/2) ... chosen so every KL and CE has a closed form.
T_MULTI = [[LN2, 0.0, 0.0], [0.0, 0.0, LN2]]
T_TEXT = [[0.0, 0.0, 0.0], [0.0, 0.0, LN3]]  # sample 1: (1/5, 1/5, 3/5)
T_IMAGE = [[0.0, LN2, 0.0], [0.0, 0.0, 0.0]]  # sample 1: uniform
Z_S = [[0.5, -0.5, 1.0], [0.0, 1.0, -1.0]]
Y = [0, 2]


def inputs(*, grad=False, drop=()):
    extra = {"logits_text": torch.tensor(T_TEXT), "logits_image": torch.tensor(T_IMAGE)}
    for name in drop:
        extra.pop(name)
    return DistillInputs(
        student_logits=torch.tensor(Z_S, requires_grad=grad), student_embedding=torch.zeros(2, 3),
        labels=torch.tensor(Y), teacher_logits=torch.tensor(T_MULTI), teacher_extra=extra,
    )  # fmt: skip


def expected_total(weights, tau, lam=0.5):
    """Eq. (1) with Eq. (5): lam CE + (1 - lam) mean_i sum_m w_m(i) tau^2 KL(t_m(x_i)_tau || s(x_i)_tau), by hand."""
    per = []
    for i in range(2):
        s = softmax(Z_S[i], tau)
        per.append(sum(w * tau**2 * kl(softmax(t[i], tau), s) for w, t in zip(weights[i], (T_MULTI, T_TEXT, T_IMAGE))))
    return lam * hard_ce(Z_S, Y) + (1 - lam) * mean(per)


# -- the weights, value by value -------------------------------------------------------------------


def test_importance_weights_value_by_value():
    loss = MsdLoss(weighting="importance", tau=2.0)
    w = loss.weights(inputs())
    # sample 0: KL(t(x) || t(x^t)) = 1/2 ln(3/2) + 1/2 ln(3/4); KL(t(x) || t(x^v)) = 1/4 ln 2
    kl_text_0 = 0.5 * math.log(1.5) + 0.5 * math.log(0.75)
    kl_image_0 = 0.25 * LN2
    # sample 1: t(x) = (1/4, 1/4, 1/2) vs (1/5, 1/5, 3/5) and vs uniform
    kl_text_1 = 0.5 * math.log(1.25) + 0.5 * math.log(0.5 / 0.6)
    kl_image_1 = 0.5 * math.log(0.75) + 0.5 * math.log(1.5)
    expected = [[1.0, math.tanh(kl_text_0), math.tanh(kl_image_0)],
                [1.0, math.tanh(kl_text_1), math.tanh(kl_image_1)]]  # fmt: skip
    torch.testing.assert_close(w, torch.tensor(expected), rtol=1e-6, atol=1e-7)
    out = loss(inputs())
    assert out.total.item() == pytest.approx(expected_total(expected, 2.0), rel=1e-5)


def test_correctness_weights_value_by_value():
    loss = MsdLoss(weighting="correctness", tau=1.5)
    w = loss.weights(inputs())
    # sample 0 (y = 0): CE = ln 2, ln 3, ln 4; sample 1 (y = 2): CE = ln 2, ln(5/3), ln 3
    inv0 = [1 / LN2, 1 / LN3, 1 / (2 * LN2)]
    inv1 = [1 / LN2, 1 / math.log(5 / 3), 1 / LN3]
    expected = [[v / sum(inv0) for v in inv0], [v / sum(inv1) for v in inv1]]
    torch.testing.assert_close(w, torch.tensor(expected), rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(w.sum(1), torch.ones(2))
    out = loss(inputs())
    assert out.total.item() == pytest.approx(expected_total(expected, 1.5), rel=1e-5)


@pytest.mark.parametrize(("w_multi", "w_text", "w_image", "tau"), [(1, 1, 1, 4.0), (0.5, 0.8, 0.25, 1.0), (1, 0, 0.75, 2.0)])
def test_population_weights_and_total(w_multi, w_text, w_image, tau):
    loss = build_loss("msd", w_multi=w_multi, w_text=w_text, w_image=w_image, tau=tau)
    out = loss(inputs())
    weights = [[w_multi, w_text, w_image]] * 2
    assert out.total.item() == pytest.approx(expected_total(weights, tau), rel=1e-5)
    for m, t in (("multi", T_MULTI), ("image", T_IMAGE)):
        assert out.parts[f"kl_{m}"].item() == pytest.approx(
            mean(kl(softmax(t[i], tau), softmax(Z_S[i], tau)) for i in range(2)), rel=1e-5
        )
    assert ("kl_text" in out.parts) == (w_text > 0)


@pytest.mark.parametrize("weighting", ["population", "importance", "correctness"])
@pytest.mark.parametrize("lam", [0.0, 0.2, 0.6, 1.0])
def test_lam_balances_ce_and_distillation_as_in_eq_1(weighting, lam):
    """L = lam CE + (1 - lam) L_distill under every fixed weighting (the paper's Eq. 1); lam = 1 reads no teacher."""
    loss = build_loss("msd", weighting=weighting, lam=lam, tau=2.0)
    with_lam = loss(inputs()).total.item()
    ce = hard_ce(Z_S, Y)
    distill = (build_loss("msd", weighting=weighting, lam=0.0, tau=2.0)(inputs()).total.item())
    assert with_lam == pytest.approx(lam * ce + (1 - lam) * distill, rel=1e-5)
    if weighting == "population":
        assert with_lam == pytest.approx(expected_total([[1, 1, 1]] * 2, 2.0, lam), rel=1e-5)
    if lam == 1.0:
        assert loss.teacher_fields == frozenset() and not loss.requires_teacher
        x = inputs(drop=("logits_text", "logits_image"))
        x.teacher_logits = None
        assert loss(x).total.item() == pytest.approx(ce, rel=1e-6)


def test_lam_and_population_weights_are_checked():
    assert MsdLoss().lam == 0.5  # the paper's appendix B: 0.5 (Hateful-Memes, MM-IMDB)
    for key, value in (("lam", 1.2), ("w_text", 1.5), ("w_image", 2.0)):
        with pytest.raises(LossOptionError, match=rf"option '{key}'.*<= 1"):
            build_loss("msd", **{key: value})
    with pytest.raises(LossOptionError, match="no distillation term"):
        build_loss("msd", weighting="meta", lam=1.0)


def test_teacher_fields_and_missing_fields():
    assert MsdLoss().teacher_fields == {"logits", "logits_text", "logits_image"}
    loss = MsdLoss(w_image=0.0)
    assert loss.teacher_fields == {"logits", "logits_text"}
    loss(inputs(drop=("logits_image",)))  # the dropped term's field is not read
    for weighting in ("importance", "correctness", "meta"):
        assert MsdLoss(weighting=weighting).teacher_fields == {"logits", "logits_text", "logits_image"}
    with pytest.raises(ValueError, match=r'teacher_extra\["logits_text"\]'):
        MsdLoss()(inputs(drop=("logits_text",)))


def test_gradients_reach_the_student_only():
    for weighting in ("population", "importance", "correctness"):
        x = inputs(grad=True)
        for t in [x.teacher_logits, *x.teacher_extra.values()]:
            t.requires_grad_(True)
        MsdLoss(weighting=weighting)(x).total.backward()
        assert x.student_logits.grad.abs().sum() > 0
        assert x.teacher_logits.grad is None and all(t.grad is None for t in x.teacher_extra.values())


# -- the meta weight net ----------------------------------------------------------------------------


def test_weight_net_is_outside_the_student_parameters():
    loss = build_loss("msd", weighting="meta", meta_hidden=8)
    assert loss.weight_net is None
    with pytest.raises(ValueError, match="prepare"):
        loss.meta_parameters()
    loss.prepare(num_labels=3)
    assert isinstance(loss.weight_net, MetaWeightNet) and len(loss.meta_parameters()) == 4
    assert list(loss.parameters()) == [] and not loss.aligned
    torch.testing.assert_close(loss.weights(inputs()), torch.full((2, 3), 0.5))  # starts at exactly 0.5
    out = loss(inputs(grad=True))
    out.total.backward()
    assert all(p.grad is None for p in loss.meta_parameters())  # the real step never trains the net
    loss.double()
    assert all(p.dtype == torch.float64 for p in loss.meta_parameters())
    meta_opt = loss.make_meta_optimizer()  # Algorithm 1, line 5: a plain gradient step with lr beta
    assert type(meta_opt) is torch.optim.SGD
    assert [(g["lr"], g["momentum"], g["weight_decay"]) for g in meta_opt.param_groups] == [(1e-3, 0.0, 0.0)]
    assert MsdLoss().meta_parameters() == []
    with pytest.raises(ValueError, match="built for 3 classes"):
        loss.prepare(num_labels=4)


K, D = 4, 16


class LinearStudent(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(D, K)

    def forward(self, batch):
        return ModelOutput(logits=self.fc(batch["x"]), embedding=batch["x"])


def synthetic_batch(n, g, w_true):
    """Informative multimodal and text teachers; the image teacher is pure noise."""
    x = torch.randn(n, D, generator=g)
    y = (x @ w_true).argmax(1)
    onehot = F.one_hot(y, K).float()
    return {"x": x, "labels": y,
            "t_multi": 6 * onehot + 0.5 * torch.randn(n, K, generator=g),
            "t_text": 5 * onehot + 0.5 * torch.randn(n, K, generator=g),
            "t_image": 3 * torch.randn(n, K, generator=g)}  # fmt: skip


def make_inputs(output, batch):
    return DistillInputs(
        student_logits=output.logits, student_embedding=output.embedding, labels=batch["labels"],
        teacher_logits=batch["t_multi"],
        teacher_extra={"logits_text": batch["t_text"], "logits_image": batch["t_image"]},
    )  # fmt: skip


def test_meta_step_updates_only_the_weight_net():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    w_true = torch.randn(D, K, generator=g)
    student, loss = LinearStudent(), build_loss("msd", weighting="meta", meta_lr=0.01)
    loss.prepare(num_labels=K)
    before_student = [p.detach().clone() for p in student.parameters()]
    before_net = [p.detach().clone() for p in loss.meta_parameters()]
    stats = meta_weight_step(student, loss, synthetic_batch(16, g, w_true), synthetic_batch(16, g, w_true),
                             inner_lr=0.5, meta_optimizer=loss.make_meta_optimizer(), make_inputs=make_inputs)
    assert set(stats) == {"meta_loss", "lookahead_loss", "w_multi", "w_text", "w_image"}
    assert stats["w_multi"] == pytest.approx(0.5) and math.isfinite(stats["meta_loss"])
    assert all(torch.equal(a, b) for a, b in zip(before_student, student.parameters()))
    assert all(p.grad is None for p in student.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before_net, loss.meta_parameters()))
    with pytest.raises(ValueError, match="weighting='meta'"):
        meta_weight_step(student, MsdLoss(), {}, {}, inner_lr=0.1, meta_optimizer=None, make_inputs=make_inputs)


@pytest.mark.parametrize("seed", [0, 1])
def test_meta_weighting_learns_to_drop_the_noise_term(seed):
    """Meta steps + real steps on a linear student: the weight of the pure-noise image term ends
    clearly below those of the informative multimodal and text terms. The net's step is plain SGD
    (Algorithm 1), so its learning rate is larger than an Adam step size would be."""
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(100 + seed)
    w_true = torch.randn(D, K, generator=g)
    student = LinearStudent()
    loss = build_loss("msd", weighting="meta", tau=1.0, meta_lr=10.0)
    loss.prepare(num_labels=K)
    meta_opt = loss.make_meta_optimizer()
    opt = torch.optim.SGD(student.parameters(), lr=0.5)
    for _ in range(25):
        train, val = synthetic_batch(32, g, w_true), synthetic_batch(32, g, w_true)
        meta_weight_step(student, loss, train, val, inner_lr=0.5, meta_optimizer=meta_opt, make_inputs=make_inputs)
        opt.zero_grad()
        loss(make_inputs(student(train), train)).total.backward()
        opt.step()
    fresh = synthetic_batch(256, g, w_true)
    with torch.no_grad():
        w_multi, w_text, w_image = loss.weights(make_inputs(student(fresh), fresh)).mean(0).tolist()
    assert w_image < 0.25
    assert w_image + 0.5 < min(w_multi, w_text)


def _average_in_rank(rank, world, init_file, queue):
    import torch.distributed as dist

    from lugpi_cli.losses.meta import _averaged_across_processes

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    params = [torch.zeros(2), torch.zeros(3)]
    grads = [torch.full((2,), float(rank + 1)), None if rank == 0 else torch.ones(3)]
    out = _averaged_across_processes(params, grads)
    queue.put((rank, [g.tolist() for g in out]))
    dist.destroy_process_group()


def test_meta_gradients_are_averaged_across_processes(tmp_path):
    """Two gloo processes: the mean of (1, 1) and (2, 2); a gradient missing on one rank counts as zero."""
    import torch.multiprocessing as mp

    from lugpi_cli.losses.meta import _averaged_across_processes

    grads = [torch.ones(2), None]
    assert _averaged_across_processes([torch.zeros(2), torch.zeros(3)], grads) is grads  # one process: as is
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_average_in_rank, args=(r, 2, tmp_path / "init", queue)) for r in range(2)]
    for p in procs:
        p.start()
    results = dict(queue.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=60)
    assert results[0] == results[1] == [[1.5, 1.5], [0.5, 0.5, 0.5]]


def _lookahead_meta_loss(net, train, val, *, W, b, lam, tau, alpha):
    """L_meta(w_hat(Theta)) of Algorithm 1 for a linear softmax student, every gradient by hand (no autograd)."""
    with torch.no_grad():
        probs = torch.stack([F.softmax(train[k], -1) for k in ("t_multi", "t_text", "t_image")], 1).flatten(1)
        w = net(probs)  # (B, 3) in TERMS order
        x, y = train["x"], train["labels"]
        n = len(y)
        z = x @ W.T + b
        dz = lam * (F.softmax(z, -1) - F.one_hot(y, K)) / n  # d(lam CE)/dz
        for j, k in enumerate(("t_multi", "t_text", "t_image")):  # d((1-lam) tau^2 mean w KL(t_tau||s_tau))/dz
            dz += (1 - lam) * tau**2 / n * w[:, j:j + 1] * (F.softmax(z / tau, -1) - F.softmax(train[k] / tau, -1)) / tau
        W_hat, b_hat = W - alpha * dz.T @ x, b - alpha * dz.sum(0)  # line 4
        return F.cross_entropy(val["x"] @ W_hat.T + b_hat, val["labels"]).item()  # Eq. (9)


def test_one_meta_step_is_algorithm_1_line_5():
    """Theta <- Theta - beta * dL_meta/dTheta, the derivative by central differences of the hand-written
    look-ahead (lines 4-5 of MSD's Algorithm 1): plain SGD, no momentum, no weight decay."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(7)
    w_true = torch.randn(D, K, generator=g)
    as64 = lambda batch: {k: v.double() if v.is_floating_point() else v for k, v in batch.items()}  # noqa: E731
    train, val = as64(synthetic_batch(16, g, w_true)), as64(synthetic_batch(16, g, w_true))
    student = LinearStudent().double()
    lam, tau, alpha, beta = 0.4, 2.0, 0.7, 0.05
    loss = build_loss("msd", weighting="meta", lam=lam, tau=tau, meta_alpha=alpha, meta_lr=beta, meta_hidden=8)
    loss.prepare(num_labels=K).double()
    net = loss.weight_net
    with torch.no_grad():  # a non-trivial starting point (the net's last layer starts at zero)
        net.out.weight.normal_(0, 0.5, generator=g)
        net.out.bias.copy_(torch.tensor([0.3, -0.2, 0.1]))
    before = {k: v.detach().clone() for k, v in net.named_parameters()}
    W, b = student.fc.weight.detach().clone(), student.fc.bias.detach().clone()

    expected = {}
    for name, p in net.named_parameters():
        grad = torch.zeros_like(p)
        for idx in [(i,) for i in range(3)] if p.dim() == 1 else [(0, 0), (1, 3), (2, 7)]:
            vals = []
            for h in (1e-6, -1e-6):
                with torch.no_grad():
                    p[idx] = before[name][idx] + h
                vals.append(_lookahead_meta_loss(net, train, val, W=W, b=b, lam=lam, tau=tau, alpha=alpha))
                with torch.no_grad():
                    p[idx] = before[name][idx]
            grad[idx] = (vals[0] - vals[1]) / 2e-6
        expected[name] = grad
    meta_weight_step(student, loss, train, val, meta_optimizer=loss.make_meta_optimizer(), make_inputs=make_inputs)
    after = dict(net.named_parameters())
    checked = 0
    for name, grad in expected.items():
        for idx in [(i,) for i in range(3)] if grad.dim() == 1 else [(0, 0), (1, 3), (2, 7)]:
            step = (before[name][idx] - after[name][idx]).item()
            assert step == pytest.approx(beta * grad[idx].item(), rel=1e-5, abs=1e-10), (name, idx)
            checked += abs(step) > 1e-6
    assert checked >= 6  # the net did move, by exactly beta times the meta gradient (no decay, no momentum)
