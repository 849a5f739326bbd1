"""``lugpi report``: contact sheet, HTML page, probability densities, ablation heatmap."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from lugpi_cli import console
from lugpi_cli.commands.options import JsonFlag
from lugpi_cli.errors import UserError
from lugpi_cli.evaluation.compare import is_baseline
from lugpi_cli.reports.report import write_report
from lugpi_cli.training.runs import completed_runs, find_run, multimodal_teachers


def report_command(
    teacher: Annotated[Optional[str], typer.Option("--teacher", "-t", help="The multimodal teacher run (default: "
                                                   "the most recent one).")] = None,
    baseline: Annotated[Optional[str], typer.Option("--baseline", "-b", help="The text-only run (default: the "
                                                    "latest fine-tuned baseline on the same data).")] = None,
    student: Annotated[Optional[list[str]], typer.Option("--student", "-s", help="Students to show (repeatable; "
                                                         "default: the latest distilled from the teacher).")] = None,
    ablation: Annotated[Optional[Path], typer.Option("--ablation", help="A `lugpi ablate` output directory "
                                                     "(its heatmap joins the report).")] = None,
    split: Annotated[str, typer.Option("--split")] = "test",
    examples: Annotated[int, typer.Option("--examples", "-n", min=1, help="Examples on the contact sheet.")] = 12,
    out: Annotated[Optional[Path], typer.Option("--out", help="Output directory (default: "
                                                "WORKSPACE/reports/<teacher run>).")] = None,
    json_out: JsonFlag = False,
) -> None:
    """Pictures of a study: contact sheet, HTML page, probability densities, heatmap.

    Examples the teacher gets right and the text-only model wrong, with their
    generated images (PNG contact sheet + HTML); teacher and student
    probability densities per class; the ablation heatmap.
    """
    state = console.use_json(json_out)
    runs_dir = state.runs_path
    if teacher:
        teacher_run = find_run(runs_dir, teacher)
    else:
        teachers = multimodal_teachers(runs_dir)
        if not teachers:
            raise UserError(f"no finished multimodal teacher run in {runs_dir}", "Pass --teacher RUN.")
        teacher_run = teachers[-1]
    dataset = teacher_run.config()["dataset"]["fingerprint"]
    if baseline:
        baseline_run = find_run(runs_dir, baseline)
    else:
        candidates = [r for r in completed_runs(runs_dir) if is_baseline(r.config())
                      and r.config()["dataset"]["fingerprint"] == dataset]
        if not candidates:
            raise UserError(f"no finished text-only baseline on the data of {teacher_run.name}",
                            "Train one (`lugpi distill --alpha 0 --beta 0`) or pass --baseline RUN.")
        baseline_run = candidates[-1]
    if student:
        students = [find_run(runs_dir, s) for s in student]
    else:
        students = [r for r in completed_runs(runs_dir, "student") if r.config().get("teacher_run") == teacher_run.name][-1:]
    out_dir = out or state.workspace / "reports" / teacher_run.name
    report = write_report(state.open_store(), out_dir, teacher=teacher_run, baseline=baseline_run, students=students,
                          ablation=ablation, split=split, examples=examples)
    result = {**report.to_json(), "teacher": teacher_run.name, "baseline": baseline_run.name,
              "students": [s.name for s in students]}

    def render(out_console: Console) -> None:
        out_console.print(f"Report of {teacher_run.name} vs {baseline_run.name}: {report.panels} example(s) "
                          f"({report.selection}).")
        for name, path in report.files.items():
            out_console.print(f"  {name:16} {path}")

    console.emit(result, render)


def register(app: typer.Typer) -> None:
    app.command("report")(report_command)
