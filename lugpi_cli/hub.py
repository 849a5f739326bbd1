"""Loading models by hub id or local directory, with errors a user can act on.

``from_pretrained`` of transformers and diffusers raise ``OSError`` or
``ValueError`` (the hub's own errors only as causes) for a model that is not
cached offline, a missing local path, or a folder that holds no model. They
become one :class:`UserError` naming the model and the fixes: a local
directory saved with ``save_pretrained``, or the Hugging Face cache filled on a
connected machine. Without network, set ``HF_HUB_OFFLINE=1`` to fail at once
instead of after the hub's retries.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Callable, TypeVar

from lugpi_cli.errors import UserError

T = TypeVar("T")
SMALL_FILE = 1 << 20  # files up to 1 MiB (configs, tokenizers) are hashed whole
SAMPLES = 16  # larger files (weights): 16 evenly spaced 64 KiB windows, plus the size
WINDOW = 64 << 10



def offline() -> bool:
    try:
        import huggingface_hub.constants as constants

        return bool(constants.HF_HUB_OFFLINE)
    except Exception:  # noqa: BLE001
        return os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0", "false", "False")


def load(loader: Callable[..., T], model: str, *, what: str, revision: str | None = None, **kwargs: Any) -> T:
    """``loader(model, revision=..., **kwargs)`` with hub/offline failures turned into a UserError."""
    path = Path(model).expanduser()
    if not path.exists() and (model.startswith((".", "/", "~")) or model.count("/") > 1):  # a path, not an id
        raise UserError(f"{what} {model!r}: no such directory",
                        "Give a Hugging Face model id or a directory saved with save_pretrained().")
    if revision is not None and not path.exists():
        kwargs["revision"] = revision
    from lugpi_cli.runtime import quiet_loaded

    quiet_loaded()  # the loader's library is imported by now: no progress bars unless -vv
    try:
        return loader(str(path) if path.exists() else model, **kwargs)
    except (OSError, ValueError) as exc:
        if path.exists():
            raise UserError(
                f"cannot load {what} from the directory {model}: {_first_line(exc)}",
                "The directory must hold a model saved with save_pretrained() (config.json / model_index.json).",
            ) from exc
        mode = "HF_HUB_OFFLINE is set and the model is not in the local Hugging Face cache" if offline() else \
            "the Hugging Face hub could not be reached and the model is not cached"
        raise UserError(
            f"cannot load {what} {model!r}: {mode}",
            "On a machine with network, run `huggingface-cli download "
            f"{model}` (or save_pretrained() it to a directory), copy the cache (~/.cache/huggingface) or the "
            "directory here, and pass the directory's path instead of the id."
            + ("" if offline() else " Set HF_HUB_OFFLINE=1 to fail at once when offline."),
        ) from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def model_identity(model: str, revision: str | None = None) -> dict[str, Any]:
    """What identifies a model's weights in a fingerprint.

    A hub id is identified by id and revision (pass a commit hash as
    ``--revision`` to pin it). A local directory is identified by content —
    the hash of its small files (configs, tokenizers) and of the size and 16
    evenly spaced 64 KiB windows of each weight file — so the same model copied
    to another machine or path keeps its fingerprint, and retrained weights
    get a new one, without reading gigabytes.
    """
    path = Path(model).expanduser()
    if not path.exists():
        return {"model": model, "revision": revision or "main"}
    digest = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        rel = file.name if path.is_file() else file.relative_to(path).as_posix()
        if rel.startswith(".") or "/." in rel:
            continue
        digest.update(rel.encode() + b"\0" + file_digest(file))
    return {"model": "local", "content": digest.hexdigest()}


def file_digest(path: Path) -> bytes:
    """SHA-256 of a small file; of its size and 16 sampled windows for a large one."""
    size = path.stat().st_size
    digest = hashlib.sha256(size.to_bytes(8, "little"))
    with open(path, "rb") as handle:
        if size <= SMALL_FILE:
            digest.update(handle.read())
        else:
            for i in range(SAMPLES):
                handle.seek((size - WINDOW) * i // (SAMPLES - 1))
                digest.update(handle.read(WINDOW))
    return digest.digest()
