"""Data sets: loaders for the canonical distributions and table files, preprocessing, splits.

>>> from lugpi_cli.data import load_dataset
>>> ds = load_dataset("cwi-news", data="../shared/data")          # doctest: +SKIP
>>> ds.splits["train"][0].text, ds.splits["train"][0].text_pair  # doctest: +SKIP

Every loader yields :class:`Sample` objects (stable id, cleaned text, prompt
for the diffusion model, label, split) in a :class:`Dataset` with train /
validation / test splits; see :mod:`.samples` for ids and split carving and
:mod:`.registry` for where built-in data sets are looked for.
"""

from lugpi_cli.data.download import download_dataset
from lugpi_cli.data.registry import BUILTIN_DATASETS, cache_dir, load_dataset
from lugpi_cli.data.samples import PREPROCESSING_VERSION, SPLITS, Dataset, Sample, dataset_summary

__all__ = [
    "BUILTIN_DATASETS",
    "PREPROCESSING_VERSION",
    "SPLITS",
    "Dataset",
    "Sample",
    "cache_dir",
    "dataset_summary",
    "download_dataset",
    "load_dataset",
]
