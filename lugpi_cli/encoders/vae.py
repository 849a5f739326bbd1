"""The diffusion model's own VAE latent of each generated image: ARMADA's cached teacher vector.

ARMADA (Sengupta, Dixit, Akhtar and Chakraborty, "From Images to Words:
Efficient Cross-Modal Knowledge Distillation to Language Models from Black-box
Teachers", arXiv:2603.10877) treats the multimodal teacher as a black box and
trains only an aligner on its outputs
(:class:`~lugpi_cli.models.armada.ArmadaTeacher`). With a text-to-image
diffusion model as that teacher, its output for a sample is the generated
image in the model's own latent space: the ``AutoencoderKL`` encoding of the
image, re-encoded at a small resolution so the vector stays small::

    x   = 2 * resize_bicubic(image, size x size) / 255 - 1             (B, 3, size, size) in [-1, 1]
    z   = (E(x).latent_dist.mean - shift_factor) * scaling_factor      (B, C, size/f, size/f)
    out = flatten(z) as float16                                        (B, C * (size/f)^2)

f = 2^(len(block_out_channels) - 1) is the VAE's downsampling factor (8 for
Stable Diffusion: 128 px -> 4 x 16 x 16 = 1024 values; 2 for the tiny test
VAE). The *mean* of the latent distribution is taken, not a sample, so the
vector is a deterministic function of the image. ``shift_factor`` is 0 for
SD 1.x/2.x/SDXL (their configs have none) and set for SD3/FLUX VAEs; it and
``scaling_factor`` put the latent on the scale the diffusion model itself works at.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from lugpi_cli import hub

if TYPE_CHECKING:
    import torch
    from PIL import Image

__all__ = ["DEFAULT_SIZE", "latent_shape", "load_vae", "preprocess", "vae_latents", "vae_scale_factor"]

DEFAULT_SIZE = 128


def load_vae(model: str, device: "torch.device | str" = "cpu", dtype: "torch.dtype | None" = None, *,
             revision: str | None = None, subfolder: str = "vae") -> Any:
    """The ``AutoencoderKL`` of the text-to-image model ``model`` (hub id or local directory), in eval mode.

    ``model`` is the same id/directory the images were generated with; the
    VAE is read from its ``subfolder`` (``vae``). A local directory that is
    itself a VAE (``config.json`` and no ``vae/``) is read as is. Failures
    (offline and not cached, no such directory, no VAE there) become a
    :class:`~lugpi_cli.errors.UserError` through :func:`lugpi_cli.hub.load`.
    ``dtype`` defaults to float32. A VAE whose config asks for ``force_upcast``
    (the SDXL VAE overflows in float16) is kept in float32 when float16 is asked for.
    """
    import torch
    from diffusers import AutoencoderKL

    dtype = dtype or torch.float32
    local = Path(model).expanduser()
    if local.is_dir() and not (local / subfolder).is_dir() and (local / "config.json").is_file():
        kwargs: dict[str, Any] = {}
    else:
        kwargs = {"subfolder": subfolder}
    vae = hub.load(AutoencoderKL.from_pretrained, model, what="text-to-image model's VAE", revision=revision,
                   dtype=dtype, **kwargs)
    if dtype == torch.float16 and getattr(vae.config, "force_upcast", False):
        vae = vae.to(dtype=torch.float32)
    return vae.to(device).eval().requires_grad_(False)


def vae_scale_factor(vae: Any) -> int:
    """The VAE's spatial downsampling factor f = 2^(number of down blocks - 1)."""
    return 2 ** (len(vae.config.block_out_channels) - 1)


def latent_shape(vae: Any, size: int = DEFAULT_SIZE) -> tuple[int, int, int]:
    """(C, h, w) of one latent at ``size`` px; the cached vector has ``C * h * w`` values."""
    f = vae_scale_factor(vae)
    if size < f or size % f:
        raise ValueError(f"size {size} must be a positive multiple of the VAE's downsampling factor {f}")
    return (int(vae.config.latent_channels), size // f, size // f)


def preprocess(images: Sequence["Image.Image"], size: int = DEFAULT_SIZE) -> "torch.Tensor":
    """(B, 3, size, size) float32 in [-1, 1]: RGB, resized to ``size`` x ``size`` with bicubic resampling."""
    import torch
    from PIL import Image

    arrays = [
        np.asarray(im.convert("RGB").resize((size, size), Image.Resampling.BICUBIC), dtype=np.float32)
        for im in images
    ]
    pixels = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)  # (B, 3, H, W), 0..255
    return pixels / 127.5 - 1.0


def vae_latents(vae: Any, images: Sequence["Image.Image"], size: int = DEFAULT_SIZE, *,
                batch_size: int = 16) -> np.ndarray:
    """(B, C*h*w) float16: the scaled mean latent of each image at ``size`` px (module docstring), row-major.

    Runs under ``torch.inference_mode`` on the VAE's device and dtype, ``batch_size``
    images at a time. The same image always gives the same vector (up to the
    float noise of a different batch position on CPU).
    """
    import torch

    shape = latent_shape(vae, size)
    if not images:
        return np.zeros((0, int(np.prod(shape))), dtype=np.float16)
    param = next(vae.parameters())
    scale = float(vae.config.scaling_factor)
    shift = float(getattr(vae.config, "shift_factor", None) or 0.0)
    out = []
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            x = preprocess(images[start:start + batch_size], size).to(device=param.device, dtype=param.dtype)
            z = (vae.encode(x).latent_dist.mean - shift) * scale
            out.append(z.flatten(1).float().cpu().numpy().astype(np.float16))
    return np.concatenate(out)


class VaeEncoder:
    """The diffusion model's own VAE as an image "encoder" for ``lugpi embed --encoder vae-latent``.

    ``processor`` and ``encode`` follow the frozen image encoders' interface
    (see :mod:`lugpi_cli.encoders.embedder`); there are no tokens, only the
    flat latent vector (stored as ``pooled``).
    """

    def __init__(self, vae: Any, size: int = DEFAULT_SIZE):
        latent_shape(vae, size)  # a bad size fails here, before any image is read
        self.vae, self.size = vae, size

    def processor(self, images: Sequence["Image.Image"], return_tensors: str = "pt") -> dict[str, Any]:
        return {"pixel_values": preprocess(images, self.size)}

    def encode(self, pixel_values: "torch.Tensor") -> tuple[None, np.ndarray]:
        import torch

        param = next(self.vae.parameters())
        scale = float(self.vae.config.scaling_factor)
        shift = float(getattr(self.vae.config, "shift_factor", None) or 0.0)
        with torch.inference_mode():
            z = (self.vae.encode(pixel_values.to(param.device, param.dtype)).latent_dist.mean - shift) * scale
        return None, z.flatten(1).float().cpu().numpy().astype(np.float16)
