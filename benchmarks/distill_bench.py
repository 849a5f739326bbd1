"""What distillation costs on top of fine-tuning, and whether memory stays flat as data grows.

    python benchmarks/distill_bench.py [--samples 1000] [--epochs 3]

One run, CPU, the same small student and data, side by side:
  (a) the fine-tuned baseline (CE only),
  (b) LUGPI distillation reading the teacher's cached outputs from the store,
  (c) a naive distillation that runs the teacher (text + image features) every step.
Prints seconds per epoch (the best of the epochs, and the median) and, from the best,
(b)/(a) (goal <= 1.05) and (c)/(a).
Then the peak RSS of a distill run (in a fresh process) at 1x and 4x the data
set size: teacher outputs stream from the store, so growth should stay under 10%.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from lugpi_cli.runtime import quiet_libraries
from lugpi_cli.training.objectives import Objective


def build_workspace(root: Path, samples: int, models: dict[str, Path]) -> dict:
    """Table -> generate (tiny SD) -> embed (tiny CLIP) -> teacher; returns what the runs need."""
    from lugpi_cli.data.snapshot import DatasetRequest, resolve_dataset
    from lugpi_cli.encoders import EncoderConfig, embed_images, load_encoder
    from lugpi_cli.generation import GenerationConfig, generate_dataset, load_pipeline
    from lugpi_cli.lineage import image_source, record_embedding
    from lugpi_cli.training.loop import TrainConfig
    from lugpi_cli.training.lifecycle import TeacherSpec, train_teacher
    from lugpi_store import Store

    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    table = root / "reviews.csv"
    words = ["good", "bad", "great", "awful", "film", "movie", "the", "was", "not", "a"]
    lines = ["text,label,prompt"]
    for i in range(samples):
        text = " ".join(rng.choice(words, size=24))
        lines.append(f"{text} {i},{i % 2},photo {i}")
    table.write_text("\n".join(lines) + "\n")
    store = Store(root / "ws" / "store", create=True)
    request = DatasetRequest(str(table), text_col="text", label_col="label", prompt_col="prompt")
    ds = resolve_dataset(request, store)
    gen = GenerationConfig(model=str(models["sd"]), steps=1, height=32, width=32, image_format="png")
    generate_dataset(store, ds.samples(), gen, lambda: load_pipeline(gen, torch.device("cpu"), torch.float32),
                     batch_size=32, dataset_name=ds.name)
    source = image_source(store, ds.name)
    enc = EncoderConfig(str(models["clip"]))
    keys = source.image_keys(ds.samples())
    summary = embed_images(store, list(keys.values()), enc, lambda: load_encoder(enc, torch.device("cpu"),
                                                                                 torch.float32), batch_size=64)
    record_embedding(store, ds.name, enc.label, {"encoder_fingerprint": summary.encoder_fingerprint,
                                                 "generator_fingerprint": source.fingerprint,
                                                 "generator_seed": source.seed, "pooled_only": False})
    cfg = TrainConfig(epochs=1, batch_size=16, max_length=32, lr=1e-3)
    teacher = train_teacher(store, root / "ws" / "runs", ds, TeacherSpec(text_model=str(models["text"]),
                                                                           encoder=str(models["clip"]), hidden=32),
                            cfg, dataset_request={"name": ds.name}, device="cpu")
    return {"store": store, "ds": ds, "teacher": teacher.run, "table": table}


class NaiveObjective(Objective):
    """(c): the teacher runs (no_grad) on every batch, as an implementation without a cache would."""

    def __init__(self, student, teacher, loss):
        super().__init__(student, loss)
        self.teacher = teacher.eval().requires_grad_(False)

    def forward(self, batch):
        from lugpi_cli.losses import DistillInputs

        with torch.no_grad():
            t = self.teacher(batch)
        out = self.model(batch)
        return self.loss(DistillInputs(out.logits, out.embedding, batch["labels"], t.logits, t.embedding)), out


def time_epochs(root: Path, env: dict, models: dict, epochs: int) -> dict[str, float]:
    from transformers import AutoTokenizer

    from lugpi_cli.losses import build_loss
    from lugpi_cli.models import TextClassifier, load_model
    from lugpi_cli.training.data import Collator, TrainingData
    from lugpi_cli.training.loop import Objective, TrainConfig, fit
    from lugpi_cli.training.runs import Run
    from lugpi_store import record_key

    ds, store, teacher = env["ds"], env["store"], env["teacher"]
    tconf = teacher.config()
    train, val = ds.splits["train"], ds.splits["validation"]
    tokenizer = AutoTokenizer.from_pretrained(models["text"])
    collate = Collator(tokenizer, 64)
    cfg = TrainConfig(epochs=epochs, batch_size=16, max_length=64, lr=1e-3)
    results = {}

    def student():
        torch.manual_seed(0)
        return TextClassifier.from_pretrained(models["text"], labels=ds.label_names)

    cases = {
        "(a) baseline": lambda: (Objective(student(), build_loss("lugpi", alpha=0.0, beta=0.0)),
                                 TrainingData(train)),
        "(b) cached teacher": lambda: (Objective(student(), build_loss("lugpi")),
                                       TrainingData(train, store, teacher_keys=[
                                           record_key(tconf["output_fingerprint"], s.id) for s in train])),
    }
    source = tconf["feature_source"]
    from lugpi_cli.lineage import ImageSource

    image_keys = ImageSource(source["generator_fingerprint"], source["generator_seed"], {}).image_keys(train)
    cases["(c) teacher every step"] = lambda: (
        NaiveObjective(student(), load_model(teacher.model_dir), build_loss("lugpi")),
        TrainingData(train, store, feature_keys=[record_key(source["encoder_fingerprint"], image_keys[s.id])
                                                 for s in train]))
    for name, make in cases.items():
        objective, data = make()
        run = Run(root / "bench-runs" / name.split()[0].strip("()"))
        fit(run, objective, data, TrainingData(val), collate, cfg, device="cpu")
        seconds = [h["seconds"] for h in run.history()]
        results[name] = min(seconds)  # the least disturbed epoch: a 2-core machine's second core is noisy
        print(f"  {name:24} {results[name]:7.2f} s/epoch (best), median {statistics.median(seconds):.2f}   "
              f"(epochs: {', '.join(f'{s:.2f}' for s in seconds)})")
    return results


def child_peak_rss(root: Path, teacher: str, models: dict, epochs: int, max_steps: int) -> int:
    """Peak RSS (KiB) of a distill run in a fresh process (``max_steps`` optimizer steps, then predictions
    over every split: the same training work at any data size, so what grows is what the data costs)."""
    code = (
        "import resource, sys, json\n"
        "from lugpi_cli.app import main\n"
        "sys.argv = ['lugpi'] + json.loads(sys.argv[1])\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('PEAK', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    )
    args = ["--quiet", "-w", str(root / "ws"), "distill", "--teacher", teacher, "--text-model", str(models["text"]),
            "--max-length", "64", "--epochs", str(epochs), "--batch-size", "16", "--device", "cpu",
            "--max-steps", str(max_steps)]
    done = subprocess.run([sys.executable, "-c", code, json.dumps(args)], capture_output=True, text=True,
                          timeout=3600)
    peak = [line for line in done.stdout.splitlines() if line.startswith("PEAK")]
    if done.returncode != 0 or not peak:
        raise RuntimeError(done.stderr[-2000:])
    return int(peak[0].split()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--dim", type=int, default=128, help="student width (DistilBERT-base: 768)")
    parser.add_argument("--layers", type=int, default=4, help="student layers (DistilBERT-base: 6)")
    args = parser.parse_args()
    quiet_libraries()
    from lugpi_cli.tiny_models import build_tiny_clip_vision, build_tiny_sd, build_tiny_text_model

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; small DistilBERT-shaped student (dim {args.dim}, {args.layers} layers, "
          f"max 64 tokens), tiny CLIP features")
    with tempfile.TemporaryDirectory(prefix="lugpi-distill-bench-") as tmp:
        root = Path(tmp)
        models = {"sd": build_tiny_sd(root / "sd"), "clip": build_tiny_clip_vision(root / "clip"),
                  "text": build_tiny_text_model(root / "text", dim=args.dim, layers=args.layers)}
        print(f"\n[1] seconds per epoch, {args.samples} samples (80% train), batch 16")
        env = build_workspace(root / "x1", args.samples, models)
        t = time_epochs(root / "x1", env, models, args.epochs)
        base = t["(a) baseline"]
        print(f"  (b)/(a) = {t['(b) cached teacher'] / base:.3f} (goal <= 1.05)   "
              f"(c)/(a) = {t['(c) teacher every step'] / base:.2f}")
        print("\n[2] peak RSS of `lugpi distill` (fresh process, 50 steps, predictions on every split), 1x vs 4x data")
        peaks = {}
        for factor in (1, 4):
            work = root / f"mem{factor}"
            env = build_workspace(work, args.samples * factor, models)
            peaks[factor] = child_peak_rss(work, str(env["teacher"].dir), models, 1, max_steps=50)
            print(f"  {factor}x ({args.samples * factor} samples): {peaks[factor] / 1024:.1f} MiB")
        print(f"  growth 4x vs 1x: {100 * (peaks[4] / peaks[1] - 1):+.1f}% (goal < 10%)")


if __name__ == "__main__":
    main()
