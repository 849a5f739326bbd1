"""--report-to wandb and mlflow, offline for real: the logged scalars read back from what each tracker wrote.

Weights & Biases runs with ``WANDB_MODE=offline`` and its transaction log
(``run-<id>.wandb``: LevelDB-style blocks of protobuf records) is read back
with wandb's own protobuf classes; MLflow logs to the workspace's local
database file and is read back with ``MlflowClient``. Both packages are heavy
optional extras (``lugpi[trackers]``): the tests skip when they are absent.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from .conftest import TABLE

pytestmark = pytest.mark.slow

BLOCK, HEADER = 32768, 7  # wandb's log: 32 KiB blocks, 7-byte record headers (CRC, length, type)
FULL, FIRST, LAST = 1, 2, 4


def _wandb_records(path: Path):
    """The protobuf records of a wandb offline transaction log, in order."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    ident, magic, _version = struct.unpack("<4sHB", data[:HEADER])
    assert ident == b":W&B" and magic == 0xBEE1, f"{path} is not a wandb transaction log"
    pos, pending = HEADER, b""
    while pos + HEADER <= len(data):
        room = BLOCK - pos % BLOCK
        if room < HEADER:  # a block's tail too short for a header is padding
            pos += room
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + HEADER])
        chunk, pos = data[pos + HEADER:pos + HEADER + length], pos + HEADER + length
        if kind == 0 and length == 0:
            continue
        pending = chunk if kind in (FULL, FIRST) else pending + chunk
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            yield record


def _distill(cli, table, text_args, tracker: str) -> dict:
    base = ["distill", "--dataset", table, *TABLE, *text_args, "--alpha", "0", "--beta", "0"]
    return json.loads(cli(*base, "--report-to", tracker, "--json").stdout)


def _history(workspace: Path, run: str) -> list[dict]:
    lines = (workspace / "runs" / run / "history.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_wandb_offline_run_holds_the_logged_scalars(cli, workspace, table, text_args, monkeypatch, tmp_path):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb-config"))  # not the developer's ~/.config
    monkeypatch.setenv("WANDB_CACHE_DIR", str(tmp_path / "wandb-cache"))
    out = _distill(cli, table, text_args, "wandb")
    logs = list((workspace / "tracking" / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(logs) == 1, logs
    steps: dict[int, dict] = {}
    config, run = {}, None
    for record in _wandb_records(logs[0]):
        kind = record.WhichOneof("record_type")
        if kind == "history":
            values = {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in record.history.item}
            steps.setdefault(int(values["_step"]), {}).update(values)
        elif kind == "run":
            run = record.run
        elif kind == "config":
            config.update({u.key or "/".join(u.nested_key): json.loads(u.value_json) for u in record.config.update})
    assert run is not None and run.display_name == out["run"] and run.project == "lugpi" and run.run_group == "lugpi"
    n = out["metrics"]["steps"]
    assert sorted(steps) == list(range(1, n + 1))
    lrs = [steps[s]["train/lr"] for s in sorted(steps)]
    assert lrs[0] > lrs[-1] and all("train/total" in steps[s] and "train/ce" in steps[s] for s in steps)
    history = _history(workspace, out["run"])
    assert [round(steps[h["step"]]["val/accuracy"], 5) for h in history] == [round(h["val_accuracy"], 5)
                                                                               for h in history]
    assert [round(steps[h["step"]]["epoch/total"], 4) for h in history] == [round(h["train_total"], 4)
                                                                             for h in history]
    assert config["config/train/lr"] == 5e-5 and config["name"] == out["run"]  # the resolved config


def test_mlflow_local_database_holds_the_logged_metrics(cli, workspace, table, text_args, monkeypatch, tmp_path):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")  # offline: no usage reports, no ~/.config/mlflow
    monkeypatch.chdir(tmp_path)  # the run must not land in ./mlflow.db (mlflow's own default)
    out = _distill(cli, table, text_args, "mlflow")
    database = workspace / "tracking" / "mlflow.db"
    assert database.is_file() and not (tmp_path / "mlflow.db").exists() and not (tmp_path / "mlruns").exists()
    client = MlflowClient(tracking_uri=f"sqlite:///{database}")
    experiment = client.get_experiment_by_name("lugpi")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    assert [r.info.run_name for r in runs] == [out["run"]]
    run_id = runs[0].info.run_id
    lr = client.get_metric_history(run_id, "train/lr")
    n = out["metrics"]["steps"]
    assert [m.step for m in lr] == list(range(1, n + 1)) and lr[0].value > lr[-1].value
    history = _history(workspace, out["run"])
    accuracy = client.get_metric_history(run_id, "val/accuracy")
    assert [(m.step, round(m.value, 5)) for m in accuracy] == [(h["step"], round(h["val_accuracy"], 5))
                                                                for h in history]
    assert len(client.get_metric_history(run_id, "train/ce")) == n
    params = runs[0].data.params
    assert float(params["config/train/lr"]) == 5e-5 and params["name"] == out["run"]
