"""GPU-time estimates for ``lugpi run --dry-run``, from the only cost figures the LUGPI paper gives.

arXiv:2309.15238 states (Sect. 1) that Stable Diffusion v2 needs about 17 s per
image on an RTX 3090 24GB, and (Sect. 4.3, training and inference time) that
its whole pipeline — image generation, teacher and student — trains 2.3x to
2.8x as long as the student alone, depending on data set and vision model.

With G the generation time of a data set's distinct prompts, S one text-model
training run and a teacher costing about what a student costs (both are
DistilBERT trained for the same epochs; the teacher's extra transformer block is
small), the pipeline ratio k gives ``G + 2 S = k S``, so ``S = G / (k - 2)``:
k = 2.8 gives the lower estimate of S, k = 2.3 the upper one. Image-only
teachers (an MLP on cached features) are counted as free. These are the paper's
machines (generation on an RTX 3090, training on a GTX 1080 Ti); a recent GPU
is faster.
"""

from __future__ import annotations

from typing import Any

SECONDS_PER_IMAGE = 17.0  # Stable Diffusion v2, RTX 3090 (the paper, Sect. 1)
PIPELINE_VS_STUDENT = (2.3, 2.8)  # whole pipeline / student training time (the paper, Sect. 4.3)


def generation_hours(images: int) -> float:
    return images * SECONDS_PER_IMAGE / 3600


def estimate(distinct_images: int, images_to_generate: int, runs_to_train: int) -> dict[str, Any]:
    """Hours to generate the missing images, and a (low, high) range per training run and in total."""
    full = generation_hours(distinct_images)
    low_k, high_k = PIPELINE_VS_STUDENT
    per_run = (full / (high_k - 2), full / (low_k - 2))
    generation = generation_hours(images_to_generate)
    training = (runs_to_train * per_run[0], runs_to_train * per_run[1])
    return {
        "images_to_generate": images_to_generate, "generation_hours": round(generation, 1),
        "runs_to_train": runs_to_train, "hours_per_run": [round(h, 1) for h in per_run],
        "training_hours": [round(h, 1) for h in training],
        "total_hours": [round(generation + h, 1) for h in training],
        "basis": f"{SECONDS_PER_IMAGE:g} s per image on an RTX 3090; the whole pipeline "
                 f"{low_k:g}-{high_k:g}x a student run (arXiv:2309.15238)",
    }


def describe(est: dict[str, Any]) -> str:
    """One line for the dry-run: generation, training and total hours."""
    low, high = est["hours_per_run"]
    total_low, total_high = est["total_hours"]
    return (f"Estimated GPU time: generation {est['generation_hours']:g} h ({est['images_to_generate']:,} images); "
            f"training {est['runs_to_train']} text-model run(s) x {low:g}-{high:g} h; total {total_low:g}-"
            f"{total_high:g} h. Basis: {est['basis']}.")
