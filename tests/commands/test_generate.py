"""`lugpi generate` end to end: JSON summary, idempotence, kill -9 and resume, shards, offline, bad input."""

from __future__ import annotations

import json
import signal

import pytest

from lugpi_store import Store, maintenance
from tests.commands.processes import prompts_csv, start_lugpi, wait_for_images

FAST = ["--steps", "2", "--size", "32", "--format", "png"]


def test_generate_json_and_second_run(cli, tiny_models, tiny_csv):
    args = ["generate", tiny_csv, "--text-col", "text", "--label-col", "label", "--prompt-col", "prompt",
            "--model", tiny_models["sd"], *FAST, "--batch-size", "3"]
    first = json.loads(cli(*args, "--json").stdout)
    for field in ("samples", "distinct_prompts", "generated", "reused", "truncated", "failed"):
        assert isinstance(first[field], int), field
    assert first["samples"] == 24 and first["distinct_prompts"] == 8
    assert (first["generated"], first["reused"], first["failed"]) == (8, 0, 0)
    second = cli(*args)
    assert "Nothing to generate" in second.stdout
    again = json.loads(cli(*args, "--json").stdout)
    assert (again["generated"], again["reused"]) == (0, 8)
    assert again["generator_fingerprint"] == first["generator_fingerprint"]


def test_splits_and_limit(cli, tiny_models, tiny_csv):
    base = ["generate", tiny_csv, "--text-col", "text", "--label-col", "label", "--prompt-col", "prompt",
            "--model", tiny_models["sd"], *FAST, "--json"]
    only_test = json.loads(cli(*base, "--splits", "test").stdout)
    assert only_test["splits"] == ["test"] and only_test["samples"] < 24
    limited = json.loads(cli(*base, "--limit", "2").stdout)
    assert limited["samples"] == 6


def test_sd_turbo_style_settings(cli, tiny_models, tiny_csv):
    out = json.loads(cli("generate", tiny_csv, "--text-col", "text", "--label-col", "label", "--model",
                         tiny_models["sd"], "--steps", "1", "--guidance", "0", "--scheduler", "euler",
                         "--timestep-spacing", "trailing", "--size", "32", "--json").stdout)
    assert out["generated"] == out["distinct_prompts"] and out["failed"] == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--steps", "0"], "--steps"),
        (["--size", "33"], "multiple of 8"),
        (["--scheduler", "magic"], "unknown scheduler 'magic'"),
        (["--format", "gif"], "unknown image format 'gif'"),
        (["--shard", "3/2"], "--shard"),
        (["--splits", "train,holdout"], "unknown split 'holdout'"),
        (["--dtype", "float8"], "unknown dtype 'float8'"),
        (["--device", "cuda:0"], "no CUDA"),
    ],
)
def test_bad_input_is_one_clear_message(cli, tiny_models, tiny_csv, workspace, args, message):
    result = cli("generate", tiny_csv, "--text-col", "text", "--label-col", "label", "--model",
                 tiny_models["sd"], *FAST, *args, code=1)
    assert message in result.stderr and "Traceback" not in result.stderr
    if Store(workspace / "store").exists:
        assert Store(workspace / "store").count("images") == 0


def test_missing_local_model_directory(cli, tiny_csv, tmp_path):
    result = cli("generate", tiny_csv, "--text-col", "text", "--label-col", "label",
                 "--model", tmp_path / "no" / "model", code=1)
    assert "no such directory" in result.stderr


@pytest.mark.slow
def test_offline_model_not_cached_names_the_model_and_the_fix(tmp_path, tiny_csv):
    proc = start_lugpi(tmp_path / "ws", "generate", tiny_csv, "--text-col", "text", "--label-col", "label",
                  "--model", "lugpi-tests/never-published", env_extra={"HF_HUB_OFFLINE": "1",
                                                                       "HF_HOME": str(tmp_path / "hf")})
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    assert "lugpi-tests/never-published" in err and "HF_HUB_OFFLINE" in err and "directory" in err
    assert "Traceback" not in err


@pytest.mark.slow
def test_kill_minus_9_then_resume(tmp_path, tiny_models, cli, workspace):
    data = prompts_csv(tmp_path / "many.csv", 40)
    args = ["generate", data, "--text-col", "text", "--label-col", "label", "--prompt-col", "prompt",
            "--split-col", "split", "--model", tiny_models["sd"], "--steps", "20", "--size", "32",
            "--batch-size", "2", "--format", "png"]
    proc = start_lugpi(workspace, *args)
    store = Store(workspace / "store")
    wait_for_images(store, proc, 4)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    done = store.count("images")
    assert 4 <= done < 40, f"the kill landed after {done} images; make the run slower"
    assert maintenance.verify(store).ok
    result = json.loads(cli(*args, "--json").stdout)
    assert result["reused"] >= done and result["generated"] + result["reused"] == 40
    assert store.count("images") == 40 and maintenance.verify(store).ok


@pytest.mark.slow
def test_two_processes_shard_one_store(tmp_path, tiny_models, workspace):
    data = prompts_csv(tmp_path / "many.csv", 30)
    args = ["generate", data, "--text-col", "text", "--label-col", "label", "--prompt-col", "prompt",
            "--split-col", "split", "--model", tiny_models["sd"], *FAST, "--json"]
    # what `accelerate launch --num_processes 2` / torchrun set for each process
    procs = [start_lugpi(workspace, *args, env_extra={"RANK": str(r), "WORLD_SIZE": "2", "LOCAL_RANK": str(r)})
             for r in range(2)]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        results.append(json.loads(out))
    assert [r["shard"] for r in results] == ["0/2", "1/2"]
    assert results[0]["generated"] > 0 and results[1]["generated"] > 0
    assert results[0]["generated"] + results[1]["generated"] == 30
    store = Store(workspace / "store")
    assert store.count("images") == 30 and maintenance.verify(store).ok
