"""A run report: what the generated images add, in pictures.

* a contact sheet (PNG) and an HTML page of test examples the multimodal
  teacher gets right and the text-only baseline gets wrong, each with its
  generated image, a text excerpt and the labels (the LUGPI paper's Fig. 2);
* teacher and student probability densities per class (the Modality-specific
  Distillation paper's Fig. 6): for every class c, the distribution of P(c)
  over the test samples of class c;
* the ablation heatmap, when an ablation directory is given.
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
from store import Store

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


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def pick_examples(store: Store, teacher: Run, baseline: Run, split: str, limit: int) -> tuple[list[Example], str]:
    """Samples the teacher classifies correctly and the baseline does not, with their images.

    When there is none, the first samples of the split instead (said in the second value).
    """
    from lugpi_cli.data.snapshot import load_snapshot
    from lugpi_cli.lineage import ImageSource
    from lugpi_cli.training.stages import full_fingerprint_of

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
    """Per class c: histograms of P(c) over the test samples of class c, one curve per run."""
    plt = _pyplot()
    preds = {name: load_run(run, split)[1] for name, run in runs.items()}
    _, aligned = align(preds)
    first = next(iter(aligned.values()))
    classes = list(range(first.num_labels))
    labels = next(iter(runs.values())).config().get("labels") or [str(c) for c in classes]
    fig, axes = plt.subplots(1, len(classes), figsize=(4 * len(classes), 3.2), dpi=110, squeeze=False)
    bins = np.linspace(0, 1, 21)
    for c, ax in zip(classes, axes[0]):
        for name, p in aligned.items():
            if p.probs is None:
                continue
            values = p.probs[p.labels == c, c]
            ax.hist(values, bins=bins, histtype="step", linewidth=1.6, label=name, density=True)
        ax.set_title(f"class {labels[c]}: P({labels[c]}) on its samples")
        ax.set_xlabel("predicted probability")
    axes[0][0].set_ylabel("density")
    axes[0][-1].legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def write_report(store: Store, out_dir: Path, *, teacher: Run, baseline: Run, students: Sequence[Run] = (),
                 ablation: Path | None = None, split: str = "test", examples: int = 12) -> Report:
    report = Report(out_dir)
    heatmap = Path(ablation) / "heatmap.png" if ablation is not None else None
    if heatmap is not None and not heatmap.exists():  # before anything of an earlier report is removed
        what = "does not exist" if not Path(ablation).exists() else "holds no heatmap.png"
        raise UserError(f"--ablation {ablation} {what}", "Pass the output directory of `lugpi ablate`.")
    for stale in ("contact_sheet.png", "densities.png", "heatmap.png", "index.html", "report.json"):
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
    if heatmap is not None:
        shutil.copy2(heatmap, out_dir / "heatmap.png")
        report.files["heatmap"] = str(out_dir / "heatmap.png")
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
        img = f'<img src="images/{k:03d}.png" width="192">' if ex.image is not None else "<div>(no image)</div>"
        cards.append(f'<figure>{img}<figcaption>{html.escape(ex.text[:300])}<br><b>label</b> {html.escape(ex.label)}'
                     f' · <span class="ok">teacher {html.escape(ex.teacher)}</span> · '
                     f'<span class="bad">baseline {html.escape(ex.baseline)}</span></figcaption></figure>')
    extra = ''.join(f'<h2>{title}</h2><img src="{name}.png">' for name, title in
                    (("densities", "Teacher and student probabilities per class"),
                     ("heatmap", "Ablation: mean test accuracy")) if name in report.files)
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>lugpi report</title>
<style>body{{font-family:sans-serif;margin:2em}} figure{{display:inline-block;width:200px;vertical-align:top;margin:6px}}
figcaption{{font-size:12px}} .ok{{color:darkgreen}} .bad{{color:#b00}} td,th{{padding:2px 10px}}</style></head><body>
<h1>lugpi report ({html.escape(split)} split)</h1>
<table><tr><th>model</th><th>run</th><th>accuracy</th><th>macro-F1</th></tr>{''.join(rows)}</table>
<h2>Examples ({len(picked)}): {html.escape(report.selection)}</h2>
{''.join(cards)}
{extra}</body></html>
"""
    path = report.out_dir / "index.html"
    path.write_text(page)
    return path


__all__ = ["Report", "contact_sheet", "pick_examples", "probability_densities", "write_report"]
