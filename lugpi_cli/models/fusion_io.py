"""Saving and loading the fusion teacher: ``model.safetensors`` + ``lugpi_model.json`` + the text encoder's config.

:class:`FusionTeacherIO` gives :class:`~lugpi_cli.models.fusion.FusionTeacher`
``from_pretrained`` (a new teacher on a pre-trained or re-initialised text
model), ``save`` and ``load`` (rebuilt from the saved directory alone, without
the original checkpoint).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from lugpi_cli.models.common import (
    INIT_CHOICES,
    check_choice,
    load_hf_config,
    load_weights,
    read_model_config,
    saved_labels,
    save_weights,
    write_model_config,
)

if TYPE_CHECKING:
    from lugpi_cli.models.fusion import FusionTeacher

TEXT_ENCODER_DIR = "text_encoder"
PLACEHOLDER_KEYS = ("text_placeholder", "image_placeholder")


class FusionTeacherIO:
    """``from_pretrained``, ``save`` and ``load`` for :class:`~lugpi_cli.models.fusion.FusionTeacher`."""

    text_encoder: Any
    model_config: dict[str, Any]

    @classmethod
    def from_pretrained(
        cls,
        text_model: str | Path,
        image_dim: int,
        num_labels: int,
        *,
        init: str = "pretrained",
        **arch: Any,
    ) -> FusionTeacher:
        """A teacher on the text model ``text_model`` (hub id or local directory); ``arch`` are the
        constructor's keywords (``num_heads``, ``hidden``, ``dropout``, ``activation``, ``ffn_dim``, ``labels``,
        ``modality_dropout``), with its defaults.

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
        return cls(encoder, image_dim, num_labels, text_model=str(text_model), init=init, **arch)

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
        cfg = read_model_config(d, "fusion", "a fusion teacher")
        encoder = AutoModel.from_config(load_hf_config(d / TEXT_ENCODER_DIR))
        model = cls(
            encoder,
            cfg["image_dim"],
            cfg["num_labels"],
            num_heads=cfg["num_heads"],
            hidden=cfg["hidden"],
            dropout=cfg["dropout"],
            activation=cfg["activation"],
            ffn_dim=cfg["ffn_dim"],
            labels=saved_labels(cfg),
            text_model=cfg.get("text_model"),
            modality_dropout=cfg.get("modality_dropout", 0.0),
        )
        load_weights(model, d, missing_ok=PLACEHOLDER_KEYS)  # teachers saved before modality dropout
        model.model_config["init"] = cfg.get("init", "pretrained")
        return model.eval()
