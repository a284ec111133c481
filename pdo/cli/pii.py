"""`pdo pii scan`: the pipeline's own PII engine over JSON lines, for data groups and checks."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import typer

from pdo.cli.root import console, fail, settings


def scan_records(lines: Iterable[str], models_dir: Path) -> Iterator[dict[str, Any]]:
    """Per input line {"text": ...}: its entities with type, start, end (exclusive) and score."""
    from pdo.privacy.analyzer import build_analyzer, find_pii
    from pdo.privacy.redact import half_width

    analyzer = build_analyzer(models_dir)
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            text = json.loads(line)["text"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ValueError(f"line {number}: expected a JSON object with a 'text' field") from exc
        if not isinstance(text, str):
            raise ValueError(f"line {number}: 'text' must be a string")
        entities = [
            {"type": r.entity_type, "start": r.start, "end": r.end, "score": round(r.score, 4)}
            for r in find_pii(analyzer, half_width(text))  # full-width digits too, same offsets
        ]
        yield {"line": number, "entities": entities}


def register(app: typer.Typer) -> None:
    """Attach the `pii` group."""
    group = typer.Typer(no_args_is_help=True, help="个人信息识别 / personal-information detection")
    app.add_typer(group, name="pii")

    @group.command("scan")
    def scan_command(
        input_file: Path | None = typer.Option(None, "--input", help="JSON lines (default stdin)"),
        as_json: bool = typer.Option(False, "--json", help="one JSON object per input line"),
    ) -> None:
        """Detect personal information in each line's `text` with the pipeline's analyzer."""
        models_dir = settings().models_dir
        try:
            lines = sys.stdin if input_file is None else input_file.open(encoding="utf-8")
            with lines:
                for record in scan_records(lines, models_dir):
                    if as_json:
                        sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
                    else:
                        found = ", ".join(
                            f"{e['type']}[{e['start']}:{e['end']}] {e['score']}"
                            for e in record["entities"]
                        )
                        console.print(f"line {record['line']}: {found or '—'}", highlight=False)
        except (OSError, ValueError) as exc:
            raise fail(str(exc)) from exc
