"""lugpi against what a user would write instead, side by side: a bare diffusers loop, a bare transformers
embedding loop, and the Hugging Face ``Trainer``.

    python benchmarks/peer_bench.py [--rounds 3] [--sections generate,embed,train,minilm]
                                    [--data ../shared/data] [--cwi-limit 2000]

Every pair runs in this one process on the same loaded model, interleaved
(the order alternates every round) and repeated; the figure kept for each
side is its median over the rounds (the machine is shared, so single runs are
noisy), and the ratio is lugpi / peer for throughput (higher is better) or
lugpi / peer for seconds (lower is better).

Each section also times the library calls both sides make (the diffusion
pipeline; the image processor and the vision model; the classifier's forward,
``backward`` and ``AdamW.step``) and prints each side's share of wall time
outside them, the ratio with the time inside them made equal, and the seconds
inside them per round. On a machine whose speed drifts (a shared virtual
machine: ±30% for identical calls) the raw ratio moves with that drift; the
equalised ratio is what lugpi itself adds or saves.

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
import dataclasses
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from peer_common import EMBED_BATCH, GEN_GUIDANCE, GEN_PX, GEN_STEPS, REPO, MAX_LENGTH, Timed, equalised, median_pair
from peer_train import bench_minilm, bench_train, synthetic_dataset

from lugpi_cli.runtime import quiet_libraries

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
