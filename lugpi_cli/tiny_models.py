"""Tiny, randomly initialised models built from configs, saved as ordinary model directories.

They let the whole pipeline run offline on a CPU in seconds: the tests and
``lugpi demo`` save them with ``save_pretrained`` and load them back by path,
through exactly the code a Hugging Face hub id takes. Tiny untrained models
show the mechanics, not the method's accuracy.

* :func:`build_tiny_sd` — a Stable Diffusion pipeline (UNet, VAE, CLIP text
  encoder, byte-level CLIP BPE tokenizer, DDIM scheduler); 32x32 images.
* :func:`build_tiny_clip_vision` / :func:`build_tiny_vit` — image encoders with
  their image processors (PIL backend; no torchvision needed).
* :func:`build_tiny_text_model` — a DistilBERT-shaped encoder with a WordPiece
  tokenizer that covers any ASCII text.
"""

from __future__ import annotations

import json
import string
from pathlib import Path

import torch

WORDS = ("the", "a", "an", "of", "and", "is", "in", "on", "it", "this", "that", "was", "movie", "film", "good", "bad",
         "great", "awful", "photo", "cat", "dog", "word", "not")


def _bytes_to_unicode() -> dict[int, str]:
    """The byte -> printable character table of GPT-2 / CLIP byte-level BPE."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def write_clip_vocab(directory: Path, words=WORDS) -> tuple[Path, Path]:
    """``vocab.json`` + ``merges.txt`` for a byte-level CLIP BPE that never yields an unknown token."""
    chars = list(_bytes_to_unicode().values())
    tokens = chars + [c + "</w>" for c in chars]
    merges = []
    for word in words:
        pieces = list(word[:-1]) + [word[-1] + "</w>"]
        current = pieces[0]
        for piece in pieces[1:]:
            merges.append(f"{current} {piece}")
            current += piece
            tokens.append(current)
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {tok: i for i, tok in enumerate(dict.fromkeys(tokens))}
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "vocab.json").write_text(json.dumps(vocab))
    (directory / "merges.txt").write_text("#version: 0.2\n" + "\n".join(dict.fromkeys(merges)) + "\n")
    return directory / "vocab.json", directory / "merges.txt"


def tiny_clip_tokenizer(directory: Path):
    from transformers import CLIPTokenizer

    vocab, merges = write_clip_vocab(directory)
    # transformers 5: vocab_file=/merges_file= are silently ignored; vocab=/merges= take the paths.
    return CLIPTokenizer(vocab=str(vocab), merges=str(merges), model_max_length=77)


def build_tiny_sd(directory: str | Path, *, seed: int = 0, sample_size: int = 16) -> Path:
    """Save a tiny Stable Diffusion pipeline (images of ``2 * sample_size`` px) to ``directory``."""
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    directory = Path(directory)
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        block_out_channels=(4, 8), layers_per_block=1, sample_size=sample_size, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32, norm_num_groups=2, attention_head_dim=2,
    )
    vae = AutoencoderKL(
        block_out_channels=[4, 8], in_channels=3, out_channels=3, down_block_types=["DownEncoderBlock2D"] * 2,
        up_block_types=["UpDecoderBlock2D"] * 2, latent_channels=4, norm_num_groups=2, sample_size=2 * sample_size,
    )
    tokenizer = tiny_clip_tokenizer(directory / "_vocab")
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=37, num_attention_heads=4, num_hidden_layers=2,
        max_position_embeddings=77, layer_norm_eps=1e-5, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    ))
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                              set_alpha_to_one=False, steps_offset=1)
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                   scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   image_encoder=None, requires_safety_checker=False)
    pipe.save_pretrained(directory)
    for leftover in (directory / "_vocab").iterdir():
        leftover.unlink()
    (directory / "_vocab").rmdir()
    return directory


def build_tiny_clip_vision(directory: str | Path, *, seed: int = 0, image_size: int = 32, hidden_size: int = 32) -> Path:
    """Save a tiny CLIP vision tower (CLS + 16 patch tokens) and its image processor."""
    from transformers import CLIPVisionConfig, CLIPVisionModel
    from transformers.models.clip import CLIPImageProcessorPil

    torch.manual_seed(seed)
    config = CLIPVisionConfig(hidden_size=hidden_size, intermediate_size=37, num_hidden_layers=2,
                              num_attention_heads=4, image_size=image_size, patch_size=image_size // 4,
                              projection_dim=16)
    CLIPVisionModel(config).save_pretrained(directory)
    CLIPImageProcessorPil(size={"shortest_edge": image_size},
                          crop_size={"height": image_size, "width": image_size}).save_pretrained(directory)
    return Path(directory)


def build_tiny_vit(directory: str | Path, *, seed: int = 0, image_size: int = 32, hidden_size: int = 48) -> Path:
    """Save a tiny ViT encoder and its image processor."""
    from transformers import ViTConfig, ViTModel
    from transformers.models.vit import ViTImageProcessorPil

    torch.manual_seed(seed)
    config = ViTConfig(hidden_size=hidden_size, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
                       image_size=image_size, patch_size=image_size // 4)
    ViTModel(config).save_pretrained(directory)
    ViTImageProcessorPil(size={"height": image_size, "width": image_size}).save_pretrained(directory)
    return Path(directory)


def write_wordpiece_vocab(path: Path, words=WORDS) -> Path:
    """Specials + words + every ASCII character and its ``##`` continuation: no ASCII text maps to [UNK]."""
    chars = string.ascii_lowercase + string.digits + string.punctuation
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words, *chars, *("##" + c for c in chars)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(dict.fromkeys(tokens)) + "\n")
    return path


def build_tiny_text_model(directory: str | Path, *, seed: int = 0, dim: int = 32, layers: int = 2,
                          max_length: int = 128, words: tuple[str, ...] = ()) -> Path:
    """Save a tiny DistilBERT encoder and WordPiece tokenizer (load with AutoModel / AutoTokenizer).

    ``words`` join the vocabulary as whole tokens (synthetic tasks use them).
    """
    from transformers import DistilBertConfig, DistilBertModel, DistilBertTokenizer

    directory = Path(directory)
    vocab = write_wordpiece_vocab(directory / "vocab.txt", WORDS + tuple(words))
    tokenizer = DistilBertTokenizer(vocab=str(vocab), model_max_length=max_length)
    torch.manual_seed(seed)
    config = DistilBertConfig(vocab_size=len(tokenizer), dim=dim, hidden_dim=4 * dim, n_layers=layers, n_heads=4,
                              max_position_embeddings=max_length, pad_token_id=tokenizer.pad_token_id)
    DistilBertModel(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory
