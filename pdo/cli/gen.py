"""`pdo gen`: write a city's departmental source files."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Attach `pdo gen` to the CLI."""

    @app.command("gen")
    def gen_command() -> None:
        """Generate departmental source data (placeholder until the generator lands)."""
        raise typer.Exit(1)
