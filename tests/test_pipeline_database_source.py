"""A run that reads a department's table from its database (`pdo run --from-db`)."""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from sqlalchemy import Column, MetaData, Table, Text, create_engine
from sqlalchemy.engine import URL
from sqlmodel import select
from typer.testing import CliRunner

from flows.ingest import read_as_text
from pdo.cli import app
from pdo.ledger.db import session_scope
from pdo.ledger.models import AuditEvent, DatasetVersion, PipelineRun, StageRun
from pdo.privacy.checksums import resident_id_check_char, uscc_check_char
from pdo.settings import Settings
from pdo.sources.database import display_url, secret_parameter
from pdo.sources.tables import PENALTIES, TAX_CREDIT
from pdo.workspace import Workspace

KEY = "cd" * 32


@pytest.fixture
def department_db() -> Iterator[tuple[str, str]]:
    """A department's PostgreSQL database URL and the name its tax table will have there
    (reading from SQLite as well is covered table by table in test_ingest_database.py)."""
    from tests.pg import fresh_database

    with fresh_database() as url:
        yield url, "public.tax_credit_grades"


def _load(url: str, name: str, frame: pl.DataFrame) -> None:
    """The department's table holds the same values its CSV export would (text columns)."""
    schema, _, table_name = name.rpartition(".")
    engine = create_engine(url)
    table = Table(
        table_name,
        MetaData(schema=schema or None),
        *[Column(c, Text) for c in frame.columns],
    )
    table.create(engine)
    with engine.begin() as c:
        c.execute(table.insert(), frame.to_dicts())
    engine.dispose()


def _pdo(home: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env={"PDO_HOME": str(home)})
    return result.exit_code, result.output


def _prepare(home: Path) -> None:
    (home / "secrets").mkdir(parents=True)
    (home / "secrets" / "pseudonym.key").write_text(KEY)
    assert _pdo(home, "department", "register")[0] == 0
    code, out = _pdo(home, "authorization", "grant", "--reference", "数授〔2026〕DB号")
    assert code == 0, out


def _raw(home: Path, run_id: str, stage: str) -> tuple[pl.DataFrame, StageRun]:
    ws = Workspace.open(Settings(home=home))
    with session_scope(ws.engine) as s:
        row = s.exec(
            select(StageRun).where(
                StageRun.run_id == run_id,
                StageRun.stage == stage,
                StageRun.table_name == TAX_CREDIT.name,
            )
        ).one()
        dataset = s.get(DatasetVersion, row.output_hashes[0])
        assert dataset is not None
        frame = ws.lake.read(ws.lake.manifest(dataset.zone, dataset.table_name, dataset.id))
    return frame, row


@pytest.mark.postgres
def test_a_table_read_from_a_database_is_ingested_like_its_file(
    prefect_harness: None, department_db: tuple[str, str], tmp_path: Path
) -> None:
    from pdo.gen import generate

    url, name = department_db
    delivery = tmp_path / "delivery"
    generate(delivery, enterprises=150, seed=13, progress=False)
    # the tax bureau serves its table from a database; the other departments send files
    _load(url, name, read_as_text(delivery / TAX_CREDIT.file_name, TAX_CREDIT).drop("source_row"))
    files_only = tmp_path / "files-only"
    shutil.copytree(delivery, files_only)
    (files_only / TAX_CREDIT.file_name).unlink()

    by_file, by_db = tmp_path / "home-file", tmp_path / "home-db"
    for home in (by_file, by_db):
        _prepare(home)
    code, out = _pdo(by_file, "run", "--source", str(delivery), "--json")
    assert code == 0, out
    file_run = json.loads(out[out.index("{") :])
    code, out = _pdo(
        by_db,
        "run",
        "--source",
        str(files_only),
        "--from-db",
        f"tax_credit={url}#{name}",
        "--json",
    )
    assert code == 0, out
    db_run = json.loads(out[out.index("{") :])
    assert file_run["status"] == db_run["status"] == "awaiting_signoff"
    assert db_run["stages"]["ingest"]["tables"] == 8

    # same contract checks, same quarantine: the same rows survive, whatever the row order
    key = [c for c in TAX_CREDIT.column_names]
    for stage in ("ingest", "validate_raw"):
        from_file, file_stage = _raw(by_file, file_run["run_id"], stage)
        from_db, db_stage = _raw(by_db, db_run["run_id"], stage)
        assert from_db.drop("source_row").sort(key).equals(from_file.drop("source_row").sort(key))
        assert db_stage.rows_in == file_stage.rows_in
        assert db_stage.rows_quarantined == file_stage.rows_quarantined
    _, ingest = _raw(by_db, db_run["run_id"], "ingest")
    assert ingest.details["source_table"] == name and "database" in ingest.details
    with session_scope(Workspace.open(Settings(home=by_db)).engine) as s:
        run = s.get(PipelineRun, db_run["run_id"])
        assert run is not None and run.database_sources["tax_credit"]["table"] == name


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("tax_credit=postgresql+psycopg://tax:s3cr3t-pw@db/tax#grades", "~/.pgpass"),
        ("tax_credit=postgresql+psycopg://tax@db/tax?password=s3cr3t-pw#grades", "~/.pgpass"),
        ("tax_credit=postgresql+psycopg://tax@db/tax?sslpassword=s3cr3t-pw#grades", "~/.pgpass"),
        ("tax_credit=mysql+pymysql://tax@db/tax?passwd=s3cr3t-pw#grades", "~/.pgpass"),
        (
            "tax_credit=mssql+pyodbc:///?odbc_connect="
            "DRIVER%3D%7BODBC+Driver+18%7D%3BSERVER%3Dtaxdb%3BUID%3Dsa%3BPWD%3Ds3cr3t-pw#dbo.grades",
            "~/.pgpass",
        ),
        # the TABLE= prefix forgotten: the query's "=" must not make the URL a table name
        ("postgresql+psycopg://tax:s3cr3t-pw@db/tax?sslmode=require#grades", "TABLE=URL"),
    ],
    ids=[
        "user:password@",
        "?password=",
        "?sslpassword=",
        "?passwd=",
        "ODBC PWD=",
        "no TABLE= prefix",
    ],
)
def test_a_password_in_the_url_is_refused_and_not_shown(
    tmp_path: Path, spec: str, message: str
) -> None:
    home = tmp_path / "home"
    _prepare(home)
    code, out = _pdo(home, "run", "--from-db", spec)
    assert code == 1
    assert message in out and "s3cr3t-pw" not in out


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("tax_credit=sqlite:///x.db", "TABLE=URL#SOURCE_TABLE"),
        ("no_such_table=sqlite:///x.db#t", "no_such_table"),
    ],
)
def test_bad_database_source_specs_are_refused(tmp_path: Path, spec: str, message: str) -> None:
    home = tmp_path / "home"
    _prepare(home)
    code, out = _pdo(home, "run", "--from-db", spec)
    assert code == 1 and message in out


