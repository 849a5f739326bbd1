"""Every built-in distillation method's options and needs, without torch.

The loss classes (:mod:`lugpi_cli.losses`, ``torch.nn.Module`` subclasses) hold their equations; what
the CLI, recipes, ablation grids and plans need *about* a method lives here, where reading it costs no
torch import: its option table (name -> :class:`Option`: type, default, help, allowed values, lower
bound), its upper bounds and cross-option checks, and which cached teacher outputs it reads for
given option values. Each loss class takes its ``spec`` from :data:`LOSS_SPECS` (``options``,
``check_options`` and ``teacher_fields`` come from it), so there is one source for each.

:func:`find_spec` / :func:`option_tables` also see methods registered at run time (plugins, tests)
once :mod:`lugpi_cli.losses` is imported; before that, the built-in ones.
"""

from __future__ import annotations

import difflib
import math
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lugpi_cli.errors import UserError

__all__ = ["LOSS_SPECS", "LossOptionError", "LossSpec", "Option", "find_spec", "option_tables",
           "parse_options", "resolve_loss", "unknown_method"]


class LossOptionError(UserError, ValueError):
    """A bad loss name, option name or option value (a UserError and a ValueError)."""


_TRUE = {"1", "true", "yes", "on", "t", "y"}
_FALSE = {"0", "false", "no", "off", "f", "n"}


@dataclass(frozen=True)
class Option:
    """One hyperparameter of a loss: its type, default and allowed values.

    ``type`` is one of ``bool``, ``int``, ``float``, ``str``. ``choices`` limits
    the allowed values; ``min`` is a lower bound (exclusive when
    ``min_exclusive``).
    """

    type: type
    default: Any
    help: str = ""
    choices: tuple[Any, ...] | None = None
    min: float | None = None
    min_exclusive: bool = False

    def describe(self) -> str:
        if self.choices:
            return "|".join(map(str, self.choices))
        bound = ""
        if self.min is not None:
            bound = f" {'>' if self.min_exclusive else '>='} {self.min:g}"
        return f"{self.type.__name__}{bound}"

    def parse(self, text: str) -> Any:
        """Parse a command-line string (``"0.5"``, ``"true"``, ``"both"``) and check it."""
        if not isinstance(text, str):
            return self.check(text)
        s = text.strip()
        if self.type is bool:
            if s.lower() in _TRUE:
                return True
            if s.lower() in _FALSE:
                return False
            raise ValueError(f"expected true or false, got {text!r}")
        if self.type is int:
            try:
                value: Any = int(s)
            except ValueError:
                raise ValueError(f"expected an integer, got {text!r}") from None
        elif self.type is float:
            try:
                value = float(s)
            except ValueError:
                raise ValueError(f"expected a number, got {text!r}") from None
        else:
            value = s
        return self.check(value)

    def check(self, value: Any) -> Any:
        """Return ``value`` coerced to the option's type, or raise ValueError saying why not."""
        t = self.type
        if t is bool:
            if not isinstance(value, bool):
                raise ValueError(f"expected true or false, got {value!r}")
        elif t is int:
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"expected an integer, got {value!r}")
        elif t is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"expected a number, got {value!r}")
            value = float(value)
            if not math.isfinite(value):
                raise ValueError(f"expected a finite number, got {value!r}")
        elif t is str and not isinstance(value, str):
            raise ValueError(f"expected a string, got {value!r}")
        if self.choices is not None and value not in self.choices:
            raise ValueError(f"expected one of {', '.join(map(str, self.choices))}; got {value!r}")
        if self.min is not None and (value < self.min or (self.min_exclusive and value == self.min)):
            raise ValueError(f"must be {'>' if self.min_exclusive else '>='} {self.min:g}, got {value!r}")
        return value


def describe_options(options: Mapping[str, Option]) -> str:
    if not options:
        return "(none)"
    return ", ".join(f"{k}={opt.default} ({opt.describe()})" for k, opt in options.items())


