"""Business days and months for quotas, budgets and settlement: Beijing time, not UTC."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

BUSINESS_TZ = ZoneInfo("Asia/Shanghai")


def business_day(at: dt.datetime) -> dt.date:
    """The calendar day in Beijing on which a timezone-aware instant falls."""
    return at.astimezone(BUSINESS_TZ).date()


def business_month(at: dt.datetime) -> str:
    """The settlement period ("2026-11") of a timezone-aware instant."""
    return at.astimezone(BUSINESS_TZ).strftime("%Y-%m")


def month_after(period: str) -> str:
    """The settlement period after a "YYYY-MM" one ("2026-12" -> "2027-01")."""
    year, month = int(period[:4]), int(period[5:7])
    return f"{year + month // 12:04d}-{month % 12 + 1:02d}"


def month_before(period: str) -> str:
    """The settlement period before a "YYYY-MM" one ("2027-01" -> "2026-12")."""
    year, month = int(period[:4]), int(period[5:7])
    return f"{year - (month == 1):04d}-{(month - 2) % 12 + 1:02d}"
