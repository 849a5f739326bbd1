"""GPU speed settings that never change a result beyond float tolerance, each behind a device check.

* **TF32 matmuls** (:func:`enable_tf32`) on NVIDIA Ampere (compute capability
  8.0) and later: float32 matrix products and convolutions run on tensor cores
  with a 10-bit mantissa for the inputs, float32 accumulation. Off elsewhere.
* **channels-last** (:func:`channels_last`) for the UNet and VAE of a
  diffusion pipeline on CUDA: NHWC convolutions are the tensor cores' native
  layout. A memory-format change only: the same numbers up to kernel rounding.
* **scaled-dot-product attention**: transformers models load with
  ``attn_implementation="sdpa"`` by default where the architecture supports
  it, and diffusers' default attention processor (``AttnProcessor2_0``) calls
  ``torch.nn.functional.scaled_dot_product_attention``; :func:`attention_kind`
  reports which one a model uses.
* **torch.compile**: ``lugpi generate --compile`` compiles the UNet;
  ``--compile`` of ``train-teacher`` / ``distill`` compiles the trained model's
  forward in place (:func:`compile_in_place`), so its weights keep their names
  and checkpoints stay interchangeable with uncompiled runs.

The device checks let the CPU tests force each setting on (``force=True``)
and compare results with and without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from torch import nn

TF32_MIN_CAPABILITY = (8, 0)  # Ampere


def supports_tf32(device: "torch.device | str") -> bool:
    """A CUDA device of compute capability 8.0 or later."""
    import torch

    device = torch.device(device)
    if device.type != "cuda" or not torch.cuda.is_available():
        return False
    return tuple(torch.cuda.get_device_capability(device)) >= TF32_MIN_CAPABILITY


def enable_tf32(device: "torch.device | str") -> bool:
    """Allow TF32 for CUDA matmuls and cuDNN convolutions when ``device`` supports it; whether it did."""
    import torch

    if not supports_tf32(device):
        return False
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    return True


def channels_last(*modules: "nn.Module | None", device: "torch.device | str", force: bool = False) -> bool:
    """Put convolutional ``modules`` (UNet, VAE) in channels-last memory format on CUDA (or with ``force``)."""
    import torch

    if not force and torch.device(device).type != "cuda":
        return False
    for module in modules:
        if module is not None:
            module.to(memory_format=torch.channels_last)
    return True


def prepare_pipeline(pipe: Any, device: "torch.device | str") -> dict[str, bool]:
    """The GPU settings for a diffusers pipeline on ``device``: what was switched on."""
    return {"tf32": enable_tf32(device),
            "channels_last": channels_last(getattr(pipe, "unet", None), getattr(pipe, "vae", None), device=device)}


def attention_kind(model: Any) -> str:
    """``sdpa``, ``eager``, ``flash_attention_2``... for a transformers model; the processor class names
    for a diffusers model (``AttnProcessor2_0`` is the SDPA one)."""
    processors = getattr(model, "attn_processors", None)
    if processors is not None:
        return ",".join(sorted({type(p).__name__ for p in processors.values()}))
    config = getattr(model, "config", None)
    return str(getattr(config, "_attn_implementation", None) or "eager")


def compile_in_place(module: "nn.Module") -> "nn.Module":
    """``torch.compile`` the module's forward in place (parameter names unchanged); returns the module."""
    module.compile()
    return module
