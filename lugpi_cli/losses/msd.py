"""Modality-specific distillation (MSD, Jin et al. 2021), adapted to a text-only student."""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from lugpi_cli.loss_specs import LOSS_SPECS, MSD_TEACHER_FIELDS, MSD_TERMS, MSD_WEIGHTINGS, LossSpec, msd_active_terms
from lugpi_cli.losses.base import DistillInputs, DistillLoss, LossOutput, Option
from lugpi_cli.losses.kd import kl_per_sample, need
from lugpi_cli.losses.meta import MetaWeightNet
from lugpi_cli.losses.registry import register_loss

__all__ = ["TEACHER_FIELDS", "TERMS", "MsdLoss", "correctness_weights", "importance_weights"]

#: The three distillation terms, in the order of every (B, 3) weight tensor.
TERMS = MSD_TERMS
#: Which cached teacher output each term distils: t(x), t(x^t) (image dropped), t(x^v) (text dropped).
TEACHER_FIELDS = MSD_TEACHER_FIELDS
WEIGHTINGS = MSD_WEIGHTINGS


def _kl_rows(p: Tensor, q: Tensor, eps: float = 1e-12) -> Tensor:
    """``KL(p || q)`` per row of two probability tensors."""
    return (p * (p.clamp_min(eps).log() - q.clamp_min(eps).log())).sum(dim=-1)


def importance_weights(probs: Tensor) -> Tensor:
    """(B, 3) ``[w, w^t, w^v] = [1, tanh I_v, tanh I_t]`` from (B, 3, k) teacher probabilities (MSD Eq. 6).

    ``I_v = KL(t(x) || t(x^t))`` is the change when the image is dropped (the image's importance), and
    ``I_t = KL(t(x) || t(x^v))`` the change when the text is dropped; the paper weights the image term
    by ``g(I_t)`` and the text term by ``g(I_v)``, ``g = tanh``, and the multimodal term by 1.
    """
    p_multi, p_text, p_image = probs.unbind(dim=1)
    ones = torch.ones_like(p_multi[:, 0])
    return torch.stack([ones, torch.tanh(_kl_rows(p_multi, p_text)), torch.tanh(_kl_rows(p_multi, p_image))], dim=1)


