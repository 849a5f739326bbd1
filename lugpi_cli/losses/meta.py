"""Meta-learned per-sample weights for MSD's three distillation terms: MSD's Algorithm 1.

MSD (Jin et al. 2021, Sec. 3.4) learns its weights ``(w_i, w_i^v, w_i^t) = f(t(x_i), t(x_i^v),
t(x_i^t); Theta)`` (Eq. 8) with a small MLP ending in a sigmoid, online, after Meta-Weight-Net
(Shu et al., NeurIPS 2019): the net reads the three teacher probability vectors of a sample and
outputs the three weights; the validation split is the meta-data set.

One iteration of Algorithm 1 (:func:`meta_weight_step` does lines 4-5; the trainer's ordinary step
is line 6):

4. look-ahead: ``w_hat(Theta) = w - alpha * grad_w L_student(w, Theta)`` (Eq. 1 with the net's
   weights, on the training batch), keeping the graph (``create_graph=True``), through
   ``torch.func.functional_call`` so the student's own parameters are untouched; ``alpha`` is
   ``MsdLoss.meta_alpha``;
5. ``Theta <- Theta - beta * grad_Theta L_meta(w_hat(Theta))``, ``L_meta`` the cross-entropy of the
   looked-ahead student on a validation batch (Eq. 9), back-propagated (second order, through
   ``w_hat``) into the net only; ``beta`` is ``MsdLoss.meta_lr`` and the step is plain SGD
   (``MsdLoss.make_meta_optimizer``: no momentum, no weight decay);
6. the real student step uses the updated net's weights without gradient (``MsdLoss.forward``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lugpi_cli.losses.base import DistillInputs

if TYPE_CHECKING:  # pragma: no cover
    from lugpi_cli.losses.msd import MsdLoss

__all__ = ["MetaWeightNet", "meta_weight_step"]


class MetaWeightNet(nn.Module):
    """``[p_multi, p_text, p_image]`` (B, 3k) -> three weights in (0, 1) (B, 3).

    One hidden ReLU layer (Meta-Weight-Net's shape; 100 units by default) and a
    sigmoid. The last layer starts at zero, so every weight starts at exactly 0.5.
    """

    def __init__(self, num_labels: int, *, num_terms: int = 3, hidden: int = 100):
        super().__init__()
        self.num_labels = int(num_labels)
        self.num_terms = int(num_terms)
        self.hidden = nn.Linear(self.num_terms * self.num_labels, int(hidden))
        self.out = nn.Linear(int(hidden), self.num_terms)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, probs: Tensor) -> Tensor:
        if probs.shape[-1] != self.num_terms * self.num_labels:
            raise ValueError(
                f"the weight net reads {self.num_terms} x {self.num_labels} probabilities, got width {probs.shape[-1]}"
            )
        return torch.sigmoid(self.out(F.relu(self.hidden(probs))))


def _labels(batch: Any) -> Tensor:
    try:
        return batch["labels"]
    except (KeyError, TypeError, IndexError):
        raise ValueError("the validation batch for the meta step needs class indices under 'labels'") from None


def _checked_inner_lr(loss: MsdLoss, inner_lr: float | None) -> float:
    """The look-ahead step size alpha (default ``loss.meta_alpha``), for an msd loss with meta weighting."""
    if loss.weighting != "meta":
        raise ValueError(f"meta_weight_step needs an msd loss with weighting='meta', got {loss.weighting!r}")
    if inner_lr is None:
        inner_lr = loss.meta_alpha
    if not inner_lr > 0:
        raise ValueError(f"inner_lr must be positive, got {inner_lr!r}")
    return inner_lr


def meta_weight_step(
    student: nn.Module,
    loss: MsdLoss,
    train_batch: dict,
    val_batch: dict,
    *,
    inner_lr: float | None = None,
    meta_optimizer: torch.optim.Optimizer,
    make_inputs: Callable[[Any, dict], DistillInputs],
) -> dict[str, float]:
    """One Meta-Weight-Net update of ``loss.weight_net`` (see the module docstring).

    ``student(batch)`` returns an object with ``.logits`` (and ``.embedding``);
    ``make_inputs(output, train_batch)`` builds the :class:`DistillInputs` of the
    training batch, teacher outputs included; the validation batch only needs
    ``val_batch["labels"]`` (no teacher output is read for it). ``inner_lr`` is
    the look-ahead's SGD step size alpha (default ``loss.meta_alpha``);
    ``meta_optimizer`` takes the net's step (``loss.make_meta_optimizer()``:
    SGD with ``lr = meta_lr``, as Algorithm 1 states). Only the weight net's parameters receive
    gradients: the student's ``.grad`` are left untouched, so the caller's real
    step (``loss(inputs).total.backward(); optimizer.step()``) follows as usual.

    Returns ``{"meta_loss", "lookahead_loss", "w_multi", "w_text", "w_image"}``
    (the weights are batch means on the training batch, before the update).
    """
    inner_lr = _checked_inner_lr(loss, inner_lr)

    # 1. the look-ahead student, as a function of the weight net's output
    params = {n: p for n, p in student.named_parameters() if p.requires_grad}
    frozen = {n: p for n, p in student.named_parameters() if not p.requires_grad}
    buffers = dict(student.named_buffers())
    output = torch.func.functional_call(student, {**params, **frozen, **buffers}, (train_batch,))
    inputs = make_inputs(output, train_batch)
    net = loss.weight_net_for(inputs)
    weights = loss.meta_weights(inputs, grad=True)
    train_loss = loss.compute(inputs, weights).total
    names = list(params)
    grads = torch.autograd.grad(train_loss, [params[n] for n in names], create_graph=True, allow_unused=True)
    ahead = {n: (params[n] - inner_lr * g if g is not None else params[n]) for n, g in zip(names, grads)}

    # 2. the meta loss: plain CE of the looked-ahead student on clean validation data
    val_output = torch.func.functional_call(student, {**ahead, **frozen, **buffers}, (val_batch,))
    meta_loss = F.cross_entropy(val_output.logits, _labels(val_batch))
    meta_params = [p for p in net.parameters() if p.requires_grad]
    meta_grads = torch.autograd.grad(meta_loss, meta_params, allow_unused=True)
    meta_grads = _averaged_across_processes(meta_params, [None if g is None else g.detach() for g in meta_grads])
    meta_optimizer.zero_grad(set_to_none=True)
    for p, g in zip(meta_params, meta_grads):
        p.grad = g
    meta_optimizer.step()

    w = weights.detach().mean(dim=0)
    return {
        "meta_loss": float(meta_loss.detach()),
        "lookahead_loss": float(train_loss.detach()),
        "w_multi": float(w[0]),
        "w_text": float(w[1]),
        "w_image": float(w[2]),
    }


def _averaged_across_processes(params: list[Tensor], grads: list[Tensor | None]) -> list[Tensor | None]:
    """The mean of each gradient over the processes of a DDP run (as is, in one process).

    Every rank takes its meta step on its own training batch; averaging keeps the
    ranks' weight nets identical, as DDP does for the student. A gradient missing
    on one rank counts as zero there (in one process it stays missing, and the
    optimizer leaves that parameter alone).
    """
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return grads
    world = dist.get_world_size()
    out = [torch.zeros_like(p) if g is None else g.clone() for p, g in zip(params, grads)]
    for g in out:
        dist.all_reduce(g, op=dist.ReduceOp.SUM)
        g.div_(world)
    return out
