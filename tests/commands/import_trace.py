"""Run ``lugpi`` commands in this process and record who first imports each heavy library.

Used by ``tests/commands/test_startup.py`` in a fresh interpreter (``python tests/commands/import_trace.py``),
so ``sys.modules`` starts clean. A meta-path finder sees every import request; the first
request for a watched top-level package (``torch``, ``transformers``, ...) records the chain of
frames that led to it: the modules being executed (``lugpi_cli.commands.ablate:13``) and the
lugpi functions running (``lugpi_cli.commands.store.info_command:61``), outermost first. A test
failure then names the module and line at fault, not just "torch was imported".

Usage::

    python tests/commands/import_trace.py OUT.json WATCHED [--import MODULE | -- ARGS [--next ARGS ...]]

``WATCHED`` is a comma-separated list of top-level packages. Each ``ARGS`` group is one
``lugpi`` invocation; groups run one after another in this process and the report says which
invocation was running when a watched package was first imported. This script imports
nothing beyond the standard library before the finder is installed.
"""

from __future__ import annotations

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
_OWN = ("lugpi_cli", "store")


class ImportTracer:
    """A meta-path finder that finds nothing and records the first import of each watched package."""

    def __init__(self, watched: list[str]) -> None:
        self.watched = set(watched)
        self.first: dict[str, dict] = {}
        self.invocation: str = "(startup)"
        self.preloaded = sorted(m for m in self.watched if m in sys.modules)

    def find_spec(self, name, path=None, target=None):  # noqa: ANN001 - importlib protocol
        top = name.partition(".")[0]
        if top in self.watched and top not in self.first and top not in sys.modules:
            self.first[top] = {"invocation": self.invocation, "chain": _chain()}
        return None


def _chain() -> list[str]:
    """Frames that led here, outermost first: executing modules and lugpi's own functions."""
    frames = []
    frame = sys._getframe(2)
    while frame is not None:
        code = frame.f_code
        module = frame.f_globals.get("__name__", "?")
        own = module.partition(".")[0] in _OWN
        if code.co_filename.startswith("<frozen") or module == "__main__":
            pass
        elif code.co_name == "<module>":
            frames.append(f"{module}:{frame.f_lineno}")
        elif own:
            frames.append(f"{module}.{getattr(code, 'co_qualname', code.co_name)}:{frame.f_lineno}")
        frame = frame.f_back
    return frames[::-1]


def _invocations(argv: list[str]) -> list[list[str]]:
    groups: list[list[str]] = [[]]
    for arg in argv:
        if arg == "--next":
            groups.append([])
        else:
            groups[-1].append(arg)
    return groups


def main(argv: list[str]) -> int:
    out, watched, *rest = argv
    tracer = ImportTracer([w for w in watched.split(",") if w])
    sys.meta_path.insert(0, tracer)
    codes: list[int] = []
    if rest[:1] == ["--import"]:
        tracer.invocation = f"import {rest[1]}"
        __import__(rest[1])
    else:
        from lugpi_cli.app import main as lugpi_main

        for args in _invocations(rest[1:] if rest[:1] == ["--"] else rest):
            tracer.invocation = "lugpi " + " ".join(args)
            sys.argv = ["lugpi", *args]
            try:
                lugpi_main()
                codes.append(0)
            except SystemExit as exc:
                codes.append(exc.code if isinstance(exc.code, int) else 1)
    with open(out, "w", encoding="utf-8") as fh:
        json.dump({"first_import": tracer.first, "preloaded": tracer.preloaded, "exit_codes": codes}, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, REPO)  # the checkout under test, not an installed copy
    sys.exit(main(sys.argv[1:]))
