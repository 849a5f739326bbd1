"""The ``lugpi`` command: one Typer app, one module per subcommand.

Exit codes: 0 success, 1 a problem the user can fix (bad value, missing data,
corrupt store), 3 an unexpected internal
error (a bug: rerun with ``-v`` for the traceback), 130 interrupted.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
try:  # recent typer carries its own copy of click
    from typer._click.exceptions import BadParameter, ClickException, NoArgsIsHelpError
    from typer.exceptions import Abort
except ImportError:  # older typer: plain click
    from click.exceptions import Abort, BadParameter, ClickException, NoArgsIsHelpError
from typer.core import TyperGroup

from lugpi_cli import __version__, console
from lugpi_cli.errors import EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_USER_ERROR, UserError, naming_given_value


def _json_error(message: str, hint: str | None, code: int) -> None:
    """Under ``--json`` a failed command still prints one JSON object on stdout, for scripts."""
    import json

    sys.stdout.write(json.dumps({"error": message, "hint": hint or None, "exit_code": code}) + "\n")
    sys.stdout.flush()


def _unwrapped(message: str) -> str:
    """An error raised in a DataLoader worker reaches here re-raised by torch with the worker's whole traceback
    as its message ("Caught CorruptRecord in DataLoader worker process 0. Original Traceback ..."): the
    original message is what the user needs (the traceback stays behind ``-v``)."""
    head, _, rest = message.partition("\n")
    caught = re.fullmatch(r"Caught (\w+) in DataLoader worker process \d+\.", head)
    at = rest.rfind(f"{caught.group(1)}: ") if caught else -1
    return rest[at + len(caught.group(1)) + 2:].strip() if caught and at >= 0 else message


def _report(exc: BaseException, code: int, prefix: str = "Error") -> int:
    err = console.err_console()
    if console.state().verbose:
        err.print_exception(show_locals=False)
    message = _unwrapped(getattr(exc, "message", None) or str(exc) or type(exc).__name__)
    if console.state().json and not console.state().emitted:
        _json_error(message, getattr(exc, "hint", None), code)
    err.print(f"[bold red]{escape(prefix)}:[/] {escape(message)}", markup=True, highlight=False)
    hint = getattr(exc, "hint", None)
    if hint:
        err.print(hint, markup=False, highlight=False)
    if code == EXIT_INTERNAL and not console.state().verbose:
        err.print("This is a bug in lugpi; rerun with -v for the traceback and report it.", highlight=False)
    return code


def _interrupted(args: list[str]) -> int:
    """Ctrl-C: one line saying what was kept and how to resume; under ``--json`` one object too."""
    import json

    note = console.interrupt_report()
    if (console.state().json or "--json" in args) and not console.state().emitted:
        sys.stdout.write(json.dumps({**note, "exit_code": EXIT_INTERRUPTED}) + "\n")
        sys.stdout.flush()
    console.err_console().print(f"Interrupted: {note['message']}.", markup=False, highlight=False)
    return EXIT_INTERRUPTED


_GLOBAL_FLAGS = {"-v", "--verbose", "-q", "--quiet"}
_GLOBAL_VALUED = {"-w", "--workspace"}


def hoist_global_options(args: list[str]) -> list[str]:
    """Move global options written after the subcommand to the front.

    ``lugpi store verify -v`` then means ``lugpi -v store verify``. Arguments
    after ``--`` are left alone.
    """
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest.extend(args[i:])
            break
        if i > 0 and (arg in _GLOBAL_FLAGS or (arg.startswith("-v") and set(arg[1:]) == {"v"})):
            front.append(arg)
        elif i > 0 and arg in _GLOBAL_VALUED and i + 1 < len(args):
            front.extend(args[i:i + 2])
            i += 1
        elif i > 0 and arg.split("=", 1)[0] == "--workspace":
            front.append(arg)
        else:
            rest.append(arg)
        i += 1
    return front + rest


class _Interrupted(Exception):
    """Ctrl-C, carried past typer (which would turn it into a silent exit 130) to :meth:`LugpiGroup.main`."""


def _finite_only(param: Any) -> None:
    """Make a float option refuse NaN and ±inf (after typer has converted it, before the command runs)."""
    import math

    given = param.callback

    def check(ctx: Any, p: Any, value: Any) -> Any:
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(item, float) and not math.isfinite(item):
                raise BadParameter("not a finite number (NaN and ±inf are refused)", ctx=ctx, param=p)
        return given(ctx, p, value) if given is not None else value

    param.callback = check


def refuse_non_finite(command: Any) -> None:
    """The one place float options are checked for NaN/inf: every float option of every command (and so of
    every recipe key, which goes through the same parsers). Grid values are checked by ``Option.check``."""
    for param in getattr(command, "params", []):
        descriptor = getattr(param, "type_descriptor", None)
        if getattr(descriptor, "annotation", None) is float and not getattr(param, "_lugpi_finite", False):
            _finite_only(param)
            param._lugpi_finite = True
    for sub in getattr(command, "commands", {}).values():
        refuse_non_finite(sub)


class LugpiGroup(TyperGroup):
    """Maps exceptions to exit codes and one clear message (traceback only with -v)."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt as exc:
            raise _Interrupted() from exc

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        refuse_non_finite(self)

    def main(self, args: Any = None, prog_name: Any = None, complete_var: Any = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        from lugpi_store.errors import StoreError

        console.set_state(console.State())
        console.running_bars.clear()
        args = hoist_global_options(list(sys.argv[1:] if args is None else args))
        console.push_invocation(args)  # recorded in run configs and model cards
        try:
            rv = super().main(args=args, prog_name=prog_name or "lugpi", complete_var=complete_var,
                              standalone_mode=False, **extra)
            code = rv if isinstance(rv, int) else 0
            if code == 0:
                console.state().flush_stores()  # deferred meta records of a command that wrote no record
        except NoArgsIsHelpError as exc:
            typer.echo(exc.ctx.get_help() if exc.ctx else str(exc))
            code = 0
        except ClickException as exc:  # bad option value, missing argument, ...
            from typer import rich_utils

            if isinstance(exc, BadParameter):
                exc.message = naming_given_value(exc.message, exc, args)
            rich_utils.rich_format_error(exc)
            code = EXIT_USER_ERROR
            if console.state().json or "--json" in args:
                _json_error(exc.format_message(), None, code)
        except (_Interrupted, Abort, KeyboardInterrupt):
            code = _interrupted(args)
        except (UserError, StoreError) as exc:
            if "--json" in args[:args.index("--") if "--" in args else len(args)]:
                console.state().json = True  # refused before the command parsed its own --json (bad workspace)
            code = _report(exc, getattr(exc, "exit_code", EXIT_USER_ERROR))
        except BrokenPipeError:  # `lugpi ... | head`: the reader has what it wanted
            import os

            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())  # no second error when Python flushes stdout at exit
            code = 0
        except Exception as exc:  # noqa: BLE001 - the last line of defence
            code = _report(exc, EXIT_INTERNAL, prefix=f"Unexpected {type(exc).__name__}")
        console.pop_invocation()
        if standalone_mode:
            sys.exit(code)
        return code


