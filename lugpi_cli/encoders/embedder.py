"""Reading images from the store, encoding them with a frozen model, writing features back.

Feature key = ``record_key(encoder fingerprint, image key)``: an image shared
by many samples (identical prompts) is encoded once, a re-run encodes
nothing, and an interrupted run resumes (one transaction per batch).
Decoding and preprocessing happen in DataLoader workers (``workers``), the
forward pass under ``torch.inference_mode`` (and autocast on GPU).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

import numpy as np

from lugpi_cli import gpu, hub
from lugpi_cli.encoders.config import EncoderConfig
from lugpi_cli.lineage import with_directory
from lugpi_cli.writer import BackgroundWriter
from lugpi_store import Store, encode_bundles, record_key
from lugpi_store.claims import ClaimSet
from lugpi_store.keys import FP_PREFIX_LEN

if TYPE_CHECKING:
    import torch

#: Model types whose ``pooler_output`` is the image embedding (layer-normed CLS for CLIP).
#: Others (ViT: an untrained tanh pooler) use the last hidden state's CLS token.
POOLER_TYPES = ("clip", "clip_vision_model", "siglip", "siglip_vision_model")


def feature_keys(image_keys: Iterable[bytes], encoder_fp: str) -> dict[bytes, bytes]:
    """Image key -> feature key."""
    return {key: record_key(encoder_fp, key) for key in image_keys}


@dataclass
class Encoder:
    """A frozen transformers image model: ``processor`` makes pixels, ``encode`` tokens and pooled vectors."""

    model: Any
    processor: Any
    pooling: str  # "pooler" or "cls"
    device: Any
    dtype: Any

    def encode(self, pixel_values: "torch.Tensor") -> tuple[np.ndarray | None, np.ndarray]:
        return encode(self, pixel_values)


def load_encoder(config: EncoderConfig, device: "torch.device", dtype: "torch.dtype") -> Any:
    """The vision model and its own image processor (PIL backend without torchvision);
    for ``vae-latent``, the diffusion model's own VAE."""
    from transformers import AutoConfig, AutoImageProcessor, AutoModel, CLIPVisionModel

    if config.is_vae:
        from lugpi_cli.encoders.vae import VaeEncoder, load_vae

        return VaeEncoder(load_vae(config.model, device, dtype, revision=config.revision), config.vae_size)

    model_config = hub.load(AutoConfig.from_pretrained, config.model, what="image encoder", revision=config.revision)
    model_type = getattr(model_config, "model_type", "")
    if model_type in ("clip", "clip_vision_model"):
        loader = CLIPVisionModel.from_pretrained  # also takes the vision tower out of a full CLIP checkpoint
    elif model_type in ("siglip", "siglip_vision_model"):
        from transformers import SiglipVisionModel

        loader = SiglipVisionModel.from_pretrained
    else:
        loader = AutoModel.from_pretrained
    model = hub.load(loader, config.model, what="image encoder", revision=config.revision, dtype=dtype)
    processor = hub.load(AutoImageProcessor.from_pretrained, config.model, what="image processor",
                         revision=config.revision)
    model.eval().requires_grad_(False).to(device)
    gpu.enable_tf32(device)  # Ampere and later only
    return Encoder(model, processor, "pooler" if model_type in POOLER_TYPES else "cls", device, dtype)


def encode(encoder: Encoder, pixel_values: "torch.Tensor") -> tuple[np.ndarray, np.ndarray]:
    """Pixel batch -> (tokens (B, 1+P, D), pooled (B, D)), float16, CLS first."""
    import torch

    with torch.inference_mode():
        out = encoder.model(pixel_values=pixel_values.to(encoder.device, encoder.dtype))
        tokens = out.last_hidden_state
        pooled = out.pooler_output if encoder.pooling == "pooler" and out.pooler_output is not None else tokens[:, 0]
        return tokens.float().cpu().numpy().astype(np.float16), pooled.float().cpu().numpy().astype(np.float16)


class _Images:
    """Images by key, decoded and preprocessed where the DataLoader runs it (workers)."""

    def __init__(self, store: Store, keys: Sequence[bytes], processor: Any):
        self.store, self.keys, self.processor = store, list(keys), processor

    def __len__(self) -> int:
        return len(self.keys)

    def __getitems__(self, indices: list[int]) -> list[Any]:
        records = self.store.get_many("images", [self.keys[i] for i in indices])
        return [(i, record.to_pil().convert("RGB")) for i, record in zip(indices, records)]

    def __getitem__(self, index: int) -> Any:
        return self.__getitems__([index])[0]

    def collate(self, items: list[tuple[int, Any]]) -> tuple[list[int], Any]:
        indices = [i for i, _ in items]
        pixels = self.processor(images=[image for _, image in items], return_tensors="pt")["pixel_values"]
        return indices, pixels

    def loader(self, batches: Iterable[list[int]], workers: int) -> Iterable[tuple[list[int], Any]]:
        """(positions, pixels) per batch of positions: in ``workers`` DataLoader processes, or here (no
        DataLoader: its per-batch bookkeeping, a profiler range included, costs ~0.3 ms, a tenth of a small
        encoder's forward pass)."""
        if not workers:
            return (self.collate(self.__getitems__(batch)) for batch in batches)
        import torch

        return torch.utils.data.DataLoader(self, batch_sampler=batches, num_workers=workers, collate_fn=self.collate)


