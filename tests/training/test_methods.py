"""The related-work methods run end to end through `lugpi distill --method`, and compare in evaluate and ablate."""

from __future__ import annotations

import json

import pytest
import torch

from lugpi_cli.training.runs import Run

TABLE = ["--text-col", "text", "--label-col", "label", "--prompt-col", "prompt"]


@pytest.fixture
def teachers(cli, table, tiny_models, text_args):
    """A modality-dropout fusion teacher (MSD) and an ARMADA teacher on VAE latents."""
    msd = json.loads(cli("train-teacher", table, *TABLE, "--encoder", tiny_models["clip"], *text_args, "--hidden", "32",
                         "--modality-dropout", "0.3", "--json").stdout)
    cli("embed", table, *TABLE, "--encoder", "vae-latent", "--vae-size", "32")
    armada = json.loads(cli("train-teacher", table, *TABLE, "--encoder", "vae-latent", "--modality", "image",
                            "--arch", "armada", "--proj-dim", "24", *text_args, "--hidden", "32", "--json").stdout)
    return msd["run"], armada["run"]


METHODS = [
    ["--method", "kd", "--lam", "0.5"],
    ["--method", "fitnet"],
    ["--method", "rkd"],
    ["--method", "sp"],
    ["--method", "msd", "--weighting", "population", "--w-image", "0.5", "--lam", "0.6"],
    ["--method", "msd", "--weighting", "importance"],
    ["--method", "msd", "--weighting", "correctness"],
    ["--method", "msd", "--weighting", "meta"],
    ["--method", "lugpi"],
]


@pytest.mark.slow
def test_every_method_trains_and_is_compared(cli, workspace, teachers, text_args):
    msd_teacher, armada_teacher = teachers
    runs = []
    for args in METHODS:
        out = json.loads(cli("distill", "--teacher", msd_teacher, *args, *text_args, "--json").stdout)
        assert out["status"] == "trained", args
        runs.append(out["run"])
    armada = json.loads(cli("distill", "--teacher", armada_teacher, "--method", "armada", "--manifold", "euclid",
                            *text_args, "--json").stdout)
    ema = json.loads(cli("distill", "--method", "ema", "--ema-decay", "0.9", "--mixup", "0.4", *text_args,
                         "--json").stdout)
    baseline = json.loads(cli("distill", "--alpha", "0", "--beta", "0", *text_args, "--json").stdout)
    assert Run(workspace / "runs" / ema["run"]).config()["teacher_run"] is None  # no privileged information
    # the student's saved model is a plain classifier: no aligner, projection or auxiliary head
    from lugpi_cli.models import TextClassifier
    from safetensors.torch import load_file

    saved = set(load_file(Run(workspace / "runs" / armada["run"]).model_dir / "model.safetensors"))
    fresh = {k for k in TextClassifier.from_pretrained(text_args[1], labels=["neg", "pos"]).model.state_dict()}
    assert saved == fresh
    table = json.loads(cli("evaluate", *runs, armada["run"], ema["run"], "--baseline", baseline["run"],
                           "--json").stdout)
    labels = {r["label"] for r in table["runs"]}
    assert "kd student (lam=0.5, tau=4.0)" in labels
    assert any(label.startswith("msd student") for label in labels)
    assert any(label.startswith("armada student") for label in labels)
    assert any(label.startswith("ema student") for label in labels)
    assert len(table["runs"]) == len(runs) + 3


@pytest.mark.slow
def test_ablate_over_methods(cli, teachers, text_args):
    msd_teacher, _ = teachers
    out = json.loads(cli("ablate", "--teacher", msd_teacher, "--grid", "method=lugpi,kd,msd", *text_args,
                         "--json").stdout)
    assert {r["method"] for r in out["rows"]} == {"lugpi", "kd", "msd"} and out["trained"] == 3


def test_msd_needs_a_modality_dropout_teacher(cli, teacher_args, text_args):
    cli(*teacher_args)
    err = cli("distill", "--method", "msd", *text_args, code=1).stderr
    assert "logits_image" in err and "--modality-dropout" in err


def test_a_flag_of_another_method_is_refused(cli, teacher_args, text_args):
    cli(*teacher_args)
    err = cli("distill", "--method", "lugpi", "--lam", "0.5", *text_args, code=1).stderr
    assert "unknown option 'lam'" in err and "alpha" in err


def test_teacher_option_checks(cli, teacher_args):
    assert "--modality-dropout" in cli(*teacher_args, "--modality-dropout", "1.5", code=1).stderr
    # --arch armada implies --modality image (tests/training/test_teacher_defaults.py); any other is refused
    assert "--arch armada" in cli(*teacher_args, "--arch", "armada", "--modality", "both", code=1).stderr


def test_ema_teacher_is_the_closed_form_average(tiny_models):
    from lugpi_cli.losses import build_loss
    from lugpi_cli.models import TextClassifier
    from lugpi_cli.training.objectives import EmaObjective

    torch.manual_seed(0)
    student = TextClassifier.from_pretrained(tiny_models["text"], labels=["a", "b"])
    objective = EmaObjective(student, build_loss("ema", ema_decay=0.8), seed=0)
    name, param = next((n, p) for n, p in student.named_parameters() if p.ndim == 2)
    history = [param.detach().clone()]
    for step in range(4):
        with torch.no_grad():
            param.add_(torch.randn_like(param) * 0.1)  # stands in for an optimizer step
        objective.after_step()
        history.append(param.detach().clone())
    d = 0.8
    expected = d ** 4 * history[0] + sum((1 - d) * d ** (4 - i) * history[i] for i in range(1, 5))
    torch.testing.assert_close(dict(objective.ema.named_parameters())[name], expected)
    assert not any(p.requires_grad for p in objective.ema.parameters())


def test_help_gives_each_methods_default():
    from lugpi_cli.stages.student import method_defaults
    from lugpi_cli.losses import LOSSES

    assert method_defaults("gamma") == f"armada {LOSSES['armada'].options['gamma'].default}, " \
                                       f"sp {LOSSES['sp'].options['gamma'].default}"
    assert "sp 3000" in method_defaults("gamma") and "kd 4.0" in method_defaults("tau")
    assert method_defaults("lam") == "kd, msd: 0.5"
