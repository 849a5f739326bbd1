"""Generating a data set's images into the store: plan, shard, batch, resume.

1. **Plan.** Identical prompts are drawn once: every distinct prompt gets the
   key ``record_key(generator fingerprint, prompt, seed)`` with
   ``seed = seed_for(prompt, base seed)``, so neither the key nor the seed
   depends on batch size, order, resume point or sharding.
2. **Shard.** With ``shard=(i, n)`` a process takes the prompts whose key hash
   is ``i`` modulo ``n`` — disjoint, complete, and stable across restarts.
3. **Skip** what the store already holds: a re-run generates nothing.
4. **Batch.** Each batch runs the pipeline with one CPU ``torch.Generator``
   per image (the same initial noise on any device), checks every image for
   NaN/inf, encodes the good ones and commits them in ONE transaction. A kill
   loses at most the batch in flight. Failed prompts are recorded under
   ``failed/`` in ``meta`` (reason included), reported, and retried next run.
"""

from __future__ import annotations

import io
import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from lugpi_cli.data.samples import Sample
from lugpi_cli.errors import UserError
from lugpi_cli.generation.config import GenerationConfig
from lugpi_cli.lineage import pointer_key, with_directory
from lugpi_cli.writer import BackgroundWriter
from lugpi_store import Store, encode_image, encode_json, fingerprint, record_key, seed_for
from lugpi_store.claims import ClaimSet
from lugpi_store.keys import FP_PREFIX_LEN
from lugpi_store.lmdb_store import FAILED_META_PREFIX

FAILED_PREFIX = FAILED_META_PREFIX.decode("ascii")
MAX_REPORTED_FAILURES = 100


@dataclass
class ImagePlan:
    """Distinct prompts of a set of samples, their seeds and image keys."""

    prompts: list[str]
    seeds: list[int]
    keys: list[bytes]
    sample_keys: dict[str, bytes]  # sample id -> image key

    def shard(self, index: int, count: int) -> list[int]:
        """Positions (into ``prompts``) this shard owns."""
        return [i for i, key in enumerate(self.keys) if int(key[FP_PREFIX_LEN + 1:], 16) % count == index]


def plan_images(samples: Iterable[Sample], generator_fp: str, base_seed: int) -> ImagePlan:
    prompts: dict[str, bytes] = {}
    seeds: dict[str, int] = {}
    sample_keys: dict[str, bytes] = {}
    for sample in samples:
        key = prompts.get(sample.prompt)
        if key is None:
            seed = seeds[sample.prompt] = seed_for(sample.prompt, base_seed)
            key = prompts[sample.prompt] = record_key(generator_fp, sample.prompt, seed)
        sample_keys[sample.id] = key
    return ImagePlan(list(prompts), [seeds[p] for p in prompts], list(prompts.values()), sample_keys)


def image_keys(samples: Iterable[Sample], generator_fp: str, base_seed: int) -> dict[str, bytes]:
    """Sample id -> image key (what ``embed`` and the teacher read)."""
    return plan_images(samples, generator_fp, base_seed).sample_keys


@dataclass
class GenerationSummary:
    samples: int = 0
    distinct_prompts: int = 0
    generated: int = 0
    reused: int = 0  # already in the store (earlier runs, other processes, merged stores)
    reused_similar: int = 0  # copied from a near-identical prompt's image (--reuse-similar)
    truncated: int | None = 0  # distinct prompts longer than the text encoder reads (None: tokenizer unavailable)
    failed: int = 0
    retried: int = 0  # prompts drawn again because an earlier run recorded a failure for them
    other_shards: int = 0  # distinct prompts left to the other processes of a sharded run
    other_processes: int = 0  # drawn meanwhile by another run of the same command (see store/claims.py)
    seconds: float = 0.0
    generator_fingerprint: str = ""
    dataset_fingerprint: str = ""
    failures: list[dict[str, str]] = field(default_factory=list)

    @property
    def images_per_second(self) -> float:
        return self.generated / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["images_per_second"] = round(self.images_per_second, 3)
        out["seconds"] = round(self.seconds, 3)
        return out