def _hide_flag_metavars() -> None:
    """Flags and counters take no value, so help shows no ``<bool>`` / ``<int>`` after them."""
    from typer.core import TyperOption

    if getattr(TyperOption.display_type_rich, "_lugpi", False):
        return
    shown = TyperOption.display_type_rich

    def display_type_rich(self: Any, ctx: Any) -> str | None:
        return None if self.is_flag or self.count else shown(self, ctx)

    display_type_rich._lugpi = True  # type: ignore[attr-defined]
    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


_hide_flag_metavars()

app = typer.Typer(
    cls=LugpiGroup,
    name="lugpi",
    help="Learning Using Generated Privileged Information: generate images for texts, embed them, "
    "train a multimodal teacher, distil a text-only student. Every stage caches into one LMDB store.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"lugpi {__version__}")
        raise typer.Exit()


@app.callback()
def _global_options(
    workspace: Annotated[
        Path,
        typer.Option(
            "--workspace", "-w", envvar=console.WORKSPACE_ENV, show_envvar=True,
            help="Holds the feature store (store/) and training runs (runs/).",
        ),
    ] = Path(console.DEFAULT_WORKSPACE),
    json_out: Annotated[
        bool, typer.Option("--json", help="Print the result as one JSON object on stdout; human output goes to stderr.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No human output (errors and --json still print).")] = False,
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help="More detail; tracebacks on errors.")] = 0,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    console.set_state(console.State(workspace=workspace, json=json_out, quiet=quiet, verbose=verbose))
    check_workspace(workspace)


def check_workspace(workspace: Path) -> None:
    """Refuse, for every command, a workspace that is (or lies inside) something other than a directory."""
    from lugpi_cli.workspace import Workspace

    Workspace(workspace).check_usable()


def _register() -> None:
    from lugpi_cli.commands import COMMANDS

    for register in COMMANDS:
        register(app)


_register()


def main() -> None:
    """Console-script entry point."""
    app()
