"""The multimodal teacher: text + a generated image's frozen features.

:class:`FusionTeacher` (modality ``"both"``)::

    text tokens  T = text_encoder(input_ids, attention_mask).last_hidden_state   (B, T, H)
    image tokens I = proj(image_tokens)          (B, P, D) -> (B, P, H); identity when D == H
    Z = TransformerEncoderLayer([T; I], key padding mask from attention_mask and image_mask)
    e_T = act(Linear(2H -> hidden)([Z[:, 0]; Z[:, T]]))     text CLS and image CLS
    logits = Linear(hidden -> k)(dropout(e_T))

The image tokens are the last hidden state of a frozen CLIP/ViT (CLS first),
stored float16 and cast to float here. :func:`build_teacher` also gives the
paper's single-modality rows: ``"text"`` -> :class:`TextClassifier` (the plain
fine-tuned text model) and ``"image"`` -> :class:`ImageClassifier`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from lugpi_cli.errors import UserError
from lugpi_cli.models.common import (
    INIT_CHOICES,
    MODALITIES,
    ModelOutput,
    check_choice,
    id2label_from,
    load_hf_config,
    load_weights,
    make_activation,
    read_model_config,
    save_weights,
    text_inputs,
    write_model_config,
    xavier_init_,
)
from lugpi_cli.models.image_classifier import ImageClassifier
from lugpi_cli.models.student import TextClassifier

__all__ = ["FusionTeacher", "build_teacher", "load_model"]

TEXT_ENCODER_DIR = "text_encoder"


def _hidden_size(config: Any) -> int:
    for attr in ("hidden_size", "dim", "d_model", "n_embd"):
        value = getattr(config, attr, None)
        if isinstance(value, int):
            return value
    raise ValueError(f"cannot tell the hidden width of a {type(config).__name__}")


class FusionTeacher(nn.Module):
    """Text encoder + one transformer encoder block over [text tokens; image tokens] + a 2-layer head.

    ``text_encoder`` is any ``transformers.AutoModel`` (its
    ``last_hidden_state`` is used). ``image_dim`` is the width D of the cached
    image tokens. The embedding ``e_T`` is the ``hidden``-wide activation
    after the head's first layer (before dropout).
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
    ):
        super().__init__()
        check_choice("init", init, INIT_CHOICES)
        width = _hidden_size(text_encoder.config)
        if width % num_heads:
            raise UserError(
                f"the text model's width {width} is not divisible by num_heads={num_heads}",
                hint="choose a num_heads that divides the text model's hidden size",
            )
        self.text_width = width
        self.image_dim = int(image_dim)
        self.num_labels = int(num_labels)
        self.embedding_dim = int(hidden)
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

    @classmethod
    def from_pretrained(
        cls,
        text_model: str | Path,
        image_dim: int,
        num_labels: int,
        *,
        init: str = "pretrained",
        num_heads: int = 8,
        hidden: int = 768,
        dropout: float = 0.1,
        activation: str = "relu",
        ffn_dim: int = 2048,
        labels: list[str] | None = None,
    ) -> FusionTeacher:
        """A teacher on the text model ``text_model`` (hub id or local directory).

        ``init="pretrained"`` loads the text encoder's pre-trained weights (the
        new layers keep PyTorch's default init); ``"xavier"`` builds the text
        encoder from its config only and re-initialises every weight
        Xavier-normal (Algorithm 1, line 9).
        """
        from transformers import AutoModel

        check_choice("init", init, INIT_CHOICES)
        config = load_hf_config(text_model)
        if init == "pretrained":
            encoder = AutoModel.from_pretrained(str(text_model), config=config)
        else:
            encoder = AutoModel.from_config(config)
        return cls(
            encoder,
            image_dim,
            num_labels,
            num_heads=num_heads,
            hidden=hidden,
            dropout=dropout,
            activation=activation,
            ffn_dim=ffn_dim,
            labels=labels,
            text_model=str(text_model),
            init=init,
        )

    # -- forward ---------------------------------------------------------------------

    def forward(self, batch: dict[str, Any]) -> ModelOutput:
        """Reads ``input_ids``, ``attention_mask`` (+ ``token_type_ids``), ``image_tokens`` and optional ``image_mask``.

        ``image_tokens``: (B, P, D) or a pooled (B, D) (one token).
        ``image_mask``: (B, P), true/1 for real tokens (like ``attention_mask``).
        The image CLS (first image token) must not be masked.
        """
        inputs = text_inputs(self.text_encoder, batch)
        text = self.text_encoder(**inputs).last_hidden_state  # (B, T, H)
        bsz, n_text = text.shape[:2]

        image = batch["image_tokens"]
        if image.dim() == 2:
            image = image.unsqueeze(1)
        if image.dim() != 3 or image.shape[0] != bsz or image.shape[-1] != self.image_dim:
            raise ValueError(
                f"image_tokens must be (B={bsz}, P, D={self.image_dim}), got shape {tuple(batch['image_tokens'].shape)}"
            )
        image = self.image_proj(image.to(text.dtype))  # (B, P, H)

        text_mask = inputs.get("attention_mask")
        text_valid = (
            torch.ones(bsz, n_text, dtype=torch.bool, device=text.device) if text_mask is None else text_mask.bool()
        )
        image_mask = batch.get("image_mask")
        if image_mask is None:
            image_valid = torch.ones(image.shape[:2], dtype=torch.bool, device=text.device)
        else:
            image_valid = image_mask.to(device=text.device).bool()
            if image_valid.shape != image.shape[:2]:
                raise ValueError(f"image_mask shape {tuple(image_mask.shape)} != image tokens {tuple(image.shape[:2])}")
        padding = ~torch.cat([text_valid, image_valid], dim=1)  # True = ignore

        fused = self.fusion(torch.cat([text, image], dim=1), src_key_padding_mask=padding)
        pooled = torch.cat([fused[:, 0], fused[:, n_text]], dim=-1)  # text CLS, image CLS
        emb = self.act(self.head(pooled))
        return ModelOutput(logits=self.classifier(self.dropout(emb)), embedding=emb)

    # -- saving ----------------------------------------------------------------------

    def save(self, directory: str | Path, tokenizer: Any = None) -> Path:
        """``model.safetensors`` + ``lugpi_model.json`` + ``text_encoder/config.json`` (+ the tokenizer if given).

        The text encoder's config is saved so :meth:`load` rebuilds the model
        without the original checkpoint.
        """
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        save_weights(self, d)
        self.text_encoder.config.save_pretrained(str(d / TEXT_ENCODER_DIR))
        if tokenizer is not None:
            tokenizer.save_pretrained(str(d))
        write_model_config(d, self.model_config)
        return d

    @classmethod
    def load(cls, directory: str | Path) -> FusionTeacher:
        """Rebuild from :meth:`save`'s directory (eval mode)."""
        from transformers import AutoModel

        d = Path(directory)
        cfg = read_model_config(d)
        if cfg.get("kind") != "fusion":
            raise UserError(f"{d} holds a {cfg.get('kind')!r} model, not a fusion teacher")
        encoder = AutoModel.from_config(load_hf_config(d / TEXT_ENCODER_DIR))
        id2label = {int(k): v for k, v in cfg.get("id2label", {}).items()}
        model = cls(
            encoder,
            cfg["image_dim"],
            cfg["num_labels"],
            num_heads=cfg["num_heads"],
            hidden=cfg["hidden"],
            dropout=cfg["dropout"],
            activation=cfg["activation"],
            ffn_dim=cfg["ffn_dim"],
            labels=[id2label[i] for i in range(cfg["num_labels"])] if id2label else None,
            text_model=cfg.get("text_model"),
        )
        load_weights(model, d)
        model.model_config["init"] = cfg.get("init", "pretrained")
        return model.eval()