def check_values(name: str, options: Mapping[str, Option], values: Mapping[str, Any], *,
                 parse: bool = False) -> dict[str, Any]:
    """Defaults filled in, each value checked (``parse``: values are strings); LossOptionError otherwise."""
    unknown = [k for k in values if k not in options]
    if unknown:
        raise LossOptionError(f"unknown option {unknown[0]!r} for loss {name!r}",
                              hint=f"valid options: {describe_options(options)}")
    out = {k: opt.default for k, opt in options.items()}
    for key, value in values.items():
        opt = options[key]
        try:
            out[key] = opt.parse(value) if parse else opt.check(value)
        except ValueError as exc:
            raise LossOptionError(
                f"invalid value {value!r} for option {key!r} of loss {name!r}: {exc}",
                hint=f"{key}: {opt.describe()}" + (f" ({opt.help})" if opt.help else ""),
            ) from None
    return out


@dataclass(frozen=True)
class LossSpec:
    """What a method takes and reads: options, upper bounds (which ``Option`` lacks), a cross-option check,
    and ``reads(hparams)``: the cached teacher outputs read with those values (all of them by default)."""

    name: str
    options: dict[str, Option]
    all_teacher_fields: frozenset[str] = frozenset()
    at_most: dict[str, float] = field(default_factory=dict)
    cross_check: Callable[[dict[str, Any]], None] | None = None
    reads: Callable[[dict[str, Any]], frozenset[str]] | None = None

    def check_options(self, values: Mapping[str, Any], *, parse: bool = False, name: str | None = None
                      ) -> dict[str, Any]:
        """Every option's value (defaults filled in), checked; ``name`` is the method named in errors."""
        name = name or self.name
        out = check_values(name, self.options, values, parse=parse)
        for key, top in self.at_most.items():
            if out[key] > top:
                opt = self.options[key]
                raise LossOptionError(
                    f"invalid value {values.get(key, out[key])!r} for option {key!r} of loss {name!r}: "
                    f"must be <= {top:g}, got {out[key]!r}",
                    hint=f"{key}: a number in [{opt.min:g}, {top:g}] ({opt.help})")
        if self.cross_check is not None:
            self.cross_check(out)
        return out

    def teacher_fields(self, hparams: Mapping[str, Any]) -> frozenset[str]:
        """The cached teacher outputs read with these (checked) option values."""
        return self.all_teacher_fields if self.reads is None else self.reads(dict(hparams))


# -- the built-in methods' tables (the loss classes in lugpi_cli/losses/ hold the equations) -----------

def _if(condition: bool, *fields: str) -> set[str]:
    return set(fields) if condition else set()


def _lugpi_reads(h: dict[str, Any]) -> frozenset[str]:
    return frozenset(_if(h["alpha"] > 0, "logits") | _if(h["beta"] > 0, "embedding"))


def _armada_reads(h: dict[str, Any]) -> frozenset[str]:
    return frozenset(_if(h["alpha"] > 0, "logits") | _if(h["alpha"] > 0 and h["gamma"] > 0, "logits_aux")
                     | _if(h["beta"] > 0, "manifold"))


#: MSD's three distillation terms, in the order of every (B, 3) weight tensor.
MSD_TERMS = ("multi", "text", "image")
#: Which cached teacher output each MSD term distils: t(x), t(x^t) (image dropped), t(x^v) (text dropped).
MSD_TEACHER_FIELDS = {"multi": "logits", "text": "logits_text", "image": "logits_image"}
MSD_WEIGHTINGS = ("population", "importance", "correctness", "meta")
ARMADA_MANIFOLDS = ("cosine", "euclid", "pointwise")


def msd_active_terms(h: Mapping[str, Any]) -> tuple[str, ...]:
    """The MSD terms in use: none at ``lam >= 1``; with population weights those weighted above 0."""
    if h["lam"] >= 1:
        return ()
    if h["weighting"] == "population":
        return tuple(m for m, w in zip(MSD_TERMS, (h["w_multi"], h["w_text"], h["w_image"])) if w > 0)
    return MSD_TERMS


