"""A run report: what the generated images add, in pictures.

* a contact sheet (PNG) and an HTML page of test examples the multimodal
  teacher gets right and the text-only baseline gets wrong, each with its
  generated image, a text excerpt and the labels (the LUGPI paper's Fig. 2);
* teacher and student probability densities per class (the Modality-specific
  Distillation paper's Fig. 6): for every class c, the distribution of P(c)
  over the test samples of class c;
* validation accuracy per epoch of every model shown (``history.jsonl``);
* the ablation heatmap (and its per-setting learning curves), when an ablation directory is given.
"""

from __future__ import annotations

import html
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from lugpi_cli.errors import UserError
from lugpi_cli.evaluation import align
from lugpi_cli.evaluation.compare import load_run, run_label
from lugpi_cli.training.runs import Run
from lugpi_store import Store

PANEL = 256  # pixels of a panel's image in the contact sheet
COLUMNS = 4


@dataclass
class Example:
    sample_id: str
    text: str
    label: str
    teacher: str
    baseline: str
    image: Any  # PIL image or None


@dataclass
class Report:
    out_dir: Path
    files: dict[str, str] = field(default_factory=dict)
    panels: int = 0
    examples: list[dict[str, str]] = field(default_factory=list)
    selection: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"out_dir": str(self.out_dir), "files": self.files, "panels": self.panels, "examples": self.examples,
                "selection": self.selection}


def pick_examples(store: Store, teacher: Run, baseline: Run, split: str, limit: int) -> tuple[list[Example], str]:
    """Samples the teacher classifies correctly and the baseline does not, with their images.

    When there is none, the first samples of the split instead (said in the second value).
    """
    from lugpi_cli.data.snapshot import load_snapshot
    from lugpi_cli.lineage import ImageSource
    from lugpi_cli.stages.runs import full_fingerprint_of

    t_config, t_preds = load_run(teacher, split)
    _, b_preds = load_run(baseline, split)
    _, aligned = align({"teacher": t_preds, "baseline": b_preds})
    t, b = aligned["teacher"], aligned["baseline"]
    chosen = np.flatnonzero(t.correct & ~b.correct)[:limit]
    selection = "teacher right, baseline wrong"
    if not len(chosen):
        chosen = np.arange(min(limit, len(t.sample_ids)))
        selection = "no sample where the teacher is right and the baseline wrong: the first samples"
    labels = t_config.get("labels") or [str(i) for i in range(t.num_labels)]
    ds = load_snapshot(store, full_fingerprint_of(store, t_config["dataset"])) if store.exists else None
    samples = {s.id: s for s in ds.samples()} if ds is not None else {}
    source = t_config.get("feature_source")
    examples = []
    for i in chosen:
        sid = str(t.sample_ids[i])
        sample = samples.get(sid)
        image = None
        if sample is not None and source:
            key = ImageSource(source["generator_fingerprint"], int(source["generator_seed"]), {}).image_keys([sample])
            record = store.get("images", key[sid])
            image = record.to_pil().convert("RGB") if record is not None else None
        text = "" if sample is None else (sample.text if sample.text_pair is None else
                                          f"«{sample.text_pair}» in: {sample.text}")
        examples.append(Example(sid, text, labels[t.labels[i]], labels[t.predicted[i]], labels[b.predicted[i]], image))
    return examples, selection


