"""`lugpi evaluate --paper`: the paper's number and significance mark beside the measured ones, in every format."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from lugpi_cli.evaluation.compare import paper_cell, paper_entry

from .test_evaluate import make_run

PAPER = {"base": {"films": 0.861, "books": 0.5, "significant": []},
         "student": {"films": 0.871, "significant": ["films"]}}


def test_paper_entry_reads_a_number_or_a_table_per_data_set():
    assert paper_entry(0.9, "films") == {"accuracy": 0.9, "significant": False}
    assert paper_entry(PAPER["student"], "films (limit 100)") == {"accuracy": 0.871, "significant": True}
    assert paper_entry(PAPER["student"], "books") is None and paper_entry(None, "films") is None
    assert paper_entry({"films": 93.1}, "films")["accuracy"] == pytest.approx(0.931)  # percentages accepted
    assert paper_cell(PAPER["student"], "films") == "87.10‡" and paper_cell(PAPER["base"], "films") == "86.10"
    assert paper_cell(PAPER["student"], "books") == "-"


@pytest.fixture
def paper_runs(workspace, monkeypatch, tmp_path):
    rng = np.random.default_rng(3)
    base = rng.random(200) < 0.7
    make_run(workspace, "base", correct=base, alpha=0.0, beta=0.0)
    make_run(workspace, "student", correct=base | (rng.random(200) < 0.9))
    import lugpi_cli.recipe as recipe

    monkeypatch.setattr(recipe, "paper_numbers", lambda path, state: PAPER)  # run name -> [paper] value
    path = tmp_path / "paper.toml"
    path.write_text("# the [paper] table is read through paper_numbers (patched)\n")
    return path


def test_every_output_format_carries_the_papers_numbers(cli, paper_runs, tmp_path):
    args = ["evaluate", "base", "student", "--paper", paper_runs]
    rich = " ".join(cli(*args).stdout.split())
    assert "(paper 87.10‡)" in rich and "(paper 86.10)" in rich
    markdown = cli(*args, "--markdown").stdout
    head, rule, *rows = [line for line in markdown.splitlines() if line.startswith("|")]
    assert head.split(" | ")[2] == "paper" and rule.count("---") == 8
    assert sorted(r.split(" | ")[2] for r in rows) == ["86.10", "87.10‡"]
    out = json.loads(cli(*args, "--csv", tmp_path / "t.csv", "--json").stdout)
    runs = {r["run"]: r for r in out["runs"]}
    assert (runs["student"]["paper"], runs["student"]["paper_significant"]) == (0.871, True)
    assert (runs["base"]["paper"], runs["base"]["paper_significant"]) == (0.861, False)
    with open(tmp_path / "t.csv") as handle:
        table = {row["run"]: row for row in csv.DictReader(handle)}
    assert table["student"]["paper_accuracy"] == "0.871" and table["student"]["paper_significant"] == "True"
    assert table["base"]["paper_significant"] == "False"


def test_several_data_sets_pivot_with_the_papers_numbers(cli, workspace, paper_runs):
    rng = np.random.default_rng(4)
    make_run(workspace, "books-base", correct=rng.random(200) < 0.5, alpha=0.0, beta=0.0, dataset="books")
    markdown = cli("evaluate", "base", "student", "books-base", "--paper", paper_runs, "--markdown").stdout
    assert "(paper 87.10‡)" in markdown and "(paper 86.10)" in markdown
    rich = " ".join(cli("evaluate", "base", "student", "books-base", "--paper", paper_runs).stdout.split())
    assert rich.count("(paper 87.10‡)") == 2  # the per-run table and the pivot