SYNTHETIC_RID = "33010619850412301" + resident_id_check_char("33010619850412301")


def _penalties_with_a_gbk_cell(path: Path) -> None:
    """A department's SQLite penalties table whose second summary a legacy GBK client wrote:
    bytes that are not UTF-8, stored as TEXT, holding a resident ID."""
    uscc = "91330106MA2B7K3Q4" + uscc_check_char("91330106MA2B7K3Q4")
    summary = f"法定代表人身份证号{SYNTHETIC_RID}，责令改正。"
    c = sqlite3.connect(path)
    c.execute(f"create table pen ({', '.join(n + ' text' for n in PENALTIES.column_names)})")
    row = "?, ?, '2026-03-01', NULL, '杭州市市场监督管理局', '1000.00'"
    c.execute(f"insert into pen values ({row}, ?)", ("杭市监罚〔2026〕1号", uscc, summary))
    c.execute(
        f"insert into pen values ({row}, CAST(X'{summary.encode('gbk').hex()}' AS TEXT))",
        ("杭市监罚〔2026〕2号", uscc),
    )
    c.commit()
    c.close()


def test_an_undecodable_cell_is_reported_by_table_and_column_never_by_its_content(
    prefect_harness: None, tmp_path: Path
) -> None:
    db = tmp_path / "department.sqlite"
    _penalties_with_a_gbk_cell(db)
    home = tmp_path / "home"
    _prepare(home)
    code, out = _pdo(home, "run", "--from-db", f"penalties=sqlite:///{db}#pen")
    assert code != 0
    assert "pen at sqlite:///" in out and "cannot be read" in out and "'summary'" in out
    with session_scope(Workspace.open(Settings(home=home)).engine) as s:
        errors = [run.error or "" for run in s.exec(select(PipelineRun)).all()]
        audit = [
            json.dumps(e.details, ensure_ascii=False) for e in s.exec(select(AuditEvent)).all()
        ]
    assert any("'summary'" in e for e in errors)
    for text in (out, *errors, *audit):
        assert SYNTHETIC_RID not in text


@pytest.mark.parametrize(
    ("key", "value", "secret"),
    [
        ("password", "x", True),
        ("sslpassword", "x", True),
        ("passwd", "x", True),
        ("PWD", "x", True),
        ("access_token", "x", True),
        ("odbc_connect", "DRIVER={ODBC Driver 18};SERVER=db;UID=sa;PWD=x", True),
        ("odbc_connect", "DRIVER={ODBC Driver 18};SERVER=db;Trusted_Connection=yes", False),
        ("passfile", "/secure/pgpass", False),  # where the password is kept, as advised
        ("auth_plugin", "mysql_native_password", False),
        ("Authentication", "ActiveDirectoryIntegrated", False),
        ("connect_args", "UID=sa;Pwd = x", True),
        ("sslmode", "require", False),
        ("application_name", "pdo", False),
        ("options", "-c search_path=tax", False),
        ("sslrootcert", "/etc/ssl/root.crt", False),
        ("target_session_attrs", "read-write", False),
    ],
)
def test_which_url_parameters_are_treated_as_secrets(key: str, value: str, secret: bool) -> None:
    """Refused in a source URL and hidden wherever a URL is shown, for any driver's naming."""
    assert secret_parameter(key, value) is secret
    shown = display_url(URL.create("postgresql+psycopg", "tax", host="db", query={key: value}))
    assert (f"{key}=***" in shown) is secret
