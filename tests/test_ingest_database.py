"""A department's database table ingests exactly like the same rows delivered as a CSV file.

Every test runs on SQLite (a temp file) and on PostgreSQL (tests/pg.py, when
PDO_TEST_POSTGRES_URL is set; always in CI). The reference is ``ingest_file`` on a CSV holding the
same text in the order the database returns the rows: clean and quarantine frames, reasons,
source_row numbers and even the content hash must be identical, whatever the chunk size.
"""

from __future__ import annotations

import datetime as dt
import random
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    create_engine,
    select,
    update,
)
from sqlalchemy import Column as DbColumn
from sqlalchemy.engine import make_url
from sqlalchemy.types import TypeEngine

from flows.ingest import ROW, IngestResult, SourceFileError, ingest_database, ingest_file, normalize
from pdo.privacy.checksums import uscc_check_char
from pdo.sources.contract import Column, ColumnType, SourceTable
from pdo.sources.database import read_table_chunks, render_value
from pdo.sources.tables import ENTERPRISE_REGISTRY, TAX_CREDIT

DUPLICATE = "duplicate_row: identical to an earlier row"
ID = "_test_id"  # an extra column the contract does not know: ignored, as in files


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def db_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("db") / "department.sqlite"
        sqlite3.connect(path).close()  # the department's database exists, its tables come later
        yield f"sqlite:///{path}"
    else:
        from tests.pg import fresh_database

        with fresh_database() as url:
            yield url


def _uscc(body: str) -> str:
    return body + uscc_check_char(body)


def _name() -> str:
    return f"t_{uuid.uuid4().hex[:10]}"


def _create(url: str, types: dict[str, TypeEngine[Any]], rows: list[dict[str, Any]]) -> str:
    """A fresh table with the given column types (plus the extra ID), rows inserted in order."""
    name = _name()
    meta = MetaData()
    table = Table(name, meta, DbColumn(ID, Integer), *[DbColumn(c, t) for c, t in types.items()])
    engine = create_engine(url)
    try:
        meta.create_all(engine)
        if rows:
            with engine.begin() as conn:
                conn.execute(table.insert(), rows)
    finally:
        engine.dispose()
    return name


def _db_order(
    url: str, name: str, contract: SourceTable, types: dict[str, TypeEngine[Any]]
) -> list[int]:
    """The IDs in the order the database sorts the contract's key, then its other columns."""
    t = Table(
        name, MetaData(), DbColumn(ID, Integer), *[DbColumn(c, ty) for c, ty in types.items()]
    )
    order = list(contract.key) + [c for c in contract.column_names if c not in contract.key]
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(select(t.c[ID]).order_by(*[t.c[c] for c in order])).scalars())
    finally:
        engine.dispose()


def _as_csv(rows: list[dict[str, str | None]], contract: SourceTable, path: Path) -> Path:
    schema = dict.fromkeys(contract.column_names, pl.String)
    pl.DataFrame([{c: r[c] for c in contract.column_names} for r in rows], schema=schema).write_csv(
        path
    )
    return path


def _file_result(
    rows: list[dict[str, str | None]], contract: SourceTable, path: Path
) -> IngestResult:
    return ingest_file(
        _as_csv(rows, contract, path), replace(contract, file_format="csv", encoding="utf-8")
    )


def _assert_same(got: IngestResult, want: IngestResult) -> None:
    assert_frame_equal(got.clean, want.clean)
    assert_frame_equal(got.quarantine, want.quarantine)
    assert (got.rows_in, got.file_sha256) == (want.rows_in, want.file_sha256)
    assert got.reconciles


# ---- data sets built from real contracts ------------------------------------------------------

ENTERPRISE_TYPES: dict[str, TypeEngine[Any]] = dict.fromkeys(
    ENTERPRISE_REGISTRY.column_names, Text()
)


