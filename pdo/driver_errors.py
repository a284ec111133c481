"""What a database driver's error says, read from its codes, never its words (they can quote data).

The ledger and the departments' source databases are SQLite or PostgreSQL: sqlite3 names its
errors (`sqlite_errorname`, e.g. SQLITE_BUSY), psycopg gives the SQLSTATE (e.g. 40P01).
"""

from __future__ import annotations

# Another connection holds SQLite's write lock: the writer may wait and try again.
SQLITE_LOCK_HELD = frozenset({"SQLITE_BUSY", "SQLITE_LOCKED"})
# What may pass if the call comes later: the lock, and I/O or a full disk (not a schema error).
SQLITE_RETRYABLE = SQLITE_LOCK_HELD | {"SQLITE_IOERR", "SQLITE_FULL"}


def _dbapi_error(exc: BaseException) -> BaseException:
    """The driver's own error: the one SQLAlchemy wrapped in exc, or exc itself."""
    return getattr(exc, "orig", None) or exc


def sqlite_error_name(exc: BaseException) -> str | None:
    """SQLite's name for exc's error; None when the driver is not sqlite3."""
    return getattr(_dbapi_error(exc), "sqlite_errorname", None)


def driver_error_code(exc: BaseException) -> str | None:
    """The driver's code for exc (SQLite's error name or PostgreSQL's SQLSTATE), if any."""
    code = sqlite_error_name(exc) or getattr(_dbapi_error(exc), "sqlstate", None)
    return str(code) if code else None
