"""Text-only classifier: the distilled student, and the plain fine-tuned baseline/teacher.

A thin wrapper around ``AutoModelForSequenceClassification`` whose forward
also returns the embedding e_S "just before the classification layer" (the
LUGPI paper's definition), captured generically by a forward pre-hook on the
last ``nn.Linear`` with ``out_features == num_labels`` (DistilBERT:
``classifier``, input ``dropout(relu(pre_classifier(h[:, 0])))``; BERT:
``classifier``, input ``dropout(pooler_output)``; RoBERTa:
``classifier.out_proj``). When that input is the output of an ``nn.Dropout``
module, e_S is the dropout's *input*: in training the embedding terms (LUGPI's
L2, FitNet, RKD, SP) then match a clean vector, as the teacher's e_T was cached
in eval mode, not one whose expected squared norm dropout inflates by p/(1-p);
in eval mode the two are the same. Which dropout (if any) feeds the head is
found once, by the first forward (hooks on every ``nn.Dropout``); later
forwards hook only that module and the head. For decoder models whose head scores every
token (GPT-2 ``score``), the row of the last non-pad token is kept, as the
model itself does for its logits.

:meth:`TextClassifier.save_pretrained` writes a plain Hugging Face model
directory: ``transformers.pipeline("text-classification", model=dir)`` works
with no lugpi code and answers with the ``id2label`` names.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from lugpi_cli.models.common import (
    CONFIG_NAME,
    INIT_CHOICES,
    ModelOutput,
    check_choice,
    id2label_from,
    load_hf_config,
    read_model_config,
    text_inputs,
    write_model_config,
    xavier_init_,
)

__all__ = ["TextClassifier", "find_classifier_layer"]


def find_classifier_layer(model: nn.Module, num_labels: int) -> tuple[str, nn.Linear]:
    """``(name, layer)``: the last ``nn.Linear`` of ``model`` with ``out_features == num_labels``."""
    found = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear) and m.out_features == num_labels]
    if not found:
        raise ValueError(f"{type(model).__name__} has no nn.Linear with out_features == num_labels ({num_labels})")
    return found[-1]


class TextClassifier(nn.Module):
    """A Hugging Face sequence classifier returning ``ModelOutput(logits, embedding)``.

    Build it with :meth:`from_pretrained` (a hub id or a local directory), or
    wrap an existing ``...ForSequenceClassification`` module.
    """

    modality = "text"

    def __init__(self, model: nn.Module, *, text_model: str | None = None, init: str = "pretrained"):
        super().__init__()
        self.model = model
        self.num_labels = int(model.config.num_labels)
        self.head_name, head = find_classifier_layer(model, self.num_labels)
        self.embedding_dim = int(head.in_features)
        self.text_model = text_model if text_model is not None else getattr(model.config, "_name_or_path", None)
        self.init = init
        # the name of the nn.Dropout whose output the head reads (None: none), found by the first forward
        self._head_dropout: str | None = None
        self._probed = False

    @property
    def config(self):
        """The wrapped model's Hugging Face config."""
        return self.model.config

    @property
    def id2label(self) -> dict[int, str]:
        return {int(k): v for k, v in self.model.config.id2label.items()}

    @classmethod
    def from_pretrained(
        cls,
        text_model: str | Path,
        num_labels: int | None = None,
        *,
        labels: list[str] | None = None,
        init: str = "pretrained",
        **config_overrides: Any,
    ) -> TextClassifier:
        """A classifier on ``text_model`` with a new ``num_labels``-way head.

        ``labels`` (class names in index order) become ``id2label``/``label2id``;
        ``num_labels`` defaults to ``len(labels)``, else to the checkpoint's.
        ``init="pretrained"`` loads the checkpoint's weights (a new head gets the
        model's own default init); ``"xavier"`` builds from the config only and
        re-initialises every weight Xavier-normal. ``config_overrides`` go to
        the config (e.g. ``seq_classif_dropout=0.1``).
        """
        from transformers import AutoModelForSequenceClassification

        check_choice("init", init, INIT_CHOICES)
        if num_labels is None and labels is not None:
            num_labels = len(labels)
        kwargs: dict[str, Any] = dict(config_overrides)
        if num_labels is not None:
            id2label = id2label_from(labels, int(num_labels))
            kwargs.update(num_labels=int(num_labels), id2label=id2label, label2id={v: k for k, v in id2label.items()})
        config = load_hf_config(text_model, **kwargs)
        if init == "pretrained":
            # a checkpoint that already has a head of another size gets a new one
            model = AutoModelForSequenceClassification.from_pretrained(
                str(text_model), config=config, ignore_mismatched_sizes=True
            )
        else:
            model = AutoModelForSequenceClassification.from_config(config)
            xavier_init_(model)
        return cls(model, text_model=str(text_model), init=init)

    # -- forward ---------------------------------------------------------------------

    def forward(self, batch: dict[str, Any]) -> ModelOutput:
        """Reads ``input_ids``, ``attention_mask`` (and ``token_type_ids`` if the model takes them)."""
        inputs = text_inputs(self.model, batch)
        head = self.model.get_submodule(self.head_name)
        if not self._probed:
            logits, emb = self._probe(inputs, head)
        else:
            logits, emb = self._capture(inputs, head)
        if emb.dim() == 3:  # per-token head (GPT-2 style): keep the row the model pools its logits from
            emb = emb[torch.arange(emb.shape[0], device=emb.device), self._last_token_index(inputs["input_ids"])]
        return ModelOutput(logits=logits, embedding=emb)

    def _probe(self, inputs: dict[str, Tensor], head: nn.Module) -> tuple[Tensor, Tensor]:
        """The first forward: hooks on every ``nn.Dropout`` find the one (if any) whose output the head reads.

        Its name is kept in ``_head_dropout`` (``None``: the head reads no dropout's output), so later
        forwards hook that module and the head only (:meth:`_capture`); the structure of a model's
        forward does not change between calls.
        """
        captured: dict[str, Any] = {}
        last_dropout: list[tuple[str, Tensor, Tensor]] = []  # (name, input, output) of the latest nn.Dropout call

        def on_dropout(name):
            def hook(_module, args, output):
                last_dropout[:] = [(name, args[0], output)]
            return hook

        def on_head(_module, args):
            dropped = last_dropout and last_dropout[0][2] is args[0]
            captured["x"] = last_dropout[0][1] if dropped else args[0]  # e_S before the head's dropout
            captured["dropout"] = last_dropout[0][0] if dropped else None

        handles = [head.register_forward_pre_hook(on_head)]
        handles += [m.register_forward_hook(on_dropout(n)) for n, m in self.model.named_modules()
                    if isinstance(m, nn.Dropout)]
        try:
            logits = self.model(**inputs).logits
        finally:
            for handle in handles:
                handle.remove()
        self._head_dropout, self._probed = captured["dropout"], True
        return logits, captured["x"]

    def _capture(self, inputs: dict[str, Tensor], head: nn.Module) -> tuple[Tensor, Tensor]:
        """e_S with two hooks: the head's input, or the input of the dropout found by :meth:`_probe`."""
        captured: dict[str, Tensor] = {}
        last_dropout: list[tuple[Tensor, Tensor]] = []

        def on_dropout(_module, args, output):
            last_dropout[:] = [(args[0], output)]

        def on_head(_module, args):
            dropped = last_dropout and last_dropout[0][1] is args[0]
            captured["x"] = last_dropout[0][0] if dropped else args[0]

        handles = [head.register_forward_pre_hook(on_head)]
        if self._head_dropout is not None:
            handles.append(self.model.get_submodule(self._head_dropout).register_forward_hook(on_dropout))
        try:
            logits = self.model(**inputs).logits
        finally:
            for handle in handles:
                handle.remove()
        return logits, captured["x"]

    def _last_token_index(self, input_ids: Tensor) -> Tensor:
        pad = getattr(self.model.config, "pad_token_id", None)
        if pad is None:
            return torch.full((input_ids.shape[0],), input_ids.shape[1] - 1, device=input_ids.device)
        non_pad = (input_ids != pad).to(torch.long)
        positions = torch.arange(input_ids.shape[-1], device=input_ids.device)
        return (positions * non_pad).argmax(-1)

    # -- saving ----------------------------------------------------------------------

    def save_pretrained(self, directory: str | Path, tokenizer: Any = None) -> Path:
        """A plain Hugging Face model directory (config with ``id2label``, safetensors weights, tokenizer)."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(str(d))
        if tokenizer is not None:
            tokenizer.save_pretrained(str(d))
        return d

    @property
    def model_config(self) -> dict[str, Any]:
        """What :meth:`save` writes to ``lugpi_model.json`` (the Hugging Face config holds the rest)."""
        return {
            "kind": "text",
            "modality": "text",
            "text_model": self.text_model,
            "num_labels": self.num_labels,
            "embedding_dim": self.embedding_dim,
            "init": self.init,
            "id2label": {str(k): v for k, v in self.id2label.items()},
        }

    def save(self, directory: str | Path, tokenizer: Any = None) -> Path:
        """:meth:`save_pretrained` plus ``lugpi_model.json`` (so :func:`~lugpi_cli.models.load_model` knows the kind)."""
        d = self.save_pretrained(directory, tokenizer)
        write_model_config(d, self.model_config)
        return d

    @classmethod
    def load(cls, directory: str | Path) -> TextClassifier:
        """Load a directory written by :meth:`save` or :meth:`save_pretrained` (eval mode)."""
        from transformers import AutoModelForSequenceClassification

        d = Path(directory)
        text_model = init = None
        if (d / CONFIG_NAME).is_file():
            cfg = read_model_config(d)
            text_model, init = cfg.get("text_model"), cfg.get("init")
        load_hf_config(d)  # a UserError naming the directory when it is not a model
        model = AutoModelForSequenceClassification.from_pretrained(str(d))
        return cls(model, text_model=text_model, init=init or "pretrained").eval()
