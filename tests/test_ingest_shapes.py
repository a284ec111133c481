"""Which shapes of a date or an amount ingest reads, and which it quarantines rather than guess.

A one-row bank_loans file through the real ingest: a value read one way when it could mean
another (2023111: 11 January or 1 November? 12,50: twelve and a half or 1,250?) is quarantined
with its reason, never stored as a guess.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from flows.ingest import ingest_file
from pdo.privacy.checksums import uscc_check_char
from pdo.sources.tables import BANK_LOANS

USCC = "91330100000000010"[:17] + uscc_check_char("91330100000000010"[:17])

DATES = [
    ("iso", "2023-11-05", dt.date(2023, 11, 5)),
    ("unpadded dashes", "2023-1-5", dt.date(2023, 1, 5)),
    ("slashes", "2023/11/05", dt.date(2023, 11, 5)),
    ("dots", "2023.11.5", dt.date(2023, 11, 5)),
    ("chinese", "2023年11月5日", dt.date(2023, 11, 5)),
    ("chinese without 日", "2023年1月5", dt.date(2023, 1, 5)),
    ("eight digits", "20231105", dt.date(2023, 11, 5)),
    ("seven digits", "2023111", None),
    ("one separator", "2023-111", None),
    ("a month in six digits", "202311", None),
    ("an iso month", "2023-11", None),
    ("a month with a slash", "2023/12", None),
    ("mixed separators", "2023-11/05", None),
    ("no such day", "2023-02-30", None),
]
AMOUNTS = [
    ("plain", "100000.00", 10_000_000),
    ("thousands", "1,234,567.89", 123_456_789),
    ("thousands, whole", "12,500", 1_250_000),
    ("decimal comma", "12,50", None),
    ("decimal comma, longer", "100000,00", None),
    ("commas everywhere", "1,0,0", None),
    ("a group of two", "1,23,456", None),
]


def _loan(tmp_path: Path, issued_on: str, amount: str) -> Path:
    path = tmp_path / BANK_LOANS.file_name
    path.write_text(
        f'loan_id,uscc,issued_on,amount,defaulted\nHZB2023110000001,{USCC},{issued_on},"{amount}",0\n',
        encoding="utf-8",
    )
    return path


@pytest.mark.parametrize(("text", "read"), [c[1:] for c in DATES], ids=[c[0] for c in DATES])
def test_dates(tmp_path: Path, text: str, read: dt.date | None) -> None:
    result = ingest_file(_loan(tmp_path, text, "100.00"), BANK_LOANS)
    if read is None:
        assert result.clean.is_empty()
        assert result.quarantine["reason"].to_list() == ["issued_on: cannot parse as date"]
    else:
        assert result.clean["issued_on"].to_list() == [read]


@pytest.mark.parametrize(("text", "fen"), [c[1:] for c in AMOUNTS], ids=[c[0] for c in AMOUNTS])
def test_amounts(tmp_path: Path, text: str, fen: int | None) -> None:
    result = ingest_file(_loan(tmp_path, "2023-11-05", text), BANK_LOANS)
    if fen is None:
        assert result.clean.is_empty()
        assert result.quarantine["reason"].to_list() == ["amount: cannot parse as decimal"]
    else:
        assert result.clean["amount"].to_list() == [fen]
