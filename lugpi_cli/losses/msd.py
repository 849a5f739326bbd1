"""Modality-specific distillation (MSD), adapted to a text-only student."""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from lugpi_cli.losses.base import DistillInputs, DistillLoss, LossOutput, Option
from lugpi_cli.losses.kd import kl_per_sample, need
from lugpi_cli.losses.meta import MetaWeightNet
from lugpi_cli.losses.registry import register_loss

__all__ = ["TEACHER_FIELDS", "TERMS", "MsdLoss", "correctness_weights", "importance_weights"]

#: The three distillation terms, in the order of every (B, 3) weight tensor.
TERMS = ("multi", "text", "image")
#: Which cached teacher output each term distils: t(x), t(x^t) (image dropped), t(x^v) (text dropped).
TEACHER_FIELDS = {"multi": "logits", "text": "logits_text", "image": "logits_image"}
WEIGHTINGS = ("population", "importance", "correctness", "meta")


def _kl_rows(p: Tensor, q: Tensor, eps: float = 1e-12) -> Tensor:
    """``KL(p || q)`` per row of two probability tensors."""
    return (p * (p.clamp_min(eps).log() - q.clamp_min(eps).log())).sum(dim=-1)


def importance_weights(probs: Tensor) -> Tensor:
    """(B, 3) ``[1, tanh KL(t(x) || t(x^t)), tanh KL(t(x) || t(x^v))]`` from (B, 3, k) teacher probabilities."""
    p_multi, p_text, p_image = probs.unbind(dim=1)
    ones = torch.ones_like(p_multi[:, 0])
    return torch.stack([ones, torch.tanh(_kl_rows(p_multi, p_text)), torch.tanh(_kl_rows(p_multi, p_image))], dim=1)


def correctness_weights(probs: Tensor, labels: Tensor, eps: float = 1e-8) -> Tensor:
    """(B, 3) weights proportional to ``1 / CE(y, t_m(x))``, normalised to sum to 1 per sample."""
    p_true = probs.gather(2, labels.view(-1, 1, 1).expand(-1, probs.shape[1], 1)).squeeze(2)
    inv = 1.0 / (-p_true.clamp_min(1e-30).log()).clamp_min(eps)
    return inv / inv.sum(dim=1, keepdim=True)


class _Outside:
    """Holds the meta weight net outside ``nn.Module``'s registry, so ``loss.parameters()`` (what the
    trainer gives the student's optimizer) leaves it out; it has its own optimizer."""

    __slots__ = ("net",)

    def __init__(self):
        self.net: MetaWeightNet | None = None


