"""Errors a user can cause, and how the CLI reports them.

Library code raises :class:`UserError` (or a subclass) for anything the user can
fix: a bad path, a bad option value, missing data. The CLI prints its message
and hint and exits with :data:`EXIT_USER_ERROR`, without a traceback unless
``-v`` was given. Any other exception is a bug: exit :data:`EXIT_INTERNAL`.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_USER_ERROR = 1
EXIT_INTERNAL = 3
EXIT_INTERRUPTED = 130


class UserError(Exception):
    """A problem the user can fix. ``hint`` says what to do."""

    exit_code = EXIT_USER_ERROR

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n{self.hint}"


def naming_given_value(message: str, exc: BaseException, args: list[str]) -> str:
    """``message`` with ``(got 'VALUE')`` appended when the value the parser rejected is found in ``args``."""
    value = given_value(exc, args)
    return message if value is None or repr(value) in message else f"{message} (got {value!r})"


def given_value(exc: BaseException, args: list[str]) -> str | None:
    """The command-line value a :class:`BadParameter` is about (``--opt V`` or ``--opt=V``), if found."""
    param = getattr(exc, "param", None)
    names = set(getattr(param, "opts", []) or []) | set(getattr(param, "secondary_opts", []) or [])
    if not names:
        return None
    found = None
    for i, arg in enumerate(args):
        if arg in names and i + 1 < len(args):
            found = args[i + 1]
        elif "=" in arg and arg.split("=", 1)[0] in names:
            found = arg.split("=", 1)[1]
    return found