def encode_images(images: np.ndarray, image_format: str, quality: int) -> list[bytes | None]:
    """Float images (B, H, W, 3) in [0, 1] -> encoded bytes; ``None`` for an image with NaN/inf."""
    from PIL import Image

    out: list[bytes | None] = []
    for image in images:
        if not np.isfinite(image).all():
            out.append(None)
            continue
        pixels = (np.clip(image, 0.0, 1.0) * 255.0).round().astype(np.uint8)
        buffer = io.BytesIO()
        pil = Image.fromarray(pixels)
        if image_format == "png":
            pil.save(buffer, format="PNG")
        elif image_format == "jpeg":
            pil.save(buffer, format="JPEG", quality=quality)
        else:
            pil.save(buffer, format="WEBP", quality=quality, method=4)
        out.append(buffer.getvalue())
    return out


def run_pipeline(pipe: Any, prompts: Sequence[str], seeds: Sequence[int], config: GenerationConfig) -> np.ndarray:
    """One batch through the pipeline: float images (B, H, W, 3), NaNs kept as NaN."""
    import torch

    generators = [torch.Generator("cpu").manual_seed(int(s)) for s in seeds]
    kwargs: dict[str, Any] = dict(
        prompt=list(prompts), num_inference_steps=config.steps, guidance_scale=config.guidance,
        height=config.height, width=config.width, generator=generators, output_type="np",
    )
    if config.negative_prompt and config.guidance > 1:
        kwargs["negative_prompt"] = [config.negative_prompt] * len(prompts)
    try:
        with torch.inference_mode():
            return np.asarray(pipe(**kwargs).images, dtype=np.float32)
    except torch.cuda.OutOfMemoryError as exc:
        raise UserError(f"out of GPU memory at --batch-size {len(prompts)}",
                        "Rerun with a smaller --batch-size; finished batches are kept.") from exc


def count_truncated(tokenizer: Any, prompts: Sequence[str]) -> int | None:
    """How many prompts exceed the tokenizer's limit (77 CLIP tokens, start and end included)."""
    if tokenizer is None:
        return None
    limit = int(getattr(tokenizer, "model_max_length", 77) or 77)
    lengths = (len(ids) for ids in tokenizer(list(prompts), truncation=False, verbose=False).input_ids)
    return sum(n > limit for n in lengths)


def _failure_key(image_key: bytes) -> bytes:
    return (FAILED_PREFIX + image_key.decode("ascii")).encode("ascii")


def generate_dataset(
    store: Store,
    samples: Sequence[Sample],
    config: GenerationConfig,
    pipe_factory: Callable[[], Any],
    *,
    batch_size: int = 4,
    shard: tuple[int, int] = (0, 1),
    dataset_fingerprint: str = "",
    dataset_name: str = "",
    on_start: Callable[[int], None] | None = None,
    on_batch: Callable[[int], None] | None = None,
    tokenizer_factory: Callable[[], Any] | None = None,
) -> GenerationSummary:
    """Generate every missing image of ``samples`` into ``store``; see the module docstring.

    ``pipe_factory`` is called only when there is something to generate, so a
    fully cached re-run never loads the model (``tokenizer_factory``, if given,
    then supplies the tokenizer that counts truncated prompts). ``on_start(n)`` is told how
    many images this process will draw, ``on_batch(k)`` after each commit.
    ``config.reuse_similar`` (a cosine threshold) groups near-duplicate
    prompts over the whole plan and draws one image per group (see
    :mod:`lugpi_cli.generation.similar`; the pipeline is then loaded whenever any
    of the plan's images is missing, to embed the prompts); it is part of the
    generator fingerprint, since it changes which image a prompt gets.
    """
    # 1. the inputs
    _check_inputs(config, batch_size, shard)
    index, count = shard
    started = time.perf_counter()
    # 2. the plan: one image per distinct prompt (per group of near-duplicates with reuse_similar); this shard's
    fp_config = config.fingerprint_config()  # hashes a local model directory: once
    gen_fp = fingerprint(fp_config)
    plan = plan_images(samples, gen_fp, config.seed)
    pipe = None
    groups = None
    if config.reuse_similar is not None and not _all_present(store, plan.keys):
        pipe = pipe_factory()
        groups = _SimilarGroups.build(pipe, plan, config.reuse_similar)
    mine = plan.shard(index, count) if groups is None else groups.shard(plan, index, count)
    # 3. what is missing; the generator registered (the store is created here)
    todo, summary = _missing(store, samples, plan, mine, gen_fp, dataset_fingerprint)
    store.create = True
    store.register("images", gen_fp, with_directory(fp_config, config.model))
    if on_start is not None:
        on_start(len(todo))
    # 4. draw the missing images (copy a group's image to its other members)
    if todo:
        pipe = pipe if pipe is not None else pipe_factory()
        _draw(store, pipe, plan, todo, groups, config, batch_size, summary, on_batch)
    # 5. the prompts the text encoder truncates, and the pointer to this generation
    tokenizer = getattr(pipe, "tokenizer", None) if pipe is not None else \
        (tokenizer_factory() if tokenizer_factory is not None else None)
    summary.truncated = count_truncated(tokenizer, plan.prompts)
    store.put_meta(pointer_key("generate", dataset_name), {
        "generator_fingerprint": gen_fp, "generator_config": fp_config,
        "model": config.model, "seed": config.seed, "dataset_fingerprint": dataset_fingerprint,
    })
    summary.seconds = time.perf_counter() - started
    return summary


