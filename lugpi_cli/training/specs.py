"""What names a teacher or student run, without torch: the specs and the configs whose hash is the run name.

The stages (:mod:`lugpi_cli.training.lifecycle`) train with them; a plan (``lugpi run --dry-run``,
``lugpi evaluate --paper``) computes the same run names and teacher-output fingerprints from them
without importing torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lugpi_cli import hub
from lugpi_cli.errors import UserError
from lugpi_cli.model_ids import DEFAULT_TEXT_MODEL
from lugpi_cli.training.config import TrainConfig
from lugpi_store import fingerprint

MODALITIES = ("both", "text", "image")


def teacher_modality(modality: str | None, arch: str) -> str:
    """``--modality`` when given; else ``image`` for ``--arch armada`` (its aligner reads image vectors only),
    ``both`` (the LUGPI teacher) otherwise."""
    if modality is not None:
        return modality
    return "image" if arch == "armada" else "both"


@dataclass(frozen=True)
class TeacherSpec:
    modality: str = "both"
    text_model: str = DEFAULT_TEXT_MODEL
    encoder: str = "clip"
    init: str = "pretrained"
    hidden: int = 768
    heads: int = 8
    dropout: float = 0.1
    arch: str = "fusion"
    modality_dropout: float = 0.0
    proj_dim: int | None = None
    gamma: float = 1.0

    def check(self) -> "TeacherSpec":
        if self.modality not in MODALITIES:
            raise UserError(f"unknown --modality {self.modality!r}", f"Choose from {', '.join(MODALITIES)}.")
        if self.init not in ("pretrained", "xavier"):
            raise UserError(f"unknown --init {self.init!r}", "Choose pretrained or xavier.")
        if self.arch not in ("fusion", "armada"):
            raise UserError(f"unknown --arch {self.arch!r}", "Choose fusion (the LUGPI teacher) or armada.")
        if self.arch == "armada" and self.modality != "image":
            raise UserError(f"--arch armada trains the teacher-side aligner on image vectors only, not --modality "
                            f"{self.modality}", "Drop --modality (armada implies image) and embed with --encoder "
                            "vae-latent.")
        if not 0 <= self.modality_dropout < 1:
            raise UserError(f"--modality-dropout must be in [0, 1), got {self.modality_dropout}")
        if self.modality_dropout and self.modality != "both":
            raise UserError("--modality-dropout needs a teacher that sees both modalities (--modality both)")
        if self.gamma < 0:
            raise UserError(f"--gamma must be >= 0, got {self.gamma}")
        return self


def teacher_config(dataset_fp: str, spec: TeacherSpec, cfg: TrainConfig, features: dict[str, Any] | None
                   ) -> dict[str, Any]:
    """Everything that changes a teacher's result; its hash names the run (pure: no I/O but model identity)."""
    uses_text = spec.modality in ("both", "text")
    return {
        "kind": "teacher", "dataset": dataset_fp, "modality": spec.modality,
        "text_model": hub.model_identity(spec.text_model) if uses_text else None,
        "features": features["encoder_fingerprint"] if features else None,
        "images": features["generator_fingerprint"] if features else None,
        "init": spec.init, "arch": {"hidden": spec.hidden, "heads": spec.heads, "dropout": spec.dropout}
        if spec.modality != "text" else None,
        "train": cfg.hashed(),
        **({"armada": {"proj_dim": spec.proj_dim, "gamma": spec.gamma}} if spec.arch == "armada" else {}),
        **({"modality_dropout": spec.modality_dropout} if spec.modality_dropout else {}),
    }


def teacher_output_fingerprint(config: dict[str, Any], run: str) -> str:
    """The fingerprint the teacher's cached outputs are keyed by."""
    return fingerprint({"config": config, "run": run})


def student_config(dataset_fp: str, spec: "StudentSpec", loss_hparams: dict[str, Any], cfg: TrainConfig,
                   teacher_fp: str | None) -> dict[str, Any]:
    """Everything that changes a student's result; its hash names the run."""
    return {
        "kind": "student", "dataset": dataset_fp, "teacher": teacher_fp, "method": spec.method,
        "loss": loss_hparams, "text_model": hub.model_identity(spec.text_model), "init": spec.init,
        "train": cfg.hashed(),
        "student_embedding": "before-dropout",  # older runs matched a dropped-out e_S: not reused
    }


def _teacher_fields(spec: TeacherSpec) -> list[str]:
    """What a teacher run caches per sample (what distillation methods may read)."""
    fields = ["logits", "embedding"]
    if spec.arch == "armada":
        fields += ["logits_aux", "manifold"]
    if spec.modality_dropout:
        fields += ["logits_text", "logits_image"]
    return fields


@dataclass(frozen=True)
class StudentSpec:
    text_model: str = DEFAULT_TEXT_MODEL
    init: str = "pretrained"
    method: str = "lugpi"
    options: tuple[tuple[str, Any], ...] = ()

    @property
    def loss_options(self) -> dict[str, Any]:
        return dict(self.options)
