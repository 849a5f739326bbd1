"""Logit and hint distillation: Hinton et al.'s KD and Romero et al.'s FitNets.

Also the small pieces the other objectives share: the per-sample softened KL
:func:`kl_per_sample` and :func:`need` (a teacher output that must be present). The options'
upper bounds are declared with the tables, in :mod:`lugpi_cli.loss_specs`.
"""

from __future__ import annotations

from typing import ClassVar

import torch.nn.functional as F
from torch import Tensor, nn

from lugpi_cli.loss_specs import LOSS_SPECS, LossSpec
from lugpi_cli.losses.base import (
    DistillInputs,
    DistillLoss,
    LossOutput,
    Option,
)
from lugpi_cli.losses.lugpi import squared_l2
from lugpi_cli.losses.registry import register_loss

__all__ = ["FitNetLoss", "KDLoss", "kl_per_sample", "need", "soft_kl"]


# -- shared pieces ---------------------------------------------------------------------


def kl_per_sample(teacher_logits: Tensor, student_logits: Tensor, tau: float = 1.0) -> Tensor:
    """``KL(softmax(z_t / tau) || softmax(z_s / tau))`` per row, shape (B,). No tau^2 factor."""
    log_s = F.log_softmax(student_logits / tau, dim=-1)
    log_t = F.log_softmax(teacher_logits.to(log_s.dtype) / tau, dim=-1)
    return (log_t.exp() * (log_t - log_s)).sum(dim=-1)


def soft_kl(teacher_logits: Tensor, student_logits: Tensor, tau: float = 1.0) -> Tensor:
    """Batch-mean ``KL(t_tau || s_tau)`` exactly as ``F.kl_div(..., reduction="batchmean")``. No tau^2."""
    log_s = F.log_softmax(student_logits / tau, dim=-1)
    t = F.softmax(teacher_logits.to(log_s.dtype) / tau, dim=-1)
    return F.kl_div(log_s, t, reduction="batchmean")


def need(t: Tensor | None, field: str, loss: DistillLoss, *, like: Tensor | None = None) -> Tensor:
    """``t`` detached; a ValueError naming ``field`` when it is None (or its shape differs from ``like``)."""
    if t is None:
        raise ValueError(f"loss {loss.name!r} ({loss.extra_repr()}) needs {field}, but it is None")
    if like is not None and t.shape != like.shape:
        raise ValueError(f"{field} shape {tuple(t.shape)} != student_logits shape {tuple(like.shape)}")
    return t.detach()


# -- KD --------------------------------------------------------------------------------


@register_loss("kd")
class KDLoss(DistillLoss):
    r"""Knowledge distillation (Hinton, Vinyals & Dean 2015, "Distilling the Knowledge in a Neural Network").

    .. math::

        \mathcal{L} = \lambda\,\mathrm{CE}(y, s)
            + (1 - \lambda)\,\tau^2\,\mathrm{KL}\big(\mathrm{softmax}(z_T/\tau)\,\Vert\,\mathrm{softmax}(z_S/\tau)\big)

    with the KL a batch mean (``F.kl_div(log_softmax(z_S/tau), softmax(z_T/tau), reduction="batchmean")``);
    the ``tau^2`` factor keeps the soft term's gradients on the scale of the hard term's as tau changes
    (the paper, Sec. 2). ``lam`` is lambda (``lambda`` is a Python keyword): ``--option lam=0.5``.
    ``lam=1`` is plain fine-tuning and reads no teacher output.

    ``parts``: ``ce`` and ``kl`` (the batch-mean KL, without ``tau^2``).
    """

    spec: ClassVar[LossSpec] = LOSS_SPECS["kd"]  # options, checks, what it reads
    options: ClassVar[dict[str, Option]] = spec.options
    all_teacher_fields: ClassVar[frozenset[str]] = spec.all_teacher_fields

    def __init__(self, *, lam: float = 0.5, tau: float = 4.0, student_dim: int | None = None,
                 teacher_dim: int | None = None):
        super().__init__(lam=lam, tau=tau)
        self.lam: float = self.hparams["lam"]
        self.tau: float = self.hparams["tau"]

    def forward(self, inputs: DistillInputs) -> LossOutput:
        z_s = inputs.student_logits
        ce = F.cross_entropy(z_s, inputs.labels)
        parts: dict[str, Tensor] = {"ce": ce.detach()}
        total = self.lam * ce
        if self.lam < 1:
            z_t = need(inputs.teacher_logits, "teacher_logits", self, like=z_s)
            kl = soft_kl(z_t, z_s, self.tau)
            total = total + (1 - self.lam) * self.tau**2 * kl
            parts["kl"] = kl.detach()
        return LossOutput(total=total, parts=parts)


# -- FitNets ---------------------------------------------------------------------------


