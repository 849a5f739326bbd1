"""One stage layer: a command, a recipe step and a grid cell with the same settings reach the same stage
with the same parameters, hence the same fingerprints and run names (issue: one stage layer).

The command's parameters are caught where the command hands them to its stage (the stage's ``run`` is
replaced by a recorder), so the CLI's own parsing is what is compared; the recipe's come from its dry run.
"""

from __future__ import annotations

import json

import pytest

from lugpi_cli.errors import UserError
from lugpi_cli.recipe import load_recipe, params_of
from lugpi_cli.stages import ablate, embed, generate, student, teacher
from lugpi_cli.workspace import Workspace
from tests.recipe_tables import tiny_student, tiny_tables, write_recipe


class Caught(UserError):
    pass


@pytest.fixture
def catch(monkeypatch):
    """``catch(module)``: the next command's stage parameters, with no work done."""
    seen: dict = {}

    def arm(module):
        def recorder(ws, params, *args, **kwargs):
            seen["params"] = params
            raise Caught("parameters caught")

        monkeypatch.setattr(module, "run", recorder)
        return seen

    return arm


def _recipe(tmp_path, tiny_models, tiny_csv):
    tables = tiny_tables(tiny_models, tiny_csv)
    del tables["title"], tables["evaluate"], tables["paper"]
    tables["generate"].update(steps=3, size=32, reuse_similar=0.95, format="png")
    tables["teacher"][0].update(id="t", epochs=2)
    two_epochs = {"epochs": 2}
    tables["student"] = [{**tiny_student("s", tiny_models, teacher="t", method="kd", lam=0.3), **two_epochs},
                         {**tiny_student("base", tiny_models, alpha=0.0, beta=0.0), **two_epochs}]
    tables["ablate"] = {"teacher": "t", "grid": {"lam": [0.3, 0.5]},
                        "set": {"method": "kd", "text_model": tiny_models["text"], "max_length": 32, "epochs": 2}}
    return write_recipe(tmp_path / "same.toml", tables)


def test_command_recipe_and_grid_cell_agree(cli, catch, workspace, tmp_path, tiny_models, tiny_csv):
    recipe_path = _recipe(tmp_path, tiny_models, tiny_csv)
    data = [str(tiny_csv), "--text-col", "text", "--label-col", "label", "--prompt-col", "prompt"]
    ws = Workspace(workspace)
    planned = json.loads(cli("run", recipe_path, "--dry-run", "--json").stdout)
    rows = {row["id"]: row for row in planned["plan"]}

    # generate, reuse_similar included (it is part of the generator fingerprint)
    seen = catch(generate)
    cli("generate", *data, "--model", tiny_models["sd"], "--steps", "3", "--size", "32", "--reuse-similar", "0.95",
        "--format", "png", code=1)
    command_gen = generate.plan(ws, seen["params"])
    assert command_gen.config.fingerprint() == planned["generator"]["fingerprint"]
    assert generate.plan(ws, seen["params"].replace(reuse_similar=None)).config.fingerprint() \
        != planned["generator"]["fingerprint"]

    # embed -> teacher
    seen = catch(embed)
    cli("embed", *data, "--encoder", tiny_models["clip"], code=1)
    features = embed.plan(ws, seen["params"], generator=command_gen.generator).features
    seen = catch(teacher)
    cli("train-teacher", *data, "--encoder", tiny_models["clip"], "--text-model", tiny_models["text"],
        "--hidden", "32", "--epochs", "2", "--max-length", "32", code=1)
    command_teacher = teacher.plan(ws, seen["params"], features=features)
    assert command_teacher.run_name == rows["t"]["run"]

    # students: with a teacher (a method option among them) and the baseline
    seen = catch(student)
    cli("distill", "--teacher", rows["t"]["run"], "--method", "kd", "--lam", "0.3", "--text-model",
        tiny_models["text"], "--epochs", "2", "--max-length", "32", code=1)
    with_teacher = seen["params"].replace(dataset=load_recipe(recipe_path).dataset)  # the teacher's, still planned
    assert student.plan(ws, with_teacher, command_teacher.output_fingerprint).run_name == rows["s"]["run"]
    cli("distill", "--dataset", *data, "--alpha", "0", "--beta", "0", "--text-model", tiny_models["text"],
        "--epochs", "2", "--max-length", "32", code=1)
    assert student.plan(ws, seen["params"]).run_name == rows["base"]["run"]

    # a grid cell is the same distill run, from the command line and from the recipe
    recipe = load_recipe(recipe_path)
    grid_step = recipe.step("ablate", "ablate")
    from_recipe = params_of(recipe, grid_step, {"t": rows["t"]["run"]}).replace(dataset=recipe.dataset)
    seen = catch(ablate)
    cli("ablate", "--teacher", rows["t"]["run"], "--grid", "lam=0.3,0.5", "--set", "method=kd", "--set",
        f"text_model={tiny_models['text']}", "--set", "max_length=32", "--set", "epochs=2", code=1)
    from_command = seen["params"].replace(dataset=recipe.dataset)
    names = []
    for params in (from_recipe, from_command):
        design = ablate.design(params)
        cells = [ablate.cell_params(params, design, cell, params.teacher) for cell in design.cells]
        names.append([student.plan(ws, c, command_teacher.output_fingerprint).run_name for c in cells])
    assert names[0] == names[1] and len(set(names[0])) == 2
    assert rows["s"]["run"] in names[0]  # the lam = 0.3 cell is the [[student]] "s" run


def test_recipe_module_imports_no_command_and_runs_no_cli():
    """The library never invokes the CLI: no command module behind `lugpi_cli.recipe`, no `main(...)`
    or stdout redirection anywhere but app.py."""
    import pathlib
    import subprocess
    import sys

    code = ("import sys, lugpi_cli.recipe, lugpi_cli.recipe_run; "
            "print([m for m in sys.modules if m.startswith('lugpi_cli.commands')])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    root = pathlib.Path(__file__).resolve().parents[2] / "lugpi_cli"
    for path in root.rglob("*.py"):
        if path.name == "app.py":
            continue
        text = path.read_text()
        for needle in ("standalone_mode", "redirect_stdout", ".main(args"):
            assert needle not in text, (path, needle)