def _enterprise_rows() -> list[dict[str, Any]]:
    """Everything stored as text (as many departments do), with the dirt departments send."""
    rows: list[dict[str, Any]] = []
    for i in range(40):
        rows.append(
            {
                "uscc": _uscc(f"9111010{i:010d}"),
                "name": f"城南第{i}贸易有限公司",
                "legal_rep_name": "张" + "伟芳娜敏静"[i % 5],
                "legal_rep_id": f"11010519{80 + i % 20}0{1 + i % 9}1{i % 10}{i:03d}X",
                "legal_rep_mobile": f"138{i:08d}",
                "address": f"北京市朝阳区建国路{i + 1}号",
                "district": "朝阳区" if i % 3 else "密云县",
                "industry_section": "F",
                "industry_division": "51",
                "registered_capital": f"{100 + i}.{i % 9 + 1}{i % 7 + 1}",
                "established_on": f"20{10 + i % 10}-0{1 + i % 9}-1{i % 10}",
                "status": "存续" if i % 4 else "注销",
            }
        )
    rows[3]["registered_capital"] = "约五千"  # unparsable decimal
    rows[5]["established_on"] = "不详"  # unparsable date
    rows[6]["established_on"] = None  # required, missing
    rows[8]["status"] = ""  # required, empty
    rows[9]["name"] = "   "  # required, blank
    rows[10]["uscc"] = None  # required key, NULL (sorts first or last depending on the DB)
    rows[11]["established_on"] = "2019年3月5日"  # repaired, kept
    rows[12]["established_on"] = "2019/3/5"  # repaired, kept
    rows[13]["registered_capital"] = "１２.３４"  # full width, kept
    rows[14]["registered_capital"] = "1,000.05"
    rows.append(dict(rows[2]))  # exact duplicate
    rows.append(dict(rows[3]))  # a duplicate that cannot be parsed either: two reasons
    full_width = rows[20]["uscc"].translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    rows.append({**rows[20], "uscc": full_width})  # sorts after every ASCII code: far chunk
    rows.append({**rows[35], "name": f"  {rows[35]['name']} "})  # duplicate once stripped
    rows.append({**rows[1], "uscc": " " + rows[1]["uscc"]})
    return rows


TAX_TYPES: dict[str, TypeEngine[Any]] = {
    "uscc": String(32),
    "year": Integer(),
    "grade": String(8),
    "tax_paid": Numeric(14, 2),
}


def _tax_rows() -> list[dict[str, Any]]:
    """Typed columns (integer year, numeric(14,2) amount): only NULLs and duplicates are dirt."""
    rows: list[dict[str, Any]] = []
    for i in range(27):
        rows.append(
            {
                "uscc": _uscc(f"9132050{i // 3:010d}"),
                "year": 2021 + i % 3,
                "grade": "ABMCD"[i % 5],
                # two decimals, the last not 0: SQLite stores REAL and gives 12.34 back as 12.34
                "tax_paid": Decimal(f"{1000 + 37 * i}.{i % 9 + 1}{i % 7 + 1}"),
            }
        )
    rows[4]["year"] = None
    rows[7]["grade"] = None
    rows[9]["grade"] = ""
    rows[11]["tax_paid"] = None  # optional: kept
    rows[13]["uscc"] = None
    rows.append(dict(rows[0]))
    rows.append(dict(rows[26]))
    rows.append(dict(rows[13]))
    rows.append({**rows[15], "uscc": rows[15]["uscc"] + " "})
    return rows


def _tax_text(row: dict[str, Any]) -> dict[str, str | None]:
    """What a CSV export of a typed row holds."""
    return {k: None if v is None else str(v) for k, v in row.items()}


Dataset = tuple[
    SourceTable,
    dict[str, TypeEngine[Any]],
    Callable[[], list[dict[str, Any]]],
    Callable[[dict[str, Any]], dict[str, str | None]],
]
DATASETS: dict[str, Dataset] = {
    "enterprise_registry": (ENTERPRISE_REGISTRY, ENTERPRISE_TYPES, _enterprise_rows, dict),
    "tax_credit": (TAX_CREDIT, TAX_TYPES, _tax_rows, _tax_text),
}


