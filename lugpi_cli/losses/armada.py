"""ARMADA: distilling a fixed (possibly black-box) multimodal teacher through aligners."""

from __future__ import annotations

from typing import ClassVar

import torch.nn.functional as F
from torch import Tensor, nn

from lugpi_cli.loss_specs import ARMADA_MANIFOLDS, LOSS_SPECS, LossSpec
from lugpi_cli.losses.base import DistillInputs, DistillLoss, LossOutput, Option
from lugpi_cli.losses.kd import need
from lugpi_cli.losses.registry import register_loss

__all__ = ["ArmadaLoss", "manifold_loss"]

MANIFOLDS = ARMADA_MANIFOLDS


def manifold_loss(p_s: Tensor, p_t: Tensor, kind: str) -> Tensor:
    """The manifold-alignment term between the student's and teacher's projections (B, D).

    ``cosine``: ``1 - cos(mean_b P_t, mean_b P_s)``; ``euclid``: MSE of the batch means (mean over D);
    ``pointwise``: per-sample MSE, averaged (``F.mse_loss(P_s, P_t)``).
    """
    if kind == "cosine":
        return 1.0 - F.cosine_similarity(p_s.mean(dim=0), p_t.mean(dim=0), dim=0)
    if kind == "euclid":
        return F.mse_loss(p_s.mean(dim=0), p_t.mean(dim=0))
    if kind == "pointwise":
        return F.mse_loss(p_s, p_t)
    raise ValueError(f"unknown manifold loss {kind!r}; choose one of {', '.join(MANIFOLDS)}")


def _prob_mse(z_t: Tensor, z_s: Tensor, tau: float) -> Tensor:
    """``MSE(softmax(z_t / tau), softmax(z_s / tau))``, a mean over batch and classes."""
    p_s = F.softmax(z_s / tau, dim=-1)
    return F.mse_loss(p_s, F.softmax(z_t.to(p_s.dtype) / tau, dim=-1))


