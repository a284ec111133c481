"""A home or ledger database that cannot be opened is one clear line, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from pdo.cli import app

SECRET = "s3cret-pw"


@pytest.mark.parametrize(
    ("home", "database_url", "said"),
    [
        ("file", None, "cannot open the pdo home"),
        ("under-a-file", None, "cannot open the pdo home"),
        ("dir", f"postgresql+psycopg://pdo:{SECRET}@127.0.0.1:1/pdo", "***@127.0.0.1:1/pdo"),
        ("dir", f"postgresql+psycopg://pdo@127.0.0.1:1/pdo?password={SECRET}", "password=***"),
        ("dir", "not a url at all", "cannot open the ledger database <unparsable database URL>"),
        ("dir", f"mysql://pdo:{SECRET}@127.0.0.1/pdo", "cannot open the ledger database mysql"),
        ("not-a-database", None, "cannot open the ledger database sqlite"),
    ],
    ids=[
        "home-is-a-file",
        "home-under-a-file",
        "database-unreachable",
        "password-in-query",
        "url-malformed",
        "no-driver",
        "ledger-not-sqlite",
    ],
)
def test_an_unopenable_home_or_ledger_is_one_line(
    tmp_path: Path, home: str, database_url: str | None, said: str
) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("not a directory")
    garbled = tmp_path / "garbled"
    (garbled / "ledger.db").parent.mkdir()
    (garbled / "ledger.db").write_bytes(b"not a database" * 100)
    paths = {
        "file": a_file,
        "under-a-file": a_file / "home",
        "dir": tmp_path / "home",
        "not-a-database": garbled,
    }
    env = {"PDO_HOME": str(paths[home]), "PDO_DATABASE_URL": database_url}
    result = CliRunner().invoke(app, ["objection", "list"], env=env)
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert said in result.output and "error:" in result.output
    assert "Traceback" not in result.output and SECRET not in result.output
