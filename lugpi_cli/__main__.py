"""``python -m lugpi_cli`` (also what ``accelerate launch -m lugpi_cli`` runs)."""

from lugpi_cli.app import main

if __name__ == "__main__":
    main()
