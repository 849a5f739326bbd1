"""Training defaults the CLI shows without importing torch (``lugpi_cli.training.stages`` re-exports them)."""

DEFAULT_TEXT_MODEL = "distilbert-base-uncased"