def _load(url: str, dataset: str, seed: int = 7) -> tuple[str, SourceTable, list[dict[str, Any]]]:
    """Create and fill the table (rows shuffled), return it and the text rows in DB order."""
    contract, types, build, as_text = DATASETS[dataset]
    built = build()
    rows = [{ID: i, **r} for i, r in enumerate(built)]
    shuffled = list(rows)
    random.Random(seed).shuffle(shuffled)
    name = _create(url, types, shuffled)
    text_rows = [as_text(built[i]) for i in _db_order(url, name, contract, types)]
    return name, contract, text_rows


# ---- the tests --------------------------------------------------------------------------------


@pytest.mark.parametrize("chunk_rows", [1, 7, 100_000])
@pytest.mark.parametrize("dataset", sorted(DATASETS))
def test_database_ingest_matches_file_ingest(
    db_url: str, dataset: str, chunk_rows: int, tmp_path: Path
) -> None:
    name, contract, text_rows = _load(db_url, dataset)
    want = _file_result(text_rows, contract, tmp_path / "same_rows.csv")
    reasons = " ".join(want.quarantine["reason"].to_list())
    assert "required value missing" in reasons and DUPLICATE in reasons  # the dirt is there
    if dataset == "enterprise_registry":
        assert "cannot parse as decimal" in reasons and "cannot parse as date" in reasons
    got = ingest_database(db_url, name, contract, chunk_rows=chunk_rows)
    _assert_same(got, want)
    assert got.rows_in == len(text_rows) == got.clean.height + got.quarantine.height


def test_duplicates_across_chunks_are_quarantined_like_in_file(db_url: str) -> None:
    good = _uscc("91320500000000001")
    rows = [
        {ID: i, "uscc": good, "year": 2020 + i, "grade": "A", "tax_paid": None} for i in range(6)
    ]
    rows.append({**rows[2], ID: 6})  # sorts right after 2022, at source_row 4: the next chunk
    name = _create(db_url, TAX_TYPES, rows)
    result = ingest_database(db_url, name, TAX_CREDIT, chunk_rows=3)
    assert result.quarantine[ROW].to_list() == [4]
    assert result.quarantine["reason"].to_list() == [DUPLICATE]
    assert result.clean[ROW].to_list() == [1, 2, 3, 5, 6, 7]
    assert result.clean["year"].to_list() == [2020, 2021, 2022, 2023, 2024, 2025]
    assert result.reconciles


def test_reader_yields_bounded_numbered_text_chunks(db_url: str) -> None:
    name, contract, text_rows = _load(db_url, "tax_credit")
    reader = read_table_chunks(db_url, name, contract, chunk_rows=7)
    chunks = list(reader)
    assert [c.height for c in chunks] == [7, 7, 7, 7, 3] and reader.rows_read == 31
    assert all(c.columns == [ROW, *contract.column_names] for c in chunks)
    assert all(c.schema[n] == pl.String for c in chunks for n in contract.column_names)
    numbers = pl.concat(chunks)[ROW].to_list()
    assert numbers == list(range(1, len(text_rows) + 1))
    assert pl.concat(chunks).drop(ROW).to_dicts() == text_rows


def test_progress_reports_rows_read(db_url: str) -> None:
    name, contract, _ = _load(db_url, "tax_credit")
    seen: list[int] = []
    ingest_database(db_url, name, contract, chunk_rows=10, progress=seen.append)
    assert seen == [10, 20, 30, 31]


