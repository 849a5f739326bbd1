"""One module per subcommand; each exposes ``register(app)``.

Commands are thin: parse options, call the library, print with rich.
"""

from __future__ import annotations

from lugpi_cli.commands import (
    ablate,
    data,
    demo,
    distill,
    embed,
    evaluate,
    export,
    generate,
    probe,
    report,
    run,
    store,
    train_teacher,
)

COMMANDS = [
    demo.register,
    generate.register,
    embed.register,
    train_teacher.register,
    distill.register,
    evaluate.register,
    ablate.register,
    probe.register,
    report.register,
    export.register,
    run.register,
    store.register,
    data.register,
]
