"""Loss registry: names, options, parsing from strings, errors that name the bad value."""

from __future__ import annotations

from typing import ClassVar

import pytest
import torch

from lugpi_cli.errors import UserError
from lugpi_cli.losses import (
    LOSSES,
    DistillInputs,
    DistillLoss,
    LossOptionError,
    LossOutput,
    LugpiLoss,
    Option,
    build_loss,
    get_loss_class,
    loss_options,
    parse_loss_options,
    register_loss,
)


def test_lugpi_is_registered_with_the_paper_defaults():
    assert LOSSES["lugpi"] is LugpiLoss and LugpiLoss.name == "lugpi"
    opts = loss_options("lugpi")
    assert set(opts) == {"alpha", "beta", "tau", "soften", "tau2", "l2_reduction"}
    assert (opts["alpha"].default, opts["beta"].default, opts["tau"].default) == (3.0, 1.0, 8.0)
    loss = build_loss("lugpi")
    assert loss.hparams == {
        "alpha": 3.0,
        "beta": 1.0,
        "tau": 8.0,
        "soften": "teacher",
        "tau2": False,
        "l2_reduction": "sum",
    }
    assert "Eq. (2)" in LugpiLoss.__doc__ and "Diffusion Models" in LugpiLoss.__doc__  # equation and paper


def test_unknown_method_names_it_and_lists_choices():
    with pytest.raises(UserError) as e:
        build_loss("lugpy")
    assert "'lugpy'" in e.value.message
    assert "lugpi" in e.value.hint and "did you mean 'lugpi'" in e.value.hint
    with pytest.raises(UserError, match="'nope'"):
        get_loss_class("nope")


def test_unknown_option_names_it_and_the_valid_ones():
    with pytest.raises(UserError) as e:
        build_loss("lugpi", gamma=2.0)
    assert "'gamma'" in e.value.message and "'lugpi'" in e.value.message
    for name in ("alpha", "beta", "tau", "soften", "tau2", "l2_reduction"):
        assert name in e.value.hint


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        ("alpha", -1.0, ">= 0"),
        ("tau", 0.0, "> 0"),
        ("tau", "8", "expected a number"),
        ("soften", "student", "teacher, both"),
        ("l2_reduction", "max", "sum, mean"),
        ("tau2", 1, "true or false"),
        ("beta", True, "expected a number"),
        ("alpha", float("nan"), "finite"),
    ],
)
def test_invalid_values_are_named(key, value, words):
    with pytest.raises(LossOptionError) as e:
        build_loss("lugpi", **{key: value})
    assert f"option '{key}'" in e.value.message and repr(value) in e.value.message
    assert words in str(e.value)
    assert isinstance(e.value, ValueError) and isinstance(e.value, UserError)


def test_direct_construction_validates_too():
    with pytest.raises(LossOptionError, match="option 'tau'"):
        LugpiLoss(tau=-2)


def test_options_parse_from_strings():
    assert parse_loss_options("lugpi", {"alpha": "0.5", "tau2": "yes", "soften": "both"}) == {
        "alpha": 0.5,
        "tau2": True,
        "soften": "both",
    }
    assert parse_loss_options("lugpi", {"tau2": "False", "tau": "4"}) == {"tau2": False, "tau": 4.0}
    loss = build_loss("lugpi", parse=True, alpha="0", beta="0")
    assert not loss.requires_teacher
    with pytest.raises(UserError, match="invalid value 'abc' for option 'alpha'"):
        parse_loss_options("lugpi", {"alpha": "abc"})
    with pytest.raises(UserError, match="unknown option 'alpah'"):
        parse_loss_options("lugpi", {"alpah": "1"})
    with pytest.raises(UserError, match="true or false"):
        parse_loss_options("lugpi", {"tau2": "maybe"})


def test_option_parse_int_and_str():
    assert Option(int, 1, min=1).parse(" 7 ") == 7
    with pytest.raises(ValueError, match="integer"):
        Option(int, 1).parse("7.5")
    with pytest.raises(ValueError, match=">= 1"):
        Option(int, 1, min=1).parse("0")
    assert Option(str, "a", choices=("a", "b")).parse("b") == "b"


@pytest.fixture
def scratch_registry():
    before = dict(LOSSES)
    yield
    LOSSES.clear()
    LOSSES.update(before)


def test_a_new_method_can_read_extra_teacher_outputs(scratch_registry):
    """Room for later methods: per-modality teacher probabilities travel in teacher_extra."""

    @register_loss("toy-modality-kd")
    class ToyModalityKD(DistillLoss):
        """L = CE(y, s) + w * mean_m CE(p_m, s): a stand-in for a per-modality method."""

        options: ClassVar[dict[str, Option]] = {"w": Option(float, 1.0, "weight", min=0.0)}
        all_teacher_fields = frozenset({"probs_text", "probs_image"})

        def __init__(self, *, w: float = 1.0, student_dim=None, teacher_dim=None):
            super().__init__(w=w)
            self.w = self.hparams["w"]

        def forward(self, inputs: DistillInputs) -> LossOutput:
            log_s = torch.log_softmax(inputs.student_logits, -1)
            ce = torch.nn.functional.cross_entropy(inputs.student_logits, inputs.labels)
            soft = sum(-(inputs.teacher_extra[k] * log_s).sum(-1).mean() for k in sorted(self.all_teacher_fields)) / 2
            return LossOutput(ce + self.w * soft, {"ce": ce.detach(), "soft": soft.detach()})

    loss = build_loss("toy-modality-kd", parse=True, w="2")
    assert loss.requires_teacher and loss.teacher_fields == {"probs_text", "probs_image"}
    uniform = torch.full((2, 4), 0.25)
    x = DistillInputs(
        student_logits=torch.zeros(2, 4), student_embedding=torch.zeros(2, 5), labels=torch.tensor([0, 3]),
        teacher_extra={"probs_text": uniform, "probs_image": uniform},
    )  # fmt: skip
    out = loss(x.to("cpu"))
    assert out.total.item() == pytest.approx(3 * torch.log(torch.tensor(4.0)).item(), rel=1e-6)
    with pytest.raises(UserError, match="unknown option 'alpha' for loss 'toy-modality-kd'"):
        build_loss("toy-modality-kd", alpha=1)


def test_registration_checks_the_signature_and_duplicates(scratch_registry):
    class Mismatch(DistillLoss):
        options: ClassVar[dict[str, Option]] = {"w": Option(float, 1.0)}

        def __init__(self, *, w: float = 2.0, student_dim=None, teacher_dim=None):
            super().__init__(w=w)

    with pytest.raises(TypeError, match="default of 'w'"):
        register_loss("mismatch")(Mismatch)

    class Missing(DistillLoss):
        options: ClassVar[dict[str, Option]] = {"w": Option(float, 1.0)}

    with pytest.raises(TypeError, match="lacks keyword-only argument 'w'"):
        register_loss("missing")(Missing)

    class Other(DistillLoss):
        pass

    with pytest.raises(ValueError, match="already registered"):
        register_loss("lugpi")(Other)
    with pytest.raises(TypeError, match="DistillLoss subclass"):
        register_loss("plain")(object)
