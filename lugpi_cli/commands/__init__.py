"""One module per subcommand; each exposes ``register(app)``.

Commands are thin: parse options, call the library, print with rich.
"""

from __future__ import annotations

from functools import partial

from lugpi_cli.commands import data, distill, embed, evaluate, generate, not_built, store, train_teacher

COMMANDS = [
    generate.register,
    embed.register,
    train_teacher.register,
    distill.register,
    evaluate.register,
    partial(not_built.register, names=("ablate",)),
    store.register,
    data.register,
]
