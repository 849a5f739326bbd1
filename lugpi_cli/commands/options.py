"""Option types shared by several commands."""

from __future__ import annotations

from typing import Annotated

import typer

JsonFlag = Annotated[
    bool,
    typer.Option("--json", help="Print the result as one JSON object on stdout (same as the global --json)."),
]
