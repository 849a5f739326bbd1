"""Training over two simulated nodes (``torchrun --nnodes 2`` on the loopback address): rank 0 alone
reads ``--data`` and writes the data set snapshot; node 1 reads that snapshot from the store, read-only."""

from __future__ import annotations

import json

import pytest

from lugpi_store import Store, close_all

from .test_two_nodes import TABLE, _csv, _free_port, _one_process, _torchrun

pytestmark = pytest.mark.slow


def test_two_nodes_train_a_teacher_from_a_data_file_only_node_0_has(tmp_path, tiny_models, cli, workspace):
    (tmp_path / "node0").mkdir()
    data = _csv(tmp_path / "node0" / "toy.csv", 24)
    absent = tmp_path / "node1" / "toy.csv"  # node 1's copy of the path: nothing there
    train = ["train-teacher", "--modality", "text", "--text-model", tiny_models["text"], "--epochs", "1",
             "--batch-size", "4", "--max-length", "16"]
    multi = tmp_path / "multi"
    port = _free_port()
    procs = [_torchrun(multi, rank, port, train[0], path, *TABLE, *train[1:])
             for rank, path in ((0, data), (1, absent))]
    outs = []
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-3000:]
        outs.append([json.loads(line) for line in out.splitlines() if line.startswith("{")])
    assert outs[1] == []  # only the main process reports
    (result,) = outs[0]
    assert result["status"] == "trained" and result["run"].startswith("teacher-toy-")

    _one_process(workspace, train[0], data, *TABLE, *train[1:])  # one process, its own workspace
    close_all()
    merged, single = Store(multi / "store"), Store(workspace / "store")
    meta = dict(merged.iter_raw("meta", b"dataset/")), dict(merged.iter_raw("meta", b"latest/dataset/"))
    assert meta == (dict(single.iter_raw("meta", b"dataset/")), dict(single.iter_raw("meta", b"latest/dataset/")))
    assert len(meta[0]) == 1  # one snapshot, written once
    assert merged.count("teacher") == single.count("teacher") == 24  # rank 0 cached every sample's outputs
    assert json.loads(cli("store", "verify", "--workspace", multi, "--json").stdout)["ok"] is True
