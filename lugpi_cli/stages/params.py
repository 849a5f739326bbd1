"""Stage parameters: one dataclass per stage, the single source of its flags, recipe keys and grid keys.

Each field of a stage's ``Params`` carries its type (the annotation), its default and, in its metadata, the
help text, the flag it is spelled with and its bounds (:func:`opt`). From that one declaration

- the command's typer options are built (:func:`lugpi_cli.commands.options.params_options`),
- a recipe table or a grid cell is parsed and checked (:meth:`StageParams.from_mapping`), and
- the valid keys named in error messages are listed,

so the three cannot drift. ``from_mapping`` checks types and bounds, then the stage's own
``check()`` (cross-option rules, the library's config checks), once, for every entry point.
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from lugpi_cli.errors import UserError
from lugpi_cli.loss_specs import Option


@dataclass(frozen=True)
class Meta:
    """How a parameter is spelled and checked (besides its type and default)."""

    help: str = ""
    flag: str | None = None  # the long flag when it is not --<name with dashes>
    short: str | None = None
    choices: tuple[Any, ...] | None = None  # checked here; leave None where the library names bad values itself
    min: float | None = None  # inclusive lower bound (also given to typer for int options)
    multiple: bool = False  # repeatable flag / list in a recipe
    negatable: bool = False  # --x/--no-x for an Optional[bool]
    show_default: bool = True
    panel: str | None = None  # rich help panel
    cli: bool = True  # a flag of the command (False: recipe/grid key only)


def opt(default: Any, help: str = "", **meta: Any) -> Any:
    """A stage parameter: ``steps: int = opt(50, "Denoising steps.", min=1)``."""
    return dataclasses.field(default=default, metadata={"lugpi": Meta(help=help, **meta)})


@dataclass(frozen=True)
class ParamField:
    """One parameter as every entry point sees it."""

    name: str  # the attribute
    type: type  # bool, int, float, str, or a Path-like class
    nullable: bool
    default: Any
    meta: Meta

    @property
    def flag(self) -> str:
        return self.meta.flag or "--" + self.name.replace("_", "-")

    @property
    def key(self) -> str:
        """The recipe key: the long flag without its dashes (``format`` for ``--format``)."""
        return self.flag[2:].replace("-", "_")

    @property
    def option(self) -> Option:
        base = self.type if self.type in (bool, int, float, str) else str
        return Option(base, self.default, self.meta.help, choices=self.meta.choices, min=self.meta.min)

    def coerce(self, value: Any, where: str) -> Any:
        """A value from the command line (typed by typer), a TOML table or a grid level, checked."""
        if self.meta.multiple:
            if value is None:  # an unset repeatable flag
                return ()
            items = value if isinstance(value, (list, tuple)) else [value]
            return tuple(self._one(item, where) for item in items)
        if value is None and (self.nullable or self.default is None):
            return None
        return self._one(value, where)

    def _one(self, value: Any, where: str) -> Any:
        if isinstance(value, (dict, list, tuple)):
            raise UserError(f"{where}{self.key} must be a single value, got {value!r}")
        if self.type is bool and not isinstance(value, bool):
            raise UserError(f"{where}{self.key} takes true or false, got {value!r}")
        if self.type not in (bool, int, float, str):  # a path
            return self.type(value) if isinstance(value, str) else value
        if self.type is str and isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)  # size = 512 in a TOML file
        option = self.option
        try:
            return option.parse(value) if isinstance(value, str) else option.check(value)
        except ValueError as exc:
            reason = str(exc).rsplit(", got ", 1)[0]  # "expected an integer", "expected a finite number"
            raise UserError(f"{where}{self.key}: {reason} (got {value!r})",
                            f"{self.key}: {self.meta.help}" if self.meta.help else None) from exc


def _base_type(annotation: Any) -> tuple[type, bool]:
    """``Optional[int]`` -> (int, True); ``float`` -> (float, False); ``tuple[str, ...]`` -> (str, False)."""
    args = typing.get_args(annotation)
    origin = typing.get_origin(annotation)
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        inner = [a for a in args if a is not type(None)]
        return _base_type(inner[0])[0], type(None) in args
    if origin is tuple:
        return _base_type(args[0])[0], False
    return annotation, False


class StageParams:
    """Mixin of every stage's frozen ``Params`` dataclass."""

    STAGE: ClassVar[str] = ""
    #: keys a caller supplies beside the parameters (not typed or checked here), e.g. ``dataset``
    EXTRA: ClassVar[tuple[str, ...]] = ()

    @classmethod
    @functools.cache
    def param_fields(cls) -> dict[str, ParamField]:
        hints = typing.get_type_hints(cls)
        out = {}
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            meta = f.metadata.get("lugpi")
            if meta is None:
                continue
            kind, nullable = _base_type(hints[f.name])
            out[f.name] = ParamField(f.name, kind, nullable, f.default, meta)
        return out

    @classmethod
    def keys(cls) -> list[str]:
        """The keys a recipe table may hold (the long flags' names)."""
        return [f.key for f in cls.param_fields().values()]

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], *, where: str = "", **extra: Any) -> Any:
        """Parse, check and build: unknown keys named with the valid ones, each value by its field,
        then the stage's ``check()``. ``where`` prefixes messages (``"x.toml: generate: "``)."""
        by_key = {f.key: f for f in cls.param_fields().values()}
        by_key.update({f.name: f for f in cls.param_fields().values()})
        kwargs: dict[str, Any] = {}
        for key, value in values.items():
            field = by_key.get(key)
            if field is None:
                raise UserError(f"{where}unknown key {key!r}", f"Valid keys: {', '.join(sorted(cls.keys()))}.")
            kwargs[field.name] = field.coerce(value, where)
        try:
            params = cls(**kwargs, **extra)  # type: ignore[call-arg]
            params.check()
        except UserError as exc:
            if where and not exc.message.startswith(where):
                raise UserError(f"{where}{exc.message}", exc.hint) from exc
            raise
        return params

    def check(self) -> None:
        """Cross-option rules and the library's own config checks (raise UserError naming the value)."""

    def values(self) -> dict[str, Any]:
        """The parameters by name (what ``from_mapping`` takes back)."""
        return {name: getattr(self, name) for name in self.param_fields()}

    def replace(self, **changes: Any) -> Any:
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]
