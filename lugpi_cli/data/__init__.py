"""Data sets: loaders for the canonical distributions and table files, preprocessing, splits.

>>> from lugpi_cli.data import load_dataset
>>> ds = load_dataset("cwi-news", data="../shared/data")          # doctest: +SKIP
>>> ds.splits["train"][0].text, ds.splits["train"][0].text_pair  # doctest: +SKIP

Every loader yields :class:`Sample` objects (stable id, cleaned text, prompt
for the diffusion model, label, split) in a :class:`Dataset` with train /
validation / test splits; see :mod:`.samples` for ids and split carving and
:mod:`.registry` for where built-in data sets are looked for.
"""

from __future__ import annotations

import importlib
from typing import Any

#: public name -> the submodule defining it; imported on first use (PEP 562), so reading a constant such as
#: SPLITS does not import every loader (the CLI's start-up time)
_EXPORTS = {
    "download_dataset": "download", "BUILTIN_DATASETS": "registry", "cache_dir": "registry",
    "load_dataset": "registry", "PREPROCESSING_VERSION": "samples", "SPLITS": "samples", "Dataset": "samples",
    "Sample": "samples", "dataset_summary": "samples",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
