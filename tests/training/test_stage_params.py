"""The teacher, student and ablate stages' Params: bad values refused naming the key, and one run name for the
same settings whether they come from `lugpi distill`, a mapping (a recipe table) or an ablation cell."""

from __future__ import annotations

import pytest

from lugpi_cli.errors import UserError
from lugpi_cli.stages import ablate, student, teacher
from lugpi_cli.workspace import Workspace
from tests.training.conftest import write_table

DATASET = {"name": "films.csv", "text_col": "text", "label_col": "label"}


@pytest.mark.parametrize(("values", "named"), [
    ({"heads": 0}, "heads"), ({"epochs": "many"}, "epochs"), ({"arch": "magic"}, "--arch"),
    ({"modality": "pixels"}, "--modality"), ({"init": "zeros"}, "--init"), ({"lr": 0}, "--lr"),
    ({"hiddn": 8}, "unknown key 'hiddn'"), ({"modality_dropout": 0.5, "modality": "text"}, "--modality-dropout"),
])
def test_teacher_params_refuse_a_bad_value_naming_it(values, named):
    with pytest.raises(UserError, match=named) as info:
        teacher.Params.from_mapping(values, where="r.toml: teacher: ", dataset={"name": "imdb"})
    assert info.value.message.startswith("r.toml: teacher: ")


@pytest.mark.parametrize(("values", "named"), [
    ({"method": "kd", "lam": "abc"}, "lam"), ({"method": "kd", "lam": 2.0}, "lam"),
    ({"alpha": -1.0}, "alpha"), ({"lam": 0.3}, "'lam'"),  # lam is kd's/msd's, not lugpi's
    ({"method": "magic"}, "magic"), ({"init": "zeros"}, "--init"), ({"batch_size": 0}, "batch_size"),
    ({"option": ["tau"]}, "--option 'tau'"), ({"option": ["gamma=1"]}, "gamma"),
])
def test_student_params_refuse_a_bad_value_naming_it(values, named):
    with pytest.raises(UserError, match=named):
        student.Params.from_mapping(values, where="r.toml: student: ")


@pytest.mark.parametrize(("values", "named"), [
    ({"grid": {"gamma": [1, 2]}}, "unknown grid key 'gamma'"), ({"grid": ["alpha=x"]}, "'alpha' does not parse"),
    ({"seeds": 0}, "seeds"), ({"preset": "everything"}, "unknown preset"), ({}, "the grid is empty"),
    ({"grid": ["tau=1,2"], "set": {"tau": 3}}, "tau"), ({"grid": ["lr=0,1e-4"]}, "--lr"),
    ({"grid": ["alpha=0,1"], "run": "mine"}, "run"),
])
def test_ablate_params_refuse_a_bad_value_naming_it(values, named):
    with pytest.raises(UserError, match=named):
        ablate.Params.from_mapping(values, where="r.toml: ablate: ")


def test_a_recipe_grid_table_reads_as_the_command_lines_flags():
    table = ablate.Params.from_mapping({"grid": {"alpha": [0, 3]}, "set": {"beta": 0}})
    flags = ablate.Params.from_mapping({"grid": ["alpha=0,3"], "set": ["beta=0"]})
    assert ablate.design(table).cells == ablate.design(flags).cells


def test_loss_options_are_parsed_once_into_the_params():
    p = student.Params.from_mapping({"method": "kd", "lam": "0.3", "option": ["tau=2"]})
    assert p.loss == (("lam", 0.3), ("tau", 2.0)) and p.spec().options == p.loss


@pytest.fixture
def planned(tmp_path, tiny_models, monkeypatch):
    """A workspace, a table-file data set and a teacher-output fingerprint for plans (nothing is trained)."""
    monkeypatch.chdir(tmp_path)
    write_table(tmp_path / "films.csv")
    return Workspace(tmp_path / "ws"), "ab" * 32, str(tiny_models["text"])


def _cli_params(monkeypatch, *args: str):
    """The student.Params `lugpi distill ARGS` builds (its run is stopped before any work)."""
    from typer.testing import CliRunner

    from lugpi_cli.app import app

    seen = []

    def capture(ws, params, hooks=None):
        seen.append(params)
        raise UserError("stopped by the test")

    monkeypatch.setattr(student, "run", capture)
    result = CliRunner().invoke(app, ["distill", *args])
    assert result.exit_code == 1 and len(seen) == 1, result.output
    return seen[0]