def build_teacher(
    modality: str,
    *,
    num_labels: int,
    text_model: str | Path | None = None,
    image_dim: int | None = None,
    init: str = "pretrained",
    labels: list[str] | None = None,
    num_heads: int = 8,
    hidden: int = 768,
    dropout: float = 0.1,
    activation: str = "relu",
    ffn_dim: int = 2048,
) -> FusionTeacher | TextClassifier | ImageClassifier:
    """The teacher for ``modality``: ``"both"`` -> FusionTeacher, ``"text"`` -> TextClassifier,
    ``"image"`` -> ImageClassifier. Options a modality does not use are ignored."""
    check_choice("modality", modality, MODALITIES)
    check_choice("init", init, INIT_CHOICES)
    if modality in ("both", "text") and text_model is None:
        raise UserError(f"a {modality!r} teacher needs a text model", hint="pass --text-model")
    if modality in ("both", "image") and image_dim is None:
        raise UserError(f"a {modality!r} teacher needs the image feature width (image_dim)")
    if modality == "both":
        return FusionTeacher.from_pretrained(
            text_model, image_dim, num_labels, init=init, num_heads=num_heads, hidden=hidden,
            dropout=dropout, activation=activation, ffn_dim=ffn_dim, labels=labels,
        )  # fmt: skip
    if modality == "text":
        return TextClassifier.from_pretrained(text_model, num_labels, labels=labels, init=init)
    return ImageClassifier(
        image_dim, num_labels, hidden=hidden, dropout=dropout, activation=activation, init=init, labels=labels
    )


def load_model(directory: str | Path) -> FusionTeacher | TextClassifier | ImageClassifier:
    """Load any model saved with ``.save(dir)``, dispatching on ``lugpi_model.json``'s ``kind``.

    A plain Hugging Face classifier directory (no ``lugpi_model.json``) loads as a TextClassifier.
    """
    d = Path(directory)
    if not (d / "lugpi_model.json").is_file() and (d / "config.json").is_file():
        return TextClassifier.load(d)
    kind = read_model_config(d).get("kind")
    loaders = {"fusion": FusionTeacher.load, "text": TextClassifier.load, "image": ImageClassifier.load}
    if kind not in loaders:
        raise UserError(f"{d} holds a model of unknown kind {kind!r}", hint="was it written by a newer lugpi?")
    return loaders[kind](d)
