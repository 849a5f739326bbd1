"""Stage 2: frozen pre-trained image encoders turn each generated image into features.

:class:`EncoderConfig` names the encoder (``clip``, ``vit`` or any model id /
directory) and what is kept; :func:`embed_images` reads images from the store,
encodes them in batches and writes one feature bundle per image:
``{"tokens": (1+P, D) float16 (CLS first), "pooled": (D,) float16}``.
"""

from lugpi_cli.encoders.config import ENCODER_ALIASES, EncoderConfig
from lugpi_cli.encoders.embedder import EmbedSummary, embed_images, feature_keys, load_encoder

__all__ = ["ENCODER_ALIASES", "EmbedSummary", "EncoderConfig", "embed_images", "feature_keys", "load_encoder"]
