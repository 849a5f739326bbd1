"""What an ablation grid costs compared with training its cells one by one, and what it never recomputes.

    python benchmarks/ablate_bench.py [--samples 600] [--epochs 2]

Builds a workspace (tiny SD images, tiny CLIP features, a teacher), times one
plain fine-tuned baseline run, then a 3x3 `lugpi ablate` grid (alpha x tau)
on the same small student, in the same process. Prints
    grid wall time / (9 x one baseline run)     (goal <= 1.1)
and the number of diffusion, image-encoder and teacher forward calls made
during the grid (must be 0: everything comes from the store).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from distill_bench import build_workspace  # noqa: E402

from lugpi_cli.runtime import quiet_libraries  # noqa: E402


class Counter:
    """Wraps a function and counts its calls."""

    def __init__(self, owner, name):
        self.owner, self.name, self.calls = owner, name, 0
        self.original = getattr(owner, name)

        def counted(*args, **kwargs):
            self.calls += 1
            return self.original(*args, **kwargs)

        setattr(owner, name, counted)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=600)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    quiet_libraries()
    from typer.testing import CliRunner

    from lugpi_cli.app import app
    from lugpi_cli.encoders import embedder
    from lugpi_cli.generation import runner
    from lugpi_cli.models import FusionTeacher
    from lugpi_cli.tiny_models import build_tiny_clip_vision, build_tiny_sd, build_tiny_text_model

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; student dim 128, 4 layers; {args.samples} samples")
    with tempfile.TemporaryDirectory(prefix="lugpi-ablate-bench-") as tmp:
        root = Path(tmp)
        models = {"sd": build_tiny_sd(root / "sd"), "clip": build_tiny_clip_vision(root / "clip"),
                  "text": build_tiny_text_model(root / "text", dim=128, layers=4)}
        build_workspace(root / "w", args.samples, models)
        ws = str(root / "w" / "ws")
        common = ["--text-model", str(models["text"]), "--epochs", str(args.epochs), "--max-length", "64",
                  "--batch-size", "16", "--device", "cpu"]
        cli = CliRunner()

        def lugpi(*argv):
            result = cli.invoke(app, ["--quiet", "-w", ws, *map(str, argv)])
            if result.exit_code != 0:
                raise RuntimeError(result.output)
            return result

        lugpi("distill", "--alpha", "0", "--beta", "0", *common, "--seed", "99")  # warm-up (imports, caches)
        t = time.perf_counter()
        lugpi("distill", "--alpha", "0", "--beta", "0", *common)
        one = time.perf_counter() - t
        counters = [Counter(runner, "run_pipeline"), Counter(embedder, "encode"), Counter(FusionTeacher, "forward")]
        t = time.perf_counter()
        lugpi("ablate", "--grid", "alpha=0.5,1,3", "--grid", "tau=1,4,8", "--set", "beta=0", *common)
        grid = time.perf_counter() - t
        print(f"  one baseline run:  {one:6.1f} s")
        print(f"  3x3 grid:          {grid:6.1f} s")
        print(f"  grid / (9 x one) = {grid / (9 * one):.3f}   (goal <= 1.1; the paper's pipeline: 2.3-2.8)")
        print(f"  calls during the grid: diffusion {counters[0].calls}, image encoder {counters[1].calls}, "
              f"teacher {counters[2].calls}   (must all be 0)")


if __name__ == "__main__":
    main()
