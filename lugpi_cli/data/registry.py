"""Data set names, where their files are looked for, and :func:`load_dataset`.

A built-in data set is read from its canonical distribution, found in this
order: the ``data`` argument (``--data PATH``; when given, nowhere else), the
folder ``$LUGPI_DATA``, the user cache ``$XDG_CACHE_HOME/lugpi/datasets``
(``~/.cache/lugpi/datasets``). Nothing is downloaded implicitly: when no copy
is found, a UserError says which file to fetch and where to put it
(:func:`lugpi_cli.data.download.download_dataset` fetches IMDB and 20
Newsgroups on request).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from lugpi_cli.data import cwi, hf, imdb, newsgroups, tabular
from lugpi_cli.data.samples import Dataset
from lugpi_cli.errors import UserError

DATA_ENV = "LUGPI_DATA"


@dataclass(frozen=True)
class Builtin:
    """A built-in data set: how to find its files under a root and load them."""

    name: str
    description: str
    fetch: str  # what to download, for error messages
    url: str
    locate: Callable[[Path], Any]  # root -> what load() takes, or None
    load: Callable[..., Dataset]


def _cwi(name: str, genre: str) -> Builtin:
    files = ", ".join(cwi.file_names(name))
    return Builtin(
        name=name,
        description=f"CWI 2018 English, {genre} (complex word identification; sentence + target)",
        fetch=f"the CWI 2018 shared task English data ({files})",
        url=cwi.URL,
        locate=lambda root: cwi.locate(name, root),
        load=lambda files_, **kw: cwi.load(name, files_, **kw),
    )


BUILTINS: dict[str, Builtin] = {
    "imdb": Builtin(
        name="imdb",
        description="IMDB Large Movie Review (sentiment, neg/pos)",
        fetch=f"{imdb.ARCHIVE_NAME} (84 MB)",
        url=imdb.URL,
        locate=imdb.locate,
        load=imdb.load,
    ),
    "20newsgroups": Builtin(
        name="20newsgroups",
        description="20 Newsgroups, bydate split (topic, 20 groups)",
        fetch=f"{newsgroups.ARCHIVE_NAME} (14 MB)",
        url=newsgroups.URL,
        locate=newsgroups.locate,
        load=newsgroups.load,
    ),
    "cwi-news": _cwi("cwi-news", "News"),
    "cwi-wikinews": _cwi("cwi-wikinews", "WikiNews"),
    "cwi-wikipedia": _cwi("cwi-wikipedia", "Wikipedia"),
}

#: Names :func:`load_dataset` accepts besides file paths.
BUILTIN_DATASETS: tuple[str, ...] = tuple(BUILTINS)


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/lugpi/datasets``, by default ``~/.cache/lugpi/datasets``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "lugpi" / "datasets"


def search_roots(data: str | Path | None) -> list[tuple[str, Path]]:
    """``(how it was chosen, folder)`` in search order."""
    if data is not None:
        return [("--data", Path(data).expanduser())]
    roots = []
    if os.environ.get(DATA_ENV):
        roots.append((f"${DATA_ENV}", Path(os.environ[DATA_ENV]).expanduser()))
    roots.append(("cache", cache_dir()))
    return roots


def locate_builtin(name: str, data: str | Path | None = None) -> Any:
    """What the loader of ``name`` reads, found via :func:`search_roots`; a UserError if nowhere."""
    builtin = BUILTINS[name]
    roots = search_roots(data)
    if data is not None and not roots[0][1].exists():
        raise UserError(f"--data path {roots[0][1]} does not exist", _fetch_hint(builtin))
    for _how, root in roots:
        found = builtin.locate(root)
        if found is not None:
            return found
    looked = "; ".join(f"{root} ({how})" for how, root in roots)
    detail = ""
    if name.startswith("cwi-"):
        missing = cwi.missing_files(name, roots[0][1]) if data is not None else cwi.file_names(name)
        detail = f" (missing: {', '.join(missing)})" if missing else ""
    raise UserError(f"no local copy of data set {name!r}{detail}: looked in {looked}", _fetch_hint(builtin))


def _fetch_hint(builtin: Builtin) -> str:
    return (
        f"fetch {builtin.fetch} from {builtin.url}, then pass --data PATH (the file or the folder holding it), "
        f"or put it in the folder ${DATA_ENV} names, or in {cache_dir()}"
    )


def load_dataset(
    name_or_path: str | None,
    *,
    data: str | Path | None = None,
    text_col: str | None = None,
    label_col: str | None = None,
    split_col: str | None = None,
    prompt_col: str | None = None,
    id_col: str | None = None,
    data_config: str | None = None,
    data_revision: str | None = None,
    validation_fraction: float = 0.1,
    test_fraction: float = 0.1,
    seed: int = 0,
    max_per_split: int | None = None,
) -> Dataset:
    """Load a built-in data set by name, a table file or a ``save_to_disk`` directory by path, or a Hub id.

    ``name_or_path``: one of :data:`BUILTIN_DATASETS` (``data`` then points at
    its local copy), a ``.csv``/``.tsv``/``.jsonl``/``.json``/``.parquet``
    file, a directory written by ``datasets``' ``save_to_disk``, or a Hugging
    Face Hub data set id ``owner/name`` (``data_config`` and ``data_revision``
    choose its config and revision; see :mod:`.hf`); with ``name_or_path=None``,
    ``data`` is that file or directory. ``validation_fraction`` of train
    becomes validation where the source has no validation split (seeded by
    ``seed``); ``test_fraction`` is carved only from table files and
    ``datasets`` data without test rows. ``max_per_split`` caps every split at
    N samples, stratified (for quick runs).
    """
    columns = {"text_col": text_col, "label_col": label_col, "split_col": split_col,
               "prompt_col": prompt_col, "id_col": id_col}
    options = {"validation_fraction": validation_fraction, "seed": seed, "max_per_split": max_per_split}
    key = name_or_path.strip().lower() if isinstance(name_or_path, str) else None
    if key in BUILTINS:
        return _load_builtin(key, data, columns, data_config, data_revision, options)

    if name_or_path is not None and data is None and hf.is_hub_id(name_or_path):
        return hf.load_hub(name_or_path, config=data_config, revision=data_revision, **columns,
                           test_fraction=test_fraction, **options)
    if name_or_path is not None and data is not None and not tabular.is_tabular(Path(name_or_path)):
        named = _named_hf_data(name_or_path, data, columns, data_config, data_revision, test_fraction, options)
        if named is not None:
            return named
    if name_or_path is None and data is None:
        raise UserError("no data set given", _choices_hint())
    path = Path(name_or_path if name_or_path is not None else data).expanduser()
    same = name_or_path is None or data is None or path == Path(data).expanduser()
    if hf.is_saved_dataset(path) and same:
        _no_hub_options(str(path), data_config, data_revision)
        return hf.load_saved(path, **columns, test_fraction=test_fraction, **options)
    if not same:
        raise UserError(
            f"unknown data set {name_or_path!r}" if not tabular.is_tabular(Path(name_or_path))
            else f"two data files given: {name_or_path} and --data {data}",
            _choices_hint(),
        )
    return _load_table(path, columns, data_config, data_revision, test_fraction, options)


def _load_builtin(key: str, data: str | Path | None, columns: dict, data_config: str | None,
                  data_revision: str | None, options: dict) -> Dataset:
    """The built-in data set ``key`` from its local copy (column and Hub options do not apply)."""
    given = [opt for opt, value in columns.items() if value is not None]
    if given:
        raise UserError(
            f"{given[0]} applies to table files, not to the built-in data set {key!r}",
            "drop the column options, or give a .csv/.tsv/.jsonl/.parquet file",
        )
    _no_hub_options(key, data_config, data_revision)
    return BUILTINS[key].load(locate_builtin(key, data), **options)


def _load_table(path: Path, columns: dict, data_config: str | None, data_revision: str | None,
                test_fraction: float, options: dict) -> Dataset:
    """The table file at ``path``; anything else (or nothing there) is refused with what to give instead."""
    if not tabular.is_tabular(path):
        looks_like = _looks_like(path)
        hint = (f"it holds data of the built-in {', '.join(looks_like)}: give the name and the path, "
                f"e.g. {looks_like[0]} --data {path}") if looks_like else _choices_hint()
        raise UserError(f"unknown data set {str(path)!r}: not a built-in name nor a table file", hint)
    if not path.is_file():
        raise UserError(f"data file {path} does not exist", _choices_hint())
    _no_hub_options(str(path), data_config, data_revision)
    return tabular.load(path, **columns, test_fraction=test_fraction, **options)


def _named_hf_data(name: str, data: str | Path, columns: dict, data_config: str | None, data_revision: str | None,
                   test_fraction: float, options: dict) -> Dataset | None:
    """``NAME --data DIR`` (a save_to_disk directory) or ``NAME --data owner/name`` (a Hub id): that data,
    under the name NAME; None when ``data`` is neither."""
    path = Path(data).expanduser()
    if hf.is_saved_dataset(path) and path != Path(name).expanduser():
        _no_hub_options(str(path), data_config, data_revision)
        return hf.load_saved(path, name=name, **columns, test_fraction=test_fraction, **options)
    if hf.is_hub_id(str(data)):
        return hf.load_hub(str(data), config=data_config, revision=data_revision, name=name, **columns,
                           test_fraction=test_fraction, **options)
    return None


def _no_hub_options(what: str, data_config: str | None, data_revision: str | None) -> None:
    """--data-config / --data-revision choose a Hub data set's config and revision: refused for anything else."""
    given = "--data-config" if data_config is not None else "--data-revision" if data_revision is not None else None
    if given:
        raise UserError(f"{given} applies to Hugging Face Hub data sets (owner/name), not to {what!r}",
                        f"drop {given}, or give a Hub data set id")


def _looks_like(path: Path) -> list[str]:
    """Built-in data sets whose distribution ``path`` is (by archive name, or by folder layout)."""
    if path.is_file():
        archives = {imdb.ARCHIVE_NAME: "imdb", newsgroups.ARCHIVE_NAME: "20newsgroups"}
        return [archives[path.name]] if path.name in archives else []
    return [name for name, b in BUILTINS.items() if path.is_dir() and b.locate(path) is not None]


def _choices_hint() -> str:
    return (
        f"give a built-in data set ({', '.join(BUILTIN_DATASETS)}), a table file "
        f"({', '.join(sorted(tabular.FORMATS))}) with --text-col and --label-col, a directory written by "
        "datasets' save_to_disk(), or a Hugging Face Hub data set id (owner/name)"
    )
