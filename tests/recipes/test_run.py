"""Recipes and `lugpi run`: checked before any work, planned with --dry-run, executed, resumed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lugpi_cli.recipe import load_recipe
from tests.recipe_tables import tiny_tables, write_recipe

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


def _recipe(tmp_path, tiny_models, tiny_csv, extra: str = "") -> Path:
    tables = tiny_tables(tiny_models, tiny_csv)
    tables["generate"]["format"] = "png"
    return write_recipe(tmp_path / "tiny.toml", tables, extra)


def test_plan_run_and_resume(cli, workspace, tmp_path, tiny_models, tiny_csv):
    recipe = _recipe(tmp_path, tiny_models, tiny_csv)
    before = json.loads(cli("run", recipe, "--dry-run", "--json").stdout)["plan"]
    status = {row["id"]: row["status"] for row in before}
    assert status["generate"].startswith("0 of 8 images cached") and status["teacher"] == "to train"
    assert not (workspace / "runs").exists()  # a dry run does nothing
    done = json.loads(cli("run", recipe, "--json").stdout)
    assert set(done["runs"]) == {"teacher", "baseline", "lugpi"}
    planned = {row["id"]: row["run"] for row in before if row["run"]}
    assert planned == done["runs"]  # the plan names exactly the runs the stages make
    evaluation = done["results"]["evaluate:evaluate"]
    paper = {r["run"]: r.get("paper") for r in evaluation["runs"]}
    assert paper[done["runs"]["lugpi"]] == 0.9 and paper[done["runs"]["baseline"]] is None
    after = json.loads(cli("run", recipe, "--dry-run", "--json").stdout)["plan"]
    status = {row["id"]: row["status"] for row in after}
    assert status["generate"] == "8 of 8 images cached, 0 to generate"
    assert status["teacher"] == status["lugpi"] == "done: reused"
    again = json.loads(cli("run", recipe, "--json").stdout)
    assert all(r.get("status") in (None, "reused") for k, r in again["results"].items()
               if k.split(":")[0] in ("teacher", "student"))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("[bogus]\nx = 1\n", "unknown key 'bogus'"),
        ("[ablate]\ngrid = { alpha = [0, 3] }\nfrobnicate = 2\n", "unknown key 'frobnicate'"),
        ("[ablate]\ngrid = { gamma = [0, 3] }\n", "unknown grid key 'gamma'"),
    ],
)
def test_broken_recipes_fail_before_any_work(cli, workspace, tmp_path, tiny_models, tiny_csv, change, message):
    recipe = _recipe(tmp_path, tiny_models, tiny_csv, change)
    err = cli("run", recipe, code=1).stderr
    assert message in err and "Traceback" not in err
    assert not workspace.exists()


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('steps = 2', 'steps = "many"', "(got 'many')"),
        ('alpha = 0.0', 'alpha = "abc"', "(got 'abc')"),
        ('[[embed]]\n', '[[embed]]\npooled_only = "yes"\n', "pooled_only takes true or false, got 'yes'"),
        ('format = "png"', 'format = "gif"', "unknown image format 'gif'"),
        ('hidden = 32', 'hidden = 32\nmodality = "audio"', "--modality"),
        ('teacher = "teacher"', 'teacher = "nobody"', "'nobody' is not a [[teacher]] id"),
        ('id = "lugpi"', 'id = "lugpi"\nlam = 0.5', "unknown option 'lam'"),
        ('text_col = "text"', 'text_col = "text"\nwhatever = 1', "unknown key dataset.whatever"),
    ],
)
def test_bad_values_name_the_key(cli, workspace, tmp_path, tiny_models, tiny_csv, old, new, message):
    recipe = _recipe(tmp_path, tiny_models, tiny_csv)
    recipe.write_text(recipe.read_text().replace(old, new, 1))
    err = cli("run", recipe, code=1).stderr
    assert message in err and "tiny.toml" in err and "Traceback" not in err
    assert not workspace.exists()


def test_valid_keys_are_the_options_long_names(cli, workspace, tmp_path, tiny_models, tiny_csv):
    recipe = _recipe(tmp_path, tiny_models, tiny_csv)
    recipe.write_text(recipe.read_text().replace("steps = 2", "stepz = 2", 1))
    err = cli("run", recipe, code=1).stderr
    valid = err.split("Valid keys:", 1)[1]
    assert "steps" in valid and "format" in valid
    assert not {"json", "image_format", "json_out"} & set(valid.replace(",", " ").replace(".", " ").split())


def test_missing_files(cli, workspace, tmp_path, tiny_models, tiny_csv):
    assert "does not exist" in cli("run", tmp_path / "nope.toml", code=1).stderr
    recipe = _recipe(tmp_path, tiny_models, tiny_csv)
    recipe.write_text(recipe.read_text().replace(str(tiny_csv), str(tmp_path / "gone.csv")))
    assert "no such file" in cli("run", recipe, code=1).stderr


@pytest.mark.parametrize("path", sorted(RECIPES.rglob("*.toml")), ids=lambda p: p.name)
def test_shipped_recipes_are_valid(path):
    recipe = load_recipe(path)
    assert recipe.title and recipe.steps


def test_quickstart_dry_run_on_the_real_imdb(cli, shared_data, monkeypatch):
    monkeypatch.setenv("LUGPI_DATA", str(shared_data))
    plan = json.loads(cli("run", RECIPES / "quickstart.toml", "--dry-run", "--json").stdout)["plan"]
    assert plan[0]["status"] == "0 of 3000 images cached, 3000 to generate"
    assert [row["stage"] for row in plan] == ["generate", "embed", "teacher", "teacher", "student", "evaluate"]
