"""Experiment trackers (``--report-to``) through accelerate's own tracker integration.

``--report-to tensorboard|wandb|mlflow|all|none`` (comma-separated lists work
too; default ``none``) builds accelerate's ``TensorBoardTracker``,
``WandBTracker`` and ``MLflowTracker`` and hands them to
``Accelerator(log_with=...)``; :func:`start` calls ``init_trackers`` with the
run's resolved config as hyperparameters, the fit loop calls
``accelerator.log`` with the loss parts and the learning rate every optimizer
step and the validation metrics every epoch, and ``end_training`` closes them.

Where the data goes (``project``: ``lugpi`` by default; every cell of one
``lugpi ablate`` grid shares ``lugpi-ablate-<its output directory>``):

- TensorBoard: ``WORKSPACE/tracking/<project>/<run name>/`` (``tensorboard --logdir WORKSPACE/tracking``);
- Weights & Biases: project ``<project>``, run name = the lugpi run, group = the project;
  local files in ``WORKSPACE/tracking/``;
- MLflow: experiment ``<project>``, run name = the lugpi run, tracking URI
  ``sqlite:///WORKSPACE/tracking/mlflow.db`` (a local database file; MLflow 3 refuses the plain-directory
  file store) and artifacts in ``WORKSPACE/tracking/mlartifacts``, unless ``MLFLOW_TRACKING_URI`` says
  otherwise (``mlflow ui --backend-store-uri sqlite:///WORKSPACE/tracking/mlflow.db``).

Only the main process logs. The trackers are told nothing that changes the
result: ``--report-to`` is not part of a run's config hash.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
from typing import Any

from lugpi_cli.errors import UserError

#: tracker name -> the module it needs and how to install it
TRACKERS = {"tensorboard": ("tensorboard", "pip install 'lugpi[tracking]' (or pip install tensorboard)"),
            "wandb": ("wandb", "pip install 'lugpi[trackers]' (or pip install wandb)"),
            "mlflow": ("mlflow", "pip install 'lugpi[trackers]' (or pip install mlflow)")}
CHOICES = ("none", "all", *TRACKERS)
DEFAULT_PROJECT = "lugpi"


def _installed(name: str) -> bool:
    module = TRACKERS[name][0]
    return importlib.util.find_spec(module) is not None


def parse_report_to(value: str | None) -> list[str]:
    """``"tensorboard,wandb"`` -> the tracker names; ``all`` = every installed one; ``none`` = []."""
    names = [part.strip().lower() for part in (value or "none").split(",") if part.strip()]
    bad = [n for n in names if n not in CHOICES]
    if bad or not names:
        raise UserError(f"unknown --report-to {bad[0] if bad else value!r}", f"Choose from {', '.join(CHOICES)} "
                        "(or a comma-separated list of trackers).")
    if "none" in names:
        if len(names) > 1:
            raise UserError(f"--report-to {value!r} mixes none with trackers", "Give none alone.")
        return []
    if "all" in names:
        found = [n for n in TRACKERS if _installed(n)]
        if not found:
            raise UserError("--report-to all: none of tensorboard, wandb, mlflow is installed",
                            TRACKERS["tensorboard"][1])
        return found
    for name in names:
        if not _installed(name):
            raise UserError(f"--report-to {name}: the {TRACKERS[name][0]} package is not installed", TRACKERS[name][1])
    return list(dict.fromkeys(names))


def tracking_dir(run_dir: Path) -> Path:
    """``WORKSPACE/tracking`` (a run lives in ``WORKSPACE/runs/<name>``)."""
    return Path(run_dir).resolve().parent.parent / "tracking"


def build_trackers(names: list[str], run_name: str, run_dir: Path, project: str | None) -> list[Any]:
    """accelerate tracker objects for ``Accelerator(log_with=...)``."""
    from accelerate.tracking import MLflowTracker, TensorBoardTracker, WandBTracker

    project = project or DEFAULT_PROJECT
    root = tracking_dir(run_dir)
    out: list[Any] = []
    for name in names:
        if name == "tensorboard":
            out.append(TensorBoardTracker(run_name, root / project))
        elif name == "wandb":
            root.mkdir(parents=True, exist_ok=True)
            out.append(WandBTracker(project, name=run_name, group=project, dir=str(root)))
        elif name == "mlflow":
            root.mkdir(parents=True, exist_ok=True)
            _mlflow_tracking_uri(root)
            out.append(MLflowTracker(experiment_name=project, logging_dir=str(root / "mlartifacts"),
                                     run_name=run_name))
    return out


def mlflow_uri(root: Path) -> str:
    """Where MLflow runs go: ``MLFLOW_TRACKING_URI``, else the workspace's ``tracking/mlflow.db``."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path(root).resolve() / 'mlflow.db'}"


def _mlflow_tracking_uri(root: Path) -> None:
    """accelerate's ``MLflowTracker`` takes the artifact location only; the tracking URI is mlflow's
    process-wide setting (else runs land in ``./mlflow.db`` of whatever directory the command ran in)."""
    import mlflow

    mlflow.set_tracking_uri(mlflow_uri(root))


def hyperparameters(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested config flattened to ``a/b`` keys with bool/int/float/str values (what trackers accept)."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(hyperparameters(value, prefix=f"{name}/"))
        elif value is None or isinstance(value, (bool, int, float, str)):
            flat[name] = "none" if value is None else value
        else:
            flat[name] = json.dumps(value, sort_keys=True)
    return flat


def start(accelerator, run_name: str, config: dict[str, Any] | None, project: str | None) -> bool:
    """``init_trackers`` with the run's resolved config as hyperparameters; whether any tracker is on."""
    if not accelerator.log_with:
        return False
    accelerator.init_trackers(project or DEFAULT_PROJECT, config=hyperparameters(config or {"run": run_name}))
    return True


def step_values(scalars: dict[str, float], lr: float) -> dict[str, float]:
    """What is logged every optimizer step: the loss parts and the learning rate."""
    return {**{f"train/{k}": float(v) for k, v in scalars.items()}, "train/lr": float(lr)}


def epoch_values(record: dict[str, Any]) -> dict[str, float]:
    """What is logged every epoch: validation accuracy and loss, the epoch's mean loss parts."""
    out = {"val/accuracy": float(record["val_accuracy"]), "val/loss": float(record["val_loss"]),
           "epoch": float(record["epoch"])}
    out.update({f"epoch/{k[len('train_'):]}": float(v) for k, v in record.items() if k.startswith("train_")})
    return out
