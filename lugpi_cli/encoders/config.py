"""Which frozen image encoder, and what of its output is stored."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lugpi_cli.hub import model_identity
from lugpi_cli.model_ids import ALIASES, alias_of, resolve
from lugpi_store import fingerprint

#: Short names of the image encoders (the paper's CLIP and ViT), from the one alias table.
ENCODER_ALIASES = {name: alias.id for name, alias in ALIASES.items() if alias.kind == "image encoder"}

#: ARMADA's teacher vector: the diffusion model's own VAE latent of each image.
VAE_LATENT = "vae-latent"

#: Bump when what is stored for an image changes.
FEATURE_FORMAT = 1


@dataclass(frozen=True)
class EncoderConfig:
    """A frozen image encoder. Everything here is part of the feature fingerprint.

    ``name`` is what the user typed (``clip``, ``vit``, an id or a directory);
    ``model`` the resolved id or path. Features are stored in float16; the
    compute dtype is part of the fingerprint (it changes the numbers).
    """

    name: str
    revision: str | None = None
    pooled_only: bool = False
    dtype: str = "float32"
    vae_model: str | None = None  # vae-latent: the diffusion model the images came from
    vae_size: int = 128

    @property
    def is_vae(self) -> bool:
        return self.name.lower() == VAE_LATENT

    @property
    def model(self) -> str:
        if self.is_vae:
            if not self.vae_model:
                from lugpi_cli.errors import UserError

                raise UserError("--encoder vae-latent needs the diffusion model whose VAE to use",
                                "It is the generator's model by default; pass --vae-model MODEL.")
            return self.vae_model
        return resolve(self.name)

    @property
    def label(self) -> str:
        """A short, path-free name for run names and pointers (``clip``, ``vit``, ``my-encoder``); an id
        with an alias gets the alias (``openai/clip-vit-base-patch32`` -> ``clip``)."""
        alias = alias_of(self.name)
        if alias is not None:
            return alias
        return self.name.rstrip("/").split("/")[-1].lower()

    def fingerprint_config(self) -> dict[str, Any]:
        if self.is_vae:  # the scaled mean latent at vae_size px, flattened
            return {"stage": "embed", "encoder": VAE_LATENT, **model_identity(self.model, self.revision),
                    "size": self.vae_size, "latent": "mean*scaling", "dtype": self.dtype, "storage": "float16",
                    "format": FEATURE_FORMAT}
        return {
            "stage": "embed", **model_identity(self.model, self.revision), "pooled_only": self.pooled_only,
            "dtype": self.dtype, "storage": "float16", "format": FEATURE_FORMAT,
        }

    def fingerprint(self) -> str:
        return fingerprint(self.fingerprint_config())