def _msd_cross_check(h: dict[str, Any]) -> None:
    if h["weighting"] == "meta" and h["lam"] >= 1:
        raise LossOptionError("msd with weighting='meta' and lam=1 has no distillation term to weight",
                              hint="lower lam (the paper uses 0.5 or 0.6), or drop --weighting meta")


_SPECS = [
    LossSpec("lugpi", {
        "alpha": Option(float, 3.0, "weight of the soft-label term CE(t, s)", min=0.0),
        "beta": Option(float, 1.0, "weight of the embedding term ||e_T - e_S||^2", min=0.0),
        "tau": Option(float, 8.0, "temperature softening the teacher logits", min=0.0, min_exclusive=True),
        "soften": Option(str, "teacher", "which side tau softens", choices=("teacher", "both")),
        "tau2": Option(bool, False, "multiply the soft term by tau^2 (Hinton's variant)"),
        "l2_reduction": Option(
            str, "sum", "reduce the squared difference over embedding dims", choices=("sum", "mean")
        ),
    }, frozenset({"logits", "embedding"}), reads=_lugpi_reads),
    LossSpec("kd", {
        "lam": Option(float, 0.5, "weight in [0, 1] of the hard-label CE; the KL term gets 1 - lam", min=0.0),
        "tau": Option(float, 4.0, "temperature softening teacher and student", min=0.0, min_exclusive=True),
    }, frozenset({"logits"}), at_most={"lam": 1.0},
        reads=lambda h: frozenset(_if(h["lam"] < 1, "logits"))),
    LossSpec("fitnet", {
        "beta": Option(float, 1.0, "weight of the hint term ||r(e_S) - e_T||^2", min=0.0),
        "l2_reduction": Option(str, "mean", "reduce the squared difference over embedding dims (mean = MSE)",
                               choices=("mean", "sum")),
    }, frozenset({"embedding"}), reads=lambda h: frozenset(_if(h["beta"] > 0, "embedding"))),
    LossSpec("armada", {
        "alpha": Option(float, 0.5, "weight in [0, 1] of L_out; L_task gets 1 - alpha", min=0.0),
        "beta": Option(float, 1.0, "weight of the manifold-alignment term", min=0.0),
        "gamma": Option(float, 1.0, "weight of the auxiliary classifier's terms", min=0.0),
        "tau": Option(float, 5.0, "temperature of the output-matching MSE", min=0.0, min_exclusive=True),
        "manifold": Option(str, "cosine", "manifold-alignment loss", choices=ARMADA_MANIFOLDS),
    }, frozenset({"logits", "logits_aux", "manifold"}), at_most={"alpha": 1.0}, reads=_armada_reads),
    LossSpec("ema", {
        "weight": Option(float, 1.0, "weight of the KL to the EMA teacher", min=0.0),
        "tau": Option(float, 1.0, "temperature softening EMA teacher and student", min=0.0, min_exclusive=True),
        "ema_decay": Option(float, 0.999, "EMA decay d in [0, 1] of the teacher's weights (trainer)", min=0.0),
        "mixup": Option(float, 0.0, "mixup Beta(A, A) parameter A, 0 = off (trainer)", min=0.0),
    }, frozenset(), at_most={"ema_decay": 1.0}),
    LossSpec("msd", {
        "weighting": Option(str, "population", "how the three terms are weighted", choices=MSD_WEIGHTINGS),
        "lam": Option(float, 0.5, "weight in [0, 1] of the hard-label CE; the distillation terms get 1 - lam",
                      min=0.0),
        "tau": Option(float, 4.0, "temperature softening teacher and student in the KL terms", min=0.0,
                      min_exclusive=True),
        "w_multi": Option(float, 1.0, "population weight in [0, 1] of KL(t(x) || s)", min=0.0),
        "w_text": Option(float, 1.0, "population weight in [0, 1] of KL(t(x^t) || s) (image dropped)", min=0.0),
        "w_image": Option(float, 1.0, "population weight in [0, 1] of KL(t(x^v) || s) (text dropped)", min=0.0),
        "meta_hidden": Option(int, 100, "hidden units of the meta weight net", min=1),
        "meta_lr": Option(float, 1e-3, "beta: SGD learning rate of the meta weight net (Algorithm 1, line 5)",
                          min=0.0, min_exclusive=True),
        "meta_alpha": Option(float, 1.0, "alpha: SGD step size of the student's look-ahead (Algorithm 1, line 4)",
                             min=0.0, min_exclusive=True),
        "meta_every": Option(int, 1, "a meta step every this many training batches (trainer)", min=1),
    }, frozenset(MSD_TEACHER_FIELDS.values()), at_most={"lam": 1.0, "w_multi": 1.0, "w_text": 1.0, "w_image": 1.0},
        cross_check=_msd_cross_check,
        reads=lambda h: frozenset(MSD_TEACHER_FIELDS[m] for m in msd_active_terms(h))),
    LossSpec("rkd", {
        "w_d": Option(float, 25.0, "weight of the distance-wise term", min=0.0),
        "w_a": Option(float, 50.0, "weight of the angle-wise term", min=0.0),
    }, frozenset({"embedding"}), reads=lambda h: frozenset(_if(h["w_d"] > 0 or h["w_a"] > 0, "embedding"))),
    LossSpec("sp", {
        "gamma": Option(float, 3000.0, "weight of the similarity-preserving term", min=0.0),
    }, frozenset({"embedding"}), reads=lambda h: frozenset(_if(h["gamma"] > 0, "embedding"))),
]
#: name -> LossSpec of every built-in method.
LOSS_SPECS: dict[str, LossSpec] = {spec.name: spec for spec in _SPECS}


