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
