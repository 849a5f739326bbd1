"""Relational distillation on in-batch embeddings: RKD (Park et al. 2019) and SP (Tung & Mori 2019).

Both compare relations *between the samples of a batch* (distances, angles,
similarities), so the student's and the teacher's embeddings may differ in
width and need no aligner. Both are computed on the embeddings the
classification layers read (``student_embedding``, taken before the head's
dropout, and the cached ``teacher_embedding``).

Every relational term (distance and angle matrices, Gram matrices) is computed
in float32 with autocast disabled (:func:`float32_relations`): under bf16
autocast on a GPU the ``e @ e.T`` products lose enough precision to shift SP by
up to 11% and RKD's distance term by 1.6%. Gradients still flow back to a bf16
student embedding through the cast.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from lugpi_cli.loss_specs import LOSS_SPECS, LossSpec
from lugpi_cli.losses.base import DistillInputs, DistillLoss, LossOutput, Option
from lugpi_cli.losses.kd import need
from lugpi_cli.losses.registry import register_loss

__all__ = [
    "RKDLoss",
    "SPLoss",
    "pairwise_distances",
    "rkd_angle_loss",
    "rkd_distance_loss",
    "float32_relations",
    "similarity_matrix",
    "sp_term",
    "triplet_cosines",
]


@contextmanager
def float32_relations(device: torch.device) -> Iterator[None]:
    """Autocast off on ``device``'s type for the block (relational terms then run in the inputs' dtype)."""
    try:
        ctx = torch.autocast(device_type=device.type, enabled=False)
    except RuntimeError:  # a device type without autocast: nothing to disable
        yield
        return
    with ctx:
        yield


def pairwise_distances(e: Tensor, eps: float = 1e-12) -> Tensor:
    """(B, B) Euclidean distances ``||e_i - e_j||``; the diagonal is exactly 0.

    Computed from the Gram matrix as in the RKD reference code, with the squared
    distances clamped at ``eps`` so the square root has a finite gradient.
    """
    sq = e.pow(2).sum(dim=1)
    d2 = (sq.unsqueeze(1) + sq.unsqueeze(0) - 2 * e @ e.t()).clamp(min=eps)
    eye = torch.eye(len(e), dtype=torch.bool, device=e.device)
    return d2.sqrt().masked_fill(eye, 0.0)


def _mean_normalised(d: Tensor) -> Tensor:
    """``d / mean(d_ij, i != j)``: distances in units of the batch's mean distance (RKD's mu)."""
    b = d.shape[0]
    if b < 2:  # a batch of one has no pair: nothing to normalise (and the loss is 0)
        return d
    off = ~torch.eye(b, dtype=torch.bool, device=d.device)
    mu = d[off].mean().clamp(min=1e-12)
    return d / mu


def triplet_cosines(e: Tensor) -> Tensor:
    """(B, B, B) tensor ``c[j, i, k] = <(e_i - e_j)/||.||, (e_k - e_j)/||.||>``: the cosine of the
    angle at vertex ``j`` formed by ``e_i`` and ``e_k``. Degenerate triplets (``i == j`` or
    ``k == j``: a zero vector) have cosine 0, as in the RKD reference code."""
    diff = e.unsqueeze(0) - e.unsqueeze(1)  # diff[j, i] = e_i - e_j
    unit = F.normalize(diff, p=2, dim=2)
    return torch.bmm(unit, unit.transpose(1, 2))


def rkd_distance_loss(e_s: Tensor, e_t: Tensor) -> Tensor:
    """Smooth-L1 (Huber, delta 1) between the mean-normalised distance matrices, mean over B^2 entries
    (float32, autocast off)."""
    with float32_relations(e_s.device):
        e_s, e_t = e_s.float(), e_t.float()
        with torch.no_grad():
            t = _mean_normalised(pairwise_distances(e_t))
        s = _mean_normalised(pairwise_distances(e_s))
        return F.smooth_l1_loss(s, t)


def rkd_angle_loss(e_s: Tensor, e_t: Tensor) -> Tensor:
    """Smooth-L1 (Huber, delta 1) between the triplet cosines, mean over B^3 entries (float32, autocast off)."""
    with float32_relations(e_s.device):
        e_s, e_t = e_s.float(), e_t.float()
        with torch.no_grad():
            t = triplet_cosines(e_t)
        s = triplet_cosines(e_s)
        return F.smooth_l1_loss(s, t)


def similarity_matrix(e: Tensor) -> Tensor:
    """SP's ``G~ = row-L2-normalise(e e^T)``, (B, B); rows of a flattened activation."""
    e = e.flatten(1)
    return F.normalize(e @ e.t(), p=2, dim=1)


def sp_term(e_s: Tensor, e_t: Tensor) -> Tensor:
    """``||G~_S - G~_T||_F^2 / b^2`` (SP's Eq. 4 for one layer pair), in float32 with autocast off."""
    with float32_relations(e_s.device):
        e_s, e_t = e_s.float(), e_t.float()
        b = e_s.shape[0]
        with torch.no_grad():
            g_t = similarity_matrix(e_t)
        return (similarity_matrix(e_s) - g_t).pow(2).sum() / (b * b)


