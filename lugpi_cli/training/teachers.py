"""Which teacher run a student reads, without torch: what a teacher caches and the default teacher."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from lugpi_cli.errors import UserError
from lugpi_cli.training.runs import Run, completed_runs, multimodal_teachers
from lugpi_cli.training.specs import TeacherSpec, _teacher_fields

FIELD_HINTS = {
    "logits_text": "train the teacher with --modality-dropout P (e.g. 0.3) so it also predicts from one modality",
    "logits_image": "train the teacher with --modality-dropout P (e.g. 0.3) so it also predicts from one modality",
    "logits_aux": "train an ARMADA teacher: lugpi train-teacher DATASET --arch armada --modality image "
                  "--encoder vae-latent",
    "manifold": "train an ARMADA teacher: lugpi train-teacher DATASET --arch armada --modality image "
                "--encoder vae-latent",
}


def cached_fields(config: dict[str, Any]) -> set[str]:
    """What a teacher run caches per sample (``teacher_fields`` of its config.json, or derived for older runs)."""
    if config.get("teacher_fields"):
        return set(config["teacher_fields"])
    return set(_teacher_fields(TeacherSpec(arch=config.get("arch") or "fusion",
                                           modality_dropout=config.get("modality_dropout") or 0.0)))


def default_teacher(runs_dir: Path, fields: Iterable[str] = ()) -> Run:
    """The most recently completed teacher that caches every output in ``fields`` (what the chosen method
    reads): a multimodal one (LUGPI's teacher) when there is one, else the most recent of any modality."""
    runs = completed_runs(runs_dir, "teacher")
    if not runs:
        raise UserError(f"no completed teacher run in {runs_dir}",
                        "Train one with `lugpi train-teacher DATASET --encoder clip`, or pass --teacher RUN; "
                        "for the plain fine-tuned baseline use --alpha 0 --beta 0 with --dataset.")
    needed = set(fields)
    fitting = [r for r in runs if needed <= cached_fields(r.config())]
    if not fitting:
        lacking = sorted(needed - cached_fields(runs[-1].config()))
        raise UserError(f"no completed teacher run in {runs_dir} caches {', '.join(sorted(needed))}, which this "
                        "method reads", FIELD_HINTS.get(lacking[0] if lacking else "", "Pass --teacher RUN."))
    multimodal = {r.name for r in multimodal_teachers(runs_dir)}
    return ([r for r in fitting if r.name in multimodal] or fitting)[-1]
