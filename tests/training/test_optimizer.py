"""fit's AdamW: the fused kernel on the CPU, the same updates as the per-parameter loop within float tolerance."""

from __future__ import annotations

import copy

import torch

from lugpi_cli.losses import build_loss
from lugpi_cli.models import TextClassifier
from lugpi_cli.training.loop import Objective, TrainConfig, make_optimizer


def test_fused_adamw_matches_the_loop_within_float_tolerance(tiny_models):
    from transformers import AutoTokenizer

    torch.manual_seed(0)
    fused_side = Objective(TextClassifier.from_pretrained(tiny_models["text"], labels=["neg", "pos"]),
                           build_loss("lugpi", alpha=0.0, beta=0.0))
    loop_side = copy.deepcopy(fused_side)
    cfg = TrainConfig(lr=1e-3, weight_decay=0.01)
    fused = make_optimizer(fused_side, cfg, torch.device("cpu"))
    assert all(group["fused"] for group in fused.param_groups)
    assert [g["weight_decay"] for g in fused.param_groups] == [0.01, 0.0]
    loop = make_optimizer(loop_side, cfg, torch.device("meta"))  # a device without a fused kernel: the loop
    assert not any(group["fused"] for group in loop.param_groups) and not any(g["foreach"] for g in loop.param_groups)
    tokenizer = AutoTokenizer.from_pretrained(tiny_models["text"])
    batch = dict(tokenizer(["a good film", "a bad film indeed", "fine"], padding=True, return_tensors="pt"))
    batch["labels"] = torch.tensor([1, 0, 1])
    start = [p.detach().clone() for p in fused_side.parameters()]
    for _ in range(5):
        for side, opt in ((fused_side, fused), (loop_side, loop)):
            loss, _ = side(batch)
            loss.total.backward()
            opt.step()
            opt.zero_grad()
    moved = 0
    for a, b, s in zip(fused_side.parameters(), loop_side.parameters(), start):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
        moved += int(not torch.equal(a, s))
    assert moved > 10  # the optimizers did update the model