@dataclass
class EmbedSummary:
    images: int = 0  # distinct images wanted
    embedded: int = 0
    reused: int = 0
    missing_images: int = 0
    other_shards: int = 0  # distinct images left to the other processes of a multi-process run
    other_processes: int = 0  # embedded meanwhile by another run of the same command (see store/claims.py)
    tokens_shape: list[int] | None = None
    pooled_dim: int | None = None
    seconds: float = 0.0
    encoder_fingerprint: str = ""

    @property
    def images_per_second(self) -> float:
        return self.embedded / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["seconds"] = round(self.seconds, 3)
        out["images_per_second"] = round(self.images_per_second, 3)
        return out


def _put_records(store: Store, keys: list[bytes], columns: dict[str, np.ndarray]) -> None:
    store.put_many("features", list(zip(keys, encode_bundles(columns))))


def _store_features(writer: BackgroundWriter, store: Store, encoder: Encoder, config: EncoderConfig, pixels: Any,
                    feature_keys: list[bytes], summary: "EmbedSummary", on_batch: Callable[[int], None] | None) -> None:
    """Encode one batch and hand its feature arrays to the background writer, which packs them into records
    (headers, CRC) and commits them in one transaction while the next batch is encoded."""
    tokens, pooled = encoder.encode(pixels)
    columns = {"pooled": pooled} if config.pooled_only or tokens is None else {"tokens": tokens, "pooled": pooled}
    writer.submit(_put_records, store, list(feature_keys), columns)
    summary.embedded += len(feature_keys)
    if on_batch is not None:
        on_batch(len(feature_keys))


def embed_images(
    store: Store,
    image_keys: Sequence[bytes],
    config: EncoderConfig,
    encoder_factory: Callable[[], Encoder],
    *,
    batch_size: int = 32,
    workers: int = 0,
    on_start: Callable[[int], None] | None = None,
    on_batch: Callable[[int], None] | None = None,
    shard: tuple[int, int] = (0, 1),
) -> EmbedSummary:
    """Encode every image in ``image_keys`` that has no feature record yet.

    With ``shard=(i, n)`` only the images whose key hash is ``i`` modulo ``n``
    (as ``generate`` splits prompts; the default under accelerate / torchrun).
    """
    started = time.perf_counter()
    enc_fp = config.fingerprint()
    unique = list(dict.fromkeys(image_keys))
    wanted = [k for k in unique if shard[1] == 1 or int(k[FP_PREFIX_LEN + 1:], 16) % shard[1] == shard[0]]
    keys = feature_keys(wanted, enc_fp)
    done = store.contains_many("features", [keys[k] for k in wanted])
    pending = [k for k, have in zip(wanted, done) if not have]
    present = store.contains_many("images", pending)
    todo = [k for k, have in zip(pending, present) if have]
    summary = EmbedSummary(images=len(wanted), reused=len(wanted) - len(pending),
                           missing_images=len(pending) - len(todo), other_shards=len(unique) - len(wanted),
                           encoder_fingerprint=enc_fp)
    store.register("features", enc_fp, with_directory(config.fingerprint_config(), config.model))
    if on_start is not None:
        on_start(len(todo))
    if todo:
        encoder = encoder_factory()
        images = _Images(store, todo, encoder.processor)
        claims = ClaimSet(store, "features", [keys[k] for k in todo])  # concurrent identical runs share the work
        try:
            with BackgroundWriter() as writer:  # the commit overlaps the next batch's forward pass
                while True:
                    for indices, pixels in images.loader(claims.batches(batch_size, wait=False), workers):
                        _store_features(writer, store, encoder, config, pixels, [keys[todo[i]] for i in indices],
                                        summary, on_batch)
                        claims.done(indices)
                    if not claims.wait_for_others():
                        break
        finally:
            claims.release()  # after the writer has committed every batch handed to it
        summary.other_processes = claims.by_others
    # the shapes, from a feature that exists (the first wanted image may be missing)
    stored = [k for k, have in zip(wanted, done) if have] + todo[:1]
    record = store.get("features", keys[stored[0]]) if stored else None
    if record is not None:
        summary.pooled_dim = int(record["pooled"].shape[-1])
        summary.tokens_shape = list(record["tokens"].shape) if "tokens" in record else None
    summary.seconds = time.perf_counter() - started
    return summary
