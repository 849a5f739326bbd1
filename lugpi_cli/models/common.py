"""Pieces the teacher, student and image-only classifier share.

- :class:`ModelOutput`: what every model's ``forward(batch)`` returns
  (``logits``, ``embedding``, and model-specific ``extra`` tensors).
- :func:`xavier_init_`: Xavier/Glorot-normal re-initialisation (Algorithm 1, line 9).
- :func:`text_inputs`: the text keys of a batch a Hugging Face model accepts.
- saving: ``model.safetensors`` (``safetensors.torch.save_file`` of the
  state dict) plus ``lugpi_model.json`` (what is needed to rebuild).
"""

from __future__ import annotations

import inspect
import json
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from lugpi_cli.errors import UserError

__all__ = [
    "CONFIG_NAME",
    "FORMAT_VERSION",
    "INIT_CHOICES",
    "MODALITIES",
    "WEIGHTS_NAME",
    "ModelOutput",
    "check_choice",
    "forward_parameters",
    "load_hf_config",
    "make_activation",
    "read_model_config",
    "text_inputs",
    "xavier_init_",
]

CONFIG_NAME = "lugpi_model.json"
WEIGHTS_NAME = "model.safetensors"
FORMAT_VERSION = 1
INIT_CHOICES = ("pretrained", "xavier")
MODALITIES = ("both", "text", "image")
ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh, "silu": nn.SiLU}
TEXT_KEYS = ("input_ids", "attention_mask", "token_type_ids", "position_ids")


@dataclass
class ModelOutput:
    """``logits`` (B, k) and ``embedding`` (B, d): the activation the classification layer reads.

    ``extra`` holds further per-sample tensors (first dimension B) a model
    wants cached beside them, by name; e.g. :class:`~lugpi_cli.models.armada.ArmadaTeacher`
    gives ``{"logits_aux": z2, "manifold": P_t}``. Empty for the other models.
    """

    logits: Tensor
    embedding: Tensor
    extra: dict[str, Tensor] = field(default_factory=dict)


def check_choice(what: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise UserError(f"unknown {what} {value!r}", hint=f"choose one of: {', '.join(choices)}")
    return value


def make_activation(name: str) -> nn.Module:
    return ACTIVATIONS[check_choice("activation", name, tuple(ACTIVATIONS))]()


def _is_norm(module: nn.Module) -> bool:
    if isinstance(module, (nn.LayerNorm, nn.GroupNorm, nn.modules.batchnorm._BatchNorm)):
        return True
    name = type(module).__name__
    return name.endswith(("LayerNorm", "RMSNorm"))


@torch.no_grad()
def xavier_init_(module: nn.Module) -> nn.Module:
    """Re-initialise ``module`` in place: Xavier/Glorot-normal weights.

    ``nn.Linear`` (and the GPT-2 style ``Conv1D``) and ``nn.Embedding``
    weights get ``xavier_normal_`` (an embedding's ``padding_idx`` row is then
    zeroed, as ``nn.Embedding`` itself does); the packed input projection of
    ``nn.MultiheadAttention`` too; every bias is 0; norm layers get weight 1
    and bias 0. Algorithm 1, line 9 of the LUGPI paper.
    """
    for m in module.modules():
        if isinstance(m, nn.Embedding):
            nn.init.xavier_normal_(m.weight)
            if m.padding_idx is not None:
                m.weight[m.padding_idx].zero_()
        elif isinstance(m, nn.Linear) or type(m).__name__ == "Conv1D":
            nn.init.xavier_normal_(m.weight)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.MultiheadAttention):
            for w in (m.in_proj_weight, m.q_proj_weight, m.k_proj_weight, m.v_proj_weight):
                if w is not None:
                    nn.init.xavier_normal_(w)
            if m.in_proj_bias is not None:
                nn.init.zeros_(m.in_proj_bias)
            for b in (m.bias_k, m.bias_v):
                if b is not None:
                    nn.init.zeros_(b)
        elif _is_norm(m):
            if getattr(m, "weight", None) is not None:
                nn.init.ones_(m.weight)
            if getattr(m, "bias", None) is not None:
                nn.init.zeros_(m.bias)
    return module


_FORWARD_PARAMETERS: "weakref.WeakKeyDictionary[Any, frozenset[str]]" = weakref.WeakKeyDictionary()


def forward_parameters(model: nn.Module) -> frozenset[str]:
    """The parameter names of ``model.forward``, inspected once per forward function (not per call).

    Keyed by the function itself (a bound method's ``__func__``: every instance
    of a class shares it; a forward replaced on one instance, e.g. wrapped by
    accelerate, is its own key), held weakly. While torch.compile traces a
    forward it inspects every time, as before (the trace runs once).
    """
    forward = model.forward
    if torch.compiler.is_compiling():  # inside torch.compile's trace: no weak dictionary (dynamo cannot trace it)
        return frozenset(inspect.signature(forward).parameters)
    fn = getattr(forward, "__func__", forward)
    try:
        return _FORWARD_PARAMETERS[fn]
    except KeyError:
        pass
    except TypeError:  # not weak-referenceable: inspect every time
        return frozenset(inspect.signature(forward).parameters)
    params = frozenset(inspect.signature(forward).parameters)
    _FORWARD_PARAMETERS[fn] = params
    return params


def text_inputs(model: nn.Module, batch: dict[str, Any]) -> dict[str, Tensor]:
    """The text keys of ``batch`` that ``model.forward`` takes.

    ``input_ids`` and ``attention_mask`` always go through; ``token_type_ids``
    and ``position_ids`` only when ``forward`` names them (BERT does,
    DistilBERT does not: its ``**kwargs`` would swallow them).
    """
    params = forward_parameters(model)
    out = {}
    for key in TEXT_KEYS:
        if batch.get(key) is not None and (key in ("input_ids", "attention_mask") or key in params):
            out[key] = batch[key]
    if batch.get("inputs_embeds") is not None:  # mixed token embeddings (mixup) replace the ids
        out.pop("input_ids", None)
        out["inputs_embeds"] = batch["inputs_embeds"]
        return out
    if "input_ids" not in out:
        raise KeyError("the batch has no 'input_ids'")
    return out


def load_hf_config(text_model: str | Path, **kwargs: Any):
    """``AutoConfig.from_pretrained`` with a UserError naming the model when it cannot be found."""
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(str(text_model), **kwargs)
    except (OSError, ValueError) as exc:
        raise UserError(
            f"cannot load the text model {str(text_model)!r}: {str(exc).splitlines()[0] if str(exc) else exc!r}",
            hint="give a Hugging Face model id or a local directory holding config.json "
            "(offline: the model must already be in the Hugging Face cache)",
        ) from exc


def weights_to_save(model: nn.Module) -> dict[str, Tensor]:
    """The state dict, contiguous, with tensors that share storage cloned (safetensors refuses shared storage)."""
    seen: set[tuple[int, int]] = set()
    out = {}
    for k, v in model.state_dict().items():
        v = v.detach()
        key = (v.untyped_storage().data_ptr(), v.untyped_storage().nbytes()) if v.numel() else None
        if key is not None and key in seen:
            v = v.clone()
        elif key is not None:
            seen.add(key)
        out[k] = v.contiguous().cpu()
    return out


def save_weights(model: nn.Module, directory: Path) -> None:
    from safetensors.torch import save_file

    save_file(weights_to_save(model), str(directory / WEIGHTS_NAME), metadata={"format": "pt"})


def load_weights(model: nn.Module, directory: Path, *, missing_ok: tuple[str, ...] = ()) -> None:
    """Load ``model.safetensors`` strictly; keys named in ``missing_ok`` may be absent (they keep their init).

    ``missing_ok`` lets a newer model read a directory written before it
    gained a parameter (the fusion teacher's modality placeholders).
    """
    from safetensors.torch import load_file

    state = load_file(str(directory / WEIGHTS_NAME))
    absent = [k for k in missing_ok if k not in state]
    if absent:
        current = model.state_dict()
        state.update({k: current[k] for k in absent})
    model.load_state_dict(state, strict=True)


def save_model_dir(model: nn.Module, directory: str | Path, config: dict[str, Any]) -> Path:
    """``model.safetensors`` + ``lugpi_model.json`` in ``directory`` (created); returns it."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    save_weights(model, d)
    write_model_config(d, config)
    return d


def write_model_config(directory: Path, config: dict[str, Any]) -> None:
    cfg = {"format": "lugpi-model", "format_version": FORMAT_VERSION, **config}
    (directory / CONFIG_NAME).write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")


def read_model_config(directory: str | Path, kind: str | None = None, what: str = "") -> dict[str, Any]:
    """The ``lugpi_model.json`` of a saved model directory (of model ``kind``, a ``what``, when given)."""
    path = Path(directory) / CONFIG_NAME
    if not path.is_file():
        raise UserError(f"{Path(directory)} holds no saved lugpi model ({CONFIG_NAME} is missing)")
    cfg = json.loads(path.read_text())
    if cfg.get("format_version", 0) > FORMAT_VERSION:
        raise UserError(
            f"{path} was written by a newer lugpi (model format {cfg['format_version']} > {FORMAT_VERSION})",
            hint="upgrade lugpi to load it",
        )
    if kind is not None and cfg.get("kind") != kind:
        raise UserError(f"{Path(directory)} holds a {cfg.get('kind')!r} model, not {what or kind}")
    return cfg


def saved_labels(cfg: dict[str, Any]) -> list[str] | None:
    """The label names a saved model's config holds, in label order (None if it holds none)."""
    id2label = {int(k): v for k, v in cfg.get("id2label", {}).items()}
    return [id2label[i] for i in range(cfg["num_labels"])] if id2label else None


def id2label_from(labels: list[str] | None, num_labels: int) -> dict[int, str]:
    if labels is None:
        return {i: f"LABEL_{i}" for i in range(num_labels)}
    labels = [str(x) for x in labels]
    if len(labels) != num_labels:
        raise ValueError(f"{len(labels)} label names for num_labels={num_labels}")
    if len(set(labels)) != len(labels):
        raise ValueError(f"label names are not unique: {labels}")
    return dict(enumerate(labels))
