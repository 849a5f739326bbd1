"""What the training stages (teacher, student) share, without torch: results, progress hooks, run status,
and the data set a teacher run was trained on.

The torch side they share (fitting, writing predictions, reusing a finished run) is
:mod:`lugpi_cli.training.lifecycle`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from lugpi_cli.errors import UserError

if TYPE_CHECKING:
    from lugpi_cli.data.samples import Dataset
    from lugpi_cli.training.runs import Run
    from lugpi_store import Store


@dataclass
class StageResult:
    """A trained, reused or re-cached run: what ``--json`` prints."""

    run: Run
    status: str  # "trained", "reused" or "recached"
    metrics: dict[str, Any]
    fingerprint: str
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        config = self.run.config()
        return {"run_dir": str(self.run.dir), "run": self.run.name, "status": self.status, "kind": config["kind"],
                "fingerprint": self.fingerprint, "metrics": self.metrics, **self.extra}


@dataclass
class Hooks:
    """Progress callbacks of a training run (all optional; :class:`lugpi_cli.progress.TrainingProgress`)."""

    log: Callable[[str], None] | None = None
    on_epoch_start: Callable[[int, int], None] | None = None
    on_step: Callable[[int, dict[str, float]], None] | None = None


def run_status(run: Run) -> str:
    """What a plan says of a run directory: done, interrupted (resumable) or to train."""
    if run.is_done():
        return "done: reused"
    if run.checkpoint_dir.exists():
        return "interrupted: resumes from its last epoch"
    return "to train"


def teacher_dataset(store: Store | None, teacher: Run) -> Dataset:
    """The exact data set (same samples, same --limit) a teacher run was trained on."""
    from lugpi_cli.data.snapshot import limit_dataset, load_snapshot

    info = teacher.config()["dataset"]
    ds = load_snapshot(store, full_fingerprint_of(store, info)) if store is not None and store.exists else None
    if ds is None:
        raise UserError(f"the data set of teacher {teacher.name} ({info.get('name')}) is not in this workspace's store",
                        "Was the store deleted or the run copied from another workspace? Re-run its train-teacher.")
    ds = limit_dataset(ds, info.get("limit"))
    if ds.fingerprint() != info["fingerprint"]:
        raise UserError(f"the data set snapshot no longer matches teacher {teacher.name}")
    return ds


def full_fingerprint_of(store: Store, info: dict[str, Any]) -> str:
    """The fingerprint of the full (un-limited) data set a run's ``dataset`` info refers to."""
    from lugpi_cli.lineage import read_pointer

    pointer = read_pointer(store, "dataset", info["name"])
    full = info.get("full_fingerprint") or (pointer or {}).get("fingerprint")
    if full is None:
        raise UserError(f"no snapshot of data set {info['name']!r} in this workspace")
    return full


def encoder_label(encoder: str) -> str:
    """The label an ``embed`` of ``encoder`` is recorded under (``clip``, ``vit``, a model's name)."""
    from lugpi_cli.encoders import EncoderConfig

    return EncoderConfig(encoder).label
