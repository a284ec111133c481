"""Ingest: read a department's file as delivered, normalize it, quarantine what cannot be parsed."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from pdo.sources.contract import ColumnType, SourceTable
from pdo.sources.database import DatabaseSourceError, read_table_chunks

ROW = "source_row"


class SourceFileError(ValueError):
    """A delivered file cannot be read at all (wrong encoding, missing columns, unreadable)."""


@dataclass(frozen=True)
class IngestResult:
    """The parsed rows, the quarantined rows with reasons, and the reconciling counts."""

    clean: pl.DataFrame
    quarantine: pl.DataFrame
    rows_in: int
    file_sha256: str

    @property
    def reconciles(self) -> bool:
        return self.rows_in == self.clean.height + self.quarantine.height


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _check_declared_encoding(path: Path, data: bytes, encoding: str) -> None:
    """GBK decodes most UTF-8 bytes into mojibake; refuse a UTF-8 file declared as GBK."""
    if encoding.lower() in ("gbk", "gb2312", "gb18030") and not data.isascii():
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            return
        raise SourceFileError(f"{path.name}: not valid {encoding} text (the file is UTF-8)")


def _read_xlsx(path: Path) -> pl.DataFrame:
    """Every sheet as text through calamine (Rust); rows past Excel's limit continue on
    further sheets, which must repeat the first sheet's header."""
    import fastexcel

    reader = fastexcel.read_excel(path)
    frames: list[pl.DataFrame] = []
    header: list[str] = []
    for name in reader.sheet_names:
        sheet = reader.load_sheet_by_name(name, dtypes="string")
        frame = pl.from_arrow(sheet.to_arrow())
        assert isinstance(frame, pl.DataFrame)
        if not frame.columns:
            continue  # an empty sheet (say, a notes tab left blank) holds no rows
        if not header:
            header = frame.columns
        elif frame.columns != header:
            raise SourceFileError(f"{path.name}: sheet {name!r} has another header")
        frames.append(frame.select(pl.all().cast(pl.String)))
    return pl.concat(frames) if frames else pl.DataFrame()


def read_as_text(path: Path, table: SourceTable) -> pl.DataFrame:
    """Every column as text, exactly as delivered, with the 1-based data row number."""
    try:
        if table.file_format == "csv":
            data = path.read_bytes()
            _check_declared_encoding(path, data, table.encoding)
            text = data.decode(table.encoding)
            df = pl.read_csv(io.StringIO(text), infer_schema=False)
        elif table.file_format == "xlsx":
            df = _read_xlsx(path)
        elif table.file_format == "parquet":
            df = pl.read_parquet(path)
            df = df.select(pl.all().cast(pl.String))
        else:
            raise SourceFileError(f"{path.name}: unsupported format {table.file_format!r}")
    except UnicodeDecodeError as exc:
        raise SourceFileError(
            f"{path.name}: not valid {table.encoding} text at byte {exc.start}"
        ) from exc
    except SourceFileError:
        raise
    except Exception as exc:  # a broken file must say which file and why
        raise SourceFileError(f"{path.name}: cannot be read ({type(exc).__name__}: {exc})") from exc
    missing = [c for c in table.column_names if c not in df.columns]
    if missing:
        raise SourceFileError(f"{path.name}: missing columns {missing}")
    return df.select(table.column_names).with_row_index(ROW, offset=1)


def _normalized(name: str) -> pl.Expr:
    expr = pl.col(name).str.normalize("NFKC").str.strip_chars()
    return pl.when(expr == "").then(None).otherwise(expr).alias(name)


_DATE = r"^(\d{4})\s*[-/.年]?\s*(\d{1,2})\s*[-/.月]?\s*(\d{1,2})\s*日?$"
_MONTH = r"^(\d{4})\s*[-/.年]?\s*(\d{1,2})\s*月?$"


def _parse(name: str, kind: ColumnType) -> pl.Expr:
    src = pl.col(name)
    if kind is ColumnType.INTEGER:
        return src.str.replace_all(",", "").cast(pl.Int64, strict=False)
    if kind is ColumnType.DECIMAL:
        ok = src.str.replace_all(",", "").str.contains(r"^-?\d+(\.\d{1,2})?$")
        parts = src.str.replace_all(",", "").str.split_exact(".", 1)
        yuan = parts.struct.field("field_0").cast(pl.Int64, strict=False)
        frac = (
            parts.struct.field("field_1")
            .fill_null("")
            .str.pad_end(2, "0")
            .cast(pl.Int64, strict=False)
        )
        sign = pl.when(src.str.starts_with("-")).then(-1).otherwise(1)
        fen = yuan.abs() * 100 + frac
        return pl.when(ok).then(sign * fen).otherwise(None)
    if kind is ColumnType.DATE:
        groups = src.str.extract_groups(_DATE)
        iso = pl.concat_str(
            groups.struct.field("1"),
            groups.struct.field("2").str.zfill(2),
            groups.struct.field("3").str.zfill(2),
            separator="-",
        )
        return iso.str.to_date("%Y-%m-%d", strict=False)
    if kind is ColumnType.MONTH:
        groups = src.str.extract_groups(_MONTH)
        month = groups.struct.field("2").str.zfill(2)
        valid = month.cast(pl.Int64, strict=False).is_between(1, 12)
        return pl.when(valid).then(pl.concat_str(groups.struct.field("1"), month, separator="-"))
    return src