def test_content_hash_is_stable_and_tracks_values(db_url: str) -> None:
    name, contract, _ = _load(db_url, "enterprise_registry", seed=1)
    other, _, _ = _load(db_url, "enterprise_registry", seed=2)  # same rows, inserted otherwise
    first = ingest_database(db_url, name, contract, chunk_rows=7)
    _assert_same(ingest_database(db_url, name, contract, chunk_rows=7), first)
    _assert_same(ingest_database(db_url, other, contract, chunk_rows=11), first)
    t = Table(name, MetaData(), *[DbColumn(c, Text()) for c in contract.column_names])
    engine = create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(update(t).where(t.c.status == "注销").values(status="吊销"))
    engine.dispose()
    changed = ingest_database(db_url, name, contract, chunk_rows=7)
    assert changed.file_sha256 != first.file_sha256
    assert changed.rows_in == first.rows_in


def test_empty_table_gives_empty_frames(db_url: str, tmp_path: Path) -> None:
    name = _create(db_url, TAX_TYPES, [])
    got = ingest_database(db_url, name, TAX_CREDIT)
    _assert_same(got, _file_result([], TAX_CREDIT, tmp_path / "empty.csv"))
    assert got.rows_in == 0


def test_missing_column_is_refused_by_name(db_url: str) -> None:
    types = {k: v for k, v in TAX_TYPES.items() if k != "grade"}
    name = _create(db_url, types, [])
    with pytest.raises(SourceFileError, match=rf"{name}.*missing columns \['grade'\]"):
        ingest_database(db_url, name, TAX_CREDIT)


def test_missing_table_is_refused(db_url: str) -> None:
    with pytest.raises(SourceFileError, match=r"no_such_table.*no such table"):
        ingest_database(db_url, "no_such_table", TAX_CREDIT)


def test_a_mistyped_sqlite_path_is_refused_and_creates_nothing(tmp_path: Path) -> None:
    """Connecting would create an empty database there and then report "no such table"."""
    path = tmp_path / "departmnet.sqlite"
    with pytest.raises(SourceFileError, match=r"no database file at .*departmnet\.sqlite"):
        ingest_database(f"sqlite:///{path}", "grades", TAX_CREDIT)
    assert not path.exists()


def test_values_render_as_csv_text(db_url: str) -> None:
    types: dict[str, TypeEngine[Any]] = {
        "n": Integer(),
        "amount": Numeric(14, 2),
        "day": Date(),
        "at": DateTime(),
        "flag": Boolean(),
        "label": String(16),
        "ratio": Float(),
        "doc": JSON(
            none_as_null=True
        ),  # PostgreSQL cannot order json: the reader orders by its text
    }
    contract = SourceTable(
        name="typed",
        department="test",
        label_zh="类型",
        label_en="Typed",
        file_name="typed.csv",
        file_format="csv",
        key=("n",),
        columns=tuple(Column(c, ColumnType.STRING, c, c) for c in types),
    )
    rows: list[dict[str, Any]] = [
        {ID: 1, "n": 123, "amount": Decimal("12.50"), "day": dt.date(2026, 1, 31),
         "at": dt.datetime(2026, 1, 31, 8, 30), "flag": True, "label": "甲", "ratio": 12.0,
         "doc": {"x": 1}},
        {ID: 2, "n": 124, "amount": None, "day": None, "at": None, "flag": None, "label": None,
         "ratio": None, "doc": None},
    ]  # fmt: skip
    name = _create(db_url, types, rows)
    (chunk,) = list(read_table_chunks(db_url, name, contract))
    sqlite = make_url(db_url).get_backend_name() == "sqlite"
    # SQLite has no decimal, date or boolean types: NUMERIC(14,2) is the REAL 12.5, booleans
    # are 0/1 and SQLAlchemy stores DATETIME as text with microseconds; it delivers what it holds.
    # A whole float is 12, as PostgreSQL's own CSV export writes it (12.0 fails an integer column)
    assert chunk.drop(ROW).rows() == [
        ("123", "12.5" if sqlite else "12.50", "2026-01-31",
         "2026-01-31 08:30:00.000000" if sqlite else "2026-01-31 08:30:00",
         "1" if sqlite else "true", "甲", "12", '{"x": 1}' if sqlite else '{"x":1}'),
        ("124", None, None, None, None, None, None, None),
    ]  # fmt: skip


