"""The page walker behind the truncation check: exact about where a store's referenced pages end."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from lugpi_store import Store, close_all, encode_array, fingerprint, record_key
from lugpi_store.errors import CorruptStore
from lugpi_store.pages import PastTheEnd, referenced_end

FP = fingerprint({"test": "pages"})
READ_ALL = """
import sys
from lugpi_store import Store
s = Store(sys.argv[1], readonly=True)
keys = s.keys("features")
assert all(s.get("features", k) is not None for k in keys)  # every record read through the map, CRC checked
print(len(keys))
"""


def _store(path, n=300):
    store = Store(path, create=True)
    rng = np.random.default_rng(0)
    for start in range(0, n, 50):  # several transactions; small and overflow-sized values
        store.put_many("features", [(record_key(FP, i), encode_array(rng.standard_normal(
            (8,) if i % 3 else (40, 64)).astype(np.float16))) for i in range(start, start + 50)])
    store.delete_many("features", [record_key(FP, i) for i in range(0, n, 7)])  # free pages in the free tree
    close_all()
    return path / "data.mdb"


def test_a_store_cut_at_its_referenced_end_reads_whole_and_one_page_less_is_refused(tmp_path):
    data = _store(tmp_path / "s")
    size = data.stat().st_size
    with open(data, "rb") as f:
        end = referenced_end(f.fileno(), 4096, size)
    assert 2 < end <= size // 4096
    whole = tmp_path / "cut"
    shutil.copytree(tmp_path / "s", whole)
    os.truncate(whole / "data.mdb", end * 4096)  # past `end` nothing is referenced: a healthy store
    done = subprocess.run([sys.executable, "-c", READ_ALL, str(whole)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) == 300 - len(range(0, 300, 7))
    short = tmp_path / "short"
    shutil.copytree(tmp_path / "s", short)
    os.truncate(short / "data.mdb", (end - 1) * 4096)
    with open(short / "data.mdb", "rb") as f, pytest.raises(PastTheEnd):
        referenced_end(f.fileno(), 4096, (end - 1) * 4096)
    with pytest.raises(CorruptStore, match="truncated"):
        Store(short, readonly=True).count("features")
    close_all()
