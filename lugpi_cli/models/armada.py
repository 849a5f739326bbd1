"""ARMADA's teacher-side aligner: heads on a black-box generative teacher's cached vectors.

ARMADA (Sengupta, Dixit, Akhtar and Chakraborty, "From Images to Words:
Efficient Cross-Modal Knowledge Distillation to Language Models from Black-box
Teachers", arXiv:2603.10877) distils a *fixed*, possibly black-box multimodal
model into a text-only student through a trainable aligner. Here the black box
is the text-to-image diffusion model; what it gives for a sample is one cached
feature vector x of width D, e.g. the VAE latent of the generated image,
flattened (4 x 16 x 16 = 1024 values for an SD VAE at 128 px; see
:mod:`lugpi_cli.encoders.vae`). The teacher side of the aligner is::

    h   = ReLU(W2 Dropout(ReLU(W1 x + b1)) + b2)       MLP head D -> hidden -> hidden (768); the embedding
    z1  = Linear(hidden -> k)(Dropout(h))              main logits
    P_t = W x,  W in R^(d_p x D) orthogonal            torch.nn.utils.parametrizations.orthogonal, no bias
    z2  = Linear(d_p -> k)(P_t)                        auxiliary logits
    loss = CE(z1, y) + gamma * CE(z2, y)               :meth:`ArmadaTeacher.training_loss`

W is kept orthogonal by the parametrization: orthonormal rows (W W^T = I)
when d_p <= D, orthonormal columns (W^T W = I) when d_p > D. With d_p >= D
the map is an isometry, ||W x - W x'|| = ||x - x'||: the manifold P_t keeps
the geometry of the teacher's space. The default d_p = min(D, 768) is an
isometry for D <= 768; for a larger D (the 1024-d SD latent) it is a
co-isometry (the orthogonal projection onto a learned d_p-dim subspace,
expressed in orthonormal coordinates): distances within that subspace are
kept, none grows. The auxiliary classifier makes the subspace the one that
carries the label.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import Tensor, nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import orthogonal

from lugpi_cli.errors import UserError
from lugpi_cli.models.common import (
    INIT_CHOICES,
    ModelOutput,
    check_choice,
    id2label_from,
    load_weights,
    read_model_config,
    saved_labels,
    save_model_dir,
    xavier_init_,
)

__all__ = ["MAX_IMAGE_DIM", "ORTHOGONAL_MAPS", "ArmadaTeacher", "check_trainable_width", "flatten_vectors"]

#: ``orthogonal_map`` choices of :func:`torch.nn.utils.parametrizations.orthogonal`. The default "cayley" is
#: the fastest to train on CPU for a 768 x 1024 W (about 0.1 s per forward+backward on 2 cores, against
#: about 0.8 s for "householder" and 1.6 s for "matrix_exp").
ORTHOGONAL_MAPS = ("cayley", "householder", "matrix_exp")
DEFAULT_PROJ_DIM = 768
#: Widest image feature the orthogonal projection takes. Every map of torch's parametrization works on a
#: D x D matrix (cayley: ~1 GB and ~4 s per step at D = 4096 on 2 CPU cores; householder ~70 s there), so
#: D = 16,384 (VAE latents of a large image) would take gigabytes and minutes per step.
MAX_IMAGE_DIM = 4096


def check_trainable_width(image_dim: int) -> None:
    """Refuse to *train* an ARMADA teacher on features wider than :data:`MAX_IMAGE_DIM` (loading one is fine)."""
    if image_dim > MAX_IMAGE_DIM:
        raise UserError(
            f"ARMADA's orthogonal projection cannot take {image_dim}-dim image features (at most "
            f"{MAX_IMAGE_DIM}: it works on a D x D matrix, gigabytes and minutes per step beyond that)",
            "Use pooled CLIP/ViT features (768-1024 dims), or smaller VAE latents "
            "(`lugpi embed ... --encoder vae-latent --vae-size 64`).")


def flatten_vectors(image_tokens: Tensor) -> Tensor:
    """(B, D) from the cached teacher vectors: everything after the batch dimension is flattened.

    (B, D) stays as is; (B, 1, D) -> (B, D); a latent stored as (B, C, h, w)
    or as tokens (B, P, d) -> (B, C*h*w) / (B, P*d), row-major. (The model
    then checks the width against its D, so CLIP-style token sequences with
    P > 1 are refused rather than silently mixed up.)
    """
    if image_tokens.dim() < 2:
        raise ValueError(f"image_tokens must be (B, D) or (B, ...), got shape {tuple(image_tokens.shape)}")
    return image_tokens.reshape(image_tokens.shape[0], -1)


class ArmadaTeacher(nn.Module):
    """ARMADA teacher-side aligner on one cached vector per sample (``batch["image_tokens"]``).

    ``forward(batch)`` returns ``ModelOutput(logits=z1, embedding=h, extra={"logits_aux": z2,
    "manifold": P_t})``: h (B, hidden), z1 and z2 (B, k), P_t (B, proj_dim). ``proj_dim``
    defaults to ``min(D, 768)``. Train it with :meth:`training_loss` (the main
    cross-entropy alone would leave W and the auxiliary classifier untrained).
    """

    modality = "image"

    def __init__(
        self,
        image_dim: int,
        num_labels: int,
        *,
        hidden: int = 768,
        proj_dim: int | None = None,
        dropout: float = 0.1,
        orthogonal_map: str = "cayley",
        init: str = "pretrained",
        labels: list[str] | None = None,
    ):
        super().__init__()
        check_choice("init", init, INIT_CHOICES)
        check_choice("orthogonal_map", orthogonal_map, ORTHOGONAL_MAPS)
        self.image_dim = int(image_dim)
        self.num_labels = int(num_labels)
        self.embedding_dim = int(hidden)
        self.proj_dim = int(proj_dim) if proj_dim is not None else min(self.image_dim, DEFAULT_PROJ_DIM)
        if self.image_dim < 1 or self.proj_dim < 1:
            raise UserError(f"ARMADA needs positive widths, got image_dim={image_dim}, proj_dim={proj_dim}")
        self.id2label = id2label_from(labels, self.num_labels)
        self.model_config: dict[str, Any] = {
            "kind": "armada",
            "arch": "armada",
            "modality": "image",
            "image_dim": self.image_dim,
            "num_labels": self.num_labels,
            "hidden": self.embedding_dim,
            "proj_dim": self.proj_dim,
            "dropout": float(dropout),
            "orthogonal_map": orthogonal_map,
            "init": init,
            "id2label": {str(k): v for k, v in self.id2label.items()},
        }
        # (a) the MLP head -> z1
        self.mlp = nn.Sequential(
            nn.Linear(self.image_dim, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, hidden), nn.ReLU()
        )
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden, self.num_labels)
        # (b) the orthogonal projection -> P_t -> z2
        self.proj = nn.Linear(self.image_dim, self.proj_dim, bias=False)
        self.aux_classifier = nn.Linear(self.proj_dim, self.num_labels)
        if init == "xavier":
            xavier_init_(self)  # before the parametrization: W starts as the orthogonalised Xavier draw
        orthogonal(self.proj, orthogonal_map=orthogonal_map)

    @property
    def projection_matrix(self) -> Tensor:
        """W (proj_dim, D), orthogonal by construction."""
        return self.proj.weight

    def forward(self, batch: dict[str, Any]) -> ModelOutput:
        """Reads ``batch["image_tokens"]``: (B, D), (B, 1, D) or anything (B, ...) that flattens to D values."""
        x = flatten_vectors(batch["image_tokens"])
        if x.shape[1] != self.image_dim:
            raise ValueError(
                f"ARMADA teacher vectors have {x.shape[1]} values per sample (image_tokens shape "
                f"{tuple(batch['image_tokens'].shape)}), the model expects D={self.image_dim}"
            )
        x = x.to(self.classifier.weight.dtype)
        h = self.mlp(x)
        manifold = self.proj(x)
        return ModelOutput(
            logits=self.classifier(self.dropout(h)),
            embedding=h,
            extra={"logits_aux": self.aux_classifier(manifold), "manifold": manifold},
        )

    @staticmethod
    def training_loss(output: ModelOutput, labels: Tensor, gamma: float = 1.0) -> Tensor:
        """``CE(z1, y) + gamma * CE(z2, y)``: the main head plus the auxiliary head on the manifold P_t."""
        return F.cross_entropy(output.logits, labels) + gamma * F.cross_entropy(output.extra["logits_aux"], labels)

    # -- saving --------------------------------------------------------------------

    def save(self, directory: str | Path, tokenizer: Any = None) -> Path:
        """Write ``model.safetensors`` + ``lugpi_model.json`` (``tokenizer`` is ignored: no text).

        The orthogonal weight is stored as the parametrization's own tensors
        (``proj.parametrizations.weight.original`` and ``.0.base``), so
        :meth:`load` rebuilds W bit for bit.
        """
        return save_model_dir(self, directory, self.model_config)

    @classmethod
    def load(cls, directory: str | Path) -> ArmadaTeacher:
        """Rebuild from :meth:`save`'s directory (eval mode)."""
        d = Path(directory)
        cfg = read_model_config(d, "armada", "an ARMADA teacher")
        model = cls(
            cfg["image_dim"],
            cfg["num_labels"],
            hidden=cfg["hidden"],
            proj_dim=cfg["proj_dim"],
            dropout=cfg["dropout"],
            orthogonal_map=cfg.get("orthogonal_map", "cayley"),
            labels=saved_labels(cfg),
        )
        load_weights(model, d)
        model.model_config["init"] = cfg.get("init", "pretrained")
        return model.eval()
