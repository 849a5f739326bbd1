"""Self-distillation from an exponential-moving-average teacher (no privileged information).

The loss (:class:`EmaLoss`, registered as ``ema``) plus the helpers the trainer
calls: :func:`make_ema_model`, :func:`ema_update_`, :func:`mixup_lambda` and
:func:`mixed_cross_entropy`.
"""

from __future__ import annotations

import copy
import math
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lugpi_cli.loss_specs import LOSS_SPECS, LossSpec
from lugpi_cli.losses.base import DistillInputs, DistillLoss, LossOutput, Option
from lugpi_cli.losses.kd import soft_kl
from lugpi_cli.losses.registry import register_loss

__all__ = ["EmaLoss", "ema_update_", "make_ema_model", "mixed_cross_entropy", "mixup_lambda"]


# -- helpers for the trainer ------------------------------------------------------------------


def make_ema_model(model: nn.Module) -> nn.Module:
    """A frozen copy of ``model`` to serve as the EMA teacher (``requires_grad=False``, eval mode)."""
    ema = copy.deepcopy(model)
    ema.requires_grad_(False)
    return ema.eval()


@torch.no_grad()
def ema_update_(ema_model: nn.Module, model: nn.Module, decay: float) -> nn.Module:
    """In place: ``p_ema <- decay * p_ema + (1 - decay) * p`` for every parameter and every
    floating-point buffer (BatchNorm running statistics, ...); other buffers (integer counters) are
    copied. After ``n`` updates from ``p_0``: ``p_ema_n = d^n p_0 + (1 - d) sum_{i=1..n} d^(n-i) p_i``.
    """
    if not 0.0 <= decay <= 1.0:
        raise ValueError(f"ema decay must be in [0, 1], got {decay!r}")
    ema_state = dict(ema_model.named_parameters())
    ema_state.update(ema_model.named_buffers())
    own = dict(model.named_parameters())
    own.update(model.named_buffers())
    if ema_state.keys() != own.keys():
        missing = sorted(set(own) ^ set(ema_state))
        raise ValueError(f"the EMA model and the model differ in parameters/buffers: {missing[:5]}")
    for name, e in ema_state.items():
        p = own[name].detach()
        if e.is_floating_point() or e.is_complex():
            e.mul_(decay).add_(p.to(e.dtype), alpha=1.0 - decay)
        else:
            e.copy_(p)
    return ema_model


def _log_gamma_sample(shape: float, generator: torch.Generator | None) -> float:
    """``log X`` with ``X ~ Gamma(shape, 1)`` (Marsaglia & Tsang 2000; shape < 1 by the boost
    ``X = Gamma(shape + 1) * U^(1/shape)``), from ``generator``'s normal and uniform draws."""
    if shape < 1.0:
        u = float(torch.rand((), generator=generator, dtype=torch.float64))
        return _log_gamma_sample(shape + 1.0, generator) + math.log(max(u, 1e-300)) / shape
    d = shape - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)
    while True:
        x = float(torch.randn((), generator=generator, dtype=torch.float64))
        v = (1.0 + c * x) ** 3
        if v <= 0:
            continue
        u = float(torch.rand((), generator=generator, dtype=torch.float64))
        if math.log(max(u, 1e-300)) < 0.5 * x * x + d - d * v + d * math.log(v):
            return math.log(d * v)


def mixup_lambda(alpha: float, generator: torch.Generator | None = None) -> float:
    """A mixing coefficient ``lam ~ Beta(alpha, alpha)`` (Zhang et al. 2018, mixup), drawn only from
    ``generator`` (a ``torch.Generator``; None uses torch's global one). ``alpha <= 0`` (mixup off) gives 1.0.
    """
    if not math.isfinite(alpha):
        raise ValueError(f"mixup alpha must be finite, got {alpha!r}")
    if alpha <= 0:
        return 1.0
    log_x = _log_gamma_sample(float(alpha), generator)
    log_y = _log_gamma_sample(float(alpha), generator)
    return 1.0 / (1.0 + math.exp(min(log_y - log_x, 700.0)))  # X / (X + Y), overflow-safe


def mixed_cross_entropy(logits: Tensor, labels_a: Tensor, labels_b: Tensor | None = None,
                        lam: Tensor | float | None = None) -> Tensor:
    """``lam * CE(y_a) + (1 - lam) * CE(y_b)`` (plain ``CE(y_a)`` without ``labels_b``)."""
    ce_a = F.cross_entropy(logits, labels_a)
    if labels_b is None:
        return ce_a
    if lam is None:
        raise ValueError("mixup labels_b given without the mixing coefficient lam")
    lam_t = torch.as_tensor(lam, dtype=ce_a.dtype, device=ce_a.device).reshape(())
    return lam_t * ce_a + (1 - lam_t) * F.cross_entropy(logits, labels_b)


