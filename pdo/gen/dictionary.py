"""The data dictionary delivered with the files, taken from the contracts (never retyped)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from pdo.sources.contract import SourceTable
from pdo.sources.departments import DEPARTMENTS

DICTIONARY_COLUMNS = ("table", "file", "column", "label_zh", "label_en", "type", "required")


def dictionary_rows(tables: tuple[SourceTable, ...]) -> list[dict[str, str]]:
    """One row per column of every table."""
    return [
        {
            "table": t.name,
            "file": t.file_name,
            "column": c.name,
            "label_zh": c.label_zh,
            "label_en": c.label_en,
            "type": str(c.type),
            "required": "yes" if c.required else "no",
        }
        for t in tables
        for c in t.columns
    ]


def write_dictionary(out_dir: Path, tables: tuple[SourceTable, ...]) -> list[str]:
    """Write data_dictionary.csv and data_dictionary.md; returns the file names."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=DICTIONARY_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(dictionary_rows(tables))
    (out_dir / "data_dictionary.csv").write_text(buf.getvalue(), encoding="utf-8")

    departments = {d.code: d for d in DEPARTMENTS}
    lines = ["# 数据字典 Data dictionary", ""]
    for t in tables:
        dept = departments.get(t.department)
        who = f"{dept.name_zh} ({dept.name_en})" if dept else t.department
        lines += [
            f"## {t.label_zh} — {t.label_en} (`{t.name}`)",
            "",
            f"- 提供部门 / department: {who}",
            f"- 文件 / file: `{t.file_name}` ({t.file_format}, {t.encoding})",
            f"- 分级 / classification: {t.classification}",
            f"- 主键 / key: {', '.join(t.key) or '—'}",
            "",
            "| column | 中文名 | English | type | required |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| `{c.name}` | {c.label_zh} | {c.label_en} | {c.type} | "
            f"{'yes' if c.required else 'no'} |"
            for c in t.columns
        ]
        lines.append("")
    (out_dir / "data_dictionary.md").write_text("\n".join(lines), encoding="utf-8")
    return ["data_dictionary.csv", "data_dictionary.md"]
