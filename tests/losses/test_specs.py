"""The torch-free method specs (``lugpi_cli.loss_specs``) are what the loss classes do.

A plan (``lugpi run --dry-run``) names student runs from ``resolve_loss`` without building a loss;
the stages name them from ``build_loss(...).hparams`` and ``.teacher_fields``. These must agree for
every option value, or a plan would name runs the stages never make.
"""

from __future__ import annotations

import itertools

import pytest

from lugpi_cli import loss_specs
from lugpi_cli.loss_specs import LOSS_SPECS, LossOptionError, find_spec, option_tables, parse_options, resolve_loss
from lugpi_cli.losses import LOSSES, KDLoss, build_loss


def test_every_built_in_method_takes_its_spec():
    builtin = {name for name, cls in LOSSES.items() if cls.__module__.startswith("lugpi_cli.losses.")}
    assert builtin == set(LOSS_SPECS)
    for name, spec in LOSS_SPECS.items():
        cls = LOSSES[name]
        assert cls.spec is spec and cls.options is spec.options
        assert cls.all_teacher_fields == spec.all_teacher_fields


def _levels(option) -> list:
    """Values that switch terms on and off: the default, the lower bound, a value past it, every choice."""
    if option.choices:
        return list(option.choices)
    if option.type is bool:
        return [False, True]
    low = option.min if option.min is not None and not option.min_exclusive else None
    values = [option.default] + ([option.type(low)] if low is not None else [])
    return values + ([0.5, 1.0] if option.type is float else [])


@pytest.mark.parametrize("name", sorted(LOSS_SPECS))
def test_the_torch_free_resolution_is_the_built_loss(name):
    """hparams and teacher fields from the spec alone equal those of the built loss, option by option and
    over pairs of options (bad combinations fail with one message on both paths)."""
    spec = LOSS_SPECS[name]
    keys = list(spec.options)
    cases = [{}] + [{k: v} for k in keys for v in _levels(spec.options[k])]
    cases += [{a: va, b: vb} for a, b in itertools.combinations(keys, 2)
              for va in _levels(spec.options[a])[:3] for vb in _levels(spec.options[b])[:3]]
    fields_seen = set()
    for options in cases:
        try:
            loss = build_loss(name, **options)
        except LossOptionError as exc:
            with pytest.raises(LossOptionError) as caught:
                spec.check_options(options)
            assert str(caught.value) == str(exc)
            continue
        hparams = spec.check_options(options)
        assert hparams == loss.hparams, options
        assert spec.teacher_fields(hparams) == loss.teacher_fields, options
        fields_seen.add(spec.teacher_fields(hparams))
    if spec.all_teacher_fields:
        assert frozenset() in fields_seen and spec.all_teacher_fields in fields_seen  # terms switched on and off


def test_lookups_see_methods_registered_at_run_time(monkeypatch):
    """Once the losses are imported, a plugin's method is found like a built-in one."""
    fake = type("FakeLoss", (KDLoss,), {"__module__": "tests.fake_plugin", "name": "fake"})
    monkeypatch.setitem(LOSSES, "fake", fake)
    assert "fake" in option_tables() and option_tables()["kd"] == dict(LOSS_SPECS["kd"].options)
    assert find_spec("fake") is fake
    assert parse_options("fake", {"lam": "1"}) == {"lam": 1.0}
    assert resolve_loss("fake", {"lam": 1.0}) == ({"lam": 1.0, "tau": 4.0}, frozenset())


def test_before_the_losses_are_imported_the_built_in_specs_answer(monkeypatch):
    monkeypatch.setattr(loss_specs, "_registry", lambda: None)
    assert option_tables() == {name: dict(spec.options) for name, spec in sorted(LOSS_SPECS.items())}
    assert find_spec("msd") is LOSS_SPECS["msd"]
    assert resolve_loss("lugpi", {"alpha": 0.0}) == (build_loss("lugpi", alpha=0.0).hparams,
                                                     frozenset({"embedding"}))
    with pytest.raises(LossOptionError, match=r"(?s)unknown distillation method 'lugp'.*did you mean 'lugpi'"):
        find_spec("lugp")
    with pytest.raises(LossOptionError, match="must be <= 1, got 2.0"):
        parse_options("kd", {"lam": "2"})
