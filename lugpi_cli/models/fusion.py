"""The multimodal fusion teacher: text + a generated image's frozen features.

:class:`FusionTeacher` (modality ``"both"``)::

    text tokens  T = text_encoder(input_ids, attention_mask).last_hidden_state   (B, T, H)
    image tokens I = proj(image_tokens)          (B, P, D) -> (B, P, H); identity when D == H
    Z = TransformerEncoderLayer([T; I], key padding mask from attention_mask and image_mask)
    e_T = act(Linear(2H -> hidden)([Z[:, 0]; Z[:, T]]))     text CLS and image CLS
    logits = Linear(hidden -> k)(dropout(e_T))

This is the LUGPI teacher (arXiv:2309.15238, "Teacher training", Algorithm 1 steps 6-14): the text and
image encoders' tokens are concatenated and passed through one vanilla transformer block with 8 attention
heads (``num_heads=8``); the text CLS and image CLS tokens are concatenated into a two-layer MLP whose first
layer is e_T and whose second has k units, then a softmax. The paper gives that first layer 786 units; the
default here is ``hidden=768`` (the width of the 768-d encoders it reads, which we take 786 to mean), and
``--hidden 786`` reproduces the paper's number literally.

The image tokens are the last hidden state of a frozen CLIP/ViT (CLS first),
stored float16 and cast to float here. Saving and loading are in
:mod:`lugpi_cli.models.fusion_io`; :func:`~lugpi_cli.models.teacher.build_teacher`
picks between this and the single-modality teachers.

**Modality dropout** (``modality_dropout=p``), for modality-specific
distillation (MSD: Jin, Sanjabi, Nie, Tan, Ren and Firooz, "MSD: Saliency-aware
Knowledge Distillation for Multimodal Understanding", Findings of EMNLP 2021,
arXiv:2101.01881). MSD distils the teacher's predictions on each modality
alone, t(x^t) (text only) and t(x^v) (image only), besides t(x). So that these
are predictions of inputs the teacher has seen, the teacher is trained with
one modality missing now and then: in training, per sample, with probability
p/2 the image and with probability p/2 the text is dropped. A dropped modality's
CLS position holds a learned placeholder token (one ``nn.Parameter`` of width
H per modality) and its other tokens are masked out of attention::

    image dropped:  [T_0 .. T_n; phi_v, (masked) I_1 .. I_P]
    text dropped:   [phi_t, (masked) T_1 .. T_n; I_0 .. I_P]

``forward(batch, drop="text" | "image" | "none")`` drops a modality for the
whole batch (train or eval); after training, the three MSD predictions are
``drop="none"`` -> t(x), ``drop="image"`` -> t(x^t), ``drop="text"`` -> t(x^v).
With p = 0 and ``drop=None`` the teacher is exactly the plain fusion teacher
(no random numbers are drawn; the placeholders start at zero and stay unused).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from lugpi_cli.errors import UserError
from lugpi_cli.models.common import (
    INIT_CHOICES,
    ModelOutput,
    check_choice,
    id2label_from,
    make_activation,
    text_inputs,
    xavier_init_,
)
from lugpi_cli.models.fusion_io import FusionTeacherIO

#: Values of ``FusionTeacher.forward``'s ``drop``: which modality to drop for the whole batch.
DROPS = ("none", "image", "text")


def _hidden_size(config: Any) -> int:
    for attr in ("hidden_size", "dim", "d_model", "n_embd"):
        value = getattr(config, attr, None)
        if isinstance(value, int):
            return value
    raise ValueError(f"cannot tell the hidden width of a {type(config).__name__}")


class FusionTeacher(FusionTeacherIO, nn.Module):
    """Text encoder + one transformer encoder block over [text tokens; image tokens] + a 2-layer head.

    ``text_encoder`` is any ``transformers.AutoModel`` (its
    ``last_hidden_state`` is used). ``image_dim`` is the width D of the cached
    image tokens. The embedding ``e_T`` is the ``hidden``-wide activation
    after the head's first layer (before dropout).

    ``modality_dropout`` (p in [0, 1]): in training, each sample loses its
    image with probability p/2 or its text with probability p/2 (MSD; see the
    module docstring). ``text_placeholder`` / ``image_placeholder`` are the
    learned stand-ins (width H, initialised to zero).
    """

    modality = "both"

    def __init__(
        self,
        text_encoder: nn.Module,
        image_dim: int,
        num_labels: int,
        *,
        num_heads: int = 8,
        hidden: int = 768,
        dropout: float = 0.1,
        activation: str = "relu",
        ffn_dim: int = 2048,
        labels: list[str] | None = None,
        text_model: str | None = None,
        init: str = "pretrained",
        modality_dropout: float = 0.0,
    ):
        super().__init__()
        width = self._checked_width(text_encoder, num_heads=num_heads, init=init, modality_dropout=modality_dropout)
        self.text_width = width
        self.image_dim = int(image_dim)
        self.num_labels = int(num_labels)
        self.embedding_dim = int(hidden)
        self.modality_dropout = float(modality_dropout)
        self.id2label = id2label_from(labels, self.num_labels)
        self.text_model = text_model if text_model is not None else getattr(text_encoder.config, "_name_or_path", None)
        self.model_config: dict[str, Any] = {
            "kind": "fusion",
            "modality": "both",
            "text_model": self.text_model,
            "text_width": width,
            "image_dim": self.image_dim,
            "num_labels": self.num_labels,
            "num_heads": int(num_heads),
            "hidden": int(hidden),
            "dropout": float(dropout),
            "activation": activation,
            "ffn_dim": int(ffn_dim),
            "init": init,
            "modality_dropout": self.modality_dropout,
            "id2label": {str(k): v for k, v in self.id2label.items()},
        }

        self.text_encoder = text_encoder
        self.image_proj: nn.Module = nn.Identity() if self.image_dim == width else nn.Linear(self.image_dim, width)
        self.fusion = nn.TransformerEncoderLayer(
            d_model=width, nhead=num_heads, dim_feedforward=ffn_dim, dropout=dropout, batch_first=True
        )
        self.head = nn.Linear(2 * width, hidden)
        self.act = make_activation(activation)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden, self.num_labels)
        if init == "xavier":
            xavier_init_(self)
        # Created last and as zeros: no random numbers are drawn, so a p = 0 teacher initialises
        # (and, seeded the same, trains) exactly as before these existed. xavier_init_ leaves them alone.
        self.text_placeholder = nn.Parameter(torch.zeros(width))
        self.image_placeholder = nn.Parameter(torch.zeros(width))

    @staticmethod
    def _checked_width(text_encoder: nn.Module, *, num_heads: int, init: str, modality_dropout: float) -> int:
        """The text model's width H, once the options are known to fit it (``UserError`` naming the bad one)."""
        check_choice("init", init, INIT_CHOICES)
        if not 0.0 <= float(modality_dropout) <= 1.0:
            raise UserError(f"modality_dropout must be in [0, 1], got {modality_dropout}")
        width = _hidden_size(text_encoder.config)
        if width % num_heads:
            raise UserError(
                f"the text model's width {width} is not divisible by num_heads={num_heads}",
                hint="choose a num_heads that divides the text model's hidden size",
            )
        return width

    # -- forward ---------------------------------------------------------------------

    def forward(self, batch: dict[str, Any], drop: str | None = None) -> ModelOutput:
        """Reads ``input_ids``, ``attention_mask`` (+ ``token_type_ids``), ``image_tokens`` and optional ``image_mask``.

        ``image_tokens``: (B, P, D) or a pooled (B, D) (one token).
        ``image_mask``: (B, P), true/1 for real tokens (like ``attention_mask``).
        The image CLS (first image token) must not be masked.

        ``drop`` (one of :data:`DROPS`) drops a modality for the whole batch,
        in train or eval mode: ``"image"`` -> t(x^t), the text-only
        prediction (``image_tokens`` is not read and may be absent);
        ``"text"`` -> t(x^v), the image-only prediction (the text encoder does
        not run; the text keys may be absent); ``"none"`` -> t(x), nothing
        dropped even in training. ``None`` (the default) is ``"none"`` in eval
        mode and, in training with ``modality_dropout > 0``, per-sample random
        modality dropout.
        """
        if drop is not None:
            check_choice("drop", drop, DROPS)
        text = image = None
        if drop != "text":
            text, text_valid = self._text_tokens(batch)
        if drop != "image":
            image, image_valid = self._image_tokens(batch, text)
        if drop == "text":  # the text encoder's output would be thrown away: skip it
            text, text_valid = self._stand_in(self.text_placeholder, image)
        elif drop == "image":
            image, image_valid = self._stand_in(self.image_placeholder, text)
        elif drop is None and self.training and self.modality_dropout > 0:
            drop_text, drop_image = self._draw_drops(text.shape[0], text.device)
            text, text_valid = self._drop_rows(text, text_valid, drop_text, self.text_placeholder)
            image, image_valid = self._drop_rows(image, image_valid, drop_image, self.image_placeholder)
        return self._fuse(text, text_valid, image, image_valid)

    def _text_tokens(self, batch: dict[str, Any]) -> tuple[Tensor, Tensor]:
        """The text encoder's tokens (B, T, H) and their validity (B, T) (True = attend)."""
        inputs = text_inputs(self.text_encoder, batch)
        text = self.text_encoder(**inputs).last_hidden_state  # (B, T, H)
        text_mask = inputs.get("attention_mask")
        if text_mask is None:
            return text, torch.ones(text.shape[:2], dtype=torch.bool, device=text.device)
        return text, text_mask.to(device=text.device).bool()

    def _image_tokens(self, batch: dict[str, Any], text: Tensor | None) -> tuple[Tensor, Tensor]:
        """The projected image tokens (B, P, H) and their validity (B, P)."""
        image = batch["image_tokens"]
        bsz = text.shape[0] if text is not None else image.shape[0]
        if image.dim() == 2:
            image = image.unsqueeze(1)
        if image.dim() != 3 or image.shape[0] != bsz or image.shape[-1] != self.image_dim:
            raise ValueError(
                f"image_tokens must be (B={bsz}, P, D={self.image_dim}), got shape {tuple(batch['image_tokens'].shape)}"
            )
        dtype = text.dtype if text is not None else self.text_placeholder.dtype
        device = text.device if text is not None else self.text_placeholder.device
        image = self.image_proj(image.to(device=device, dtype=dtype))  # (B, P, H)
        image_mask = batch.get("image_mask")
        if image_mask is None:
            return image, torch.ones(image.shape[:2], dtype=torch.bool, device=image.device)
        image_valid = image_mask.to(device=image.device).bool()
        if image_valid.shape != image.shape[:2]:
            raise ValueError(f"image_mask shape {tuple(image_mask.shape)} != image tokens {tuple(image.shape[:2])}")
        return image, image_valid

    @staticmethod
    def _stand_in(placeholder: Tensor, other: Tensor) -> tuple[Tensor, Tensor]:
        """A dropped modality for the whole batch: one placeholder token per sample, (B, 1, H) + validity."""
        bsz = other.shape[0]
        tokens = placeholder.to(other.dtype).expand(bsz, 1, -1)
        return tokens, torch.ones(bsz, 1, dtype=torch.bool, device=other.device)

    def _draw_drops(self, bsz: int, device: torch.device) -> tuple[Tensor, Tensor]:
        """Per-sample ``(drop_text, drop_image)`` (B,) bool: each with probability p/2, never both."""
        u = torch.rand(bsz, device=device)
        half = self.modality_dropout / 2
        return (u >= half) & (u < self.modality_dropout), u < half

    @staticmethod
    def _drop_rows(tokens: Tensor, valid: Tensor, rows: Tensor, placeholder: Tensor) -> tuple[Tensor, Tensor]:
        """Drop the modality of the samples ``rows``: the placeholder at its CLS position, its other tokens masked."""
        cls = torch.where(rows[:, None], placeholder.to(tokens.dtype).expand_as(tokens[:, 0]), tokens[:, 0])
        tokens = torch.cat([cls.unsqueeze(1), tokens[:, 1:]], dim=1)
        keep = torch.ones_like(valid)
        keep[:, 1:] = ~rows[:, None]
        return tokens, valid & keep

    def _fuse(self, text: Tensor, text_valid: Tensor, image: Tensor, image_valid: Tensor) -> ModelOutput:
        n_text = text.shape[1]
        padding = ~torch.cat([text_valid, image_valid], dim=1)  # True = ignore
        fused = self.fusion(torch.cat([text, image], dim=1), src_key_padding_mask=padding)
        pooled = torch.cat([fused[:, 0], fused[:, n_text]], dim=-1)  # text CLS, image CLS
        emb = self.act(self.head(pooled))
        return ModelOutput(logits=self.classifier(self.dropout(emb)), embedding=emb)
