"""Ctrl-C says what was kept and how to resume; under --json it still prints one object."""

from __future__ import annotations

import json
import re
import signal

import pytest

from lugpi_store import Store
from tests.commands.processes import prompts_csv, start_lugpi, wait_for_images


@pytest.mark.slow
def test_ctrl_c_during_generate_says_what_was_stored(tmp_path, tiny_models, cli, workspace):
    data = prompts_csv(tmp_path / "many.csv", 12)
    args = ["generate", data, "--text-col", "text", "--label-col", "label", "--prompt-col", "prompt",
            "--split-col", "split", "--model", tiny_models["sd"], "--steps", "10", "--size", "32",
            "--batch-size", "2", "--format", "png", "--json"]
    proc = start_lugpi(workspace, *args)
    store = Store(workspace / "store")
    wait_for_images(store, proc, 2)
    proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    stored = store.count("images")
    assert 2 <= stored < 12, f"the interrupt landed after {stored} images; make the run slower"
    line = next((line for line in stderr.splitlines() if line.startswith("Interrupted:")), stderr)
    match = re.fullmatch(r"Interrupted: (\d+) of 12 images stored; run the same command to continue\.", line)
    assert match and int(match.group(1)) == stored, line
    (obj,) = [json.loads(line) for line in stdout.splitlines() if line.strip()]
    assert obj["interrupted"] is True and obj["exit_code"] == 130
    assert (obj["kept"], obj["total"], obj["unit"]) == (stored, 12, "img")
    again = json.loads(cli(*args).stdout)
    assert again["reused"] == stored and again["generated"] == 12 - stored


def test_interrupt_without_a_running_bar_is_still_one_line_and_one_object(cli, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("lugpi_store.Store.__init__", interrupted)  # before any batch: no progress bar runs
    result = cli("store", "info", "--json", code=130)
    (obj,) = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert obj == {"interrupted": True, "exit_code": 130,
                   "message": "finished batches are kept; run the same command to continue"}
    assert "Interrupted: finished batches are kept; run the same command to continue." in result.stderr


def test_training_note_counts_checkpointed_epochs():
    from types import SimpleNamespace

    from lugpi_cli.progress import TrainingProgress

    progress = TrainingProgress(SimpleNamespace(epochs=5, batch_size=14))
    with progress as hooks:
        hooks.on_epoch_start(1, 3)
        hooks.on_step(1, {"total": 0.5})
        assert "in epoch 1 of 5; 0 finished epoch(s)" in progress.bar.interrupt_note()["message"]
        hooks.log("epoch 1: total 0.5000  val_accuracy 0.5000  (best)")
        hooks.on_epoch_start(2, 3)
        note = progress.bar.interrupt_note()
    assert note["message"] == ("in epoch 2 of 5; 1 finished epoch(s) are kept in the run's checkpoint; run the "
                               "same command to resume from epoch 2")
    assert (note["epochs_kept"], note["epoch"], note["epochs"]) == (1, 2, 5)
    resumed = TrainingProgress(SimpleNamespace(epochs=3, batch_size=2))
    with resumed as hooks:
        hooks.log("resuming student-x after epoch 3")
        hooks.on_epoch_start(3, 1)  # not called when nothing is left, but the note must not go backwards
        assert resumed.bar.interrupt_note()["epochs_kept"] == 3


def test_a_trained_run_reports_its_samples_per_second(tmp_path):
    import json as _json
    from types import SimpleNamespace

    from lugpi_cli.commands.training_common import throughput
    from lugpi_cli.training.runs import Run

    run = Run(tmp_path / "student-x")
    run.dir.mkdir()
    (run.dir / "config.json").write_text(_json.dumps({"config": {"train": {"max_steps": None}}}))
    (run.dir / "history.jsonl").write_text('{"epoch": 1, "seconds": 2.0}\n{"epoch": 2, "seconds": 3.0}\n')
    result = SimpleNamespace(run=run, metrics={"train": {"n_samples": 100}})
    assert throughput(result) == {"epochs": 2, "seconds": 5.0, "samples_per_second": 40.0}
    (run.dir / "config.json").write_text(_json.dumps({"config": {"train": {"max_steps": 3}}}))
    assert throughput(result) is None
