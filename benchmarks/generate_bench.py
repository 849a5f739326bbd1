"""Generation throughput, prompt dedup and cache reuse, with the tiny offline pipeline.

    python benchmarks/generate_bench.py [--data ../shared/data] [--prompts 64]

Prints, in one run on one machine:
1. images/s at batch size 1 vs 8 (tiny Stable Diffusion built from configs,
   32x32 px, 2 DDIM steps, CPU) — the batching gain of the runner itself;
2. on CWI 2018 News train: rows vs distinct prompts vs diffusion images
   actually drawn and pipeline calls (identical prompts are drawn once);
3. the wall time of a second, fully cached run as a fraction of the first;
4. `--reuse-similar 0.9999` on the same prompts: how many of the distinct
   prompts the pipeline's text encoder cannot tell apart (case, spacing,
   punctuation CLIP's tokenizer normalises away) and are reused instead of
   drawn. With the tiny, untrained text encoder only such tokenization-level
   duplicates are trustworthy; semantic near-duplicates (inflections) need
   the real encoder's weights and a lower threshold.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import tempfile
import time
from pathlib import Path

import torch

from lugpi_cli.data import load_dataset
from lugpi_cli.data.samples import Sample
from lugpi_cli.generation import GenerationConfig, generate_dataset, load_pipeline
from lugpi_cli.runtime import quiet_libraries
from lugpi_cli.tiny_models import build_tiny_sd
from lugpi_store import Store

REPO = Path(__file__).resolve().parents[1]


class CountingPipe:
    """Counts pipeline calls (diffusion batches) and images."""

    def __init__(self, pipe):
        self.pipe, self.calls, self.images = pipe, 0, 0
        self.tokenizer = pipe.tokenizer

    def __call__(self, **kwargs):
        self.calls += 1
        self.images += len(kwargs["prompt"])
        return self.pipe(**kwargs)


def throughput(config: GenerationConfig, pipe, root: Path, prompts: int) -> None:
    samples = [Sample(f"s{i}", "t", f"benchmark prompt {i}", 0, "train") for i in range(prompts)]
    rates = {}
    for batch in (1, 8):
        store = Store(root / f"bs{batch}", create=True)
        generate_dataset(store, samples[:8], config, lambda: pipe, batch_size=batch)  # warm-up
        summary = generate_dataset(store, samples[8:], config, lambda: pipe, batch_size=batch)
        rates[batch] = summary.images_per_second
        print(f"  batch {batch}: {summary.generated} images in {summary.seconds:.2f} s = {rates[batch]:.1f} img/s")
    print(f"  batch 8 / batch 1 = {rates[8] / rates[1]:.2f}x")


def cwi_dedup(config: GenerationConfig, pipe, root: Path, data: Path) -> None:
    try:
        ds = load_dataset("cwi-news", data=data)
    except Exception as exc:  # noqa: BLE001 - the benchmark still reports the rest
        print(f"  skipped: {exc}")
        return
    train = ds.samples("train")
    store = Store(root / "cwi", create=True)
    counting = CountingPipe(pipe)
    first = generate_dataset(store, train, config, lambda: counting, batch_size=8)
    print(f"  rows {len(train):,}  distinct prompts {first.distinct_prompts:,}  images drawn {counting.images:,}"
          f"  pipeline calls {counting.calls:,} (batch 8)  in {first.seconds:.1f} s")
    t = time.perf_counter()
    second = generate_dataset(store, train, config, lambda: counting, batch_size=8)
    again = time.perf_counter() - t
    print(f"  second run: generated {second.generated}, reused {second.reused:,}, {again:.3f} s = "
          f"{again / first.seconds:.4f} of the first run")
    similar = generate_dataset(Store(root / "cwi-similar", create=True), train,
                               dataclasses.replace(config, reuse_similar=0.9999), lambda: pipe, batch_size=8)
    print(f"  --reuse-similar 0.9999: drew {similar.generated:,}, reused {similar.reused_similar:,} of "
          f"{similar.distinct_prompts:,} distinct prompts ({100 * similar.reused_similar / similar.distinct_prompts:.1f}%"
          f" fewer diffusion calls than exact dedup)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--prompts", type=int, default=64)
    args = parser.parse_args()
    quiet_libraries()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    with tempfile.TemporaryDirectory(prefix="lugpi-generate-bench-") as tmp:
        root = Path(tmp)
        model = build_tiny_sd(root / "tiny-sd")
        config = GenerationConfig(model=str(model), steps=2, height=32, width=32, image_format="png")
        pipe = load_pipeline(config, torch.device("cpu"), torch.float32)
        print("\n[1] throughput, tiny SD, 32 px, 2 steps")
        throughput(config, pipe, root, args.prompts + 8)
        print("\n[2] CWI 2018 News train: identical prompts are drawn once")
        cwi_dedup(config, pipe, root, args.data)


if __name__ == "__main__":
    main()
