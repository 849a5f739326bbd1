"""The distillation methods' option tables, for building ``distill`` flags without importing torch.

``lugpi distill`` has one flag per option of every registered method (``--lam``, ``--w-d`` ...),
so Typer needs every method's option table whenever it builds the app, i.e. on every
``lugpi`` call. The tables live on the loss classes, which are ``torch.nn.Module`` subclasses;
importing them costs torch's start-up (seconds). This module reads them once, from the real
registry, and keeps a copy in the user cache (``$XDG_CACHE_HOME/lugpi/cli/``) keyed by a hash of
lugpi's version and the source of ``lugpi_cli/losses``: any edit of a loss file, or another
lugpi version, reads the registry again. When the losses are already imported (a training
process) the live registry is used. Nothing here decides how a loss behaves: parsing and
checking values stays with :mod:`lugpi_cli.losses`.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from lugpi_cli import __version__

LOSSES_DIR = Path(__file__).resolve().parents[1] / "losses"
_TYPES = {"bool": bool, "int": int, "float": float, "str": str}


@dataclass(frozen=True)
class OptionInfo:
    """What the CLI shows of a loss option (see :class:`lugpi_cli.losses.base.Option`)."""

    type: type
    default: Any
    help: str = ""
    choices: tuple[Any, ...] | None = None
    min: float | None = None
    min_exclusive: bool = False

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "type": self.type.__name__,
                "choices": None if self.choices is None else list(self.choices)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> OptionInfo:
        choices = data.get("choices")
        return cls(**{**data, "type": _TYPES[data["type"]], "choices": None if choices is None else tuple(choices)})


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/lugpi/cli``, by default ``~/.cache/lugpi/cli``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "lugpi" / "cli"


def source_key() -> str:
    """Hash of lugpi's version and every loss module's source: what the option tables come from."""
    h = hashlib.sha256(__version__.encode())
    for path in sorted(LOSSES_DIR.glob("*.py")):
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:24]


def from_registry(*, builtin_only: bool = False) -> dict[str, dict[str, OptionInfo]]:
    """The option tables of every registered method (imports torch, through the loss classes).

    ``builtin_only``: only the methods defined in ``lugpi_cli/losses`` (what the cache key covers),
    not ones a test or another module registered at run time.
    """
    from lugpi_cli.losses import LOSSES

    return {name: {key: OptionInfo(opt.type, opt.default, opt.help, opt.choices, opt.min, opt.min_exclusive)
                   for key, opt in cls.options.items()}
            for name, cls in sorted(LOSSES.items())
            if not builtin_only or cls.__module__.startswith("lugpi_cli.losses.")}


def cache_path() -> Path:
    return cache_dir() / f"method-options-{source_key()}.json"


def read_cache(path: Path) -> dict[str, dict[str, OptionInfo]] | None:
    """The cached tables, or None when the file is missing or unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return {name: {key: OptionInfo.from_json(o) for key, o in opts.items()} for name, opts in data.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def method_options() -> dict[str, dict[str, OptionInfo]]:
    """method name -> option name -> OptionInfo: the live registry if loaded, else the cached copy.

    A process that has the losses loaded (or loads them because the cache is cold) writes the cache.
    """
    path = cache_path()
    if "lugpi_cli.losses" not in sys.modules:
        cached = read_cache(path)
        if cached is not None:
            return cached
    table = from_registry()
    if not path.exists():
        builtin = from_registry(builtin_only=True)
        _write_atomic(path, {name: {key: o.to_json() for key, o in opts.items()} for name, opts in builtin.items()})
    return table


def _write_atomic(path: Path, data: Any) -> None:
    """Write the cache (a rename, so parallel calls never read half a file); an unwritable cache is skipped."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=1, sort_keys=True)
        os.replace(tmp, path)
    except OSError:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
