"""Grid parsing, presets and validation (no training)."""

from __future__ import annotations

import pytest

from lugpi_cli.ablation.grid import PRESETS, expand, parse_grid
from lugpi_cli.errors import UserError


def test_parse_and_expand():
    grid = parse_grid(["alpha=0,0.1,3", "beta=0,1"])
    cells = expand(grid, {"tau": "8", "epochs": "2"}, seeds=3)
    assert len(cells) == 3 * 2 * 3
    first = cells[0]
    assert dict(first.factors) == {"alpha": 0.0, "beta": 0.0} and first.seed == 0
    student, loss, train = first.student_and_train(__import__("lugpi_cli.training.loop", fromlist=["x"]).TrainConfig())
    assert loss == {"alpha": 0.0, "beta": 0.0, "tau": 8.0} and train.epochs == 2 and train.seed == 0
    assert {c.seed for c in cells} == {0, 1, 2}


def test_training_and_student_keys_and_methods():
    cells = expand(parse_grid(["lr=1e-4,5e-5", "init=pretrained,xavier"]), {}, seeds=1)
    student, loss, train = cells[-1].student_and_train(__import__("lugpi_cli.training.loop", fromlist=["x"]).TrainConfig())
    assert student == {"init": "xavier"} and train.lr == 5e-5 and loss == {}


@pytest.mark.parametrize(
    ("specs", "message"),
    [
        (["gamma=1,2"], "unknown grid key 'gamma'"),
        (["alpha=0,abc"], "value 'abc' for 'alpha' does not parse"),
        (["alpha=-1"], "alpha"),
        (["epochs=0"], "epochs"),
        (["seed=0,1"], "--seeds"),
        (["alpha"], "KEY=V1,V2"),
        (["alpha=0,0"], "repeats"),
        (["soften=teacher,student"], "soften"),
        (["method=lugpi,magic"], "unknown distillation method 'magic'"),
    ],
)
def test_bad_grids(specs, message):
    with pytest.raises(UserError, match=message):
        expand(parse_grid(specs), {}, seeds=1)


def test_preset_is_the_papers_table_2():
    assert PRESETS["loss-terms"] == {"alpha": [0.0, 3.0], "beta": [0.0, 1.0]}
