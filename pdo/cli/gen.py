"""`pdo gen`: write a city's departmental source files."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from pdo.cli.root import console, emit_json, fail

if TYPE_CHECKING:
    from pdo.gen import GenerationReport


def _summary(report: GenerationReport) -> None:
    """Files and rows, then dirt counts, as rich tables."""
    from pdo.sources.departments import DEPARTMENTS
    from pdo.sources.tables import SOURCE_TABLES

    departments = {d.code: d.name_zh for d in DEPARTMENTS}
    files = Table(
        title=f"{report.enterprises:,} enterprises · seed {report.seed} · as of {report.as_of}"
    )
    files.add_column("file", no_wrap=True)
    files.add_column("department")
    files.add_column("format")
    files.add_column("rows", justify="right")
    for t in SOURCE_TABLES:
        files.add_row(
            t.file_name,
            departments.get(t.department, t.department),
            f"{t.file_format} ({t.encoding})" if t.file_format == "csv" else t.file_format,
            f"{report.row_counts.get(t.file_name, 0):,}",
        )
    total = f"{sum(report.row_counts.values()):,}"
    files.add_row(Text("total", style="bold"), "", "", Text(total, style="bold"))
    console.print(files)
    dirt = Table(title="planted dirt (see dirt.json)")
    dirt.add_column("kind")
    dirt.add_column("count", justify="right")
    for kind, count in report.dirt_counts.items():
        dirt.add_row(kind, f"{count:,}")
    console.print(dirt)
    console.print(
        f"partner-bank default rate {report.default_rate:.1%} · XLSX via {report.xlsx_writer} · "
        f"{report.seconds:.1f} s"
    )


def register(app: typer.Typer) -> None:
    """Attach `pdo gen` to the CLI."""

    @app.command("gen")
    def gen_command(
        out: Path = typer.Option(..., "--out", help="directory to write the delivered files into"),
        enterprises: int = typer.Option(2000, "--enterprises", min=1, help="size of the city"),
        seed: int = typer.Option(20261125, "--seed", min=0, help="same seed → identical files"),
        force: bool = typer.Option(False, "--force", help="write into a non-empty directory"),
        as_json: bool = typer.Option(False, "--json", help="print the report as JSON"),
    ) -> None:
        """Generate departmental source data for one city, with documented dirt."""
        from pdo.gen import generate

        if out.exists() and not out.is_dir():
            raise fail(f"{out} exists and is not a directory")
        if out.is_dir() and any(out.iterdir()) and not force:
            count = sum(1 for _ in out.iterdir())
            raise fail(f"{out} is not empty ({count} entries); pass --force to overwrite")
        report = generate(out, enterprises=enterprises, seed=seed, progress=not as_json)
        if as_json:
            emit_json(report.as_json())
            return
        console.print(f"wrote [bold]{escape(str(report.out_dir))}[/]", markup=True)
        _summary(report)
