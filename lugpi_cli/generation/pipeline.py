"""Loading a diffusers text-to-image pipeline by hub id or directory, ready to batch."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lugpi_cli import gpu, hub
from lugpi_cli.generation.config import SCHEDULERS, GenerationConfig

if TYPE_CHECKING:
    import torch


def load_pipeline(config: GenerationConfig, device: "torch.device", dtype: "torch.dtype", *, compile: bool = False) -> Any:
    """The text-to-image pipeline of ``config.model`` on ``device`` in ``dtype``.

    ``AutoPipelineForText2Image`` picks the pipeline class from the model
    (Stable Diffusion 1/2, SD-Turbo, SDXL, ...). The safety checker is off: a
    blacked-out image would be silent garbage as privileged information.
    Attention uses PyTorch's scaled-dot-product kernels (diffusers' default); on CUDA
    the UNet and VAE run channels-last, with TF32 matmuls on Ampere and later (:mod:`lugpi_cli.gpu`);
    ``compile`` compiles the UNet in place (worth it for long GPU runs only).
    """
    from diffusers import AutoPipelineForText2Image

    pipe = hub.load(AutoPipelineForText2Image.from_pretrained, config.model, what="text-to-image model",
                    revision=config.revision, dtype=dtype)
    if getattr(pipe, "safety_checker", None) is not None:
        pipe.safety_checker = None
    if hasattr(pipe, "register_to_config"):
        pipe.register_to_config(requires_safety_checker=False)
    set_scheduler(pipe, config.scheduler, config.timestep_spacing)
    pipe.set_progress_bar_config(disable=True)
    pipe = pipe.to(device)
    gpu.prepare_pipeline(pipe, device)  # TF32 on Ampere+, channels-last UNet/VAE on CUDA
    if compile:
        pipe.unet.compile()
    return pipe


def set_scheduler(pipe: Any, name: str, spacing: str = "model") -> None:
    """Swap the scheduler by name, keeping the model's own noise-schedule config."""
    import diffusers

    class_name, extra = SCHEDULERS[name]
    overrides = dict(extra)
    if spacing != "model":
        overrides["timestep_spacing"] = spacing
    if not class_name and not overrides:
        return
    cls = getattr(diffusers, class_name) if class_name else type(pipe.scheduler)
    pipe.scheduler = cls.from_config(pipe.scheduler.config, **overrides)


def load_tokenizer(config: GenerationConfig) -> Any:
    """Only the pipeline's (first) tokenizer: enough to count truncated prompts without loading weights."""
    from transformers import AutoTokenizer

    return hub.load(AutoTokenizer.from_pretrained, config.model, what="text-to-image model's tokenizer",
                    revision=config.revision, subfolder="tokenizer")
