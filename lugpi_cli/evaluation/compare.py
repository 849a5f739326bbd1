"""Comparing finished runs: the paper's tables from run directories.

:func:`compare_runs` reads each run's predictions for one split, joins them by
sample id per data set, computes metrics, McNemar's test of each run against
the data set's baseline, Cochran's Q across three or more runs, and — for a
student whose run names its teacher — the teacher–student agreement. The
result renders as a rich table, Markdown, CSV or JSON; with several data sets
the paper's layout (rows = models, columns = data sets) is available too.

Baseline per data set: ``--baseline RUN`` if given (for its data set), else the
fine-tuned text-only run among those compared (a student with no teacher
terms, or a ``--modality text`` teacher), else the first run given.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from lugpi_cli.errors import UserError
from lugpi_cli.evaluation.agreement import agreement
from lugpi_cli.evaluation.alignment import Predictions, align, read_predictions
from lugpi_cli.evaluation.metrics import classification_metrics
from lugpi_cli.evaluation.significance import DEFAULT_ALPHA, MARKER, cochrans_q, mcnemar_test, significance_marker
from lugpi_cli.training.runs import Run

METRICS = ("accuracy", "macro_f1", "micro_f1", "roc_auc")


def run_label(config: dict[str, Any]) -> str:
    """A row label from the run's config: kind, modality and loss terms (the paper's naming); the seed if not 0."""
    seed = (config.get("config") or {}).get("train", {}).get("seed", 0)
    label = _describe(config)
    return f"{label} seed {seed}" if seed else label


def _describe(config: dict[str, Any]) -> str:
    kind = config.get("kind")
    if kind == "teacher":
        modality = config.get("modality", "both")
        text = Path(str(config.get("text_model") or "")).name
        encoder = Path(str(config.get("encoder") or "")).name
        label = {"both": f"Teacher ({text} + {encoder})", "text": f"{text} (text only)",
                 "image": f"{encoder} image only"}[modality]
        dropout = config.get("modality_dropout") or 0
        return f"{label}, modality dropout {dropout:g}" if dropout else label
    method = config.get("method", "lugpi")
    options = config.get("loss_options") or {}
    if method == "lugpi":
        alpha, beta = options.get("alpha", 0), options.get("beta", 0)
        if not alpha and not beta:
            return f"{Path(str(config.get('text_model'))).name} fine-tuned (no KD)"
        terms = [f"α={alpha:g} τ={options.get('tau', 8):g}" if alpha else "", f"β={beta:g}" if beta else ""]
        return "LUGPI student (" + ", ".join(t for t in terms if t) + ")"
    shown = ", ".join(f"{k}={v}" for k, v in sorted(options.items()))
    return f"{method} student ({shown})" if shown else f"{method} student"


_NOT_SETTINGS = {"dataset", "features", "images", "teacher", "eval_batch_size"}  # hashes, or no effect on results


def run_settings(config: dict[str, Any]) -> dict[str, str]:
    """Every setting that defines a run, flat (``soften``, ``tau2``, ``lr``, ``modality_dropout``, ``teacher``...):
    what labels are told apart by."""
    flat: dict[str, str] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict) and set(value) == {"content", "model"}:
            flat[prefix] = f"local@{str(value['content'])[:8]}"
        elif isinstance(value, dict):
            for k, v in value.items():
                walk(k if prefix in ("", "train", "loss") else f"{prefix}.{k}", v)
        elif prefix not in _NOT_SETTINGS:
            flat[prefix] = value if isinstance(value, str) else json.dumps(value)

    walk("", config.get("config") or {})
    for key in ("modality_dropout", "teacher_run", "arch", "encoder"):
        if key in config and not isinstance(config[key], dict):
            flat.setdefault(key if key != "teacher_run" else "teacher", str(config[key]))
    return flat


def distinct_labels(labels: Sequence[str], configs: Sequence[dict[str, Any]], names: Sequence[str]) -> list[str]:
    """``labels`` where runs sharing one get the settings that tell them apart appended
    (``LUGPI student (α=3 τ=8, β=1) [soften=both, tau2=true]``); runs that differ in nothing shown get
    their run name."""
    out = list(labels)
    groups: dict[str, list[int]] = {}
    for i, label in enumerate(labels):
        groups.setdefault(label, []).append(i)
    for label, members in groups.items():
        if len(members) < 2:
            continue
        settings = [run_settings(configs[i]) for i in members]
        keys = sorted({k for s in settings for k in s})
        differing = [k for k in keys if len({s.get(k, "-") for s in settings}) > 1]
        for i, s in zip(members, settings):
            shown = ", ".join(f"{k}={s.get(k, '-')}" for k in differing[:4])
            out[i] = f"{label} [{shown}]" if shown else f"{label} [{names[i]}]"
        if len(set(out[i] for i in members)) < len(members):  # still equal (more than four differences)
            for i in members:
                out[i] = f"{label} [{names[i]}]"
    return out


def is_baseline(config: dict[str, Any]) -> bool:
    if config.get("kind") == "teacher":
        return config.get("modality") == "text"
    options = config.get("loss_options") or {}
    return config.get("teacher_run") is None and config.get("method", "lugpi") == "lugpi" \
        and not options.get("alpha") and not options.get("beta")


def paper_entry(value: Any, dataset: str) -> dict[str, Any] | None:
    """The paper's number for one row on one data set, from a recipe's ``[paper]`` table.

    ``value`` is a float, or a table ``{imdb = 0.931, cwi-news = 0.868, significant = ["imdb"]}`` whose
    ``significant`` lists the data sets where the paper marks the row significantly better than its baseline
    (its ‡). ``dataset`` may carry a suffix (``imdb (limit 1000)``). Returns ``{"accuracy", "significant"}``.
    """
    significant: list[str] = []
    if isinstance(value, dict):
        name = dataset.split(" (")[0]
        significant = list(value.get("significant") or [])
        value = value.get(dataset, value.get(name, value.get("accuracy")))
        dataset = name
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    accuracy = value / 100 if value > 1 else float(value)
    return {"accuracy": accuracy, "significant": dataset in significant}


def paper_cell(value: Any, dataset: str) -> str:
    """``93.10‡`` for a [paper] value on a data set (``-`` when the paper has no number there)."""
    entry = value if isinstance(value, dict) and "significant" in value and "accuracy" in value \
        and isinstance(value["significant"], bool) else paper_entry(value, dataset)
    if entry is None:
        return "-"
    return f"{100 * entry['accuracy']:.2f}" + (MARKER if entry["significant"] else "")


@dataclass
class Row:
    run: str
    run_dir: str
    label: str
    kind: str
    dataset: str
    metrics: dict[str, Any]
    baseline: bool = False
    mcnemar: dict[str, Any] | None = None
    significant: bool = False
    agreement: dict[str, Any] | None = None
    paper: dict[str, Any] | None = None

    def marker(self) -> str:
        return MARKER if self.significant else ""


@dataclass
class Comparison:
    split: str
    alpha_level: float
    rows: list[Row]
    cochran: dict[str, dict[str, Any]] = field(default_factory=dict)  # per data set
    baselines: dict[str, str] = field(default_factory=dict)  # data set -> run name

    @property
    def datasets(self) -> list[str]:
        return list(dict.fromkeys(r.dataset for r in self.rows))

    def to_json(self) -> dict[str, Any]:
        return {
            "split": self.split, "alpha_level": self.alpha_level, "baselines": self.baselines,
            "cochrans_q": self.cochran,
            "runs": [{"run": r.run, "run_dir": r.run_dir, "label": r.label, "kind": r.kind, "dataset": r.dataset,
                      "baseline": r.baseline, "metrics": r.metrics, "mcnemar": r.mcnemar, "significant": r.significant,
                      "agreement": r.agreement,
                      **({"paper": r.paper["accuracy"], "paper_significant": r.paper["significant"]} if r.paper
                         else {})} for r in self.rows],
        }

    # -- flat table (one row per run) -------------------------------------------------
    def records(self) -> list[dict[str, Any]]:
        out = []
        for r in self.rows:
            rec = {"run": r.run, "label": r.label, "kind": r.kind, "dataset": r.dataset, "baseline": r.baseline}
            rec.update({m: r.metrics.get(m) for m in METRICS})
            rec["mcnemar_p"] = None if r.mcnemar is None else r.mcnemar["pvalue"]
            rec["significant"] = r.significant
            rec["label_agreement"] = None if r.agreement is None else r.agreement["label_agreement"]
            rec["mean_kl"] = None if r.agreement is None else r.agreement["mean_kl"]
            if any(row.paper for row in self.rows):
                rec["paper_accuracy"] = None if not r.paper else r.paper["accuracy"]
                rec["paper_significant"] = None if not r.paper else r.paper["significant"]
            rec["run_dir"] = r.run_dir
            out.append(rec)
        return out

    def to_csv(self) -> str:
        buffer = io.StringIO()
        records = self.records()
        writer = csv.DictWriter(buffer, fieldnames=list(records[0]) if records else ["run"])
        writer.writeheader()
        writer.writerows(records)
        return buffer.getvalue()

    def to_markdown(self) -> str:
        if len(self.datasets) > 1:
            return self._pivot_markdown()
        paper = any(r.paper for r in self.rows)
        head = "| model | accuracy |" + (" paper |" if paper else "") + \
            " macro-F1 | micro-F1 | ROC-AUC | McNemar p | agreement |"
        lines = [head, "|" + "---|" * (8 if paper else 7)]
        for r in self.rows:
            lines.append("| " + " | ".join([
                r.label + (" (baseline)" if r.baseline else ""), _pct(r.metrics.get("accuracy")) + r.marker(),
                *([paper_cell(r.paper, r.dataset)] if paper else []),
                _pct(r.metrics.get("macro_f1")), _pct(r.metrics.get("micro_f1")), _pct(r.metrics.get("roc_auc")),
                _p(r.mcnemar), _agree(r.agreement)]) + " |")
        return "\n".join(lines) + f"\n\n{MARKER} significantly different from the baseline (McNemar, p < " \
                                  f"{self.alpha_level:g}), {self.split} split.\n"

    def pivot(self) -> tuple[list[str], list[str], dict[tuple[str, str], Row]]:
        """Rows = model labels, columns = data sets (the paper's Table 1 layout).

        Runs of one data set whose labels coincide (settings the label does not
        show, e.g. an ablation's learning rates) keep one row each, their label
        followed by the run name, instead of overwriting each other.
        """
        seen: dict[tuple[str, str], int] = {}
        for r in self.rows:
            seen[(r.label, r.dataset)] = seen.get((r.label, r.dataset), 0) + 1
        keyed = [(r.label if seen[(r.label, r.dataset)] == 1 else f"{r.label} [{r.run}]", r) for r in self.rows]
        labels = list(dict.fromkeys(label for label, _ in keyed))
        cells = {(label, r.dataset): r for label, r in keyed}
        return labels, self.datasets, cells

    def _pivot_markdown(self) -> str:
        labels, datasets, cells = self.pivot()
        lines = ["| model | " + " | ".join(datasets) + " |", "|" + "---|" * (len(datasets) + 1)]
        for label in labels:
            row = [(_pct(cells[(label, d)].metrics.get("accuracy")) + cells[(label, d)].marker()
                    + with_paper(cells[(label, d)])) if (label, d) in cells else "" for d in datasets]
            lines.append(f"| {label} | " + " | ".join(row) + " |")
        return "\n".join(lines) + f"\n\nAccuracy on the {self.split} split; {MARKER} significantly different from " \
                                  f"the data set's baseline (McNemar, p < {self.alpha_level:g}).\n"


def with_paper(row: Row) -> str:
    """`` (paper 93.10‡)`` after a measured cell, when the row has the paper's number."""
    return f" (paper {paper_cell(row.paper, row.dataset)})" if row.paper else ""


def _pct(value: Any) -> str:
    return "-" if value is None else f"{100 * value:.2f}"


def _p(result: dict[str, Any] | None) -> str:
    return "-" if result is None else f"{result['pvalue']:.2g}"


def _agree(result: dict[str, Any] | None) -> str:
    return "-" if result is None else f"{100 * result['label_agreement']:.1f}% (KL {result['mean_kl']:.3f})"


def load_run(run: Run, split: str) -> tuple[dict[str, Any], Predictions]:
    """A finished run's config and predictions for ``split``; clear errors otherwise."""
    if not run.config_path.exists():
        raise UserError(f"{run.dir} is not a lugpi run (no config.json)", "Pass run directories or run names.")
    if not run.is_done():
        state = "is still being trained" if run.in_progress() else "did not finish (no DONE marker)"
        raise UserError(f"run {run.name} {state}", "Wait for it, or re-run its command to resume it.")
    path = run.predictions_path(split)
    if not path.exists():
        raise UserError(f"run {run.name} has no predictions for split {split!r} ({path})",
                        "Choose --split train, validation or test.")
    return run.config(), read_predictions(path)


def compare_runs(runs: Sequence[Run], *, split: str = "test", baseline: Run | None = None,
                 alpha_level: float = DEFAULT_ALPHA, runs_dir: Path | None = None) -> Comparison:
    if not runs:
        raise UserError("no runs to evaluate", "Pass run directories or names, e.g. `lugpi evaluate runs/*`.")
    if not 0 < alpha_level < 1:
        raise UserError(f"--alpha-level must be in (0, 1), got {alpha_level}")
    unique = list({r.dir.resolve(): r for r in runs}.values())
    if baseline is not None and baseline.dir.resolve() not in {r.dir.resolve() for r in unique}:
        unique.insert(0, baseline)
    names = [r.name for r in unique]
    keys = [r.name if names.count(r.name) == 1 else str(r.dir) for r in unique]  # same name, other workspace
    loaded = {key: (r, *load_run(r, split)) for key, r in zip(keys, unique)}
    by_dataset: dict[str, list[str]] = {}
    for key, (_, config, _) in loaded.items():
        by_dataset.setdefault(config["dataset"]["fingerprint"], []).append(key)
    labels = _dataset_labels({fp: loaded[keys_[0]][1]["dataset"] for fp, keys_ in by_dataset.items()})
    comparison = Comparison(split, alpha_level, [])
    for fp, group in by_dataset.items():
        _compare_dataset(comparison, {k: loaded[k] for k in group}, baseline, runs_dir, labels[fp])
    return comparison


def _dataset_labels(infos: dict[str, dict[str, Any]]) -> dict[str, str]:
    """A column name per distinct sample set: the data set's name, with its --limit, and a fingerprint
    prefix only when two sample sets would still share a name."""
    def plain(info: dict[str, Any]) -> str:
        return f"{info.get('name', '?')} (limit {info['limit']})" if info.get("limit") else info.get("name", "?")

    labels = {fp: plain(info) for fp, info in infos.items()}
    taken = list(labels.values())
    return {fp: label if taken.count(label) == 1 else f"{label} ({fp[:8]})" for fp, label in labels.items()}


def _compare_dataset(comparison: Comparison, loaded: dict[str, tuple[Run, dict, Predictions]],
                     baseline: Run | None, runs_dir: Path | None, dataset: str) -> None:
    ids, aligned = align({name: preds for name, (_, _, preds) in loaded.items()})
    names = list(loaded)
    chosen = next((k for k, (r, _, _) in loaded.items() if baseline is not None
                   and r.dir.resolve() == baseline.dir.resolve()), None)
    if chosen is not None:
        base = chosen
    else:
        base = next((n for n in names if is_baseline(loaded[n][1])), names[0])
    comparison.baselines[dataset] = base
    labels = distinct_labels([run_label(loaded[n][1]) for n in names], [loaded[n][1] for n in names],
                             [loaded[n][0].name for n in names])
    for name, label in zip(names, labels):
        run, config, _ = loaded[name]
        preds = aligned[name]
        metrics = classification_metrics(preds.labels, preds.predicted, preds.probs, num_labels=preds.num_labels)
        row = Row(run.name, str(run.dir), label, config["kind"], dataset, metrics, baseline=name == base)
        if name != base:
            row.mcnemar = mcnemar_test(aligned[base].correct, preds.correct)
            row.significant = bool(significance_marker(row.mcnemar["pvalue"], comparison.alpha_level))
        row.agreement = _teacher_agreement(config, preds, comparison.split, runs_dir, run)
        comparison.rows.append(row)
    if len(names) >= 3:
        matrix = np.stack([aligned[n].correct for n in names], axis=1)
        comparison.cochran[dataset] = {**cochrans_q(matrix), "runs": names}


def _teacher_agreement(config: dict[str, Any], student: Predictions, split: str, runs_dir: Path | None,
                       run: Run) -> dict[str, Any] | None:
    """Label agreement and mean KL(teacher || student), when the student names its teacher."""
    teacher_name = config.get("teacher_run")
    if config.get("kind") != "student" or not teacher_name:
        return None
    candidates = [Path(config.get("teacher_run_dir") or ""), run.dir.parent / teacher_name]
    if runs_dir is not None:
        candidates.append(runs_dir / teacher_name)
    teacher_dir = next((c for c in candidates if (c / "predictions" / f"{split}.csv").exists()), None)
    if teacher_dir is None:
        return None
    teacher = read_predictions(teacher_dir / "predictions" / f"{split}.csv")
    _, pair = align({"teacher": teacher, "student": student})
    if pair["teacher"].probs is None or pair["student"].probs is None:
        return None
    return {**agreement(pair["teacher"].probs, pair["student"].probs), "teacher_run": teacher_name}


def write_text(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


__all__ = ["Comparison", "Row", "compare_runs", "distinct_labels", "is_baseline", "load_run", "paper_cell",
           "paper_entry", "run_label", "run_settings", "with_paper", "write_text"]
