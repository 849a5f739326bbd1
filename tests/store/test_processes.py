"""Several processes on one store; a writer killed with SIGKILL and resumed."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from lugpi_store import Store, maintenance

WORKER = Path(__file__).with_name("store_worker.py")


def _spawn(*args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(WORKER), *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _finish(proc: subprocess.Popen) -> str:
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    return out


def _check_complete(path: Path, n: int) -> None:
    sys.path.insert(0, str(WORKER.parent))
    try:
        import store_worker
    finally:
        sys.path.pop(0)
    store = Store(path)
    assert store.count("features") == n
    got = store.get_many("features", [store_worker.key(i) for i in range(n)], verify=True)
    for i, value in enumerate(got):
        np.testing.assert_array_equal(value, store_worker.expected(i))
    assert maintenance.verify(store).ok


@pytest.mark.slow
def test_concurrent_writers_and_readers(tmp_path):
    path = tmp_path / "s"
    # Overlapping ranges, a tiny initial map: the writers race on the same keys and
    # on growing the map while readers read.
    writers = [_spawn("write", path, a, b, 20, 1 << 16) for a, b in [(0, 300), (200, 500), (400, 700)]]
    time.sleep(0.3)
    readers = [_spawn("read", path, 700, 60) for _ in range(2)]
    for proc in writers:
        assert "finished" in _finish(proc)
    for proc in readers:
        assert _finish(proc).startswith("read ")
    _check_complete(path, 700)


@pytest.mark.slow
def test_sigkill_mid_run_then_resume(tmp_path):
    path = tmp_path / "s"
    rng = random.Random(0)
    for _ in range(3):
        proc = _spawn("write", path, 0, 3000, 100, 1 << 16)
        line = proc.stdout.readline()  # wait for the first commit
        assert line.startswith("committed") or line.startswith("finished"), proc.stderr.read()
        time.sleep(rng.uniform(0.05, 0.4))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        store = Store(path)
        # Only whole batches survive: nothing half-written, every record intact.
        assert maintenance.verify(store).ok
        assert store.count("features") % 100 == 0 or store.count("features") == 3000
    out = _finish(_spawn("write", path, 0, 3000, 100, 1 << 16))
    assert "finished" in out
    _check_complete(path, 3000)
