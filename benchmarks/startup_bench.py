"""Start-up cost of the CLI: wall time and peak memory of light commands vs. the bare interpreter.

    python benchmarks/startup_bench.py [--repeat 7] [--dataset FILE]

Runs, round-robin so that machine noise hits every row alike, ``python -c pass``, ``lugpi --help``,
``lugpi store info`` (on a small store made here), ``lugpi data show`` (default: the demo's
120-sentence CSV, so the row measures the CLI rather than parsing a corpus) and, for scale,
``python -c "import torch"``. Each command runs once untimed first (page cache, the CLI's cached
loss-option tables). Prints per command the median and best wall time, the median above the bare
interpreter (goal: at most 1.0 s for each lugpi row), the CPU time (user + system: what a loaded
machine inflates least) and the peak resident memory of the process.
``lugpi`` is run as ``python -m lugpi_cli`` with this checkout first on ``PYTHONPATH``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GOAL_S = 1.0


def _run(argv: list[str], env: dict[str, str]) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds (user + system) and peak RSS (MiB) of one run; a failure stops the benchmark."""
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        code = os.waitstatus_to_exitcode(status)
        proc.returncode = code
        if code != 0:
            err.seek(0)
            raise SystemExit(f"{' '.join(argv)} exited {code}:\n{err.read().decode(errors='replace')}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024  # ru_maxrss: KiB on Linux


def _small_store(workspace: Path) -> None:
    import numpy as np

    from lugpi_store import Store, close_all, encode_array, encode_image, fingerprint, record_key

    gen, enc = {"model": "bench-sd", "steps": 2}, {"encoder": "bench-clip", "pooling": "cls"}
    store = Store(workspace / "store", create=True)
    store.register("images", fingerprint(gen), gen)
    store.register("features", fingerprint(enc), enc)
    store.put_many("images", [(record_key(fingerprint(gen), f"p{i}", 0), encode_image(bytes([i % 256]) * 500, "png"))
                              for i in range(200)])
    store.put_many("features", [(record_key(fingerprint(enc), f"p{i}"), encode_array(np.full(768, i, np.float16)))
                                for i in range(200)])
    close_all()


DEMO_COLUMNS = ["--text-col", "text", "--label-col", "label", "--prompt-col", "prompt", "--split-col", "split"]


def commands(dataset: list[str]) -> dict[str, list[str]]:
    py, lugpi = [sys.executable], [sys.executable, "-m", "lugpi_cli"]
    return {
        "python -c pass": [*py, "-c", "pass"],
        "lugpi --help": [*lugpi, "--help"],
        "lugpi store info": [*lugpi, "store", "info"],
        "lugpi data show": [*lugpi, "data", "show", *dataset, "--examples", "1"],
        'python -c "import torch"': [*py, "-c", "import torch"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="timed runs per command")
    parser.add_argument("--dataset", default=None, help="what `lugpi data show` reads (default: the demo CSV)")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    from lugpi_cli.demo import data_path

    with tempfile.TemporaryDirectory(prefix="lugpi-startup-") as tmp:
        workspace = Path(tmp) / "ws"
        _small_store(workspace)
        env = {**os.environ, "LUGPI_WORKSPACE": str(workspace),
               "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
        table = commands([args.dataset] if args.dataset else [str(data_path()), *DEMO_COLUMNS])
        for argv in table.values():
            _run(argv, env)  # warm-up, untimed
        samples: dict[str, list[tuple[float, float, float]]] = {name: [] for name in table}
        for _ in range(args.repeat):
            for name, argv in table.items():
                samples[name].append(_run(argv, env))
    print(f"{platform.machine()}, {os.cpu_count()} cores, CPython {platform.python_version()}, "
          f"load average {os.getloadavg()[0]:.1f}; {args.repeat} runs each (medians; best wall time)")
    bare = statistics.median(w for w, _, _ in samples["python -c pass"])
    print(f"{'command':26} {'wall s':>7} {'best s':>7} {'above bare s':>13} {'CPU s':>6} {'peak MiB':>9}  goal")
    for name, runs in samples.items():
        med = statistics.median(w for w, _, _ in runs)
        best = min(w for w, _, _ in runs)
        cpu = statistics.median(c for _, c, _ in runs)
        rss = statistics.median(r for _, _, r in runs)
        goal = ""
        if name.startswith("lugpi"):
            goal = f"{'ok' if med - bare <= GOAL_S else 'MISSED'} (<= {GOAL_S:.1f} s above bare)"
        print(f"{name:26} {med:7.3f} {best:7.3f} {med - bare:13.3f} {cpu:6.3f} {rss:9.1f}  {goal}")


if __name__ == "__main__":
    main()
