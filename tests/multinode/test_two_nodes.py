"""Two nodes simulated on one machine: ``torchrun --nnodes 2 --node_rank {0,1} --nproc_per_node 1``
on the loopback address, each with its own node rank, generating and embedding with tiny models."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lugpi_cli.data.snapshot import DatasetRequest, resolve_dataset
from lugpi_cli.lineage import image_source
from lugpi_store import Store, close_all

pytestmark = pytest.mark.slow
TABLE = ["--text-col", "text", "--label-col", "label", "--prompt-col", "prompt", "--split-col", "split"]
NAMESPACES = ("images", "features", "teacher", "meta")


def _csv(path: Path, n: int) -> Path:
    path.write_text("text,label,prompt,split\n" + "".join(
        f"text {i},{i % 2},prompt number {i},{'train' if i % 4 else 'test'}\n" for i in range(n)))
    return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _torchrun(workspace: Path, node_rank: int, port: int, *args, env_extra=None) -> subprocess.Popen:
    """One simulated node: its own torchrun agent and worker, like `srun torchrun` on a machine."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--node_rank", str(node_rank),
           "--nproc_per_node", "1", "--master_addr", "127.0.0.1", "--master_port", str(port),
           "-m", "lugpi_cli", *map(str, args), "--json"]
    return subprocess.Popen(cmd, env=_env(workspace, env_extra), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)


def _env(workspace: Path, extra=None) -> dict[str, str]:
    # the same threads as the one-process run (float sums in another order differ in the last bit)
    return {**os.environ, "LUGPI_WORKSPACE": str(workspace), "CUDA_VISIBLE_DEVICES": "", **(extra or {})}


def _one_process(workspace: Path, *args) -> None:
    done = subprocess.run([sys.executable, "-m", "lugpi_cli", *map(str, args)], env=_env(workspace),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]


def _two_nodes(workspace: Path, *args, env_extra=None, timeout: float = 600) -> list[dict]:
    port = _free_port()
    procs = [_torchrun(workspace, rank, port, *args, env_extra=env_extra) for rank in range(2)]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=timeout)
        assert proc.returncode == 0, err[-3000:]
        lines = [line for line in out.splitlines() if line.startswith("{")]
        assert len(lines) == 1, out
        results.append(json.loads(lines[0]))
    return results


def _records(path: Path) -> dict[str, dict[bytes, bytes]]:
    close_all()
    store = Store(path)
    return {ns: dict(store.iter_raw(ns)) for ns in NAMESPACES}


@pytest.mark.heavy
def test_two_nodes_hold_exactly_what_one_process_makes(tmp_path, tiny_models, cli, workspace):
    data = _csv(tmp_path / "toy.csv", 10)
    generate = ["generate", data, *TABLE, "--model", tiny_models["sd"], "--steps", "2", "--size", "32",
                "--format", "png", "--batch-size", "1"]
    embed = ["embed", data, *TABLE, "--encoder", tiny_models["clip"]]
    multi = tmp_path / "multi"
    gen = _two_nodes(multi, *generate)
    assert [r["shard"] for r in gen] == ["0/2", "1/2"]
    assert [r["multinode"]["node_rank"] for r in gen] == [0, 1]
    assert gen[0]["generated"] > 0 and gen[1]["generated"] > 0
    assert gen[0]["generated"] + gen[1]["generated"] == 10
    assert gen[0]["multinode"]["merged_node_stores"] == 2 and gen[0]["multinode"]["merged"]["images"] == 10
    emb = _two_nodes(multi, *embed)
    assert emb[0]["embedded"] > 0 and emb[1]["embedded"] > 0 and emb[0]["embedded"] + emb[1]["embedded"] == 10
    assert not (multi / "nodes").exists() or not any((multi / "nodes").iterdir())  # merged, then removed

    _one_process(workspace, *generate)  # the same, in one process, into the test's own workspace
    _one_process(workspace, *embed)
    merged, single = _records(multi / "store"), _records(workspace / "store")
    for ns in NAMESPACES:
        assert sorted(merged[ns]) == sorted(single[ns]), ns
    assert len(merged["images"]) == 10 and len(merged["features"]) == 10
    assert merged["images"] == single["images"]  # bitwise, at --batch-size 1
    assert merged["meta"] == single["meta"]  # snapshot, registry and latest/ pointers alike
    verify = json.loads(cli("store", "verify", "--workspace", multi, "--json").stdout)
    assert verify["ok"] is True and verify["checked"] > 20
    again = _two_nodes(multi, *generate)  # the same command twice does the work once
    assert [r["generated"] for r in again] == [0, 0] and sum(r["reused"] for r in again) == 10


def _descendants(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
        for child in children:
            found += [child, *_descendants(child)]
    return found


def _kill_node(proc: subprocess.Popen) -> None:
    """SIGKILL a simulated node: its torchrun agent and the workers (torchrun starts them in sessions
    of their own, so the agent's process group does not hold them)."""
    for pid in [proc.pid, *_descendants(proc.pid)]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait(timeout=60)


@pytest.mark.heavy
def test_a_node_killed_mid_run_and_restarted_resumes(tmp_path, tiny_models, workspace):
    data = _csv(tmp_path / "toy.csv", 12)
    args = ["generate", data, *TABLE, "--model", tiny_models["sd"], "--steps", "20", "--size", "32",
            "--format", "png", "--batch-size", "1"]
    fast_timeout = {"LUGPI_NODE_TIMEOUT": "10"}
    port = _free_port()
    procs = [_torchrun(workspace, rank, port, *args, env_extra=fast_timeout) for rank in range(2)]
    node1 = Store(workspace / "nodes" / "node-1")
    deadline = time.time() + 300
    while time.time() < deadline and procs[1].poll() is None:
        if node1.exists and node1.count("images") >= 2:
            break
        time.sleep(0.05)
    _kill_node(procs[1])
    drawn = node1.count("images")
    close_all()
    out, err = procs[0].communicate(timeout=300)
    assert procs[0].returncode != 0  # node 0 noticed instead of waiting for ever
    assert "rank 1" in err and "Re-run the same command" in err

    results = _two_nodes(workspace, *args, env_extra=fast_timeout)
    close_all()
    store = Store(workspace / "store")
    request = DatasetRequest(str(data), text_col="text", label_col="label", prompt_col="prompt", split_col="split")
    samples = resolve_dataset(request, store, persist=False).samples(["train", "validation", "test"])
    expected = set(image_source(store, "toy").image_keys(samples).values())
    share1 = sum(int(key[17:], 16) % 2 == 1 for key in expected)  # node 1's prompts (rank 1 of 2)
    assert 2 <= drawn < share1, f"the kill landed after {drawn} of node 1's {share1} images; make the run slower"
    generated = sum(r["generated"] for r in results)
    assert 0 < generated <= 12 - drawn  # what node 1 drew before the kill is kept
    assert sum(r["reused"] for r in results) == 12 - generated
    assert set(store.keys("images")) == expected and len(expected) == 12
    assert results[0]["multinode"]["verified_records"] > 12
    assert not list((workspace / "nodes").glob("node-*"))