@register_loss("msd")
class MsdLoss(DistillLoss):
    r"""Modality-specific distillation (Jin et al., Findings of EMNLP 2021, "MSD: Saliency-aware
    Knowledge Distillation for Multimodal Understanding"), for a text-only student.

    .. math::

        \mathcal{L} = \mathrm{CE}(y, s) + \frac{1}{B}\sum_i \sum_{m \in \{\mathrm{multi},\mathrm{text},\mathrm{image}\}}
            w_m(i)\,\tau^2\,\mathrm{KL}\big(t_m(x_i)_\tau \,\Vert\, s(x_i)_\tau\big)

    where ``t_multi(x) = t(x)`` is the multimodal teacher's prediction (cached ``teacher_logits``),
    ``t_text(x) = t(x^t)`` the teacher's with the image dropped (``teacher_extra["logits_text"]``),
    ``t_image(x) = t(x^v)`` the teacher's with the text dropped (``teacher_extra["logits_image"]``),
    and ``_tau`` the softmax at temperature ``tau`` (per-sample KL, times ``tau^2``, weighted, then
    averaged over the batch). The paper's student sees each modality, so its terms compare
    ``t(x^m)`` with ``s(x^m)``; a text-only student has only ``s(x)``, so every term distils into it.

    ``weighting`` chooses ``w_m(i)``:

    - ``population``: constants ``w_multi``, ``w_text``, ``w_image`` (grid-searchable; the paper's
      population-based weighting). A weight of 0 drops the term and its teacher field. The other
      weightings ignore these three options.
    - ``importance`` (the paper's saliency-based importance weighting, Eq. 6): ``w_multi = 1``;
      ``w_text = tanh KL(t(x) || t(x^t))`` and ``w_image = tanh KL(t(x) || t(x^v))``: each
      modality term is weighted by how far the teacher's prediction *from that modality alone*
      (the other modality dropped) is from its multimodal prediction, i.e. by how much the term
      adds beyond the multimodal term. KLs of the unsoftened (tau = 1) teacher probabilities.
    - ``correctness`` (Eq. 7): ``w_m(i) proportional to 1 / CE(y_i, t_m(x_i))``, normalised so the
      three weights sum to 1 per sample (tau = 1 teacher probabilities; CE clamped at 1e-8).
    - ``meta``: a :class:`~lugpi_cli.losses.meta.MetaWeightNet` (an MLP with a sigmoid, ``meta_hidden``
      units) maps the concatenated three teacher probability vectors (tau = 1) to the three weights,
      learned online Meta-Weight-Net style (Shu et al. 2019) by
      :func:`~lugpi_cli.losses.meta.meta_weight_step`; ``forward`` uses the net without gradient.
      ``meta_lr`` and ``meta_every`` are for the trainer (the net's Adam step size, and a meta step
      every so many student steps).

    The paper's text could not be retrieved while writing this (only its abstract); the equations
    above follow the paper as specified for this project. In particular, which KL
    weights which term under ``importance`` is the choice stated above; if the paper's Eq. 6 pairs
    them the other way round (``w_text = tanh KL(t(x) || t(x^v))``, i.e. the saliency of the text:
    the change when the *text* is dropped), swap the two entries in :func:`importance_weights`.
    Default ``tau = 4`` (as ``kd``; the paper's value was not available).

    The weight net is *not* a registered submodule (``loss.parameters()`` leaves it out, so the
    student's optimizer does not see it): reach it through :attr:`weight_net` /
    :meth:`meta_parameters`; ``loss.to(device)`` moves it too. ``parts``: ``ce``, ``kl_<m>``
    (batch-mean KL without ``tau^2``) and ``w_<m>`` (batch-mean weight) for each term in use.
    """

    options: ClassVar[dict[str, Option]] = {
        "weighting": Option(str, "population", "how the three terms are weighted", choices=WEIGHTINGS),
        "tau": Option(float, 4.0, "temperature softening teacher and student in the KL terms", min=0.0,
                      min_exclusive=True),
        "w_multi": Option(float, 1.0, "population weight of KL(t(x) || s)", min=0.0),
        "w_text": Option(float, 1.0, "population weight of KL(t(x^t) || s) (image dropped)", min=0.0),
        "w_image": Option(float, 1.0, "population weight of KL(t(x^v) || s) (text dropped)", min=0.0),
        "meta_hidden": Option(int, 100, "hidden units of the meta weight net", min=1),
        "meta_lr": Option(float, 1e-3, "Adam learning rate of the meta weight net (trainer)", min=0.0,
                          min_exclusive=True),
        "meta_every": Option(int, 1, "a meta step every this many training batches (trainer)", min=1),
    }
    all_teacher_fields: ClassVar[frozenset[str]] = frozenset(TEACHER_FIELDS.values())

    def __init__(
        self,
        *,
        weighting: str = "population",
        tau: float = 4.0,
        w_multi: float = 1.0,
        w_text: float = 1.0,
        w_image: float = 1.0,
        meta_hidden: int = 100,
        meta_lr: float = 1e-3,
        meta_every: int = 1,
        student_dim: int | None = None,
        teacher_dim: int | None = None,
        num_labels: int | None = None,
    ):
        super().__init__(weighting=weighting, tau=tau, w_multi=w_multi, w_text=w_text, w_image=w_image,
                         meta_hidden=meta_hidden, meta_lr=meta_lr, meta_every=meta_every)
        h = self.hparams
        self.weighting: str = h["weighting"]
        self.tau: float = h["tau"]
        self.population = (h["w_multi"], h["w_text"], h["w_image"])
        self.meta_hidden: int = h["meta_hidden"]
        self.meta_lr: float = h["meta_lr"]
        self.meta_every: int = h["meta_every"]
        self._outside = _Outside()
        if num_labels is not None:
            self.prepare(student_dim, teacher_dim, num_labels)

    # -- what it needs -----------------------------------------------------------------

    @property
    def active_terms(self) -> tuple[str, ...]:
        if self.weighting == "population":
            return tuple(m for m, w in zip(TERMS, self.population) if w > 0)
        return TERMS

    @property
    def teacher_fields(self) -> frozenset[str]:
        return frozenset(TEACHER_FIELDS[m] for m in self.active_terms)

    # -- the meta weight net -------------------------------------------------------------

    @property
    def weight_net(self) -> MetaWeightNet | None:
        """The meta weight net (``weighting="meta"``), or None before :meth:`prepare`."""
        return self._outside.net

    def prepare(self, student_dim: int | None = None, teacher_dim: int | None = None,
                num_labels: int | None = None) -> MsdLoss:
        """With ``weighting="meta"``, create the weight net for ``num_labels`` classes (idempotent)."""
        if self.weighting == "meta" and num_labels is not None:
            net = self._outside.net
            if net is None:
                self._outside.net = MetaWeightNet(int(num_labels), hidden=self.meta_hidden)
            elif net.num_labels != int(num_labels):
                raise ValueError(f"the weight net was built for {net.num_labels} classes, not {num_labels}")
        return self

    def meta_parameters(self) -> list[torch.nn.Parameter]:
        """The weight net's parameters, for the meta optimizer (never in ``self.parameters()``)."""
        if self.weighting != "meta":
            return []
        if self._outside.net is None:
            raise ValueError("the msd weight net does not exist yet: call loss.prepare(num_labels=k) first")
        return list(self._outside.net.parameters())

    def make_meta_optimizer(self, lr: float | None = None) -> torch.optim.Optimizer:
        """Meta-Weight-Net's meta optimizer: Adam, ``lr=meta_lr``, weight decay 1e-4."""
        return torch.optim.Adam(self.meta_parameters(), lr=self.meta_lr if lr is None else lr, weight_decay=1e-4)

    def weight_net_for(self, inputs: DistillInputs) -> MetaWeightNet:
        """The weight net, created now (on the logits' device) if :meth:`prepare` was not called."""
        if self._outside.net is None:
            self.prepare(num_labels=inputs.student_logits.shape[-1])
            self._outside.net.to(inputs.student_logits.device)
        return self._outside.net

    def _apply(self, fn, recurse: bool = True):  # .to(), .cuda(), .double() ... move the net too
        out = super()._apply(fn, recurse)
        if self._outside.net is not None:
            self._outside.net._apply(fn, recurse)
        return out

    # -- weights -----------------------------------------------------------------------------

    def teacher_logits(self, inputs: DistillInputs) -> dict[str, Tensor]:
        """The cached teacher logits of each term in use (detached, shapes checked)."""
        z_s = inputs.student_logits
        out = {}
        for m in self.active_terms:
            if m == "multi":
                out[m] = need(inputs.teacher_logits, "teacher_logits", self, like=z_s)
            else:
                name = TEACHER_FIELDS[m]
                out[m] = need(inputs.teacher_extra.get(name), f'teacher_extra["{name}"]', self, like=z_s)
        return out

    def teacher_probs(self, inputs: DistillInputs) -> Tensor:
        """(B, 3, k) unsoftened teacher probabilities, in ``TERMS`` order (all three fields)."""
        logits = self.teacher_logits(inputs)
        return torch.stack([F.softmax(logits[m].float(), dim=-1) for m in TERMS], dim=1)

    def meta_weights(self, inputs: DistillInputs, *, grad: bool = True) -> Tensor:
        """(B, 3) weights from the weight net (with its graph when ``grad``)."""
        net = self.weight_net_for(inputs)
        x = self.teacher_probs(inputs).flatten(1)
        with torch.set_grad_enabled(grad):
            return net(x.to(next(net.parameters()).dtype))

    @torch.no_grad()
    def weights(self, inputs: DistillInputs) -> Tensor:
        """(B, 3) per-sample weights of the three terms (no gradient), by ``weighting``."""
        b = inputs.batch_size
        dev = inputs.student_logits.device
        if self.weighting == "population":
            return torch.tensor(self.population, device=dev).expand(b, 3)
        if self.weighting == "meta":
            return self.meta_weights(inputs, grad=False)
        probs = self.teacher_probs(inputs)
        if self.weighting == "importance":
            return importance_weights(probs)
        return correctness_weights(probs, inputs.labels)

    # -- the loss --------------------------------------------------------------------------------

    def compute(self, inputs: DistillInputs, weights: Tensor) -> LossOutput:
        """The loss with given (B, 3) weights (``meta_weight_step`` passes them with their graph)."""
        z_s = inputs.student_logits
        if weights.shape != (inputs.batch_size, 3):
            raise ValueError(f"weights must have shape ({inputs.batch_size}, 3), got {tuple(weights.shape)}")
        ce = F.cross_entropy(z_s, inputs.labels)
        parts: dict[str, Tensor] = {"ce": ce.detach()}
        total = ce
        logits = self.teacher_logits(inputs)
        distill = z_s.new_zeros(())
        for j, m in enumerate(TERMS):
            if m not in logits:
                continue
            kl = kl_per_sample(logits[m], z_s, self.tau)
            w = weights[:, j].to(kl.dtype)
            distill = distill + (w * kl).mean()
            parts[f"kl_{m}"] = kl.detach().mean()
            parts[f"w_{m}"] = w.detach().mean()
        total = total + self.tau**2 * distill
        return LossOutput(total=total, parts=parts)

    def forward(self, inputs: DistillInputs) -> LossOutput:
        return self.compute(inputs, self.weights(inputs))
