"""Which teacher distill picks per method, --arch armada's modality, and re-caching outputs after `store gc`."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lugpi_cli.errors import UserError
from lugpi_cli.training.runs import Run
from lugpi_store import Store, close_all, record_key


def _finish(runs, name, modality, fields=None, **config):
    run = Run(runs / name)
    extra = {"modality": modality, **config, **({"teacher_fields": fields} if fields else {})}
    run.start("teacher", {"modality": modality, "name": name}, extra=extra)
    run.mark_done()


def test_default_teacher_is_the_latest_that_caches_what_the_method_reads(tmp_path):
    from lugpi_cli.training.lifecycle import default_teacher

    runs = tmp_path / "runs"
    _finish(runs, "fusion-1", "both", ["logits", "embedding"])
    _finish(runs, "msd-1", "both", modality_dropout=0.3)  # an older run: fields derived from its config
    _finish(runs, "armada-1", "image", ["logits", "embedding", "logits_aux", "manifold"], arch="armada")
    assert default_teacher(runs).name == "msd-1"  # LUGPI: the latest multimodal one, not the newer ARMADA one
    assert default_teacher(runs, {"logits", "embedding"}).name == "msd-1"
    assert default_teacher(runs, {"logits_aux", "manifold"}).name == "armada-1"
    assert default_teacher(runs, {"logits_text", "logits_image"}).name == "msd-1"
    _finish(runs, "fusion-2", "both", ["logits", "embedding"])
    assert default_teacher(runs, {"logits_text"}).name == "msd-1" and default_teacher(runs).name == "fusion-2"
    with pytest.raises(UserError, match="caches nothing_like_this") as caught:
        default_teacher(runs, {"nothing_like_this"})
    assert "Pass --teacher RUN" in str(caught.value)


@pytest.mark.slow
def test_distill_armada_and_lugpi_each_find_their_teacher(cli, workspace, teacher_args, text_args, tiny_models):
    fusion = json.loads(cli(*teacher_args, "--json").stdout)
    armada_args = teacher_args[:-2]  # without --hidden 32
    armada = json.loads(cli(*armada_args, "--arch", "armada", "--json").stdout)  # no --modality: image implied
    assert Run(workspace / "runs" / armada["run"]).config()["modality"] == "image"
    out = json.loads(cli("distill", "--method", "armada", *text_args, "--epochs", "1", "--json").stdout)
    assert Run(workspace / "runs" / out["run"]).config()["teacher_run"] == armada["run"]
    out = json.loads(cli("distill", *text_args, "--epochs", "1", "--json").stdout)  # LUGPI: the fusion teacher
    assert Run(workspace / "runs" / out["run"]).config()["teacher_run"] == fusion["run"]
    err = cli("distill", "--method", "msd", *text_args, code=1).stderr
    assert "logits_image" in err and "--modality-dropout" in err and "Traceback" not in err


def test_arch_armada_refuses_an_explicit_other_modality(cli, teacher_args):
    err = cli(*teacher_args, "--arch", "armada", "--modality", "both", code=1).stderr
    assert "--modality both" in err and "Traceback" not in err


@pytest.mark.slow
def test_outputs_dropped_by_gc_are_recached_from_the_saved_model(cli, workspace, teacher_args, text_args,
                                                                 monkeypatch):
    first = json.loads(cli(*teacher_args, "--json").stdout)
    config = Run(workspace / "runs" / first["run"]).config()
    close_all()
    store = Store(workspace / "store")
    keys = [k for k in store.keys("teacher")]
    before = {k: store.get("teacher", k) for k in keys}
    close_all()
    cli("store", "gc", "--drop-fingerprint", first["fingerprint"][:12], "--namespace", "teacher")
    assert Store(workspace / "store").count("teacher") == 0
    close_all()

    import lugpi_cli.training.lifecycle as stages

    def no_training(*args, **kwargs):
        raise AssertionError("the teacher was retrained")

    real_fit = stages.fit
    monkeypatch.setattr(stages, "fit", no_training)
    again = json.loads(cli(*teacher_args, "--json").stdout)
    assert again["status"] == "recached" and again["recached"] == len(keys) and again["run"] == first["run"]
    assert again["fingerprint"] == first["fingerprint"] == config["output_fingerprint"]
    close_all()
    store = Store(workspace / "store")
    assert sorted(store.keys("teacher")) == sorted(keys)
    for key in keys:
        after = store.get("teacher", key)
        assert set(after) == set(before[key])
        for name in after:
            np.testing.assert_allclose(after[name], before[key][name], atol=1e-5)
    assert store.get("teacher", record_key(first["fingerprint"], "nope")) is None
    close_all()
    assert json.loads(cli(*teacher_args, "--json").stdout)["status"] == "reused"
    monkeypatch.setattr(stages, "fit", real_fit)
    student = json.loads(cli("distill", *text_args, "--epochs", "1", "--json").stdout)  # the outputs are there
    assert student["status"] == "trained"
