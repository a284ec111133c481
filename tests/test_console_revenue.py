"""收益分配 in the console: a settled back-dated month and the open month, for every role."""

from __future__ import annotations

import datetime as dt
import io
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest
from openpyxl import load_workbook
from sqlalchemy import text
from sqlmodel import select
from streamlit.testing.v1 import AppTest

from dashboard.data import revenue
from dashboard.queries import revenue_report
from pdo import audit, settlement
from pdo.delivery.metering import details_of
from pdo.delivery.periods import BUSINESS_TZ, business_month, month_before
from pdo.ledger.db import make_engine, read_scope, session_scope
from pdo.ledger.models import ApiKey, AuditEvent, Subscriber, Subscription, UsageEvent
from pdo.ledger.types import utcnow
from pdo.settings import Settings
from tests.console_seed import PASSWORD, seed_console

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "dashboard" / "app.py"
PAGE = ROOT / "dashboard" / "app_pages" / "revenue.py"

# Back-dated usage in last month, settled: 示范银行 3 calls + 1 withheld, 第二银行 1 call, 200 fen
# each; a withheld result is refunded (the standard plan refunds withheld results).
LAST_MONTH = {"示范银行": (3, 1), "第二银行": (1, 0)}
PRICE = 200
# credit_risk@1's rule (tests/console_seed.SHARES_BP; the operator keeps the remaining 40%):
# 800 fen net → market 120, tax 120, hrss 80, utilities 64, credit 48, court 48, operator 320.
SHARES_OF_800 = {
    "operator": 320,
    "market": 120,
    "tax": 120,
    "hrss": 80,
    "utilities": 64,
    "credit": 48,
    "court": 48,
}


@dataclass(frozen=True)
class Ledger:
    home: Path
    settled: str  # last month, closed by pdo.settlement.settle
    current: str  # this month: the seed's 4 calls (800 fen), provisional


def _usage_last_month(home: Path, period: str) -> None:
    """Calls served mid-month in Beijing time of `period`, by the seed's two banks."""
    start, _ = settlement.period_bounds(period)
    at = start + dt.timedelta(days=14, hours=3)  # the 15th, 11:00 Beijing time
    engine = make_engine(Settings(home=home).db_url)
    with session_scope(engine) as s:
        for bank, (served, withheld) in LAST_MONTH.items():
            sub = s.exec(select(Subscriber).where(Subscriber.name == bank)).one()
            subscription = s.exec(
                select(Subscription).where(Subscription.subscriber_id == sub.id)
            ).one()
            key = s.exec(select(ApiKey).where(ApiKey.subscriber_id == sub.id)).one()
            for i in range(served + withheld):
                usage = UsageEvent(
                    subscriber_id=sub.id,
                    api_key_id=key.id,
                    subscription_id=subscription.id,
                    product_version_id="credit_risk@1",
                    status="withheld" if i >= served else "served",
                    uscc=f"91310000MA1K00010{i}",
                    purpose="贷前审查",
                    price_fen=PRICE,
                    served_at=at + dt.timedelta(minutes=i),
                )
                s.add(usage)
                s.flush()  # on the audit chain as the API would have put it: settling checks it
                audit.record(
                    s, f"subscriber:{sub.id}", "query.serve", usage.id, **details_of(usage)
                )
    engine.dispose()


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Ledger:
    home = tmp_path_factory.mktemp("revenue") / "home"
    seed_console(home)
    current = business_month(utcnow())
    last = month_before(current)
    _usage_last_month(home, last)
    engine = make_engine(Settings(home=home).db_url)
    with session_scope(engine) as s:
        settlement.settle(s, last, "olga", utcnow())
    engine.dispose()
    return Ledger(home, last, current)


