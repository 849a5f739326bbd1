"""Two identical runs started at once on one workspace share the work (store/claims.py): each prompt is
drawn, and each image embedded, about once in total, with no --shard and no coordination by the user."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lugpi_store import Store, maintenance


def _start(workspace: Path, *args) -> subprocess.Popen:
    env = {**os.environ, "LUGPI_WORKSPACE": str(workspace)}
    return subprocess.Popen([sys.executable, "-m", "lugpi_cli", *map(str, args), "--json"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _both(workspace: Path, args: list) -> list[dict]:
    procs = [_start(workspace, *args) for _ in range(2)]  # at once: nothing tells them about each other
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
        results.append(json.loads(out))
    return results


@pytest.mark.slow
def test_two_identical_generate_and_embed_runs_do_the_work_once(tmp_path, tiny_models, workspace):
    n = 12
    table = tmp_path / "t.csv"
    table.write_text("text,label,prompt\n" + "".join(f"text {i},{i % 2},prompt number {i}\n" for i in range(n)))
    data = [table, "--text-col", "text", "--label-col", "label", "--prompt-col", "prompt"]
    # batch size 1: each image drawn is one pipeline call
    gen = _both(workspace, ["generate", *data, "--model", tiny_models["sd"], "--steps", "2", "--size", "32",
                            "--format", "png", "--batch-size", "1"])
    calls = sum(r["generated"] for r in gen)
    assert n <= calls <= n + 2, f"{calls} pipeline calls for {n} prompts (without claims: {2 * n})"
    for r in gen:
        assert r["generated"] + r["reused"] + r["other_processes"] == n and r["failed"] == 0
    store = Store(workspace / "store")
    assert store.count("images") == n and maintenance.verify(store).ok
    assert not store.keys("meta", b"claim/")  # every claim released

    emb = _both(workspace, ["embed", *data, "--encoder", tiny_models["clip"], "--batch-size", "2", "--workers", "0"])
    encoded = sum(r["embedded"] for r in emb)
    assert n <= encoded <= n + 2 * 2, f"{encoded} images embedded for {n} (without claims: {2 * n})"
    assert store.count("features") == n and not store.keys("meta", b"claim/")


def test_a_dead_owners_claim_is_taken_over(tmp_path):
    """A claim left by a killed process (its pid is gone) does not block the items."""
    from lugpi_store import codec
    from lugpi_store.claims import ClaimSet

    store = Store(tmp_path / "s", create=True)
    keys = [f"k{i}".encode() for i in range(5)]
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    ghost = ClaimSet(store, "images", keys)
    ghost.owner = {**ghost.owner, "pid": dead.pid}
    assert ghost._take(5)[0] == [0, 1, 2, 3, 4]
    live = ClaimSet(store, "images", keys)
    assert [i for batch in live.batches(2) for i in batch] == [0, 1, 2, 3, 4]
    # a live owner's claims are respected (and without waiting, left to it)
    holder = ClaimSet(store, "images", keys)
    holder._take(3)
    other = ClaimSet(store, "images", keys)
    assert [i for batch in other.batches(5, wait=False) for i in batch] == [3, 4]
    store.put_many("images", [(keys[i], codec.encode_json({"i": i})) for i in range(3)])
    assert not other.wait_for_others() and other.by_others == 3