def _first_occurrences(text: pl.DataFrame, names: list[str], seen: set[bytes]) -> pl.Series:
    """True for rows whose normalized text is not in ``seen`` (nor earlier in this frame);
    ``seen`` collects a 16-byte blake2b digest of every row, across the frames it is given."""
    encoded = text.select(pl.struct(names).struct.json_encode()).to_series().to_list()
    first: list[bool] = []
    for row in encoded:
        digest = hashlib.blake2b(row.encode(), digest_size=16).digest()
        first.append(digest not in seen)
        seen.add(digest)
    return pl.Series(first, dtype=pl.Boolean)


def normalize(
    raw: pl.DataFrame, table: SourceTable, *, seen: set[bytes] | None = None
) -> IngestResult:
    """Typed rows out, quarantined rows with a reason each; in = out + quarantined.

    A row identical (after normalization) to an earlier one is a duplicate; with ``seen``,
    "earlier" includes the rows of every frame normalized before with the same set (the
    chunks of one database read)."""
    text = raw.with_columns([_normalized(c) for c in table.column_names])
    parsed = text.with_columns([_parse(c.name, c.type).alias(c.name) for c in table.columns])
    reasons: list[pl.Expr] = []
    for c in table.columns:
        was = text[c.name].is_not_null()
        now = parsed[c.name].is_not_null()
        reasons.append(
            pl.when(pl.lit(was & ~now)).then(pl.lit(f"{c.name}: cannot parse as {c.type.value}"))
        )
        if c.required:
            reasons.append(pl.when(pl.lit(~was)).then(pl.lit(f"{c.name}: required value missing")))
    if seen is None:
        first = text.select(pl.struct(table.column_names).is_first_distinct()).to_series()
    else:
        first = _first_occurrences(text, table.column_names, seen)
    reasons.append(
        pl.when(pl.lit(~first)).then(pl.lit("duplicate_row: identical to an earlier row"))
    )
    reason = pl.concat_str(reasons, separator="; ", ignore_nulls=True)
    with_reason = parsed.with_columns(reason.alias("_reason"))
    bad = with_reason["_reason"].is_not_null() & (with_reason["_reason"] != "")
    clean = with_reason.filter(~bad).drop("_reason")  # ROW stays: validation quarantines by it
    quarantine = raw.filter(bad).select(
        pl.col(ROW),
        with_reason.filter(bad)["_reason"].alias("reason"),
        pl.struct(table.column_names)
        .map_elements(lambda r: json.dumps(r, ensure_ascii=False), return_dtype=pl.String)
        .alias("raw_values"),
    )
    return IngestResult(clean=clean, quarantine=quarantine, rows_in=raw.height, file_sha256="")


def ingest_file(path: Path, table: SourceTable) -> IngestResult:
    """Read, normalize and quarantine one delivered file."""
    result = normalize(read_as_text(path, table), table)
    return IngestResult(result.clean, result.quarantine, result.rows_in, file_sha256(path))


def ingest_database(
    url: str,
    source_table: str,
    table: SourceTable,
    *,
    chunk_rows: int = 100_000,
    progress: Callable[[int], None] | None = None,
) -> IngestResult:
    """Read a department's database table in chunks, normalize and quarantine it like a file.

    Rows are numbered in the key order across chunks; duplicates are found across chunks too;
    ``file_sha256`` is the streamed content hash (see pdo.sources.database). ``progress`` gets
    the number of rows read so far after each chunk. Unreachable database, missing table or
    columns: SourceFileError (the URL's password never shown)."""
    reader = read_table_chunks(url, source_table, table, chunk_rows=chunk_rows)
    seen: set[bytes] = set()
    parts: list[IngestResult] = []
    try:
        for chunk in reader:
            parts.append(normalize(chunk, table, seen=seen))
            if progress is not None:
                progress(reader.rows_read)
    except DatabaseSourceError as exc:
        raise SourceFileError(str(exc)) from exc
    if not parts:  # an empty table: empty frames with the same columns and types
        empty = pl.DataFrame(schema=dict.fromkeys(table.column_names, pl.String))
        parts.append(normalize(empty.with_row_index(ROW, offset=1), table, seen=seen))
    return IngestResult(
        clean=pl.concat([p.clean for p in parts]),
        quarantine=pl.concat([p.quarantine for p in parts]),
        rows_in=sum(p.rows_in for p in parts),
        file_sha256=reader.sha256,
    )