def correctness_weights(probs: Tensor, labels: Tensor, eps: float = 1e-8) -> Tensor:
    """(B, 3) weights with ``w : w^t : w^v = 1/h(t(x)) : 1/h(t(x^t)) : 1/h(t(x^v))``, ``h`` the CE with the
    true label, normalised to sum to 1 per sample (MSD Eq. 7)."""
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
    r"""Modality-specific distillation (Jin, Sanjabi, Nie, Tan, Ren & Firooz, "Modality-specific
    Distillation", 2021), for a text-only student.

    .. math::

        \mathcal{L} = \lambda\,\mathrm{CE}(y, s) + (1 - \lambda)\,\mathcal{L}_\mathrm{distill},
        \qquad
        \mathcal{L}_\mathrm{distill} = \frac{\tau^2}{B}\sum_i \sum_{m \in \{\mathrm{multi},\mathrm{text},\mathrm{image}\}}
            w_m(i)\,\mathrm{KL}\big(t_m(x_i)_\tau \,\Vert\, s(x_i)_\tau\big)

    the paper's Eq. (1) (``lam`` is its lambda, ``lambda`` being a Python keyword) with its Eq. (5)
    as the distillation loss, scaled by ``tau^2 / |X|`` as in its Eqs. (2) and (4). ``t_multi(x) = t(x)``
    is the multimodal teacher's prediction (cached ``teacher_logits``), ``t_text(x) = t(x^t)`` the
    teacher's with the image dropped (``teacher_extra["logits_text"]``), ``t_image(x) = t(x^v)`` the
    teacher's with the text dropped (``teacher_extra["logits_image"]``), and ``_tau`` the softmax at
    temperature ``tau`` (Eq. 3). The paper's student sees each modality, so its terms compare
    ``t(x^m)`` with ``s(x^m)``; a text-only student has only ``s(x)``, so every term distils into it.

    Defaults from the paper's appendix B: ``lam = 0.5`` (Hateful-Memes and MM-IMDB; 0.6 for SNLI-VE),
    ``tau = 4`` (Hateful-Memes and SNLI-VE; 1 for MM-IMDB), ``meta_lr = 1e-3`` (Hateful-Memes; 1e-4
    for MM-IMDB and SNLI-VE). ``lam = 1`` is plain fine-tuning and reads no teacher output.

    ``weighting`` chooses ``w_m(i)``, each in [0, 1] (Eq. 5):

    - ``population`` (Sec. 3.2): constants ``w_multi``, ``w_text``, ``w_image`` in [0, 1], found by
      grid search on validation. A weight of 0 drops the term and its teacher field. The other
      weightings ignore these three options.
    - ``importance`` (Eq. 6): ``w_multi = 1``, ``w_image = tanh I_t`` with
      ``I_t = KL(t(x) || t(x^v))`` (the change when the text is dropped: the text's importance) and
      ``w_text = tanh I_v`` with ``I_v = KL(t(x) || t(x^t))`` (the change when the image is dropped),
      exactly the paper's pairing ``w^v = g(I_t)``, ``w^t = g(I_v)``, ``g = tanh``. KLs of the
      unsoftened (tau = 1) teacher probabilities; no label is used.
    - ``correctness`` (Eq. 7): ``w_m(i)`` proportional to ``1 / CE(y_i, t_m(x_i))``, normalised so the
      three weights sum to 1 per sample (tau = 1 teacher probabilities; CE clamped at 1e-8).
    - ``meta`` (Sec. 3.4, Eq. 8-10, Algorithm 1): a :class:`~lugpi_cli.losses.meta.MetaWeightNet` (an
      MLP with a sigmoid, ``meta_hidden`` units) maps the three teacher probability vectors (tau = 1)
      to the three weights. Before each student step (every ``meta_every``-th),
      :func:`~lugpi_cli.losses.meta.meta_weight_step` takes a look-ahead SGD step of the student with
      step size ``meta_alpha`` (alpha, line 4) and one plain gradient step of the net with learning
      rate ``meta_lr`` (beta, line 5) on the validation CE of the looked-ahead student (Eq. 9); the
      student's own step (line 6) then uses the updated net, without gradient into it.

    ``meta_alpha`` is its own option, not the student's learning rate: the paper's Algorithm 1 states
    SGD for the student, but the student here (as in the paper's experiments) trains with AdamW, whose
    steps (~lr per coordinate) are far larger than ``lr * gradient``; an SGD look-ahead with
    ``alpha = lr = 5e-5`` gives meta gradients of ~1e-8, which no meta step can use. The look-ahead
    exists only to differentiate through, so ``alpha`` sets the meta gradient's scale (to first order
    ``dL_meta/dw_m(i) = -alpha <grad L_val, grad KL_m(i)>``). Measured on all-MiniLM-L6-v2 (AdamW,
    lr 5e-5, batches of 8, the first steps): the mean ``|dL_meta/db|`` of the net's output bias is
    ~1e-5 at ``alpha = 5e-5`` and ~0.1 at ``alpha = 1``, the default; with ``meta_lr = 1e-3`` that
    moves a weight's logit by ~1e-4 per step, up to ~0.5 over the paper's 5,000 iterations. Larger alphas
    overshoot (the looked-ahead validation loss rises); tune ``meta_alpha`` with ``meta_lr``.

    The weight net is *not* a registered submodule (``loss.parameters()`` leaves it out, so the
    student's optimizer does not see it): reach it through :attr:`weight_net` /
    :meth:`meta_parameters`; ``loss.to(device)`` moves it too. ``parts``: ``ce``, ``kl_<m>``
    (batch-mean KL without ``tau^2``) and ``w_<m>`` (batch-mean weight) for each term in use.
    """

    spec: ClassVar[LossSpec] = LOSS_SPECS["msd"]  # options, checks, what it reads
    options: ClassVar[dict[str, Option]] = spec.options
    all_teacher_fields: ClassVar[frozenset[str]] = spec.all_teacher_fields

    def __init__(
        self,
        *,
        weighting: str = "population",
        lam: float = 0.5,
        tau: float = 4.0,
        w_multi: float = 1.0,
        w_text: float = 1.0,
        w_image: float = 1.0,
        meta_hidden: int = 100,
        meta_lr: float = 1e-3,
        meta_alpha: float = 1.0,
        meta_every: int = 1,
        student_dim: int | None = None,
        teacher_dim: int | None = None,
        num_labels: int | None = None,
    ):
        super().__init__(weighting=weighting, lam=lam, tau=tau, w_multi=w_multi, w_text=w_text, w_image=w_image,
                         meta_hidden=meta_hidden, meta_lr=meta_lr, meta_alpha=meta_alpha, meta_every=meta_every)
        h = self.hparams
        self.weighting: str = h["weighting"]
        self.lam: float = h["lam"]
        self.tau: float = h["tau"]
        self.population = (h["w_multi"], h["w_text"], h["w_image"])
        self.meta_hidden: int = h["meta_hidden"]
        self.meta_lr: float = h["meta_lr"]
        self.meta_alpha: float = h["meta_alpha"]
        self.meta_every: int = h["meta_every"]
        self._outside = _Outside()
        if num_labels is not None:
            self.prepare(student_dim, teacher_dim, num_labels)

    # -- what it needs -----------------------------------------------------------------

    @property
    def active_terms(self) -> tuple[str, ...]:
        return msd_active_terms(self.hparams)

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

    def prepare_for(self, context) -> MsdLoss:
        """The meta weight net for the data set's classes (``weighting="meta"``)."""
        return self.prepare(num_labels=context.num_labels)

    def objective_class(self) -> type:
        """Meta-learned weights train with a meta step before every ``meta_every``-th step
        (:class:`~lugpi_cli.training.objectives.MetaObjective`: MSD, arXiv:2101.01881, Algorithm 1 lines 4-5,
        a look-ahead SGD step of the student with step ``meta_alpha``, then an SGD step of the weight net with
        ``meta_lr``); the other weightings with the plain objective."""
        from lugpi_cli.training.objectives import MetaObjective, Objective

        return MetaObjective if self.weighting == "meta" else Objective

    def meta_parameters(self) -> list[torch.nn.Parameter]:
        """The weight net's parameters, for the meta optimizer (never in ``self.parameters()``)."""
        if self.weighting != "meta":
            return []
        if self._outside.net is None:
            raise ValueError("the msd weight net does not exist yet: call loss.prepare(num_labels=k) first")
        return list(self._outside.net.parameters())

    def make_meta_optimizer(self, lr: float | None = None) -> torch.optim.Optimizer:
        """Algorithm 1, line 5: ``Theta <- Theta - beta * grad L_meta``, i.e. plain SGD with ``lr=meta_lr``
        (no momentum, no weight decay)."""
        return torch.optim.SGD(self.meta_parameters(), lr=self.meta_lr if lr is None else lr, momentum=0.0,
                               weight_decay=0.0)

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
        if self.weighting == "population" or not self.active_terms:
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
        total = self.lam * ce
        if logits:
            total = total + (1 - self.lam) * self.tau**2 * distill
        return LossOutput(total=total, parts=parts)

    def forward(self, inputs: DistillInputs) -> LossOutput:
        return self.compute(inputs, self.weights(inputs))
