"""Image-only classifier on cached image features (the paper's image-only teacher row)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import Tensor, nn

from lugpi_cli.models.common import (
    INIT_CHOICES,
    ModelOutput,
    check_choice,
    id2label_from,
    load_weights,
    make_activation,
    read_model_config,
    saved_labels,
    save_model_dir,
    xavier_init_,
)

__all__ = ["ImageClassifier", "first_image_token"]


def first_image_token(image_tokens: Tensor) -> Tensor:
    """(B, D) from cached features: a pooled vector (B, D) as is, tokens (B, P, D) -> the first (CLS) token."""
    if image_tokens.dim() == 3:
        return image_tokens[:, 0]
    if image_tokens.dim() == 2:
        return image_tokens
    raise ValueError(f"image_tokens must be (B, D) or (B, P, D), got shape {tuple(image_tokens.shape)}")


class ImageClassifier(nn.Module):
    """``Linear(D -> hidden) + activation`` = embedding -> dropout -> ``Linear(hidden -> k)``.

    Reads ``batch["image_tokens"]``: the image CLS/pooled vector (B, D) or the
    tokens (B, P, D), of which it uses the first. Stored float16 features are
    cast to the model's dtype.
    """

    modality = "image"

    def __init__(
        self,
        image_dim: int,
        num_labels: int,
        *,
        hidden: int = 768,
        dropout: float = 0.1,
        activation: str = "relu",
        init: str = "pretrained",
        labels: list[str] | None = None,
    ):
        super().__init__()
        check_choice("init", init, INIT_CHOICES)
        self.image_dim = int(image_dim)
        self.num_labels = int(num_labels)
        self.embedding_dim = int(hidden)
        self.id2label = id2label_from(labels, self.num_labels)
        self.model_config: dict[str, Any] = {
            "kind": "image",
            "modality": "image",
            "image_dim": self.image_dim,
            "num_labels": self.num_labels,
            "hidden": int(hidden),
            "dropout": float(dropout),
            "activation": activation,
            "init": init,
            "id2label": {str(k): v for k, v in self.id2label.items()},
        }
        self.proj = nn.Linear(self.image_dim, hidden)
        self.act = make_activation(activation)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden, self.num_labels)
        if init == "xavier":
            xavier_init_(self)

    def forward(self, batch: dict[str, Any]) -> ModelOutput:
        x = first_image_token(batch["image_tokens"]).to(self.proj.weight.dtype)
        if x.shape[-1] != self.image_dim:
            raise ValueError(f"image features have width {x.shape[-1]}, the model expects {self.image_dim}")
        emb = self.act(self.proj(x))
        return ModelOutput(logits=self.classifier(self.dropout(emb)), embedding=emb)

    # -- saving --------------------------------------------------------------------

    def save(self, directory: str | Path, tokenizer: Any = None) -> Path:
        """Write ``model.safetensors`` + ``lugpi_model.json`` (``tokenizer`` is ignored: no text)."""
        return save_model_dir(self, directory, self.model_config)

    @classmethod
    def load(cls, directory: str | Path) -> ImageClassifier:
        d = Path(directory)
        cfg = read_model_config(d)
        model = cls._from_config(cfg)
        load_weights(model, d)
        return model.eval()

    @classmethod
    def _from_config(cls, cfg: dict[str, Any]) -> ImageClassifier:
        labels = saved_labels(cfg)
        return cls(
            cfg["image_dim"],
            cfg["num_labels"],
            hidden=cfg["hidden"],
            dropout=cfg["dropout"],
            activation=cfg["activation"],
            init="pretrained",
            labels=labels,
        )
