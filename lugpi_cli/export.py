"""``lugpi export``: a run's model as a clean directory others can load, optionally pushed to the Hub.

The directory holds only what loading the model needs — its config, safetensors
weights, tokenizer files (and, for lugpi's own teachers, ``lugpi_model.json`` and
the text encoder's config) — plus the model card (``README.md``, regenerated from
the run). Nothing pickled and nothing of training (checkpoints, optimizer state,
predictions, history) is copied. The directory is written next to its final
place and renamed into it, so an interrupted export leaves no half directory.
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from lugpi_cli.errors import UserError
from lugpi_cli.training.runs import Run

#: What an exported model directory may hold (paths relative to the model directory).
KEEP = ("config.json", "generation_config.json", "lugpi_model.json", "*.safetensors", "*.safetensors.index.json",
        "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "vocab.txt",
        "vocab.json", "merges.txt", "*.model", "chat_template.*", "text_encoder/config.json")


@dataclass
class Export:
    run: str
    directory: Path
    files: list[str]
    skipped: list[str] = field(default_factory=list)
    replaced: bool = False
    pushed: str | None = None

    def to_json(self) -> dict:
        return {"run": self.run, "directory": str(self.directory), "files": self.files, "skipped": self.skipped,
                "replaced": self.replaced, "pushed_to": self.pushed}


def _wanted(rel: str) -> bool:
    return any(fnmatch.fnmatch(rel, pattern) for pattern in KEEP)


def _holds_export_of(directory: Path, run: Run) -> bool:
    card = directory / "README.md"
    return card.is_file() and f"\n# {run.name}\n" in card.read_text(errors="replace")


def check_target(directory: Path, run: Run, overwrite: bool) -> bool:
    """Whether ``directory`` will be replaced; a UserError when it holds something else (unless ``overwrite``)."""
    if not directory.exists():
        return False
    if not directory.is_dir():
        raise UserError(f"export target {directory} is a file", "Give a directory path (it is created).")
    run_dir = run.dir.resolve()
    if directory == run_dir or run_dir in directory.parents or directory in run_dir.parents:
        raise UserError(f"export target {directory} overlaps the run directory {run_dir}",
                        "Export to a directory outside the run.")
    if not any(directory.iterdir()):
        return True
    foreign = [p.relative_to(directory).as_posix() for p in sorted(directory.rglob("*")) if p.is_file()
               and not (_wanted(p.relative_to(directory).as_posix()) or p.name == "README.md")]
    if foreign:
        raise UserError(f"export target {directory} holds other files than a model's (e.g. {foreign[0]})",
                        "Give a new or empty directory: an export replaces its whole target.")
    if _holds_export_of(directory, run) or overwrite:
        return True
    raise UserError(f"export target {directory} already holds another model (not an export of {run.name})",
                    "Give a new or empty directory, or pass --overwrite to replace that model.")


def export_run(run: Run, directory: Path, *, store=None, overwrite: bool = False,
               reference: str | None = None) -> Export:
    """Copy ``run``'s model into ``directory`` with a fresh model card (see the module docstring)."""
    from lugpi_cli.cards import write_model_card

    if not run.is_done():
        raise UserError(f"run {run.name} is not finished (no DONE marker)",
                        "Finish it first: re-run the command that started it (it resumes).")
    source = run.model_dir
    if not source.is_dir():
        raise UserError(f"run {run.name} has no model directory ({source})")
    directory = directory.expanduser().resolve()
    replaced = check_target(directory, run, overwrite)
    rels = sorted(p.relative_to(source).as_posix() for p in source.rglob("*") if p.is_file())
    files = [rel for rel in rels if _wanted(rel) and rel != "README.md"]
    skipped = [rel for rel in rels if rel not in files and rel != "README.md"]
    if not any(rel.endswith(".safetensors") for rel in files):
        raise UserError(f"run {run.name} has no safetensors weights in {source}",
                        "Only safetensors weights are exported (never pickles); re-train the run with this lugpi.")
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        for rel in files:
            (staging / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source / rel, staging / rel)
        write_model_card(run, staging, store=store, reference=reference)
        os.chmod(staging, 0o755)  # mkdtemp makes it 0700
        if directory.exists():
            shutil.rmtree(directory)
        os.replace(staging, directory)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return Export(run.name, directory, [*files, "README.md"], skipped, replaced)


def check_repo_id(repo_id: str) -> None:
    """A UserError unless ``repo_id`` is a valid Hub repo id (checked before anything is exported)."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as exc:
        raise UserError(f"--push-to-hub {repo_id!r} is not a Hub repo id: {exc}",
                        "Use owner/name, e.g. --push-to-hub my-user/lugpi-imdb-student.") from exc


def push_to_hub(directory: Path, repo_id: str, *, private: bool = False, run_name: str = "",
                token: str | None = None) -> str:
    """Upload an exported directory to the Hub model repo ``repo_id`` (created if needed); its URL.

    ``token``: a Hub access token; None uses the login (``hf auth login``) or ``HF_TOKEN``.
    """
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    check_repo_id(repo_id)
    api = HfApi(token=token)
    try:
        api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
        api.upload_folder(repo_id=repo_id, repo_type="model", folder_path=str(directory),
                          commit_message=f"lugpi export of {run_name or directory.name}")
    except Exception as exc:  # noqa: BLE001 - network, offline mode, auth: all become one message
        from lugpi_cli.hub import offline

        detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        reason = ("HF_HUB_OFFLINE is set" if offline() else f"the Hub refused: {detail}"
                  if isinstance(exc, HfHubHTTPError) else f"the Hub could not be reached: {detail}")
        raise UserError(
            f"cannot push {directory} to the Hugging Face Hub repo {repo_id!r}: {reason}",
            f"The export in {directory} is complete. On a machine with network, log in (`hf auth login`, or set "
            f"HF_TOKEN) and push it with the same command, or `hf upload {repo_id} {directory}`.",
        ) from exc
    return f"https://huggingface.co/{repo_id}"
