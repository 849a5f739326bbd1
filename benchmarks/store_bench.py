"""Random-read throughput of the feature store vs. the alternatives, side by side.

    python benchmarks/store_bench.py [--records 20000] [--dir /tmp/lugpi-bench]

Writes N records of two shapes — a pooled 768-d float16 vector and a 50x768
float16 token matrix — three ways: the LMDB store (one record per key), one
``.npy`` file per sample, and one contiguous ``np.memmap`` (the physical
limit). Then reads all N in one random order, in a single process and
through a torch DataLoader with 2 workers, and prints records/s, MB/s and the
ratios the README quotes: store / file-per-sample (goal >= 5x) and
memmap / store (goal <= 3x). Reads are from a warm page cache (the files were
just written, synced and fit in RAM). Two epochs each: the first touches every
page of the map for the first time in that process, the second is what a
training run sees from its second epoch on; DataLoader workers persist across
epochs and the first epoch excludes their start-up (the first batch).

Every store read checks its record's CRC32 (the tables above include it);
the last lines per shape give that check's cost: the same keys read through
``Store.get_many`` with and without it, as bare arrays and as the feature
bundles ``embed`` writes, and then through the DataLoader a training run reads with.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from lugpi_store import Store, close_all, encode_array, fingerprint, record_key

SHAPES = {"pooled 768": (768,), "tokens 50x768": (50, 768)}
FP = fingerprint({"benchmark": "store_bench"})


class _Reader(torch.utils.data.Dataset):
    """What a training DataLoader does: one sample per ``__getitem__``."""

    def __init__(self, kind: str, root: Path, shape: tuple[int, ...], n: int, verify: bool = True):
        self.kind, self.root, self.shape, self.n, self.verify = kind, root, shape, n, verify
        self.store = Store(root / "store") if kind == "store" else None
        self.keys = [record_key(FP, i) for i in range(n)] if kind == "store" else None
        self.mm = None

    def __len__(self) -> int:
        return self.n

    def __getitems__(self, indices: list[int]) -> list[np.ndarray]:
        """Batched fetch (torch >= 2.2 calls this): one LMDB read transaction per batch."""
        if self.kind == "store":
            return self.store.get_many("features", [self.keys[i] for i in indices], verify=self.verify)
        return [self[i] for i in indices]

    def __getitem__(self, i: int) -> np.ndarray:
        if self.kind == "store":
            return self.store.get("features", self.keys[i], verify=self.verify)
        if self.kind == "npy":
            return np.load(self.root / "npy" / f"{i}.npy")
        if self.mm is None:  # opened lazily, once per worker
            self.mm = np.memmap(self.root / "data.bin", dtype=np.float16, mode="r", shape=(self.n, *self.shape))
        return np.array(self.mm[i])


def write_all(root: Path, shape: tuple[int, ...], n: int, chunk: int = 1000) -> dict[str, float]:
    rng = np.random.default_rng(0)
    store = Store(root / "store", create=True)
    (root / "npy").mkdir(parents=True)
    mm = np.memmap(root / "data.bin", dtype=np.float16, mode="w+", shape=(n, *shape))
    times = {"store": 0.0, "npy": 0.0, "memmap": 0.0}
    for start in range(0, n, chunk):
        block = rng.standard_normal((min(chunk, n - start), *shape)).astype(np.float16)
        t = time.perf_counter()
        store.put_many("features", [(record_key(FP, start + j), encode_array(x)) for j, x in enumerate(block)])
        times["store"] += time.perf_counter() - t
        t = time.perf_counter()
        for j, x in enumerate(block):
            np.save(root / "npy" / f"{start + j}.npy", x)
        times["npy"] += time.perf_counter() - t
        t = time.perf_counter()
        mm[start:start + len(block)] = block
        times["memmap"] += time.perf_counter() - t
    t = time.perf_counter()
    mm.flush()
    times["memmap"] += time.perf_counter() - t
    del mm
    return times


def read_single(reader: _Reader, order: np.ndarray) -> list[float]:
    """Seconds for two passes in random order: the first touches every page, the second is an epoch later."""
    reader[int(order[0])]  # open lazily outside the clock
    times = []
    for epoch in range(2):
        shuffled = np.random.default_rng(epoch).permutation(order)
        t = time.perf_counter()
        for i in shuffled:
            reader[int(i)]
        times.append(time.perf_counter() - t)
    return times


def read_loader(reader: _Reader, order: np.ndarray, workers: int = 2) -> list[float]:
    """Seconds per epoch through a DataLoader with persistent workers (first epoch minus start-up, second)."""
    generator = torch.Generator().manual_seed(0)
    loader = torch.utils.data.DataLoader(reader, batch_size=64, shuffle=True, generator=generator,
                                         num_workers=workers, collate_fn=lambda xs: torch.from_numpy(np.stack(xs)),
                                         persistent_workers=True)
    times = []
    for epoch in range(2):
        batches = iter(loader)
        first = len(next(batches)) if epoch == 0 else 0  # worker start-up is not read throughput
        t = time.perf_counter()
        rest = sum(len(b) for b in batches)
        assert first + rest == len(order)
        times.append((time.perf_counter() - t) * len(order) / rest)
    return times


def crc_cost(root: Path, n: int, repeats: int = 5) -> None:
    """What checking every record's CRC32 costs a read (``Store.get_many``, the batched path training and
    ``embed`` take): the same keys read with and without the check, interleaved, best of ``repeats``.

    Two record kinds: the bare array records the tables above read, and the bundle of named arrays that
    ``embed`` stores for a feature (here the same array plus a 768-d pooled vector), whose decoding costs more.
    """
    from lugpi_store import codec, encode_bundle

    store = Store(root / "store")
    keys = [record_key(FP, i) for i in range(n)]
    order = [keys[i] for i in np.random.default_rng(2).permutation(n)]
    first = store.get("features", keys[0])
    bundle_keys = [record_key(FP, f"bundle-{i}") for i in range(min(n, 5000))]
    pooled = np.zeros(768, np.float16)
    store.put_many("features", [(k, encode_bundle({"tokens": store.get("features", keys[i]), "pooled": pooled}))
                                for i, k in enumerate(bundle_keys)])
    for label, wanted in (("array", order), ("bundle", bundle_keys)):
        best = {True: float("inf"), False: float("inf")}
        for _ in range(repeats):
            for verify in (False, True):
                t = time.perf_counter()
                for start in range(0, len(wanted), 64):
                    store.get_many("features", wanted[start:start + 64], verify=verify)
                best[verify] = min(best[verify], time.perf_counter() - t)
        print(f"{'':14} CRC32 on read ({label} records {list(first.shape)}, batches of 64, {codec._crc32.__module__}): "
              f"{len(wanted) / best[False]:,.0f} rec/s unchecked, {len(wanted) / best[True]:,.0f} rec/s checked, "
              f"cost {100 * (best[True] / best[False] - 1):+.1f}% (goal < 5%)")
    close_all()


def crc_cost_loader(root: Path, shape: tuple[int, ...], n: int, workers: int, repeats: int = 3) -> None:
    """The same check's cost where training pays it: epochs through a DataLoader (``workers`` processes, batches
    of 64, the records copied out, collated and handed to the main process), with and without the check,
    interleaved, best epoch-2 time of ``repeats``."""
    order = np.random.default_rng(1).permutation(n)
    best = {True: float("inf"), False: float("inf")}
    for _ in range(repeats):
        for verify in (False, True):
            best[verify] = min(best[verify], read_loader(_Reader("store", root, shape, n, verify), order, workers)[1])
            close_all()
    print(f"{'':14} CRC32 on read through a DataLoader x{workers} (epoch 2): {n / best[False]:,.0f} rec/s unchecked, "
          f"{n / best[True]:,.0f} rec/s checked, cost {100 * (best[True] / best[False] - 1):+.1f}% (goal < 5%)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--dir", type=Path, default=None, help="scratch directory (default: a temp dir)")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="lugpi-store-bench-", dir=args.dir))
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.python_implementation()} "
          f"{platform.python_version()}, torch {torch.__version__}; scratch {base}")
    print(f"{args.records} records per shape, random order, warm page cache\n")
    header = f"{'shape':14} {'access':16} {'method':7}"
    try:
        for name, shape in SHAPES.items():
            root = base / name.split()[0]
            mb = args.records * int(np.prod(shape)) * 2 / 1e6
            writes = write_all(root, shape, args.records)
            os.sync()  # dirty pages written back before anything is timed
            time.sleep(2)
            print(f"[{name}] write: " + ", ".join(f"{k} {args.records / v:,.0f} rec/s" for k, v in writes.items()))
            print(header)
            order = np.random.default_rng(1).permutation(args.records)
            for access, fn in (("single process", read_single), (f"DataLoader x{args.workers}", read_loader)):
                rates: dict[str, list[float]] = {}
                for kind in ("store", "npy", "memmap"):
                    reader = _Reader(kind, root, shape, args.records)
                    secs = fn(reader, order) if fn is read_single else fn(reader, order, args.workers)
                    rates[kind] = [args.records / t for t in secs]
                    print(f"{name:14} {access:16} {kind:7} " + "   ".join(
                        f"{label} {r:>9,.0f} rec/s {r * mb / args.records:>7,.0f} MB/s"
                        for label, r in zip(("epoch 1", "epoch 2"), rates[kind])))
                    close_all()
                for e, label in enumerate(("epoch 1 (first touch)", "epoch 2")):
                    print(f"{'':14} {access:16} {label:22} store/npy = {rates['store'][e] / rates['npy'][e]:.1f}x "
                          f"(goal >= 5)   memmap/store = {rates['memmap'][e] / rates['store'][e]:.2f}x (goal <= 3)")
            crc_cost(root, args.records)
            crc_cost_loader(root, shape, args.records, args.workers)
            print()
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