def _check_batch(e_s: Tensor, e_t: Tensor) -> None:
    if e_s.shape[0] != e_t.shape[0]:
        raise ValueError(f"student and teacher embeddings have batch sizes {e_s.shape[0]} and {e_t.shape[0]}")


@register_loss("rkd")
class RKDLoss(DistillLoss):
    r"""Relational Knowledge Distillation (Park, Kim, Lu & Cho, CVPR 2019), distance- and angle-wise.

    .. math::

        \mathcal{L} = \mathrm{CE}(y, s)
            + w_d \sum_{i,j} \ell_\delta\Big(\tfrac{\lVert t_i - t_j\rVert}{\mu_T},
                                             \tfrac{\lVert s_i - s_j\rVert}{\mu_S}\Big)
            + w_a \sum_{i,j,k} \ell_\delta\big(\cos\angle t_i t_j t_k, \cos\angle s_i s_j s_k\big)

    with ``t``/``s`` the teacher's/student's embeddings of the batch, ``mu`` the mean distance over the
    off-diagonal pairs (the paper's Eq. 4), ``cos angle t_i t_j t_k = <e_ij, e_kj>`` with
    ``e_ij = (t_i - t_j)/||t_i - t_j||`` (Eq. 6), and ``l_delta`` the Huber loss (smooth L1, delta 1).
    The paper's weights: ``w_d = 25``, ``w_a = 50`` (its Sec. 4, "RKD-DA").

    As in the authors' reference code (``lenscloth/RKD``, ``metric/loss.py``), the sums are means
    over all B^2 pairs and B^3 triplets (degenerate pairs/triplets, with a zero vector, contribute 0 on
    both sides), and the teacher side carries no gradient. The embeddings may differ in width; ``e_S`` is
    the student's embedding before its head's dropout; both terms are computed in float32 with autocast off.
    ``parts``: ``ce``, ``dist``, ``angle`` (unweighted).
    """

    spec: ClassVar[LossSpec] = LOSS_SPECS["rkd"]  # options, checks, what it reads
    options: ClassVar[dict[str, Option]] = spec.options
    all_teacher_fields: ClassVar[frozenset[str]] = spec.all_teacher_fields

    def __init__(self, *, w_d: float = 25.0, w_a: float = 50.0, student_dim: int | None = None,
                 teacher_dim: int | None = None):
        super().__init__(w_d=w_d, w_a=w_a)
        self.w_d: float = self.hparams["w_d"]
        self.w_a: float = self.hparams["w_a"]

    def forward(self, inputs: DistillInputs) -> LossOutput:
        ce = F.cross_entropy(inputs.student_logits, inputs.labels)
        parts: dict[str, Tensor] = {"ce": ce.detach()}
        total = ce
        if self.w_d > 0 or self.w_a > 0:
            e_t = need(inputs.teacher_embedding, "teacher_embedding", self).float()
            e_s = inputs.student_embedding
            _check_batch(e_s, e_t)
            if self.w_d > 0:
                dist = rkd_distance_loss(e_s, e_t)
                total = total + self.w_d * dist
                parts["dist"] = dist.detach()
            if self.w_a > 0:
                angle = rkd_angle_loss(e_s, e_t)
                total = total + self.w_a * angle
                parts["angle"] = angle.detach()
        return LossOutput(total=total, parts=parts)


@register_loss("sp")
class SPLoss(DistillLoss):
    r"""Similarity-Preserving distillation (Tung & Mori, ICCV 2019).

    .. math::

        \mathcal{L} = \mathrm{CE}(y, s)
            + \frac{\gamma}{b^2}\,\big\lVert \tilde G_S - \tilde G_T \big\rVert_F^2,
        \qquad \tilde G = \text{row-}L_2\text{-normalise}(e\,e^\top)

    with ``e`` the (B, d) batch of embeddings (the paper's Eqs. 1-4, for one layer pair), ``b`` the
    batch size. The paper sets ``gamma = 3000`` (its CIFAR-10 experiments, Sec. 4.1; also torchdistill's
    and CRD's setting), the default here. The embeddings may differ in width (G is b x b); ``e_S`` is the
    student's embedding before its head's dropout; G is computed in float32 with autocast off.
    ``parts``: ``ce``, ``sp`` (= ||G_S - G_T||_F^2 / b^2, unweighted).
    """

    spec: ClassVar[LossSpec] = LOSS_SPECS["sp"]  # options, checks, what it reads
    options: ClassVar[dict[str, Option]] = spec.options
    all_teacher_fields: ClassVar[frozenset[str]] = spec.all_teacher_fields

    def __init__(self, *, gamma: float = 3000.0, student_dim: int | None = None, teacher_dim: int | None = None):
        super().__init__(gamma=gamma)
        self.gamma: float = self.hparams["gamma"]

    def forward(self, inputs: DistillInputs) -> LossOutput:
        ce = F.cross_entropy(inputs.student_logits, inputs.labels)
        parts: dict[str, Tensor] = {"ce": ce.detach()}
        total = ce
        if self.gamma > 0:
            e_t = need(inputs.teacher_embedding, "teacher_embedding", self).float()
            e_s = inputs.student_embedding
            _check_batch(e_s, e_t)
            sp = sp_term(e_s, e_t)
            total = total + self.gamma * sp
            parts["sp"] = sp.detach()
        return LossOutput(total=total, parts=parts)