def test_render_value() -> None:
    assert render_value(None) is None and render_value("") == ""
    assert render_value(123) == "123" and render_value(True) == "true"
    assert render_value(Decimal("12.50")) == "12.50" and render_value(Decimal("1E+3")) == "1000"
    assert render_value(dt.date(2026, 1, 31)) == "2026-01-31"
    assert render_value(dt.datetime(2026, 1, 31, 8, 0, 5)) == "2026-01-31 08:00:05"
    # an instant as the wall-clock time in Beijing it names, also in a daylight-saving summer
    assert render_value(dt.datetime(2026, 1, 30, 16, tzinfo=dt.UTC)) == "2026-01-31 00:00:00"
    assert render_value(dt.datetime(1988, 4, 30, 15, tzinfo=dt.UTC)) == "1988-05-01 00:00:00"
    assert render_value(Decimal("1234.5000")) == "1234.50" and render_value(Decimal("1.2345")) == (
        "1.2345"
    )
    huge = Decimal("12345678901234567890123456789.1000")  # beyond 28 digits: as it is
    assert render_value(huge) == "12345678901234567890123456789.1000"
    assert render_value(b"\x01\xff") == "\\x01ff"
    assert [render_value(v) for v in (12.0, -0.5, 0.1, 1e20, 1e-05)] == [
        "12", "-0.5", "0.1", "1e+20", "1e-05"
    ]  # fmt: skip
    assert [render_value(float(v)) for v in ("inf", "-inf", "nan")] == [
        "Infinity", "-Infinity", "NaN"
    ]  # fmt: skip


def _all_text(exc: BaseException) -> str:
    """The exception's message and every chained cause's: what a traceback would print."""
    parts: list[str] = []
    seen: BaseException | None = exc
    while seen is not None:
        parts.append(f"{type(seen).__name__}: {seen}")
        seen = seen.__cause__ or seen.__context__
    return "\n".join(parts)


SECRET = "s3cret-Pa55word"


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql+psycopg://pdo:{SECRET}@127.0.0.1:1/department",  # nothing listens
        f"postgresql+psycopg://pdo:{SECRET}@127.0.0.1:notaport/department",  # unparsable
        f"nosuchdialect://pdo:{SECRET}@127.0.0.1/department",  # unknown dialect
        "sqlite:////nonexistent/dir/department.sqlite",  # cannot be opened
    ],
    ids=["refused", "bad-port", "bad-dialect", "sqlite-no-dir"],
)
def test_unreachable_database_is_refused_without_password(url: str) -> None:
    with pytest.raises(SourceFileError) as info:
        ingest_database(url, "tax_credit", TAX_CREDIT)
    text = _all_text(info.value)
    assert SECRET not in text
    assert "tax_credit" in str(info.value) or "department" in str(info.value)


@pytest.mark.postgres
def test_wrong_credentials_are_refused_without_password() -> None:
    import os

    base = make_url(os.environ["PDO_TEST_POSTGRES_URL"])
    url = base.set(username="pdo_no_such_role", password=SECRET).render_as_string(
        hide_password=False
    )
    with pytest.raises(SourceFileError, match="pdo_no_such_role") as info:
        ingest_database(url, "tax_credit", TAX_CREDIT)
    assert SECRET not in _all_text(info.value) and "***" in str(info.value)