# -- the loss ------------------------------------------------------------------------------------


@register_loss("ema")
class EmaLoss(DistillLoss):
    r"""Self-distillation from a moving-average teacher (Mean Teacher, Tarvainen & Valpola 2017;
    with the KD objective of Hinton et al. 2015) - no privileged information, no stored teacher.

    .. math::

        \mathcal{L} = \mathrm{CE}(y, s) + w\,\tau^2\,\mathrm{KL}\big(\mathrm{softmax}(z_{EMA}/\tau)
                      \,\Vert\,\mathrm{softmax}(z_S/\tau)\big),
        \qquad \theta_{EMA} \leftarrow d\,\theta_{EMA} + (1 - d)\,\theta

    (batch-mean KL). ``z_EMA`` are the logits of the EMA copy of the student on the same batch: the
    *trainer* computes them and passes them as ``teacher_logits`` - nothing is read from the store
    (``all_teacher_fields`` is empty, ``self_teacher`` is True). With mixup the trainer passes the
    second label set as ``student_extra["labels_b"]`` and the mixing coefficient as
    ``student_extra["lam"]`` (scalar tensor); the CE becomes ``lam CE(y_a) + (1 - lam) CE(y_b)``.

    Options: ``weight`` (``w``, default 1), ``tau`` (default 1: self-distillation with an EMA/Mean
    Teacher target is usually unsoftened - Mean Teacher and PS-KD use the plain softmax - so the
    ``tau^2`` factor is 1 by default; raise it for Hinton-style softening), ``ema_decay`` (``d``,
    default 0.999, Mean Teacher's value; consumed by the trainer through :func:`ema_update_` after
    every optimizer step) and ``mixup`` (the ``Beta(A, A)`` parameter, 0 = off; consumed by the
    trainer through :func:`mixup_lambda`). ``weight=0`` is plain CE (with mixup if on) and needs
    no EMA logits. ``parts``: ``ce`` and ``kl`` (without ``tau^2``).

    The self-distillation draft this control follows (Tiwawongrut & Silpasuwanchai, "Self-Distillation
    using image-language representation") describes a moving-average teacher, interpolated inputs
    for it and a student that matches the teacher's softmax outputs; it gives no equation or default,
    so the defaults above are Mean Teacher's.
    """

    #: The trainer computes ``teacher_logits`` itself with an EMA copy of the student.
    self_teacher: ClassVar[bool] = True

    spec: ClassVar[LossSpec] = LOSS_SPECS["ema"]  # options, checks, what it reads
    options: ClassVar[dict[str, Option]] = spec.options
    all_teacher_fields: ClassVar[frozenset[str]] = spec.all_teacher_fields

    def objective_class(self) -> type:
        """Self-distillation trains with the EMA teacher beside the student
        (:class:`~lugpi_cli.training.objectives.EmaObjective`): the teacher's weights follow
        theta_T <- d * theta_T + (1 - d) * theta_S after every step (the EMA self-distillation paper in
        ../shared/seeds; ``ema_decay`` = d)."""
        from lugpi_cli.training.objectives import EmaObjective

        return EmaObjective

    def __init__(self, *, weight: float = 1.0, tau: float = 1.0, ema_decay: float = 0.999, mixup: float = 0.0,
                 student_dim: int | None = None, teacher_dim: int | None = None):
        super().__init__(weight=weight, tau=tau, ema_decay=ema_decay, mixup=mixup)
        h = self.hparams
        self.weight: float = h["weight"]
        self.tau: float = h["tau"]
        self.ema_decay: float = h["ema_decay"]
        self.mixup: float = h["mixup"]

    @property
    def needs_ema_teacher(self) -> bool:
        """Whether the trainer must compute the EMA teacher's logits for each batch."""
        return self.weight > 0

    def forward(self, inputs: DistillInputs) -> LossOutput:
        z_s = inputs.student_logits
        extra = inputs.student_extra
        ce = mixed_cross_entropy(z_s, inputs.labels, extra.get("labels_b"), extra.get("lam"))
        parts: dict[str, Tensor] = {"ce": ce.detach()}
        total = ce
        if self.weight > 0:
            z_t = inputs.teacher_logits
            if z_t is None:
                raise ValueError(
                    f"loss {self.name!r} needs teacher_logits: the EMA teacher's logits on this batch, "
                    f"which the trainer computes (this loss reads nothing from the store)"
                )
            if z_t.shape != z_s.shape:
                raise ValueError(f"teacher_logits shape {tuple(z_t.shape)} != student_logits shape {tuple(z_s.shape)}")
            kl = soft_kl(z_t.detach(), z_s, self.tau)
            total = total + self.weight * self.tau**2 * kl
            parts["kl"] = kl.detach()
        return LossOutput(total=total, parts=parts)