@pytest.fixture
def home(ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> Iterator[Ledger]:
    monkeypatch.setenv("PDO_HOME", str(ledger.home))
    monkeypatch.delenv("PDO_DATABASE_URL", raising=False)
    monkeypatch.setenv("PDO_CONSOLE_CONTINUES_RUNS", "false")
    yield ledger


def _login(name: str) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.run()
    at.text_input(key="login_name").input(name)
    at.text_input(key="login_password").input(PASSWORD)
    at.button(key="login_submit").click().run()
    assert not at.exception and "pdo_user" in at.session_state
    return at


def _revenue(name: str) -> AppTest:
    at = _login(name)
    at.switch_page("app_pages/revenue.py").run()
    assert not at.exception, at.exception
    return at


def _metrics(at: AppTest) -> dict[str, str]:
    return {m.label: str(m.value) for m in at.metric}


def _fen(yuan_text: str) -> int:
    whole, cents = yuan_text.replace(",", "").split(".")
    sign = -1 if whole.startswith("-") else 1
    return sign * (abs(int(whole)) * 100 + int(cents))


def _frames(at: AppTest, *columns: str) -> list[pl.DataFrame]:
    """The page's dataframes with exactly these columns, in page order."""
    return [pl.from_pandas(d.value) for d in at.dataframe if tuple(d.value.columns) == columns]


def _frame(at: AppTest, *columns: str) -> pl.DataFrame:
    """The one dataframe on the page with exactly these columns."""
    (match,) = _frames(at, *columns)
    return match


# --- all periods and the open month ------------------------------------------------------


def test_regulator_sees_all_periods_and_the_provisional_month(home: Ledger) -> None:
    at = _revenue("regina")
    assert [t.value for t in at.title] == ["收益分配"]
    assert at.selectbox(key="revenue_period").options == [
        f"{home.current}（本月，试算）",
        f"{home.settled}（已结算）",
    ]
    assert at.selectbox(key="revenue_period").value == home.current
    assert _metrics(at) == {
        # all periods: last month 5 × 2.00 − 2.00 refund, this month 4 × 2.00
        "计费总额（元）": "18.00",
        "退款（元）": "2.00",
        "分配合计（元）": "16.00",
        "核对": "一致",
        # this month, provisional
        "本期计费（元）": "8.00",
        "本期退款（元）": "0.00",
        "本期净收入（元）": "8.00",
        "本期已分配（元）": "8.00",
        "本期核对": "一致",
    }
    everything = pl.from_pandas(at.dataframe[0].value)
    assert everything.columns == ["分配方", "代码", "金额（元）", "占比"]
    amounts = dict(zip(everything["代码"], everything["金额（元）"], strict=True))
    assert amounts == {p: revenue.yuan(2 * fen) for p, fen in SHARES_OF_800.items()}
    assert everything.row(0) == ("授权运营单位", "operator", "6.40", "40.00%")
    assert sum(_fen(v) for v in everything["金额（元）"]) == 1600

    provisional = " ".join(i.value for i in at.info)
    assert "试算" in provisional and "未结算" in provisional
    assert f"pdo settle --period {home.current}" in provisional
    _, month = _frames(at, "分配方", "代码", "金额（元）", "占比")  # all periods, this month
    assert dict(zip(month["代码"], month["金额（元）"], strict=True)) == {
        p: revenue.yuan(fen) for p, fen in SHARES_OF_800.items()
    }
    assert "市场监督管理局" in set(month["分配方"])
    charts = at.get("vega_lite_chart")
    assert len(charts) == 2  # this month's allocation and the trend over settled months
    assert [getattr(b, "label", None) for b in at.get("download_button")] == [
        "下载分配明细 CSV",
        "下载对账单 CSV",
        "下载工作簿 XLSX",
    ]


def test_operator_switches_to_the_settled_month_and_back(home: Ledger) -> None:
    at = _revenue("olga")
    at.selectbox(key="revenue_period").select(home.settled).run()
    assert not at.exception
    metrics = _metrics(at)
    assert {k: metrics[k] for k in metrics if k.startswith("本期")} == {
        "本期计费（元）": "10.00",
        "本期退款（元）": "2.00",
        "本期净收入（元）": "8.00",
        "本期已分配（元）": "8.00",
        "本期核对": "一致",
    }
    assert metrics["计费总额（元）"] == "18.00"  # the all-period summary does not move
    assert not any("试算" in i.value for i in at.info)
    assert any("由 olga 结算" in c.value for c in at.caption)

    versions = _frame(at, "产品版本", "调用/交付次数", "计费（元）", "退款（元）", "净收入（元）")
    assert versions.rows() == [("credit_risk@1", 5, "10.00", "2.00", "8.00")]
    lines = _frame(at, "产品版本", "分配方", "代码", "权重", "金额（元）")
    assert sum(_fen(v) for v in lines["金额（元）"]) == 800
    operator = lines.filter(pl.col("代码") == "operator").row(0, named=True)
    assert operator["权重"] == "4000 / 10000" and operator["金额（元）"] == "3.20"
    statements = _frame(
        at,
        "银行",
        "套餐",
        "类型",
        "用量",
        "超额",
        "异议暂缓",
        "计费（元）",
        "退款（元）",
        "应付（元）",
    )
    by_bank = {r["银行"]: r for r in statements.iter_rows(named=True)}
    assert by_bank["示范银行"]["用量"] == 4 and by_bank["示范银行"]["异议暂缓"] == 1
    assert by_bank["示范银行"]["应付（元）"] == "6.00"  # 4 × 2.00 − 2.00 refunded
    assert by_bank["第二银行"]["应付（元）"] == "2.00"
    assert (
        by_bank["示范银行"]["类型"] == "查询"
        and by_bank["示范银行"]["套餐"] == "credit_risk/standard"
    )

    at.selectbox(key="revenue_period").select(home.current).run()
    assert _metrics(at)["本期计费（元）"] == "8.00"
    assert any("试算" in i.value for i in at.info)


def test_recheck_of_a_settled_month_finds_altered_usage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    seed_console(home)
    last = month_before(business_month(utcnow()))
    _usage_last_month(home, last)
    engine = make_engine(Settings(home=home).db_url)
    with session_scope(engine) as s:
        settlement.settle(s, last, "olga", utcnow())
    monkeypatch.setenv("PDO_HOME", str(home))
    monkeypatch.delenv("PDO_DATABASE_URL", raising=False)
    at = _revenue("regina")
    assert not at.get("button") or "revenue-recheck" not in [b.key for b in at.button]
    at.selectbox(key="revenue_period").select(last).run()
    at.button(key="revenue-recheck").click().run()
    assert any(s.value.startswith("重新核对一致") for s in at.success)
    with engine.begin() as conn:  # someone lowers a settled call's price afterwards
        conn.execute(
            text("UPDATE usage_event SET price_fen = 1 WHERE settled_period = :p"), {"p": last}
        )
    engine.dispose()
    at.button(key="revenue-recheck").click().run()
    assert any(e.value.startswith("重新核对不一致") for e in at.error)
    assert _metrics(at)["本期计费（元）"] == "10.00"  # the settlement as recorded stands


def test_english_toggle(home: Ledger) -> None:
    at = _revenue("regina")
    at.toggle(key="pdo_lang_en").set_value(True).run()
    assert [t.value for t in at.title] == ["Revenue"]
    metrics = _metrics(at)
    assert metrics["Billed (CNY)"] == "18.00" and metrics["Net this month (CNY)"] == "8.00"
    assert (
        at.selectbox(key="revenue_period").options[0] == f"{home.current} (this month, provisional)"
    )
    assert list(at.dataframe[0].value.columns) == ["Party", "Code", "Amount (CNY)", "Share"]
    assert "Authorized operator" in set(at.dataframe[0].value["Party"])


# --- roles -------------------------------------------------------------------------------


def test_reviewer_is_refused(home: Ledger) -> None:
    at = _login("rita")
    with pytest.raises(ValueError):
        at.switch_page("app_pages/revenue.py")  # not in a reviewer's navigation
    # and the page itself refuses, should anyone reach it
    page = AppTest.from_file(str(PAGE), default_timeout=60)
    page.session_state["pdo_settings"] = Settings(home=home.home)
    page.session_state["pdo_user"] = {"name": "rita", "role": "reviewer", "exp": time.time() + 60}
    page.run()
    assert not page.exception
    assert any("无权访问" in e.value for e in page.error)
    assert not page.metric and not page.dataframe and not page.get("download_button")


# --- the data behind the page ------------------------------------------------------------


def test_downloads_parse_back_and_sum_to_the_months_net(home: Ledger) -> None:
    engine = make_engine(Settings(home=home.home).db_url)
    for period, settled, net in ((home.settled, True, 800), (home.current, False, 800)):
        files = {f.key: f for f in revenue.downloads(period, settled)}
        state = "settled" if settled else "provisional"
        assert files["workbook"].file_name == f"settlement-{period}-{state}.xlsx"
        made = {key: revenue.file_maker(engine, period, key, "regina")() for key in files}
        allocations = pl.read_csv(io.BytesIO(made["allocations"]))
        statements = pl.read_csv(io.BytesIO(made["statements"]))
        assert allocations["金额（分）fen"].sum() == net
        assert statements["应付（分）due"].sum() == net
        assert set(allocations["期间 period"]) == {period}
        book = load_workbook(io.BytesIO(made["workbook"]), read_only=True)
        sheet = book["收益分配 allocations"]
        header, *rows = list(sheet.iter_rows(values_only=True))
        fen = header.index("金额（分）fen")
        assert sum(int(str(r[fen])) for r in rows) == net
        with read_scope(engine) as s:  # the same bytes as the function the buttons call
            figures = settlement.figures(s, period)
            assert revenue.file_bytes(s, figures, "allocations") == made["allocations"]
            taken = s.exec(
                select(AuditEvent).where(
                    AuditEvent.action == "export.settlement", AuditEvent.subject == period
                )
            ).all()
        assert [(e.actor, e.details["file"]) for e in taken] == [
            ("regina", key) for key in files
        ]  # who took which file is on the audit chain
    engine.dispose()


def test_totals_agree_with_revenue_report(home: Ledger) -> None:
    """The page's all-period sums (recorded settlements + open usage) equal the slow way."""
    engine = make_engine(Settings(home=home.home).db_url)
    with read_scope(engine) as s:
        totals = revenue.totals(s)
        report = revenue_report(s)
        names = revenue.party_names(s)
        assert (totals.billed_fen, totals.refunded_fen, totals.allocated_fen) == (
            report.billed_fen,
            report.refunded_fen,
            report.allocated_fen,
        )
        assert revenue.totals_frame(totals, names).equals(report.by_party)
        assert totals.open_events == 4
        # the open month reuses the totals' aggregate: the same as pdo.settlement.figures
        assert revenue.month_view(s, home.current, totals.unsettled).figures == (
            settlement.figures(s, home.current)
        )
        assert revenue.month_view(s, home.settled, totals.unsettled).figures == (
            settlement.figures(s, home.settled)
        )
        assert revenue.name_of("operator", names) == "授权运营单位"
        assert revenue.name_of("tax", names) == "税务局"
        assert revenue.name_of("exchange", names) == "其他方（exchange）"  # named by a rule only
        trend = revenue.trend(s, names)
        assert trend["period"].unique().to_list() == [home.settled]
        assert trend["fen"].sum() == 800
    engine.dispose()


def test_an_ended_month_without_settlement_is_offered_with_how_to_close_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    seed_console(home)
    current = business_month(utcnow())
    last = month_before(current)
    _usage_last_month(home, last)
    monkeypatch.setenv("PDO_HOME", str(home))
    monkeypatch.delenv("PDO_DATABASE_URL", raising=False)
    engine = make_engine(Settings(home=home).db_url)
    with read_scope(engine) as s:
        assert revenue.months(s, utcnow()) == [
            revenue.Month(current, settled=False, ended=False),
            revenue.Month(last, settled=False, ended=True),
        ]
    engine.dispose()
    at = _revenue("regina")
    assert "暂无已结算月份" in " ".join(i.value for i in at.info)
    at.selectbox(key="revenue_period").select(last).run()
    warning = " ".join(w.value for w in at.warning)
    assert "尚未结算" in warning and f"pdo settle --period {last}" in warning
    _, end = settlement.period_bounds(last)
    assert end.astimezone(BUSINESS_TZ).strftime("%Y-%m-%d %H:%M") in warning
    assert _metrics(at)["本期净收入（元）"] == "8.00"  # last month's 5 calls less the refund
    assert at.selectbox(key="revenue_period").options[1] == f"{last}（已结束，待结算）"


def test_empty_ledger_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "empty"
    seed_console(home, with_runs=False)
    monkeypatch.setenv("PDO_HOME", str(home))
    monkeypatch.delenv("PDO_DATABASE_URL", raising=False)
    at = _revenue("olga")
    infos = [i.value for i in at.info]
    assert "暂无收益分配记录。" in infos
    assert any(i.startswith("本期暂无计费调用") for i in infos)
    assert any("pdo settle --period YYYY-MM" in i for i in infos)
    assert _metrics(at)["本期计费（元）"] == "0.00"
    assert not at.get("vega_lite_chart") and not at.get("download_button")