def test_normalize_with_seen_set_matches_in_frame_check() -> None:
    """The cross-chunk duplicate check is the file check when given one frame."""
    rows = [_tax_text(r) for r in _tax_rows()]
    frame = pl.DataFrame(rows, schema=dict.fromkeys(TAX_CREDIT.column_names, pl.String))
    frame = frame.with_row_index(ROW, offset=1)
    plain, chunked = normalize(frame, TAX_CREDIT), normalize(frame, TAX_CREDIT, seen=set())
    assert_frame_equal(chunked.clean, plain.clean)
    assert_frame_equal(chunked.quarantine, plain.quarantine)
    assert DUPLICATE in " ".join(plain.quarantine["reason"].to_list())


def test_a_timestamp_column_holding_dates_reads_as_dates(db_url: str) -> None:
    """Oracle's DATE (and many schemas' timestamp) holds a date at midnight: read as the date,
    as an XLSX date cell is; another time of day is not a plain date and is quarantined."""
    from pdo.sources.tables import BANK_LOANS

    types: dict[str, TypeEngine[Any]] = {
        "loan_id": String(), "uscc": String(), "issued_on": DateTime(),
        "amount": Numeric(14, 2), "defaulted": Integer(),
    }  # fmt: skip
    at = [dt.datetime(2023, 1, 5), dt.datetime(2023, 1, 6), dt.datetime(2023, 1, 7, 10, 30)]
    rows = [
        {ID: i, "loan_id": f"HZB202301{i:07d}", "uscc": _uscc(f"9133010000000{i:04d}"),
         "issued_on": when, "amount": Decimal("100000.00"), "defaulted": 0}
        for i, when in enumerate(at)
    ]  # fmt: skip
    result = ingest_database(db_url, _create(db_url, types, rows), BANK_LOANS)
    assert result.clean["issued_on"].to_list() == [dt.date(2023, 1, 5), dt.date(2023, 1, 6)]
    assert result.quarantine["reason"].to_list() == ["issued_on: cannot parse as date"]
    assert result.reconciles


def test_a_month_stored_as_a_date_reads_as_its_month(db_url: str) -> None:
    """A month kept as its first day (a DATE column) is that month, as a Parquet date is; any
    other day is not a month and is quarantined."""
    from pdo.sources.tables import SOCIAL_INSURANCE

    types: dict[str, TypeEngine[Any]] = {
        "uscc": String(), "month": Date(), "insured_headcount": Integer(),
    }  # fmt: skip
    days = [dt.date(2026, 1, 1), dt.date(2026, 2, 1), dt.date(2026, 3, 15)]
    rows = [
        {ID: i, "uscc": _uscc(f"9133010000000{i:04d}"), "month": day, "insured_headcount": 9}
        for i, day in enumerate(days)
    ]
    result = ingest_database(db_url, _create(db_url, types, rows), SOCIAL_INSURANCE)
    assert result.clean["month"].to_list() == ["2026-01", "2026-02"]
    assert result.quarantine["reason"].to_list() == ["month: cannot parse as month"]
    assert result.reconciles


def test_amounts_of_a_wider_scale_read_as_the_yuan_and_fen_they_hold(db_url: str) -> None:
    """numeric(18,4) writes 1234.5000: the yuan and fen it holds, as a CSV's 1234.50 would be;
    a real fraction of a fen is not an amount here and is quarantined."""
    types: dict[str, TypeEngine[Any]] = {
        "uscc": String(), "year": Integer(), "grade": String(), "tax_paid": Numeric(18, 4),
    }  # fmt: skip
    paid = [Decimal("1234.5000"), Decimal("7.0000"), Decimal("1.2345")]
    rows = [
        {ID: i, "uscc": _uscc(f"9133010000000{i:04d}"), "year": 2025, "grade": "A",
         "tax_paid": amount}
        for i, amount in enumerate(paid)
    ]  # fmt: skip
    result = ingest_database(db_url, _create(db_url, types, rows), TAX_CREDIT)
    assert result.clean["tax_paid"].to_list() == [123450, 700]
    assert result.quarantine["reason"].to_list() == ["tax_paid: cannot parse as decimal"]
    assert result.reconciles