# -- lookups: the live registry once the losses are imported, else the built-in tables -----------------

def _registry() -> dict[str, Any] | None:
    module = sys.modules.get("lugpi_cli.losses.registry")
    return None if module is None else module.LOSSES


def unknown_method(name: Any, choices) -> LossOptionError:
    close = difflib.get_close_matches(str(name), list(choices), n=1)
    hint = f"choose one of: {', '.join(sorted(choices))}"
    if close:
        hint = f"did you mean {close[0]!r}? " + hint
    return LossOptionError(f"unknown distillation method {name!r}", hint=hint)


def find_spec(name: str) -> Any:
    """What ``check_options`` / ``options`` are read from for method ``name``: its registered loss class when
    the losses are imported (methods registered at run time included), else its built-in spec."""
    registry = _registry()
    known = registry if registry is not None else LOSS_SPECS
    try:
        return known[name]
    except (KeyError, TypeError):
        raise unknown_method(name, known) from None


def option_tables() -> dict[str, dict[str, Option]]:
    """method name -> option name -> Option, for every method (``distill``'s flags are built from it)."""
    registry = _registry()
    known = registry if registry is not None else LOSS_SPECS
    return {name: dict(entry.options) for name, entry in sorted(known.items())}


def parse_options(name: str, raw: Mapping[str, Any]) -> dict[str, Any]:
    """Check option names and parse string values; only the given keys are returned (no defaults)."""
    full = find_spec(name).check_options(dict(raw), parse=True)
    return {k: full[k] for k in raw}


def resolve_loss(name: str, options: Mapping[str, Any]) -> tuple[dict[str, Any], frozenset[str]]:
    """``(hparams, teacher_fields)`` of ``build_loss(name, **options)``: every option's value and the cached
    teacher outputs it reads (none: it needs no teacher), without torch for the built-in methods."""
    entry = find_spec(name)
    if isinstance(entry, LossSpec):
        hparams = entry.check_options(options)
        return hparams, entry.teacher_fields(hparams)
    from lugpi_cli.losses import build_loss  # a registered class (the losses are imported already)

    loss = build_loss(name, **options)
    return loss.hparams, frozenset(loss.teacher_fields)
