"""One module per subcommand; each exposes ``register(app)``.

Commands are thin: parse options, call the library, print with rich.
"""

from __future__ import annotations

from functools import partial

from lugpi_cli.commands import data, embed, generate, not_built, store

COMMANDS = [
    generate.register,
    embed.register,
    partial(not_built.register, names=("train-teacher", "distill", "evaluate", "ablate")),
    store.register,
    data.register,
]