def _draw(store: Store, pipe: Any, plan: ImagePlan, todo: list[int], groups: "_SimilarGroups | None",
          config: GenerationConfig, batch_size: int, summary: GenerationSummary,
          on_batch: Callable[[int], None] | None) -> None:
    """Draw the images ``todo``; with similar-prompt groups only each group's representative, copied to the rest."""
    if groups is None:
        _generate_batches(store, pipe, plan, todo, config, batch_size, summary, on_batch)
    else:
        draw = [i for i in todo if groups.rep[i] == i]
        _generate_batches(store, pipe, plan, draw, config, batch_size, summary, on_batch)
        groups.copy_members(store, plan, [i for i in todo if groups.rep[i] != i], summary, on_batch)


def _check_inputs(config: GenerationConfig, batch_size: int, shard: tuple[int, int]) -> None:
    config.check()
    if batch_size < 1:
        raise UserError(f"--batch-size must be at least 1, got {batch_size}")
    index, count = shard
    if not (count >= 1 and 0 <= index < count):
        raise UserError(f"bad shard {index}/{count}", "Use --shard I/N with 0 <= I < N, e.g. --shard 0/4.")


def _missing(store: Store, samples: Sequence[Sample], plan: ImagePlan, mine: list[int], gen_fp: str,
             dataset_fingerprint: str) -> tuple[list[int], GenerationSummary]:
    """This process's images (``mine``) not stored yet, and the summary so far (reused, other shards', retried)."""
    present = store.contains_many("images", [plan.keys[i] for i in mine]) if store.exists else [False] * len(mine)
    todo = [i for i, have in zip(mine, present) if not have]
    summary = GenerationSummary(
        samples=len(samples), distinct_prompts=len(plan.prompts), reused=len(mine) - len(todo),
        other_shards=len(plan.prompts) - len(mine), generator_fingerprint=gen_fp,
        dataset_fingerprint=dataset_fingerprint,
    )
    if todo and store.exists:
        summary.retried = sum(store.contains_many("meta", [_failure_key(plan.keys[i]) for i in todo]))
    return todo, summary


@dataclass
class _SimilarGroups:
    """``--reuse-similar``: each prompt's representative over the whole plan (see ``similar``)."""

    rep: np.ndarray  # position -> representative position (itself for a representative)
    similarity: np.ndarray

    @classmethod
    def build(cls, pipe: Any, plan: ImagePlan, threshold: float) -> "_SimilarGroups":
        from lugpi_cli.generation.similar import assign_representatives, prompt_vectors

        order = sorted(range(len(plan.keys)), key=plan.keys.__getitem__)  # not the data set's order
        rep, similarity = assign_representatives(prompt_vectors(pipe, plan.prompts), order, threshold)
        return cls(rep, similarity)

    def shard(self, plan: ImagePlan, index: int, count: int) -> list[int]:
        """Positions of the groups whose representative belongs to shard ``index``."""
        owned = set(plan.shard(index, count))
        return [i for i in range(len(plan.keys)) if int(self.rep[i]) in owned]

    def copy_members(self, store: Store, plan: ImagePlan, members: list[int], summary: GenerationSummary,
                     on_batch: Callable[[int], None] | None, chunk: int = 256) -> None:
        """Copy each member's representative image under the member's key, with a ``reused/`` note."""
        from lugpi_cli.generation.similar import REUSED_PREFIX

        for start in range(0, len(members), chunk):
            part = members[start:start + chunk]
            sources = [int(self.rep[i]) for i in part]
            raw = store.get_many("images", [plan.keys[src] for src in sources])
            images, notes, bad = [], [], []
            for i, src, record in zip(part, sources, raw):
                if record is None:  # the representative failed: both are retried next run
                    bad.append((i, f"reuses the image of {plan.prompts[src][:80]!r}, which failed"))
                    continue
                images.append((plan.keys[i], encode_image(record.data, record.format)))
                notes.append(((REUSED_PREFIX + plan.keys[i].decode()).encode(), encode_json({
                    "prompt": plan.prompts[i], "source_prompt": plan.prompts[src],
                    "source_key": plan.keys[src].decode(), "similarity": round(float(self.similarity[i]), 6)})))
            _commit(store, images, _failure_records(plan, bad), summary, plan, bad, notes)
            summary.reused_similar += len(images)
            if on_batch is not None:
                on_batch(len(part))


