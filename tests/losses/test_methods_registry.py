"""The new methods' names, option tables, parsing from strings, and errors that name the bad value."""

from __future__ import annotations

import pytest

from lugpi_cli.errors import UserError
from lugpi_cli.losses import (
    LOSSES,
    LossOptionError,
    build_loss,
    loss_options,
    parse_loss_options,
)

TABLES = {
    "kd": {"lam": (float, 0.5), "tau": (float, 4.0)},
    "fitnet": {"beta": (float, 1.0), "l2_reduction": (str, "mean")},
    "rkd": {"w_d": (float, 25.0), "w_a": (float, 50.0)},
    "sp": {"gamma": (float, 3000.0)},
    "msd": {
        "weighting": (str, "population"), "lam": (float, 0.5), "tau": (float, 4.0), "w_multi": (float, 1.0),
        "w_text": (float, 1.0), "w_image": (float, 1.0), "meta_hidden": (int, 100), "meta_lr": (float, 1e-3),
        "meta_alpha": (float, 1.0), "meta_every": (int, 1),
    },
    "armada": {"alpha": (float, 0.5), "beta": (float, 1.0), "gamma": (float, 1.0), "tau": (float, 5.0),
               "manifold": (str, "cosine")},
    "ema": {"weight": (float, 1.0), "tau": (float, 1.0), "ema_decay": (float, 0.999), "mixup": (float, 0.0)},
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(TABLES))
def test_registered_with_their_option_tables(name):
    assert name in LOSSES and LOSSES[name].name == name
    opts = loss_options(name)
    assert {k: (o.type, o.default) for k, o in opts.items()} == TABLES[name]
    loss = build_loss(name)
    assert loss.hparams == {k: d for k, (_, d) in TABLES[name].items()}
    doc = LOSSES[name].__doc__
    assert "math::" in doc and any(year in doc for year in ("2015", "2019", "2021", "2017", "Black-box"))


@pytest.mark.parametrize("name", sorted(TABLES))
def test_unknown_option_names_it_and_the_valid_ones(name):
    with pytest.raises(UserError) as e:
        build_loss(name, nonsense=1.0)
    assert "'nonsense'" in e.value.message and f"'{name}'" in e.value.message
    for key in TABLES[name]:
        assert key in e.value.hint


@pytest.mark.parametrize(
    ("name", "key", "value", "words"),
    [
        ("kd", "lam", 1.5, "<= 1"),
        ("kd", "lam", -0.1, ">= 0"),
        ("kd", "tau", 0.0, "> 0"),
        ("fitnet", "beta", "x", "expected a number"),
        ("rkd", "w_a", -1.0, ">= 0"),
        ("sp", "gamma", True, "expected a number"),
        ("msd", "weighting", "learned", "population, importance, correctness, meta"),
        ("msd", "meta_hidden", 0, ">= 1"),
        ("msd", "meta_every", 1.5, "integer"),
        ("msd", "meta_lr", 0.0, "> 0"),
        ("msd", "meta_alpha", -1.0, "> 0"),
        ("msd", "lam", 1.5, "<= 1"),
        ("msd", "w_image", 1.5, "<= 1"),
        ("armada", "alpha", 2.0, "<= 1"),
        ("armada", "manifold", "l1", "cosine, euclid, pointwise"),
        ("armada", "tau", float("nan"), "finite"),
        ("ema", "ema_decay", 1.01, "<= 1"),
        ("ema", "mixup", -0.2, ">= 0"),
    ],
)
def test_invalid_values_are_named(name, key, value, words):
    with pytest.raises(LossOptionError) as e:
        build_loss(name, **{key: value})
    assert f"option '{key}'" in e.value.message and repr(value) in e.value.message
    assert f"'{name}'" in e.value.message and words in str(e.value)


def test_options_parse_from_strings_like_the_cli():
    assert parse_loss_options("kd", {"lam": "0.25", "tau": "2"}) == {"lam": 0.25, "tau": 2.0}
    assert parse_loss_options("msd", {"weighting": "meta", "meta_every": "4"}) == {"weighting": "meta",
                                                                                  "meta_every": 4}
    assert parse_loss_options("armada", {"manifold": "pointwise"}) == {"manifold": "pointwise"}
    assert build_loss("ema", parse=True, mixup="0.4", ema_decay="0.99").hparams["mixup"] == 0.4
    with pytest.raises(UserError, match="invalid value '1.5' for option 'lam' of loss 'kd'"):
        parse_loss_options("kd", {"lam": "1.5"})
    with pytest.raises(UserError, match="invalid value '2' for option 'alpha' of loss 'armada'"):
        build_loss("armada", parse=True, alpha="2")