@register_loss("armada")
class ArmadaLoss(DistillLoss):
    r"""ARMADA's student objective: aligners for a fixed, black-box generative teacher
    (Sengupta, Dixit, Akhtar & Chakraborty, "From Images to Words: Efficient Cross-Modal Knowledge
    Distillation to Language Models from Black-box Teachers", arXiv:2603.10877).

    .. math::

        \mathcal{L} &= \alpha\,\mathcal{L}_{out} + (1 - \alpha)\,\mathcal{L}_{task} + \beta\,\mathcal{L}_{manifold} \\
        \mathcal{L}_{task} &= \mathrm{CE}(z_{s1}, y) + \gamma\,\mathrm{CE}(z_{s2}, y) \\
        \mathcal{L}_{out} &= \tau^2\,\big[\mathrm{MSE}(\sigma(z_{t1}/\tau), \sigma(z_{s1}/\tau))
                            + \gamma\,\mathrm{MSE}(\sigma(z_{t2}/\tau), \sigma(z_{s2}/\tau))\big]

    Teacher side (trained once with the frozen teacher and cached): ``z_t1`` the teacher-side MLP
    head's logits (``teacher_logits``), ``z_t2`` the auxiliary classifier on the orthogonal
    projection (``teacher_extra["logits_aux"]``), ``P_t`` the projected teacher vector, width ``D``
    (``teacher_extra["manifold"]``). Student side (training-only parameters of this module):
    ``P_s = self.projection(e_S)``, a bias-free ``nn.Linear(d_S, D)`` of the pooled text
    representation ``e_S`` (``student_embedding``), and ``z_s2 = self.aux_classifier(P_s)``, an
    ``nn.Linear(D, k)``; ``z_s1`` is the student's own logits. ``sigma`` is the softmax; the MSEs are
    means over batch and classes. ``manifold`` chooses ``L_manifold`` (:func:`manifold_loss`):
    ``cosine`` (default), ``euclid`` or ``pointwise``.

    Defaults: ``alpha=0.5, beta=1, gamma=1, tau=5``, ``alpha`` in [0, 1]. Checked against the paper's
    text kept with this project (its abstract and figure captions): ``alpha`` weighs the output
    alignment, ``beta`` the manifold alignment between the teacher-side aligner and the student, and
    ``gamma`` the auxiliary output (Fig. 3), with several choices of ``L_manifold`` compared (Fig. 4).
    That text states no equation or default value, so the form above - ``1 - alpha`` on the task term,
    MSE means rather than sums, ``tau = 5`` and the three manifold losses - is this implementation's.

    Parameters. ``teacher_dim`` is the width ``D`` of ``P_t`` (not of ``teacher_embedding``).
    ``self.projection`` is created in ``__init__`` when both widths are given (``build_loss(...,
    student_dim=d_S, teacher_dim=D)``); ``self.aux_classifier`` also needs the number of classes, so
    call ``loss.prepare(d_S, D, num_labels)`` (idempotent) before building the optimizer - e.g. after
    reading one cached teacher record (``D = record["manifold"].shape[-1]``, ``k =
    record["logits"].shape[-1]``). Otherwise both are created at the first forward, and the caller
    must add them to the optimizer itself. ``gamma = 0`` needs no auxiliary classifier, and
    ``beta = gamma = 0`` no projection. ``parts``: ``ce``, ``ce_aux``, ``out``, ``out_aux`` (the
    MSEs without ``tau^2``) and ``manifold``, those in use.
    """

    spec: ClassVar[LossSpec] = LOSS_SPECS["armada"]  # options, checks, what it reads
    options: ClassVar[dict[str, Option]] = spec.options
    all_teacher_fields: ClassVar[frozenset[str]] = spec.all_teacher_fields

    def __init__(
        self,
        *,
        alpha: float = 0.5,
        beta: float = 1.0,
        gamma: float = 1.0,
        tau: float = 5.0,
        manifold: str = "cosine",
        student_dim: int | None = None,
        teacher_dim: int | None = None,
        num_labels: int | None = None,
    ):
        super().__init__(alpha=alpha, beta=beta, gamma=gamma, tau=tau, manifold=manifold)
        h = self.hparams
        self.alpha: float = h["alpha"]
        self.beta: float = h["beta"]
        self.gamma: float = h["gamma"]
        self.tau: float = h["tau"]
        self.manifold: str = h["manifold"]
        self.projection: nn.Linear | None = None
        self.aux_classifier: nn.Linear | None = None
        if student_dim is not None and teacher_dim is not None:
            self.prepare(student_dim, teacher_dim, num_labels)

    # -- what it needs -----------------------------------------------------------------

    @property
    def uses_projection(self) -> bool:
        return self.beta > 0 or self.gamma > 0

    @property
    def prepared(self) -> bool:
        """Whether every student-side parameter the options need exists."""
        return (not self.uses_projection or self.projection is not None) and (
            self.gamma == 0 or self.aux_classifier is not None
        )

    def prepare(self, student_dim: int, teacher_dim: int, num_labels: int | None = None) -> ArmadaLoss:
        """Create ``P_s`` (``student_dim -> teacher_dim``) and, given ``num_labels``, the auxiliary classifier."""
        if not self.uses_projection:
            return self
        if self.projection is None:
            self.projection = nn.Linear(int(student_dim), int(teacher_dim), bias=False)
        elif (self.projection.in_features, self.projection.out_features) != (int(student_dim), int(teacher_dim)):
            raise ValueError(
                f"the projection maps width {self.projection.in_features} -> {self.projection.out_features}, "
                f"not {student_dim} -> {teacher_dim}"
            )
        if self.gamma > 0 and num_labels is not None:
            if self.aux_classifier is None:
                self.aux_classifier = nn.Linear(int(teacher_dim), int(num_labels)).to(
                    device=self.projection.weight.device, dtype=self.projection.weight.dtype
                )
            elif self.aux_classifier.out_features != int(num_labels):
                raise ValueError(f"the auxiliary classifier has {self.aux_classifier.out_features} classes, "
                                 f"not {num_labels}")
        return self

    def prepare_for(self, context) -> ArmadaLoss:
        """``P_s`` (the student-side projection onto the teacher's manifold) and the auxiliary classifier of
        ARMADA's loss (see this module's docstring and the ARMADA summary in ../shared/seeds), when the
        teacher's manifold width is known."""
        if context.teacher_dim is None:
            return self
        return self.prepare(context.student_dim, context.teacher_dim, context.num_labels)

    # -- the loss ------------------------------------------------------------------------

    def forward(self, inputs: DistillInputs) -> LossOutput:
        z_s1 = inputs.student_logits
        y = inputs.labels
        parts: dict[str, Tensor] = {}
        ce = F.cross_entropy(z_s1, y)
        parts["ce"] = ce.detach()
        task = ce
        total = z_s1.new_zeros(())

        p_s = z_s2 = None
        if self.uses_projection:
            e_s = inputs.student_embedding
            width = self._teacher_width(inputs)
            if not self.prepared:  # lazily: the caller must optimise these too
                self.prepare(e_s.shape[-1], width, z_s1.shape[-1])
                self.to(device=e_s.device, dtype=e_s.dtype)
            if self.projection.in_features != e_s.shape[-1]:
                raise ValueError(f"the projection reads width {self.projection.in_features}, "
                                 f"got a student embedding of width {e_s.shape[-1]}")
            p_s = self.projection(e_s)
            if self.gamma > 0:
                z_s2 = self.aux_classifier(p_s)
                ce_aux = F.cross_entropy(z_s2, y)
                parts["ce_aux"] = ce_aux.detach()
                task = task + self.gamma * ce_aux
        total = total + (1 - self.alpha) * task

        if self.alpha > 0:
            z_t1 = need(inputs.teacher_logits, "teacher_logits", self, like=z_s1)
            out = _prob_mse(z_t1, z_s1, self.tau)
            parts["out"] = out.detach()
            l_out = out
            if self.gamma > 0:
                z_t2 = need(inputs.teacher_extra.get("logits_aux"), 'teacher_extra["logits_aux"]', self, like=z_s2)
                out_aux = _prob_mse(z_t2, z_s2, self.tau)
                parts["out_aux"] = out_aux.detach()
                l_out = l_out + self.gamma * out_aux
            total = total + self.alpha * self.tau**2 * l_out

        if self.beta > 0:
            p_t = need(inputs.teacher_extra.get("manifold"), 'teacher_extra["manifold"]', self)
            if p_t.shape != p_s.shape:
                raise ValueError(f'teacher_extra["manifold"] shape {tuple(p_t.shape)} != projected student '
                                 f"shape {tuple(p_s.shape)}")
            man = manifold_loss(p_s, p_t.to(p_s.dtype), self.manifold)
            parts["manifold"] = man.detach()
            total = total + self.beta * man
        return LossOutput(total=total, parts=parts)

    def _teacher_width(self, inputs: DistillInputs) -> int:
        if self.projection is not None:
            return self.projection.out_features
        p_t = inputs.teacher_extra.get("manifold")
        if p_t is None:
            raise ValueError(
                f"loss {self.name!r} does not know the width D of the teacher's projection: pass "
                f"teacher_dim=D to build_loss / prepare(student_dim, D, num_labels), or provide "
                f'teacher_extra["manifold"]'
            )
        return int(p_t.shape[-1])
