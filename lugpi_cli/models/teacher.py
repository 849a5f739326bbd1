"""The teacher for a modality and an architecture: :func:`build_teacher`, and :func:`load_model` for any saved model.

``"both"`` is the multimodal :class:`~lugpi_cli.models.fusion.FusionTeacher`
(text + a generated image's frozen features, with optional modality dropout
for MSD). :func:`build_teacher` also gives the paper's single-modality rows:
``"text"`` -> :class:`TextClassifier` (the plain fine-tuned text model) and
``"image"`` -> :class:`ImageClassifier`; and, with ``arch="armada"``, the
ARMADA teacher-side aligner (:class:`~lugpi_cli.models.armada.ArmadaTeacher`)
on one cached vector per image.
"""

from __future__ import annotations

from pathlib import Path

from lugpi_cli.errors import UserError
from lugpi_cli.models.armada import ArmadaTeacher, check_trainable_width
from lugpi_cli.models.common import INIT_CHOICES, MODALITIES, check_choice, read_model_config
from lugpi_cli.models.fusion import DROPS, FusionTeacher
from lugpi_cli.models.fusion_io import PLACEHOLDER_KEYS, TEXT_ENCODER_DIR  # noqa: F401 - re-exported
from lugpi_cli.models.image_classifier import ImageClassifier
from lugpi_cli.models.student import TextClassifier

__all__ = ["ARCHS", "DROPS", "FusionTeacher", "build_teacher", "load_model"]

ARCHS = ("fusion", "armada")


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
    arch: str = "fusion",
    modality_dropout: float = 0.0,
    proj_dim: int | None = None,
) -> FusionTeacher | TextClassifier | ImageClassifier | ArmadaTeacher:
    """The teacher for ``modality`` and ``arch``.

    ``arch="fusion"`` (the default): ``"both"`` -> FusionTeacher (with
    ``modality_dropout``, MSD), ``"text"`` -> TextClassifier, ``"image"`` ->
    ImageClassifier. ``arch="armada"``: the ARMADA teacher-side aligner
    (:class:`ArmadaTeacher`, ``modality="image"`` only) on one cached vector of
    width ``image_dim`` = D per sample, with ``hidden`` (768), ``dropout`` and
    ``proj_dim`` (default ``min(D, 768)``). Options an architecture or
    modality does not use are ignored.
    """
    check_choice("modality", modality, MODALITIES)
    check_choice("init", init, INIT_CHOICES)
    check_choice("arch", arch, ARCHS)
    if arch == "armada":
        if modality != "image":
            raise UserError(f"the ARMADA teacher reads one cached vector per image, not modality {modality!r}",
                            hint="use modality 'image' with arch 'armada'")
        if image_dim is None:
            raise UserError("an 'armada' teacher needs the width D of the cached teacher vectors (image_dim)")
        check_trainable_width(image_dim)
        return ArmadaTeacher(image_dim, num_labels, hidden=hidden, proj_dim=proj_dim, dropout=dropout, init=init,
                             labels=labels)
    if modality in ("both", "text") and text_model is None:
        raise UserError(f"a {modality!r} teacher needs a text model", hint="pass --text-model")
    if modality in ("both", "image") and image_dim is None:
        raise UserError(f"a {modality!r} teacher needs the image feature width (image_dim)")
    if modality == "both":
        return FusionTeacher.from_pretrained(
            text_model, image_dim, num_labels, init=init, num_heads=num_heads, hidden=hidden,
            dropout=dropout, activation=activation, ffn_dim=ffn_dim, labels=labels, modality_dropout=modality_dropout,
        )  # fmt: skip
    if modality == "text":
        return TextClassifier.from_pretrained(text_model, num_labels, labels=labels, init=init)
    return ImageClassifier(
        image_dim, num_labels, hidden=hidden, dropout=dropout, activation=activation, init=init, labels=labels
    )


def load_model(directory: str | Path) -> FusionTeacher | TextClassifier | ImageClassifier | ArmadaTeacher:
    """Load any model saved with ``.save(dir)``, dispatching on ``lugpi_model.json``'s ``kind``.

    A plain Hugging Face classifier directory (no ``lugpi_model.json``) loads as a TextClassifier.
    """
    d = Path(directory)
    if not (d / "lugpi_model.json").is_file() and (d / "config.json").is_file():
        return TextClassifier.load(d)
    kind = read_model_config(d).get("kind")
    loaders = {"fusion": FusionTeacher.load, "text": TextClassifier.load, "image": ImageClassifier.load,
               "armada": ArmadaTeacher.load}
    if kind not in loaders:
        raise UserError(f"{d} holds a model of unknown kind {kind!r}", hint="was it written by a newer lugpi?")
    return loaders[kind](d)