def contact_sheet(examples: Sequence[Example], path: Path, columns: int = COLUMNS) -> int:
    """A grid of panels: image, then text excerpt and labels. Returns the number of panels."""
    from PIL import Image, ImageDraw

    n = len(examples)
    cols = max(1, min(columns, n))
    rows = max(1, -(-n // cols))
    caption = 96
    sheet = Image.new("RGB", (cols * PANEL, rows * (PANEL + caption)), "white")
    draw = ImageDraw.Draw(sheet)
    for k, ex in enumerate(examples):
        x, y = (k % cols) * PANEL, (k // cols) * (PANEL + caption)
        if ex.image is not None:
            sheet.paste(ex.image.resize((PANEL - 8, PANEL - 8)), (x + 4, y + 4))
        else:
            draw.rectangle((x + 4, y + 4, x + PANEL - 4, y + PANEL - 4), outline="grey")
            draw.text((x + 12, y + PANEL // 2), "(no image)", fill="grey")
        text = _wrap(ex.text, 40)[:3]
        lines = [(line, "black") for line in text] + [
            (f"label {ex.label} | teacher {ex.teacher}", "darkgreen" if ex.teacher == ex.label else "red"),
            (f"baseline {ex.baseline}" + ("" if ex.baseline == ex.label else " (wrong)"),
             "black" if ex.baseline == ex.label else "red")]
        for j, (line, colour) in enumerate(lines):
            draw.text((x + 6, y + PANEL + 4 + 15 * j), line, fill=colour)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return n


def _wrap(text: str, width: int) -> list[str]:
    import textwrap

    return textwrap.wrap(text, width) or [""]


def probability_densities(runs: dict[str, Run], split: str, path: Path) -> Path:
    """Per class c: histograms of P(c) over the samples of class c, one curve per run (a grid of panels)."""
    from lugpi_cli.reports.plots import density_figure, save

    preds = {name: load_run(run, split)[1] for name, run in runs.items()}
    _, aligned = align(preds)
    first = next(iter(aligned.values()))
    classes = list(range(first.num_labels))
    labels = next(iter(runs.values())).config().get("labels") or [str(c) for c in classes]
    probs = {name: [p.probs[p.labels == c, c] for c in classes] for name, p in aligned.items() if p.probs is not None}
    title = f"P(c) on the {split} samples of class c"
    return save(density_figure(probs, [str(labels[c]) for c in classes], title), path)


def learning_curves(runs: dict[str, Run], path: Path) -> Path | None:
    """Validation accuracy per epoch of each run (from ``history.jsonl``); None when no run has a history."""
    from lugpi_cli.reports.plots import history_accuracies, learning_curve_figure, save

    curves = {name: [acc] for name, run in runs.items() if (acc := history_accuracies(run.history()))}
    if not curves:
        return None
    return save(learning_curve_figure(curves, "validation accuracy per epoch"), path)


def write_report(store: Store, out_dir: Path, *, teacher: Run, baseline: Run, students: Sequence[Run] = (),
                 ablation: Path | None = None, split: str = "test", examples: int = 12) -> Report:
    report = Report(out_dir)
    heatmap = Path(ablation) / "heatmap.png" if ablation is not None else None
    if heatmap is not None and not heatmap.exists():  # before anything of an earlier report is removed
        what = "does not exist" if not Path(ablation).exists() else "holds no heatmap.png"
        raise UserError(f"--ablation {ablation} {what}", "Pass the output directory of `lugpi ablate`.")
    for stale in ("contact_sheet.png", "densities.png", "heatmap.png", "curves.png", "ablation_curves.png",
                  "index.html", "report.json"):
        (out_dir / stale).unlink(missing_ok=True)  # a re-run never leaves an old picture behind
    shutil.rmtree(out_dir / "images", ignore_errors=True)
    picked, report.selection = pick_examples(store, teacher, baseline, split, examples)
    if picked:
        report.panels = contact_sheet(picked, out_dir / "contact_sheet.png")
        report.files["contact_sheet"] = str(out_dir / "contact_sheet.png")
        images_dir = out_dir / "images"
        images_dir.mkdir(parents=True, exist_ok=True)
        for k, ex in enumerate(picked):
            if ex.image is not None:
                ex.image.save(images_dir / f"{k:03d}.png")
    report.examples = [{"sample_id": e.sample_id, "text": e.text[:300], "label": e.label, "teacher": e.teacher,
                        "baseline": e.baseline} for e in picked]
    runs = {"teacher": teacher, **{f"student: {run_label(s.config())}": s for s in students}, "baseline": baseline}
    report.files["densities"] = str(probability_densities(runs, split, out_dir / "densities.png"))
    curves = learning_curves(runs, out_dir / "curves.png")
    if curves is not None:
        report.files["curves"] = str(curves)
    if heatmap is not None:
        shutil.copy2(heatmap, out_dir / "heatmap.png")
        report.files["heatmap"] = str(out_dir / "heatmap.png")
        if (Path(ablation) / "curves.png").exists():
            shutil.copy2(Path(ablation) / "curves.png", out_dir / "ablation_curves.png")
            report.files["ablation_curves"] = str(out_dir / "ablation_curves.png")
    labels = {name: run_label(run.config()) for name, run in runs.items()}
    report.files["html"] = str(_html(report, picked, labels, runs, split))
    (out_dir / "report.json").write_text(json.dumps(report.to_json(), indent=2) + "\n")
    report.files["json"] = str(out_dir / "report.json")
    return report


def _html(report: Report, picked: Sequence[Example], labels: dict[str, str], runs: dict[str, Run], split: str) -> Path:
    rows = []
    for name, run in runs.items():
        m = run.metrics().get(split, {})
        rows.append(f"<tr><td>{html.escape(labels[name])}</td><td>{html.escape(run.name)}</td>"
                    f"<td>{100 * m.get('accuracy', float('nan')):.2f}</td>"
                    f"<td>{100 * m.get('macro_f1', float('nan')):.2f}</td></tr>")
    cards = []
    for k, ex in enumerate(picked):
        img = f'<img src="images/{k:03d}.png" alt="generated image">' if ex.image is not None else \
            "<div>(no image)</div>"
        cards.append(f'<figure>{img}<figcaption>{html.escape(ex.text[:300])}<br><b>label</b> {html.escape(ex.label)}'
                     f' · <span class="ok">teacher {html.escape(ex.teacher)}</span> · '
                     f'<span class="bad">baseline {html.escape(ex.baseline)}</span></figcaption></figure>')
    extra = ''.join(f'<h2>{title}</h2><img class="plot" src="{name}.png" alt="{title}">' for name, title in
                    (("curves", "Validation accuracy per epoch"),
                     ("densities", "Teacher and student probabilities per class"),
                     ("heatmap", "Ablation: mean test accuracy"),
                     ("ablation_curves", "Ablation: validation accuracy per epoch, mean ± std over seeds"))
                    if name in report.files)
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>lugpi report</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font-family:sans-serif;margin:2em;max-width:1200px}} *{{box-sizing:border-box}}
figure{{display:inline-block;width:200px;max-width:100%;vertical-align:top;margin:6px}}
figure img{{width:192px;max-width:100%;height:auto}} img.plot{{max-width:100%;height:auto;display:block}}
figcaption{{font-size:12px;overflow-wrap:anywhere}} .ok{{color:darkgreen}} .bad{{color:#b00}}
table{{border-collapse:collapse;max-width:100%}} td,th{{padding:2px 10px;text-align:left;overflow-wrap:anywhere}}
</style></head><body>
<h1>lugpi report ({html.escape(split)} split)</h1>
<table><tr><th>model</th><th>run</th><th>accuracy</th><th>macro-F1</th></tr>{''.join(rows)}</table>
<h2>Examples ({len(picked)}): {html.escape(report.selection)}</h2>
{''.join(cards)}
{extra}</body></html>
"""
    path = report.out_dir / "index.html"
    path.write_text(page)
    return path


__all__ = ["Report", "contact_sheet", "learning_curves", "pick_examples", "probability_densities", "write_report"]
