"""The `pdo` command line: one module per command family, registered in the list below."""

from __future__ import annotations

import typer

from pdo.cli import (
    admin,
    delivery,
    demo,
    gen,
    objection,
    pii,
    pipeline,
    quarantine,
    scorecard,
    serve,
    settle,
    signoff,
    watch,
)

app = typer.Typer(no_args_is_help=True, help="pdo — 公共数据授权运营 workflow engine")


@app.callback()
def main() -> None:
    """pdo: ingest → desensitize → validate → sign-off → package → deliver."""


# One line per command module; each exposes `register(app)`.
for module in (
    gen,
    pipeline,
    signoff,
    quarantine,
    admin,
    delivery,
    watch,
    objection,
    settle,
    pii,
    scorecard,
    serve,
    demo,
):
    module.register(app)
