"""`lugpi ablate` end to end on tiny models: files, analysis, resume after kill, --jobs, no upstream work."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from PIL import Image

from lugpi_cli.training.runs import Run


def test_preset_grid_files_and_analysis(cli, workspace, grid_args):
    out = json.loads(cli("ablate", "--preset", "loss-terms", "--seeds", "2", *grid_args, "--json").stdout)
    assert out["cells"] == 8 and out["trained"] == 8 and out["reused"] == 0
    settings = {(r["alpha"], r["beta"]) for r in out["rows"]}
    assert settings == {(0.0, 0.0), (0.0, 1.0), (3.0, 0.0), (3.0, 1.0)}
    assert out["set"]["tau"] == "8.0"
    rows = list(csv.DictReader(open(os.path.join(out["out_dir"], "results.csv"))))
    assert len(rows) == 8 and set(rows[0]) >= {"alpha", "beta", "seed", "validation_accuracy", "test_accuracy",
                                               "run", "status", "run_dir"}
    assert len(out["summary"]) == 4 and all(s["n_runs"] == 2 for s in out["summary"])
    assert out["anova"]["interactions"] is True
    assert [r["term"] for r in out["anova"]["rows"]] == ["alpha", "beta", "alpha:beta", "Residual"]
    best = out["best"]
    means = {(s["alpha"], s["beta"]): s["validation_accuracy_mean"] for s in out["summary"]}
    assert means[(best["setting"]["alpha"], best["setting"]["beta"])] == max(means.values())
    heatmap = Image.open(os.path.join(out["out_dir"], "heatmap.png"))
    heatmap.load()
    assert heatmap.size[0] > 100 and heatmap.size[1] > 100
    for row in out["rows"]:  # every cell is an ordinary distill run
        config = Run(row["run_dir"]).config()
        assert config["kind"] == "student" and config["config"]["loss"]["tau"] == 8.0
    again = json.loads(cli("ablate", "--preset", "loss-terms", "--seeds", "2", *grid_args, "--json").stdout)
    assert (again["trained"], again["reused"]) == (0, 8)


def test_a_cell_run_by_hand_is_reused(cli, grid_args, tiny_models):
    manual = json.loads(cli("distill", "--alpha", "3", "--beta", "0", "--tau", "8", *grid_args, "--json").stdout)
    out = json.loads(cli("ablate", "--grid", "alpha=0,3", "--set", "beta=0", "--set", "tau=8", *grid_args,
                         "--json").stdout)
    by_alpha = {r["alpha"]: r for r in out["rows"]}
    assert by_alpha[3.0]["status"] == "reused" and by_alpha[3.0]["run"] == manual["run"]
    assert by_alpha[0.0]["status"] == "trained"


def test_no_cell_generates_embeds_or_runs_the_teacher(cli, grid_args, monkeypatch):
    from lugpi_cli.encoders import embedder
    from lugpi_cli.generation import runner
    from lugpi_cli.models import FusionTeacher

    def refuse(*args, **kwargs):
        raise AssertionError("upstream work during ablate")

    for target, name in ((FusionTeacher, "forward"), (runner, "run_pipeline"), (embedder, "encode")):
        monkeypatch.setattr(target, name, refuse)
    cli("ablate", "--grid", "tau=1,8", *grid_args)


def test_bad_input(cli, workspace, grid_args, tmp_path):
    assert "unknown grid key 'gamma'" in cli("ablate", "--grid", "gamma=1,2", *grid_args, code=1).stderr
    assert "does not parse" in cli("ablate", "--grid", "alpha=x", *grid_args, code=1).stderr
    assert "the grid is empty" in cli("ablate", *grid_args, code=1).stderr
    assert "unknown preset" in cli("ablate", "--preset", "everything", code=1).stderr
    recipe = tmp_path / "r.toml"
    recipe.write_text("[ablate]\nseeds = 2\nsteps = 3\n")
    assert "unknown key ablate.steps" in cli("ablate", "--recipe", recipe, code=1).stderr
    assert not (workspace / "ablations").exists()  # nothing ran


def test_recipe_file(cli, grid_args, tmp_path):
    recipe = tmp_path / "grid.toml"
    recipe.write_text("[ablate]\nseeds = 1\n[ablate.grid]\nalpha = [0, 3]\n[ablate.set]\nbeta = 0\n")
    out = json.loads(cli("ablate", "--recipe", recipe, *grid_args, "--json").stdout)
    assert out["cells"] == 2 and {r["alpha"] for r in out["rows"]} == {0.0, 3.0}


@pytest.mark.slow
def test_kill_then_resume_retrains_only_the_rest(cli, workspace, grid_args):
    args = ["ablate", "--grid", "alpha=0,1,3", "--grid", "beta=0,1", "--set", "tau=8", *map(str, grid_args)]
    env = {**os.environ, "LUGPI_WORKSPACE": str(workspace)}
    proc = subprocess.Popen([sys.executable, "-m", "lugpi_cli", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    finished = 0
    while time.time() < deadline and proc.poll() is None:
        results = list(workspace.glob("ablations/*/results.json"))
        if results:
            finished = len(json.loads(results[0].read_text())["rows"])
            if finished >= 2:
                break
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert 2 <= finished < 6, finished
    out = json.loads(cli(*args, "--json").stdout)
    assert out["reused"] >= finished and out["trained"] + out["reused"] == 6
    assert out["trained"] <= 6 - finished


@pytest.mark.slow
def test_jobs_2_gives_the_same_results_as_jobs_1(cli, workspace, grid_args, tmp_path, with_teacher, monkeypatch):
    import shutil

    import torch

    grid = ["ablate", "--grid", "alpha=0,3", "--grid", "beta=0,1", "--set", "tau=8", *grid_args, "--json"]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the workers of --jobs 2 get one thread each: same arithmetic
    try:
        one = json.loads(cli(*grid).stdout)
    finally:
        torch.set_num_threads(threads)
    other = tmp_path / "other"
    shutil.copytree(with_teacher, other)
    monkeypatch.setenv("LUGPI_WORKSPACE", str(other))
    two = json.loads(cli(*grid, "--jobs", "2").stdout)
    assert two["trained"] == 4

    def key(r):
        return (r["alpha"], r["beta"], r["seed"])

    for a, b in zip(sorted(one["rows"], key=key), sorted(two["rows"], key=key)):
        assert a["run"] == b["run"]
        assert a["validation_accuracy"] == b["validation_accuracy"] and a["test_accuracy"] == b["test_accuracy"]