def _generate_batches(store: Store, pipe: Any, plan: ImagePlan, todo: list[int], config: GenerationConfig,
                      batch_size: int, summary: GenerationSummary, on_batch: Callable[[int], None] | None) -> None:
    diffusers_logger = logging.getLogger("diffusers")
    level = diffusers_logger.level
    diffusers_logger.setLevel(logging.ERROR)  # "part of your input was truncated": we count it ourselves
    claims = ClaimSet(store, "images", [plan.keys[i] for i in todo])  # concurrent identical runs share the work
    try:
        with BackgroundWriter() as writer:  # encoding and the commit overlap the next batch's denoising
            while True:
                for chosen in claims.batches(batch_size, wait=False):
                    batch = [todo[j] for j in chosen]
                    prompts = [plan.prompts[i] for i in batch]
                    images = run_pipeline(pipe, prompts, [plan.seeds[i] for i in batch], config)
                    writer.submit(_store_batch, store, plan, batch, images, config, summary)
                    claims.done(chosen)
                    if on_batch is not None:
                        on_batch(len(batch))
                if not claims.wait_for_others():
                    break
    finally:
        claims.release()  # after the writer has committed every batch handed to it
        diffusers_logger.setLevel(level)
        summary.other_processes += claims.by_others


def _store_batch(store: Store, plan: ImagePlan, batch: list[int], images: np.ndarray, config: GenerationConfig,
                 summary: GenerationSummary) -> None:
    """Encode one batch's images and commit them (with failure records for NaN/inf ones) in one transaction."""
    encoded = encode_images(images, config.image_format, config.quality)
    good = [(plan.keys[i], encode_image(data, config.image_format)) for i, data in zip(batch, encoded)
            if data is not None]
    bad = [(i, "non-finite pixels (NaN/inf) in the decoded image") for i, data in zip(batch, encoded) if data is None]
    _commit(store, good, _failure_records(plan, bad), summary, plan, bad)
    summary.generated += len(good)


def _failure_records(plan: ImagePlan, bad: list[tuple[int, str]]) -> list[tuple[bytes, bytes]]:
    return [(_failure_key(plan.keys[i]), encode_json({"prompt": plan.prompts[i], "seed": plan.seeds[i],
                                                      "reason": why})) for i, why in bad]


def _commit(store: Store, good: list[tuple[bytes, bytes]], failures: list[tuple[bytes, bytes]],
            summary: GenerationSummary, plan: ImagePlan, bad: list[tuple[int, str]],
            notes: list[tuple[bytes, bytes]] = ()) -> None:
    """Images, failure records and notes in one transaction; clear the failure records of the good ones."""
    store.write({"images": good, "meta": [*failures, *notes]}, overwrite=False)
    if good:
        store.delete_many("meta", [_failure_key(key) for key, _ in good])
    summary.failed += len(bad)
    room = MAX_REPORTED_FAILURES - len(summary.failures)
    summary.failures.extend({"prompt": plan.prompts[i], "reason": why} for i, why in bad[:max(room, 0)])


def _all_present(store: Store, keys: Sequence[bytes]) -> bool:
    return not keys or (store.exists and all(store.contains_many("images", list(keys))))


def recorded_failures(store: Store, generator_fp: str | None = None) -> list[dict[str, Any]]:
    """Failure records (``failed/<image key>``) left by earlier runs."""
    prefix = FAILED_PREFIX + (generator_fp[:16] if generator_fp else "")
    return [{"key": k.decode()[len(FAILED_PREFIX):], **value}
            for k, value in ((k, store.get("meta", k)) for k in store.keys("meta", prefix))]
