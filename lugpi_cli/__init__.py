"""lugpi: Learning Using Generated Privileged Information.

A text-to-image diffusion model draws an image for every training text, a
multimodal teacher learns from text + image, and a text-only student is
distilled from the teacher. Every expensive intermediate (images, frozen
image features, teacher outputs) lives in one content-addressed LMDB store
(the ``store`` package), so repeated runs and ablation grids reuse it.
"""

__version__ = "0.1.0.dev0"
