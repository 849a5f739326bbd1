"""`lugpi report`: contact sheet, HTML and densities from planted runs (panel count and sizes known)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from lugpi_cli.data.samples import Dataset, Sample
from lugpi_cli.data.snapshot import save_snapshot
from lugpi_cli.lineage import ImageSource
from lugpi_cli.reports.report import COLUMNS, PANEL
from lugpi_store import Store, encode_image, fingerprint

from tests.commands.test_evaluate import N, make_run


def _world(workspace, right_wrong: int):
    """A data set with images in the store, a teacher and a baseline that differ on ``right_wrong`` samples."""
    import io

    samples = [Sample(f"id{i:04d}", f"text number {i}", f"prompt {i}", i % 2, "test") for i in range(N)]
    ds = Dataset("films", ["neg", "pos"], {"train": [], "validation": [], "test": samples}, "planted", {})
    store = Store(workspace / "store", create=True)
    save_snapshot(store, ds)
    gen_fp = fingerprint({"planted": "generator"})
    keys = ImageSource(gen_fp, 0, {}).image_keys(samples)
    records = []
    for i, s in enumerate(samples):
        buffer = io.BytesIO()
        Image.fromarray(np.full((32, 32, 3), i % 255, np.uint8)).save(buffer, format="PNG")
        records.append((keys[s.id], encode_image(buffer.getvalue(), "png")))
    store.put_many("images", records)
    teacher_correct = np.ones(N, bool)
    base_correct = np.ones(N, bool)
    base_correct[:right_wrong] = False
    info = {"name": "films", "fingerprint": ds.fingerprint(), "full_fingerprint": ds.fingerprint()}
    teacher = make_run(workspace, "teacher", kind="teacher", correct=teacher_correct, shuffle_seed=1)
    baseline = make_run(workspace, "baseline", correct=base_correct, alpha=0.0, beta=0.0)
    for run in (teacher, baseline):
        config = run.config()
        config["dataset"] = info
        if run.name == "teacher":
            config["feature_source"] = {"generator_fingerprint": gen_fp, "generator_seed": 0}
        run.config_path.write_text(json.dumps(config))
    return teacher, baseline


def test_report_files_panels_and_sizes(cli, workspace):
    _world(workspace, right_wrong=5)
    out = json.loads(cli("report", "--teacher", "teacher", "--baseline", "baseline", "--json").stdout)
    assert out["panels"] == 5 and len(out["examples"]) == 5 and out["selection"] == "teacher right, baseline wrong"
    assert all(e["teacher"] == e["label"] != e["baseline"] for e in out["examples"])
    sheet = Image.open(out["files"]["contact_sheet"])
    sheet.load()
    assert sheet.size == (COLUMNS * PANEL, 2 * (PANEL + 96))  # 5 panels: 4 + 1
    page = open(out["files"]["html"]).read()
    assert page.count("<figure>") == 5 and page.count('src="images/') == 5
    densities = Image.open(out["files"]["densities"])
    densities.load()
    assert densities.size[0] > densities.size[1] > 100


def test_report_limits_and_defaults(cli, workspace):
    _world(workspace, right_wrong=30)
    out = json.loads(cli("report", "--examples", "8", "--json").stdout)  # teacher and baseline found by default
    assert out["teacher"] == "teacher" and out["baseline"] == "baseline" and out["panels"] == 8
    before = {p: p.read_bytes() for p in Path(out["files"]["contact_sheet"]).parent.glob("*.*")}
    assert "holds no heatmap.png" in cli("report", "--ablation", workspace, code=1).stderr
    assert "does not exist" in cli("report", "--ablation", workspace / "nowhere", code=1).stderr
    assert {p: p.read_bytes() for p in before} == before  # the earlier report is left as it was


def test_without_disagreement_the_first_samples_are_shown(cli, workspace):
    _world(workspace, right_wrong=0)
    out = json.loads(cli("report", "--examples", "3", "--json").stdout)
    assert out["panels"] == 3 and out["selection"].startswith("no sample where")
