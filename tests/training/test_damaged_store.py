"""A damaged store is an error naming what is damaged, never a silent input or a crash.

The truncated store and the corrupted records are built here: a copy of a real workspace's
``data.mdb`` cut short, and records whose last payload byte is flipped (so their CRC no longer matches).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from lugpi_store import CorruptRecord, CorruptStore, Store, close_all, maintenance
from tests.training.conftest import TABLE


def _flip_last_byte(store: Store, namespace: str, key: bytes) -> None:
    raw = bytearray(store.get_raw(namespace, key))
    raw[-1] ^= 0xFF
    store.put(namespace, key, bytes(raw), overwrite=True)


def _first_key(store: Store, namespace: str) -> bytes:
    return store.keys(namespace)[0]


def _lugpi(workspace, *args):
    env = {**os.environ, "LUGPI_WORKSPACE": str(workspace)}
    return subprocess.run([sys.executable, "-m", "lugpi_cli", *map(str, args)], env=env, capture_output=True,
                          text=True, timeout=300)


def _truncated_copy(workspace, tmp_path, fraction: float):
    data = (workspace / "store" / "data.mdb").read_bytes()
    bad = tmp_path / "cut"
    (bad / "store").mkdir(parents=True)
    (bad / "store" / "data.mdb").write_bytes(data[:int(len(data) * fraction)])
    return bad


@pytest.mark.parametrize("fraction", [0.5, 0.97])
def test_a_truncated_store_is_refused_on_open(workspace, tmp_path, fraction):
    bad = _truncated_copy(workspace, tmp_path, fraction)
    size = (bad / "store" / "data.mdb").stat().st_size
    with pytest.raises(CorruptStore, match="truncated"):
        Store(bad / "store").count("images")
    report = maintenance.verify(Store(bad / "store"))
    assert not report.ok and report.damaged is not None
    assert (bad / "store" / "data.mdb").stat().st_size == size  # nothing written to it
    close_all()


def test_truncated_store_cli_exit_1_not_sigbus(workspace, tmp_path, table):
    bad = _truncated_copy(workspace, tmp_path, 0.6)
    for args in (["store", "info"], ["store", "verify"], ["embed", table, *TABLE, "--encoder", "clip"]):
        proc = _lugpi(bad, *args)
        assert proc.returncode == 1, (args, proc.returncode, proc.stderr)
        said = proc.stdout + proc.stderr
        assert "data.mdb" in said and "truncated" in said and "Restore" in said and "Traceback" not in said
    verify = _lugpi(bad, "store", "verify", "--json")
    report = json.loads(verify.stdout)
    assert report["ok"] is False and "truncated" in report["file"]["reason"]
    merge = _lugpi(tmp_path / "fresh", "store", "merge", bad)
    assert merge.returncode == 1 and "truncated" in merge.stderr


def test_a_corrupt_image_stops_embed_naming_the_key(cli, workspace, table, tiny_models):
    store = Store(workspace / "store")
    key = _first_key(store, "images")
    _flip_last_byte(store, "images", key)
    assert [k for _, k, _ in maintenance.verify(store).corrupt] == [key.decode()]
    result = cli("embed", table, *TABLE, "--encoder", tiny_models["clip"], "--pooled-only", code=1)
    assert f"images/{key.decode()}" in result.stderr and "store verify" in result.stderr
    assert "Traceback" not in result.stderr
    # the way out the message gives: delete the corrupt record, regenerate it, embed again
    assert json.loads(cli("store", "gc", "--corrupt", "--json").stdout)["records"] == 1
    regenerated = json.loads(cli("generate", table, *TABLE, "--model", tiny_models["sd"], "--steps", "2",
                                 "--size", "32", "--json").stdout)
    assert regenerated["generated"] == 1
    cli("embed", table, *TABLE, "--encoder", tiny_models["clip"], "--pooled-only")
    assert maintenance.verify(store).ok


def test_a_corrupt_image_read_in_a_dataloader_worker_is_the_same_one_line_error(cli, workspace, table,
                                                                                 tiny_models):
    """torch re-raises a worker's error with the worker's traceback as its message: the user sees the message."""
    store = Store(workspace / "store")
    key = _first_key(store, "images")
    _flip_last_byte(store, "images", key)
    result = cli("embed", table, *TABLE, "--encoder", tiny_models["clip"], "--pooled-only", "--workers", "1",
                 code=1)
    assert f"images/{key.decode()}" in result.stderr and "store verify" in result.stderr
    assert "Traceback" not in result.stderr and "DataLoader worker" not in result.stderr
    assert any(line.startswith("Error: record images/") for line in result.stderr.splitlines())


def test_a_corrupt_feature_stops_train_teacher(cli, workspace, teacher_args):
    store = Store(workspace / "store")
    key = _first_key(store, "features")
    _flip_last_byte(store, "features", key)
    result = cli(*teacher_args, "--max-steps", "1", code=1)
    assert f"features/{key.decode()}" in result.stderr and "corrupt" in result.stderr
    assert not list((workspace / "runs").glob("*/DONE"))


@pytest.mark.slow
def test_a_corrupt_teacher_output_stops_distill(cli, workspace, teacher_args, text_args):
    teacher = json.loads(cli(*teacher_args, "--epochs", "1", "--json").stdout)
    store = Store(workspace / "store")
    key = _first_key(store, "teacher")
    _flip_last_byte(store, "teacher", key)
    result = cli("distill", "--teacher", teacher["run"], *text_args, "--epochs", "1", code=1)
    assert f"teacher/{key.decode()}" in result.stderr and "store verify" in result.stderr


def test_every_read_checks_the_crc(workspace):
    store = Store(workspace / "store")
    for ns in ("images", "features"):
        key = _first_key(store, ns)
        _flip_last_byte(store, ns, key)
        with pytest.raises(CorruptRecord, match=f"{ns}/"):
            store.get(ns, key)
        with pytest.raises(CorruptRecord):
            store.get_many(ns, [key])
        with store.reader() as reader, pytest.raises(CorruptRecord):
            reader.get(ns, key, copy=False)
        assert store.get(ns, key, verify=False) is not None  # the explicit opt-out still reads it