@pytest.mark.postgres
def test_a_timestamp_with_time_zone_reads_as_the_beijing_day_it_names() -> None:
    """timestamptz stores an instant: its Beijing midnight is the business day it names,
    whatever the server's TimeZone; midnight UTC is 08:00 in Beijing, not a plain date."""
    from pdo.sources.tables import ABNORMAL_OPERATIONS
    from tests.pg import fresh_database

    beijing = dt.timezone(dt.timedelta(hours=8))
    types: dict[str, TypeEngine[Any]] = {
        "uscc": String(), "listed_on": DateTime(timezone=True), "reason": String(),
        "removed_on": DateTime(timezone=True),
    }  # fmt: skip
    summer_1988 = dt.datetime(1988, 5, 1, tzinfo=ZoneInfo("Asia/Shanghai"))  # DST: +09
    at = [
        dt.datetime(2026, 1, 31, tzinfo=beijing),
        summer_1988,
        dt.datetime(2026, 1, 31, tzinfo=dt.UTC),
    ]
    rows = [
        {ID: i, "uscc": _uscc(f"9133010000000{i:04d}"), "listed_on": when, "reason": "无法联系",
         "removed_on": None}
        for i, when in enumerate(at)
    ]  # fmt: skip
    with fresh_database() as url:
        _set_server_default(url, "TimeZone", "America/New_York")
        result = ingest_database(url, _create(url, types, rows), ABNORMAL_OPERATIONS)
    assert sorted(result.clean["listed_on"].to_list()) == [
        dt.date(1988, 5, 1),
        dt.date(2026, 1, 31),
    ]
    assert result.quarantine["reason"].to_list() == ["listed_on: cannot parse as date"]
    assert result.reconciles


def _set_server_default(url: str, setting: str, value: str) -> None:
    """The database's default for new sessions (DateStyle, TimeZone), as its administrator may
    set it."""
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            database = make_url(url).database
            conn.exec_driver_sql(f"ALTER DATABASE \"{database}\" SET {setting} = '{value}'")
    finally:
        engine.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize("removed_on", [Date(), DateTime()], ids=["date", "timestamp"])
def test_postgres_dates_it_cannot_load_are_quarantined_like_a_files(
    removed_on: TypeEngine[Any], tmp_path: Path
) -> None:
    """infinity (PostgreSQL's open end) and a BC date quarantine their row, as in a file,
    instead of failing the table; a timestamp at midnight still reads as its date, whatever
    the server's DateStyle."""
    from pdo.sources.tables import ABNORMAL_OPERATIONS
    from tests.pg import fresh_database

    uscc = _uscc("91330106MA2B7K3Q4")
    ends = ["infinity", "2025-06-01", "-infinity", "0044-03-15 BC", None]
    rows = [
        {"uscc": uscc, "listed_on": f"2025-0{i}-01", "reason": f"原因{i}", "removed_on": end}
        for i, end in enumerate(ends, 1)
    ]
    types = {"uscc": Text(), "listed_on": Date(), "reason": Text(), "removed_on": removed_on}
    with fresh_database() as url:
        name = _create(url, types, rows)
        _set_server_default(url, "DateStyle", "SQL, DMY")  # a server whose dates read 01/06/2025
        got = ingest_database(url, name, ABNORMAL_OPERATIONS)
    want = _file_result(rows, ABNORMAL_OPERATIONS, tmp_path / "abnormal.csv")
    assert got.quarantine["reason"].to_list() == ["removed_on: cannot parse as date"] * 3
    assert got.clean["removed_on"].to_list() == [dt.date(2025, 6, 1), None]
    assert_frame_equal(got.clean, want.clean)
    # the same rows for the same reason (a timestamp's text holds a time: "... 00:00:00 BC")
    assert_frame_equal(got.quarantine.drop("raw_values"), want.quarantine.drop("raw_values"))
    assert got.reconciles