@pytest.mark.parametrize(("method", "option", "levels"), [("kd", "lam", ("0.3", "0.7")),
                                                          ("lugpi", "alpha", ("0", "3"))])
def test_cli_mapping_and_grid_cell_give_one_run_name(planned, monkeypatch, method, option, levels):
    ws, teacher_fp, text_model = planned
    common = {"method": method, "text_model": text_model, "epochs": 2, "max_length": 32}
    by_cli = _cli_params(monkeypatch, "--dataset", "films.csv", "--text-col", "text", "--label-col", "label",
                         "--method", method, f"--{option}", levels[1], "--text-model", text_model, "--epochs", "2",
                         "--max-length", "32", "--seed", "1")
    by_mapping = student.Params.from_mapping({**common, option: float(levels[1]), "seed": 1}, dataset=DATASET)
    grid = ablate.Params.from_mapping({"grid": [f"{option}={','.join(levels)}"], "seeds": 2, "epochs": 2,
                                       "max_length": 32, "set": {"method": method}, "text_model": text_model},
                                      dataset=DATASET)
    design = ablate.design(grid)
    cell = next(c for c in design.cells if dict(c.factors)[option] == float(levels[1]) and c.seed == 1)
    by_cell = ablate.cell_params(grid, design, cell, teacher=None)
    names = {student.plan(ws, p, teacher_output_fingerprint=teacher_fp).run_name
             for p in (by_cli, by_mapping, by_cell)}
    assert len(names) == 1 and next(iter(names)).startswith("student-films-")
    other = student.Params.from_mapping({**common, option: float(levels[0]), "seed": 1}, dataset=DATASET)
    assert student.plan(ws, other, teacher_output_fingerprint=teacher_fp).run_name not in names
    plan = ablate.plan(ws, grid, teacher_output_fingerprint=teacher_fp)
    assert (plan.status, plan.to_train, plan.run_name) == ("0 of 4 cells done, 4 to train", 4, None)


def test_train_teacher_command_line_and_mapping_give_one_run_name(planned, monkeypatch):
    from typer.testing import CliRunner

    from lugpi_cli.app import app

    ws, _, text_model = planned
    seen = []

    def capture(ws, params, hooks=None):
        seen.append(params)
        raise UserError("stopped by the test")

    monkeypatch.setattr(teacher, "run", capture)
    result = CliRunner().invoke(app, ["train-teacher", "films.csv", "--text-col", "text", "--label-col", "label",
                                      "--modality", "text", "--text-model", text_model, "--epochs", "2",
                                      "--lr", "1e-4"])
    assert result.exit_code == 1 and len(seen) == 1, result.output
    mapping = teacher.Params.from_mapping({"modality": "text", "text_model": text_model, "epochs": 2, "lr": 1e-4},
                                          dataset=DATASET)
    by_cli, by_mapping = teacher.plan(ws, seen[0]), teacher.plan(ws, mapping)
    assert by_cli.run_name == by_mapping.run_name and by_cli.run_name.startswith("teacher-films-")
    assert by_cli.output_fingerprint == by_mapping.output_fingerprint
    assert (by_cli.status, by_cli.to_train) == ("to train", True)
    assert teacher.plan(ws, mapping.replace(lr=5e-5)).run_name != by_cli.run_name
    clip = teacher.Params.from_mapping({"text_model": text_model}, dataset=DATASET)
    assert teacher.plan(ws, clip).status == "needs 'clip' features (no embed stage for them): cannot plan"


def test_limit_without_dataset_limits_the_teachers_data_set(monkeypatch):
    p = _cli_params(monkeypatch, "--limit", "5", "--teacher", "t", "--lam", "0.3", "--method", "kd")
    assert (p.dataset, p.limit, p.data_limit, p.teacher, p.loss) == (None, 5, 5, "t", (("lam", 0.3),))
    named = _cli_params(monkeypatch, "--dataset", "films.csv", "--limit", "7")
    assert (named.dataset.name, named.dataset.limit, named.limit, named.data_limit) == ("films.csv", 7, None, 7)
