"""``report``: contact sheet, HTML page, probability densities and ablation heatmap of a study."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from lugpi_cli.errors import UserError
from lugpi_cli.stages.params import StageParams, opt
from lugpi_cli.workspace import Workspace


@dataclass(frozen=True)
class Params(StageParams):
    STAGE = "report"

    teacher: Optional[str] = opt(None, "The multimodal teacher run (default: the most recent one).", short="-t")
    baseline: Optional[str] = opt(None, "The text-only run (default: the latest fine-tuned baseline on the same "
                                  "data).", short="-b")
    student: tuple[str, ...] = opt((), "Students to show (repeatable; default: the latest distilled from the "
                                   "teacher).", short="-s", multiple=True)
    ablation: Optional[Path] = opt(None, "A `lugpi ablate` output directory (its heatmap joins the report).")
    split: str = opt("test", "train, validation or test.")
    examples: int = opt(12, "Examples on the contact sheet.", short="-n", min=1)
    out: Optional[Path] = opt(None, "Output directory (default: WORKSPACE/reports/<teacher run>).")


@dataclass
class Result:
    report: Any  # reports.report.Report
    teacher: str
    baseline: str
    students: list[str]

    def to_json(self) -> dict[str, Any]:
        return {**self.report.to_json(), "teacher": self.teacher, "baseline": self.baseline,
                "students": self.students}


def _teacher(ws: Workspace, name: str | None):
    if name:
        return ws.find_run(name)
    teachers = [r for r in ws.completed_runs("teacher") if r.config().get("modality") == "both"]
    if not teachers:
        raise UserError(f"no finished multimodal teacher run in {ws.runs_path}", "Pass --teacher RUN.")
    return teachers[-1]


def _baseline(ws: Workspace, name: str | None, teacher):
    from lugpi_cli.evaluation.compare import is_baseline

    if name:
        return ws.find_run(name)
    dataset = teacher.config()["dataset"]["fingerprint"]
    candidates = [r for r in ws.completed_runs() if is_baseline(r.config())
                  and r.config()["dataset"]["fingerprint"] == dataset]
    if not candidates:
        raise UserError(f"no finished text-only baseline on the data of {teacher.name}",
                        "Train one (`lugpi distill --alpha 0 --beta 0`) or pass --baseline RUN.")
    return candidates[-1]


def run(ws: Workspace, params: Params) -> Result:
    from lugpi_cli.reports.report import write_report

    # 1. the runs shown: teacher, baseline, students
    teacher = _teacher(ws, params.teacher)
    baseline = _baseline(ws, params.baseline, teacher)
    students = [ws.find_run(s) for s in params.student] if params.student else \
        [r for r in ws.completed_runs("student") if r.config().get("teacher_run") == teacher.name][-1:]
    # 2. the pictures
    out_dir = params.out or ws.root / "reports" / teacher.name
    report = write_report(ws.open_store(), out_dir, teacher=teacher, baseline=baseline, students=students,
                          ablation=params.ablation, split=params.split, examples=params.examples)
    return Result(report, teacher.name, baseline.name, [s.name for s in students])
