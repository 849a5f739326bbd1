"""Stage 1: a text-to-image diffusion model draws one privileged image per distinct prompt.

:class:`GenerationConfig` says what changes the images (and so their
fingerprint); :func:`load_pipeline` loads any diffusers text-to-image model by
hub id or directory; :func:`generate_dataset` plans, shards, batches, resumes
and writes images into the store.
"""

from lugpi_cli.generation.config import SCHEDULERS, GenerationConfig
from lugpi_cli.generation.pipeline import load_pipeline
from lugpi_cli.generation.runner import GenerationSummary, ImagePlan, generate_dataset, image_keys, plan_images

__all__ = [
    "SCHEDULERS",
    "GenerationConfig",
    "GenerationSummary",
    "ImagePlan",
    "generate_dataset",
    "image_keys",
    "load_pipeline",
    "plan_images",
]
