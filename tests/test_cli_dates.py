"""The operator CLI shows the end of a subscription, a consent or a grant in Beijing time.

Instants are stored in UTC; printed as UTC calendar dates they read a day early for anything
ending before 08:00 in Beijing. A seeded ledger (tests/console_seed.py), the real CLI.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from click.testing import Result
from sqlmodel import col, select
from typer.testing import CliRunner

from pdo.cli import app
from pdo.delivery.consents import register_consent
from pdo.delivery.periods import BUSINESS_TZ
from pdo.ledger.db import session_scope
from pdo.ledger.models import Subscription
from pdo.privacy.checksums import uscc_check_char
from pdo.registration import state_message
from pdo.settings import Settings
from pdo.subscribers import find_subscriber
from pdo.workspace import Workspace
from tests.console_seed import seed_console

COMPANY = "91110105MA01ABCD2" + uscc_check_char("91110105MA01ABCD2")


def pdo(home: Path, *args: str) -> Result:
    return CliRunner().invoke(app, list(args), env={"PDO_HOME": str(home)})


def test_a_consent_ending_early_in_the_beijing_morning_is_listed_on_its_own_day(
    tmp_path: Path,
) -> None:
    seed_console(tmp_path)
    assert pdo(tmp_path, "subscriber", "add", "bank").exit_code == 0
    ends = dt.datetime(2026, 12, 31, 7, 0, tzinfo=BUSINESS_TZ)  # 2026-12-30 23:00 UTC
    with session_scope(Workspace.open(Settings(home=tmp_path)).engine) as s:
        register_consent(
            s,
            subscriber=find_subscriber(s, "bank"),
            entity=COMPANY,
            reference="API-1",
            purposes=["贷前审查"],
            valid_from=dt.datetime(2026, 12, 1, tzinfo=BUSINESS_TZ),
            valid_until=ends,
            actor="bank:bank",
        )
    listed = pdo(tmp_path, "consent", "list", "--subscriber", "bank")
    assert listed.exit_code == 0, listed.output
    assert "至 2026-12-31" in listed.output


def test_a_subscription_shows_when_it_ends_in_beijing_time(tmp_path: Path) -> None:
    seed_console(tmp_path)
    assert pdo(tmp_path, "subscriber", "add", "bank").exit_code == 0
    assert pdo(tmp_path, "plan", "add", "credit_risk", "day", "--price-fen", "100",
               "--days", "1").exit_code == 0  # fmt: skip
    made = pdo(tmp_path, "subscribe", "bank", "--plan", "credit_risk/day")
    assert made.exit_code == 0, made.output
    with session_scope(Workspace.open(Settings(home=tmp_path)).engine) as s:
        sub = s.exec(select(Subscription).order_by(col(Subscription.id).desc())).first()
        assert sub is not None
        ends = sub.valid_until.astimezone(BUSINESS_TZ)
    assert f"until {ends:%Y-%m-%d %H:%M} (北京时间)" in made.output


def test_a_grant_expired_early_in_the_beijing_morning_names_its_own_day() -> None:
    class Terms:  # as the ledger reads them back: in UTC
        reference = "数授〔2026〕1号"
        valid_from = dt.datetime(2026, 1, 1, tzinfo=BUSINESS_TZ).astimezone(dt.UTC)
        valid_until = dt.datetime(2026, 12, 31, 7, 0, tzinfo=BUSINESS_TZ).astimezone(dt.UTC)

    assert "已于 2026-12-31 到期" in state_message(Terms(), "expired")  # type: ignore[arg-type]
    assert "自 2026-01-01 起生效" in state_message(Terms(), "not_yet_valid")  # type: ignore[arg-type]
