"""Running a trained model over data: validation during fit, and every output for the store or predictions."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from lugpi_cli.training.components import make_loader
from lugpi_cli.training.data import by_length
from lugpi_cli.training.objectives import Objective


def evaluate(objective: Objective, loader, accelerator) -> dict[str, float]:
    """Accuracy and mean CE on a loader (gathered across processes)."""
    objective.eval()
    model = accelerator.unwrap_model(objective).model
    correct = total = 0
    loss_sum = 0.0
    with torch.no_grad():
        for batch in loader:
            out = model(batch)
            logits = accelerator.gather_for_metrics(out.logits.float())
            labels = accelerator.gather_for_metrics(batch["labels"])
            loss_sum += float(nn.functional.cross_entropy(logits, labels, reduction="sum"))
            correct += int((logits.argmax(-1) == labels).sum())
            total += int(labels.numel())
    objective.train()
    return {"accuracy": correct / max(total, 1), "loss": loss_sum / max(total, 1)}


def predict_outputs(model: nn.Module, data, collate: Callable, *, batch_size: int = 64, workers: int = 0,
                    device: "torch.device | str" = "cpu", **forward_kwargs: Any) -> dict[str, np.ndarray]:
    """Every output of ``model`` over ``data`` in order, eval mode: ``logits``, ``embedding`` and the
    model's extra outputs (e.g. ARMADA's ``logits_aux``, ``manifold``), each (n, ...)."""
    model.eval()
    model.to(device)
    ordered, order = by_length(collate, data)  # batches of similar lengths pad less; rows come back in order
    parts: dict[str, list[np.ndarray]] = {}
    with torch.inference_mode():
        for batch in make_loader(ordered, batch_size, collate, workers=workers, shuffle=False):
            batch = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
            out = model(batch, **forward_kwargs)
            fields = {"logits": out.logits, "embedding": out.embedding, **(getattr(out, "extra", None) or {})}
            for name, value in fields.items():
                parts.setdefault(name, []).append(value.float().cpu().numpy())
    outputs = {name: np.concatenate(values) for name, values in parts.items()}
    if order is not None:
        where = np.empty(len(order), dtype=np.int64)
        where[order] = np.arange(len(order))
        outputs = {name: values[where] for name, values in outputs.items()}
    return outputs


def predict(model: nn.Module, data, collate: Callable, *, batch_size: int = 64, workers: int = 0,
            device: "torch.device | str" = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """Logits (n, k) and embeddings (n, d) of ``model`` over ``data``, in order, in eval mode."""
    out = predict_outputs(model, data, collate, batch_size=batch_size, workers=workers, device=device)
    if not out:
        return np.zeros((0, 0), np.float32), np.zeros((0, 0), np.float32)
    return out["logits"], out["embedding"]
