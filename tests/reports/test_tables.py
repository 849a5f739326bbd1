"""Tables that stay readable: whole class names, % signs, ties said, local models told apart, labels that differ."""

from __future__ import annotations

import io
import json

from rich.console import Console

from lugpi_cli.reports.tables import best_line
from lugpi_cli.reports.store_tables import _config_summary
from lugpi_cli.reports.tables import probe_tables
from lugpi_cli.evaluation.compare import distinct_labels, run_label

CLASSES = ["alt.atheism", "comp.graphics", "comp.os.ms-windows.misc", "comp.sys.ibm.pc.hardware",
           "comp.sys.mac.hardware", "comp.windows.x", "misc.forsale", "rec.autos", "rec.motorcycles",
           "rec.sport.baseball", "rec.sport.hockey", "sci.crypt", "sci.electronics", "sci.med", "sci.space",
           "soc.religion.christian", "talk.politics.guns", "talk.politics.mideast", "talk.politics.misc",
           "talk.religion.misc"]


def _render(renderable, width: int) -> str:
    out = io.StringIO()
    Console(file=out, width=width, color_system=None).print(renderable)
    return out.getvalue()


def test_data_show_keeps_twenty_class_names_whole_at_80_columns(cli, tmp_path, monkeypatch):
    rows = ["text,label"] + [f"message {i} about {CLASSES[i % 20]},{CLASSES[i % 20]}" for i in range(400)]
    table = tmp_path / "news.csv"
    table.write_text("\n".join(rows) + "\n")
    monkeypatch.setenv("COLUMNS", "80")
    out = cli("data", "show", table, "--text-col", "text", "--label-col", "label", "-n", "0").stdout
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 80
    for name in CLASSES:
        assert any(line.split()[:1] == [name] for line in lines), name
    assert "…" not in out


def _probe_result(n_classes: int) -> dict:
    per_class = {name: 0.5 for name in CLASSES[:n_classes]}
    return {"n": 1132, "accuracy": 0.6789, "chance": 0.0527, "per_class": per_class}


def test_probe_prints_percent_signs_and_whole_class_names():
    text = _render(probe_tables("image (clip)", 10, {"train": _probe_result(20), "test": _probe_result(20)},
                                CLASSES), 80)
    assert "67.89%" in text and "5.27%" in text and "1,132" in text
    for name in CLASSES:
        assert name in text
    assert "50.0%" in text and "…" not in text


def test_ablate_best_line_says_when_settings_are_tied():
    best = {"setting": {"alpha": 0, "tau": 1}, "select_mean": 0.5, "report_mean": 0.48,
            "tied": [{"alpha": 0, "tau": 4}, {"alpha": 0, "tau": 8}]}
    line = best_line(best)
    assert "3 settings tied at validation 50.00%" in line
    assert "alpha=0, tau=1" in line and "alpha=0, tau=4; alpha=0, tau=8" in line
    alone = best_line({**best, "tied": []})
    assert "tied" not in alone and alone == "best on validation: alpha=0, tau=1  (validation 50.00%, test 48.00%)"


def test_store_info_tells_two_local_models_apart():
    first = {"stage": "generate", "model": "local", "content": "ab" * 32, "directory": "tiny-sd", "steps": 2}
    second = {**first, "content": "cd" * 32, "directory": "tiny-sd-v2"}
    old = {k: v for k, v in first.items() if k != "directory"}  # registered before directories were recorded
    assert "model=local:tiny-sd@abababab" in _config_summary(first)
    assert "model=local:tiny-sd-v2@cdcdcdcd" in _config_summary(second)
    assert "model=local@abababab" in _config_summary(old)
    teacher = {"stage": "teacher", "text_model": {"model": "local", "content": "ef" * 32}}
    assert "text_model=local@efefefef" in _config_summary(teacher)
    hub = {"stage": "embed", "model": "openai/clip-vit-base-patch32", "revision": "main"}
    assert "model=openai/clip-vit-base-patch32" in _config_summary(hub)


def _student(**loss) -> dict:
    options = {"alpha": 3.0, "beta": 1.0, "tau": 8.0, "soften": "teacher", "tau2": False, **loss}
    return {"kind": "student", "method": "lugpi", "loss_options": options, "text_model": "distilbert",
            "teacher_run": "teacher-x", "config": {"kind": "student", "loss": options, "train": {"seed": 0,
                                                                                                 "lr": 5e-5}}}


def test_evaluate_labels_students_that_differ_only_in_soften_and_tau2():
    configs = [_student(), _student(soften="both", tau2=True)]
    labels = distinct_labels([run_label(c) for c in configs], configs, ["student-a", "student-b"])
    assert labels[0] != labels[1]
    assert labels[0].endswith("[soften=teacher, tau2=false]")
    assert labels[1].endswith("[soften=both, tau2=true]")
    same = distinct_labels([run_label(c) for c in configs[:1] * 2], configs[:1] * 2, ["student-a", "student-a2"])
    assert same == [f"{run_label(configs[0])} [student-a]", f"{run_label(configs[0])} [student-a2]"]


def test_evaluate_labels_a_modality_dropout_teacher():
    plain = {"kind": "teacher", "modality": "both", "text_model": "distilbert-base-uncased",
             "encoder": "openai/clip-vit-base-patch32", "modality_dropout": 0.0, "config": {"kind": "teacher"}}
    dropout = {**plain, "modality_dropout": 0.3}
    assert run_label(plain) == "Teacher (distilbert-base-uncased + clip-vit-base-patch32)"
    assert run_label(dropout) == run_label(plain) + ", modality dropout 0.3"


def test_help_hides_flag_metavars_and_says_which_teacher(cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    for args in (["ablate", "--help"], ["--help"], ["distill", "--help"]):
        out = cli(*args).stdout
        assert "<bool>" not in out, args
    ablate = cli("ablate", "--help").stdout
    assert "--json  " in ablate and "most recent finished multimodal teacher" in " ".join(ablate.split())
    assert "<int>" not in cli("--help").stdout.split("--verbose")[1].split("\n")[0]
    assert json.loads(cli("--json", "store", "info", code=1).stdout)["exit_code"] == 1


def test_evaluate_table_keeps_every_run_name_and_column_at_80_and_200_columns():
    from lugpi_cli.reports.tables import render_comparison
    from lugpi_cli.evaluation.compare import Comparison, Row

    metrics = {"accuracy": 0.9, "macro_f1": 0.89, "micro_f1": 0.9, "roc_auc": 0.97}
    rows = [Row(f"student-cwi-news-{i}a8b9c0d1e2f3", "", f"LUGPI student (α=3 τ=8, β=1) [soften=s{i}]", "student",
                "cwi-news", metrics, baseline=i == 0,
                mcnemar=None if i == 0 else {"pvalue": 0.0063, "method": "exact"},
                agreement={"label_agreement": 0.95, "mean_kl": 0.032}) for i in range(3)]
    comparison = Comparison("test", 0.001, rows)
    for width in (80, 200):
        text = _render_console(lambda out: render_comparison(comparison, out), width)
        assert max(map(len, text.splitlines())) <= width
        for r in rows:
            assert r.run in text, (width, r.run)
        for header in ("accuracy", "macro-F1", "micro-F1", "ROC-AUC", "McNemar", "agreement", "0.0063", "95.0%"):
            assert header in text, (width, header)
        assert "…" not in text
        assert text.count("soften") == 3  # the model labels wrap, never vanish


def _render_console(draw, width: int) -> str:
    out = io.StringIO()
    draw(Console(file=out, width=width, color_system=None))
    return out.getvalue()
