"""`accelerate launch` with two CPU processes (gloo DDP) completes a tiny distill."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess

import pytest

from lugpi_cli.training.runs import Run


@pytest.mark.slow
def test_accelerate_launch_two_processes(cli, workspace, teacher_args, text_args):
    if shutil.which("accelerate") is None:
        pytest.skip("accelerate launcher not on PATH")
    cli(*teacher_args)
    single = json.loads(cli("distill", *text_args, "--json").stdout)
    cmd = ["accelerate", "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "lugpi_cli", "distill", *map(str, text_args),
           "--seed", "1", "--json"]
    env = {**os.environ, "LUGPI_WORKSPACE": str(workspace), "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 1  # only the main process reports
    ddp = json.loads(lines[0])
    assert ddp["status"] == "trained" and Run(workspace / "runs" / ddp["run"]).is_done()
    # each process takes half of every epoch's batches (2 epochs)
    per_epoch = single["metrics"]["steps"] // 2
    assert ddp["metrics"]["steps"] == 2 * math.ceil(per_epoch / 2)
    assert set(ddp["metrics"]) >= {"train", "validation", "test"}
