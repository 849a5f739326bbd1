"""Every loss declares what it needs: ``prepare_for(LossContext)`` creates its trainable parts, and
``objective_class()`` names the objective it trains with (the stages hold no per-loss branch)."""

from __future__ import annotations

import pytest

from lugpi_cli.losses import LOSSES, LossContext, build_loss
from lugpi_cli.training.objectives import EmaObjective, MetaObjective, Objective


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_every_loss_names_its_objective_and_takes_the_one_context(name):
    loss = build_loss(name)
    expected = EmaObjective if name == "ema" else Objective
    assert loss.objective_class() is expected
    assert loss.prepare_for(LossContext(student_dim=8, teacher_dim=None, num_labels=3)) is loss


def test_meta_weighting_trains_with_the_meta_objective_and_gets_its_weight_net():
    loss = build_loss("msd", weighting="meta")
    assert loss.objective_class() is MetaObjective and loss.weight_net is None
    loss.prepare_for(LossContext(student_dim=8, teacher_dim=16, num_labels=3))
    assert loss.weight_net is not None and loss.weight_net.num_labels == 3
    assert build_loss("msd", weighting="importance").objective_class() is Objective


def test_width_aligners_are_made_only_when_the_teacher_width_is_known():
    lugpi = build_loss("lugpi")
    lugpi.prepare_for(LossContext(8, None, 2))
    assert lugpi.aligner is None
    lugpi.prepare_for(LossContext(8, 16, 2))
    assert (lugpi.aligner.in_features, lugpi.aligner.out_features) == (8, 16) and lugpi.aligned
    same = build_loss("lugpi").prepare_for(LossContext(16, 16, 2))
    assert same.aligner is None  # equal widths: no map to learn
    fitnet = build_loss("fitnet").prepare_for(LossContext(8, 16, 2))
    assert (fitnet.regressor.in_features, fitnet.regressor.out_features) == (8, 16)


def test_armada_gets_its_projection_and_auxiliary_classifier():
    loss = build_loss("armada").prepare_for(LossContext(8, 6, 4))
    assert (loss.projection.in_features, loss.projection.out_features) == (8, 6)
    assert loss.aux_classifier.out_features == 4 and loss.prepared
    assert not build_loss("armada").prepare_for(LossContext(8, None, 4)).prepared