@register_loss("fitnet")
class FitNetLoss(DistillLoss):
    r"""Hint-based distillation (Romero et al., ICLR 2015, "FitNets: Hints for Thin Deep Nets").

    .. math::

        \mathcal{L} = \mathrm{CE}(y, s) + \beta\,\frac{1}{d_T}\lVert r(e_S) - e_T \rVert_2^2
        \quad(\texttt{l2\_reduction="mean"}),\qquad
        \mathcal{L} = \mathrm{CE}(y, s) + \beta\,\lVert r(e_S) - e_T \rVert_2^2
        \quad(\texttt{"sum"})

    where ``r`` is a learned linear regressor ``nn.Linear(d_S, d_T)`` (with bias; always present, also
    when the widths agree, as in the paper) applied to the student's embedding ``e_S`` (taken before the
    student head's dropout), and ``e_T`` is the teacher's cached embedding (the "hint"). The default
    ``l2_reduction="mean"`` is an MSE: the mean over the ``d_T`` embedding dims, then over the batch
    (``F.mse_loss``); ``"sum"`` is the squared L2 norm over the dims (batch mean), the paper's sum.

    Where this departs from the paper, or the paper is silent:

    - The paper trains in two stages (first the hint layer alone, then KD on the whole student); here
      hint and task are one joint objective, as in most re-implementations (e.g. CRD's ``HintLoss``).
    - The paper's hint loss is ``1/2 ||u_h - r(v_g)||^2`` summed over units (``l2_reduction="sum"``, with
      ``beta = 1/2``); the default MSE divides by the width instead, so ``beta`` does not have to shrink
      with the teacher's width. Default ``beta=1`` (CRD's benchmark uses 100 with CNN feature maps;
      choose by validation).
    - The hint/guided layers are the embeddings the classification layers read (no intermediate
      layers are cached), and the paper's convolutional regressor becomes a linear map.

    ``r`` is a training-only parameter of this module (``self.regressor``), created in ``__init__``
    when both widths are given, else by :meth:`prepare`, else at the first forward (then the caller
    must add it to the optimizer itself). ``beta=0`` is plain fine-tuning. ``parts``: ``ce``, ``hint``.
    """

    spec: ClassVar[LossSpec] = LOSS_SPECS["fitnet"]  # options, checks, what it reads
    options: ClassVar[dict[str, Option]] = spec.options
    all_teacher_fields: ClassVar[frozenset[str]] = spec.all_teacher_fields

    def __init__(self, *, beta: float = 1.0, l2_reduction: str = "mean", student_dim: int | None = None,
                 teacher_dim: int | None = None):
        super().__init__(beta=beta, l2_reduction=l2_reduction)
        self.beta: float = self.hparams["beta"]
        self.l2_reduction: str = self.hparams["l2_reduction"]
        self.regressor: nn.Linear | None = None
        if student_dim is not None and teacher_dim is not None:
            self.prepare(student_dim, teacher_dim)

    def prepare(self, student_dim: int, teacher_dim: int, num_labels: int | None = None) -> FitNetLoss:
        """Create the regressor now (if the hint term is on and it does not exist yet); ``num_labels`` is
        accepted (and unused) so every loss's ``prepare(student_dim, teacher_dim, num_labels)`` agrees."""
        if self.beta > 0 and self.regressor is None:
            self.regressor = nn.Linear(int(student_dim), int(teacher_dim))
        return self

    def prepare_for(self, context) -> FitNetLoss:
        """The regressor, when the teacher's embedding width is known."""
        return self if context.teacher_dim is None else self.prepare(context.student_dim, context.teacher_dim)

    def forward(self, inputs: DistillInputs) -> LossOutput:
        z_s = inputs.student_logits
        ce = F.cross_entropy(z_s, inputs.labels)
        parts: dict[str, Tensor] = {"ce": ce.detach()}
        total = ce
        if self.beta > 0:
            e_t = need(inputs.teacher_embedding, "teacher_embedding", self)
            e_s = inputs.student_embedding
            if self.regressor is None:
                self.prepare(e_s.shape[-1], e_t.shape[-1])  # lazily: the caller must optimise it too
                self.regressor.to(device=e_s.device, dtype=e_s.dtype)
            if self.regressor.in_features != e_s.shape[-1] or self.regressor.out_features != e_t.shape[-1]:
                raise ValueError(
                    f"the regressor maps width {self.regressor.in_features} -> {self.regressor.out_features}, "
                    f"but got student width {e_s.shape[-1]} and teacher width {e_t.shape[-1]}"
                )
            hint = squared_l2(self.regressor(e_s), e_t.to(e_s.dtype), self.l2_reduction)
            total = total + self.beta * hint
            parts["hint"] = hint.detach()
        return LossOutput(total=total, parts=parts)
