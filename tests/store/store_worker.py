"""A separate process that writes or reads a store (for concurrency and crash tests).

    python store_worker.py write STORE START END [BATCH] [MAP_SIZE]
    python store_worker.py read STORE END ROUNDS

Record ``i`` has key ``record_key(FP, i)`` and value ``expected(i)``; a writer
prints ``committed <n>`` after each batch.
"""

from __future__ import annotations

import sys

import numpy as np

from lugpi_store import Store, decode, encode_array, fingerprint, record_key

FP = fingerprint({"producer": "store_worker"})


def expected(i: int) -> np.ndarray:
    return np.random.default_rng(i).standard_normal((50, 96)).astype(np.float16)


def key(i: int) -> bytes:
    return record_key(FP, i)


def write(path: str, start: int, end: int, batch: int = 50, map_size: int = 1 << 16) -> None:
    store = Store(path, create=True, map_size=map_size)
    store.register("features", FP, {"producer": "store_worker"})
    todo = [i for i, present in zip(range(start, end), store.contains_many("features", [key(i) for i in range(start, end)]))
            if not present]
    done = 0
    for b in range(0, len(todo), batch):
        chunk = todo[b:b + batch]
        store.put_many("features", [(key(i), encode_array(expected(i))) for i in chunk])
        done += len(chunk)
        print(f"committed {done}", flush=True)
    print("finished", flush=True)


def read(path: str, end: int, rounds: int) -> None:
    store = Store(path, create=True)
    rng = np.random.default_rng()
    found = 0
    for _ in range(rounds):
        ids = rng.integers(0, end, size=32)
        for i, raw in zip(ids, [store.get_raw("features", key(int(i))) for i in ids]):
            if raw is None:
                continue
            np.testing.assert_array_equal(decode(raw, verify=True), expected(int(i)))
            found += 1
    print(f"read {found}", flush=True)


if __name__ == "__main__":
    cmd, path, *rest = sys.argv[1:]
    if cmd == "write":
        write(path, *map(int, rest))
    else:
        read(path, *map(int, rest))
