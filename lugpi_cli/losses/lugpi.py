"""The LUGPI distillation objective (the paper's Eq. 2)."""

from __future__ import annotations

from typing import ClassVar

import torch.nn.functional as F
from torch import Tensor, nn

from lugpi_cli.loss_specs import LOSS_SPECS, LossSpec
from lugpi_cli.losses.base import DistillInputs, DistillLoss, LossOutput, Option
from lugpi_cli.losses.registry import register_loss

__all__ = ["LugpiLoss", "soft_cross_entropy", "squared_l2"]


def soft_cross_entropy(target_probs: Tensor, student_log_probs: Tensor) -> Tensor:
    """``CE(t, s) = -sum_k t_k log s_k``, averaged over the batch."""
    return -(target_probs * student_log_probs).sum(dim=-1).mean()


def squared_l2(a: Tensor, b: Tensor, reduction: str = "sum") -> Tensor:
    """``||a - b||^2`` per row (``"sum"`` over dims; ``"mean"`` over dims = MSE), batch mean."""
    mse = F.mse_loss(a, b)  # mean over every element = per-row mean, batch mean
    return mse * a.shape[-1] if reduction == "sum" else mse


@register_loss("lugpi")
class LugpiLoss(DistillLoss):
    r"""Learning Using Generated Privileged Information, Eq. (2).

    .. math::

        \mathcal{L} = \mathrm{CE}(y, s) + \alpha\,\mathrm{CE}(t, s)
                      + \beta\,\lVert e_T - e_S \rVert_2^2,
        \qquad t = \mathrm{softmax}(z_T / \tau)

    where ``s`` is the student's softmax output, ``y`` the one-hot label,
    ``z_T`` the (cached) teacher logits softened by temperature ``tau``, and
    ``e_T``, ``e_S`` the teacher's and student's embeddings just before their
    classification layers. ``CE(t, s) = -sum_k t_k log s_k`` (batch mean).

    Paper: "Learning Using Generated Privileged Information by Text-to-Image
    Diffusion Models" (Algorithm 1, Eq. 2). Defaults are the paper's:
    alpha=3, beta=1, tau=8.

    Where the paper is silent:

    - ``soften="teacher"`` (default, the paper's text): ``s = softmax(z_S)``;
      ``soften="both"`` softens the student too: ``s = softmax(z_S / tau)``.
    - ``tau2=True`` multiplies the soft term by ``tau**2`` (Hinton et al. 2015).
    - ``l2_reduction="sum"`` (default) is the squared L2 norm over embedding
      dims; ``"mean"`` divides by the width (MSE). Both are batch means.
    - When ``e_S`` and ``e_T`` differ in width, ``e_S`` goes through a learned
      ``nn.Linear(d_S, d_T, bias=False)`` (``self.aligner``), a training-only
      parameter of this module. It is created in ``__init__`` when both
      widths are given, else by :meth:`prepare` or at the first forward (then
      the caller must add it to the optimizer itself).

    ``alpha=0, beta=0`` is plain fine-tuning with cross-entropy and reads no
    teacher output. ``parts`` holds the unweighted terms ``ce``, ``soft``
    (= CE(t, s), without the tau^2 factor) and ``l2``.
    """

    spec: ClassVar[LossSpec] = LOSS_SPECS["lugpi"]  # options, checks, what it reads
    options: ClassVar[dict[str, Option]] = spec.options
    all_teacher_fields: ClassVar[frozenset[str]] = spec.all_teacher_fields

    def __init__(
        self,
        *,
        alpha: float = 3.0,
        beta: float = 1.0,
        tau: float = 8.0,
        soften: str = "teacher",
        tau2: bool = False,
        l2_reduction: str = "sum",
        student_dim: int | None = None,
        teacher_dim: int | None = None,
    ):
        super().__init__(alpha=alpha, beta=beta, tau=tau, soften=soften, tau2=tau2, l2_reduction=l2_reduction)
        h = self.hparams
        self.alpha: float = h["alpha"]
        self.beta: float = h["beta"]
        self.tau: float = h["tau"]
        self.soften: str = h["soften"]
        self.tau2: bool = h["tau2"]
        self.l2_reduction: str = h["l2_reduction"]
        self.aligner: nn.Linear | None = None
        if student_dim is not None and teacher_dim is not None:
            self.prepare(student_dim, teacher_dim)

    # -- what it needs -----------------------------------------------------------

    @property
    def aligned(self) -> bool:
        """Whether a learned width aligner is in use."""
        return self.aligner is not None

    def prepare(self, student_dim: int, teacher_dim: int) -> LugpiLoss:
        """Create the width aligner now if the embedding term needs one."""
        if self.beta > 0 and int(student_dim) != int(teacher_dim) and self.aligner is None:
            self.aligner = nn.Linear(int(student_dim), int(teacher_dim), bias=False)
        return self

    def prepare_for(self, context) -> LugpiLoss:
        """The width aligner, when the teacher's embedding width is known."""
        return self if context.teacher_dim is None else self.prepare(context.student_dim, context.teacher_dim)

    # -- the loss ------------------------------------------------------------------

    def forward(self, inputs: DistillInputs) -> LossOutput:
        z_s = inputs.student_logits
        ce = F.cross_entropy(z_s, inputs.labels)
        total = ce
        parts: dict[str, Tensor] = {"ce": ce.detach()}

        if self.alpha > 0:
            z_t = _need(inputs.teacher_logits, "teacher_logits", self).detach()
            if z_t.shape != z_s.shape:
                raise ValueError(f"teacher_logits shape {tuple(z_t.shape)} != student_logits shape {tuple(z_s.shape)}")
            t = F.softmax(z_t.float() / self.tau, dim=-1).to(z_s.dtype)
            # CE(t, s) = -sum_k t_k log softmax(z_s)_k, batch mean: cross_entropy with probability targets (one op)
            soft = F.cross_entropy(z_s / self.tau if self.soften == "both" else z_s, t)
            factor = self.tau**2 if self.tau2 else 1.0
            total = total + self.alpha * factor * soft
            parts["soft"] = soft.detach()

        if self.beta > 0:
            e_t = _need(inputs.teacher_embedding, "teacher_embedding", self).detach()
            e_s = inputs.student_embedding
            if self.aligner is None and e_s.shape[-1] != e_t.shape[-1]:
                self.prepare(e_s.shape[-1], e_t.shape[-1])  # lazily: the caller must optimise it too
                self.aligner.to(device=e_s.device, dtype=e_s.dtype)
            if self.aligner is not None:
                if self.aligner.in_features != e_s.shape[-1] or self.aligner.out_features != e_t.shape[-1]:
                    raise ValueError(
                        f"the aligner maps width {self.aligner.in_features} -> {self.aligner.out_features}, "
                        f"but got student width {e_s.shape[-1]} and teacher width {e_t.shape[-1]}"
                    )
                e_s = self.aligner(e_s)
            elif e_s.shape != e_t.shape:
                raise ValueError(
                    f"student_embedding shape {tuple(e_s.shape)} != teacher_embedding shape {tuple(e_t.shape)}"
                )
            l2 = squared_l2(e_t.to(e_s.dtype), e_s, self.l2_reduction)
            total = total + self.beta * l2
            parts["l2"] = l2.detach()

        return LossOutput(total=total, parts=parts)


def _need(t: Tensor | None, field: str, loss: LugpiLoss) -> Tensor:
    if t is None:
        raise ValueError(
            f"loss {loss.name!r} with alpha={loss.alpha:g}, beta={loss.beta:g} needs {field}, but it is None"
        )
    return t
