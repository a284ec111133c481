"""Settlement periods step across year ends; business days and months are Beijing's."""

from __future__ import annotations

import datetime as dt

import pytest

from pdo.delivery.periods import business_day, business_month, month_after, month_before


@pytest.mark.parametrize(
    ("period", "after"),
    [
        ("2026-01", "2026-02"),
        ("2026-11", "2026-12"),
        ("2026-12", "2027-01"),
        ("2099-12", "2100-01"),
    ],
)
def test_month_after_and_before_are_inverse(period: str, after: str) -> None:
    assert month_after(period) == after
    assert month_before(after) == period


def test_a_utc_evening_is_the_next_beijing_day_and_month() -> None:
    at = dt.datetime(2026, 11, 30, 17, 0, tzinfo=dt.UTC)  # 2026-12-01 01:00 in Beijing
    assert business_day(at) == dt.date(2026, 12, 1)
    assert business_month(at) == "2026-12"
