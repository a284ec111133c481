"""Billing and settlement (结算) to the fen: allocation properties, closed months, the CLI, exports.

Hypothesis properties on the largest-remainder split and the revenue rules; real ledgers (a
SQLite file, and PostgreSQL when PDO_TEST_POSTGRES_URL is set) seeded by tests/delivery_seed.py
plus a second product version with a rule by input tables, with usage written as the ledger
stores it in back-dated months; the real CLI through CliRunner. Every expected figure is computed
here from the events the test wrote, never read back from the code under test.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select
from typer.testing import CliRunner

from pdo import audit
from pdo.cli import app
from pdo.delivery.metering import USAGE_ACTIONS, details_of, meter_delivery
from pdo.delivery.plans import add_plan, ensure_default_plan
from pdo.ledger.db import make_engine, session_scope
from pdo.ledger.models import (
    AuditCheckpoint,
    AuditEvent,
    Plan,
    Product,
    ProductVersion,
    Settlement,
    SettlementLine,
    StatementLine,
    Subscription,
    UsageEvent,
)
from pdo.revenue import FULL_BP, OPERATOR, RevenueRule, allocate, breaches_of_terms
from pdo.settings import Settings
from pdo.settlement import SettlementError, reconciles, settle
from pdo.subscribers import add_subscriber, find_subscriber, subscribe
from products.registry import product
from tests.delivery_seed import BANKS, SHARES_BP, VERSION, seed_delivery
from tests.pg import fresh_database

A, B = BANKS
UTC = dt.UTC
BEIJING = dt.timezone(dt.timedelta(hours=8))  # no daylight saving: a fixed offset is exact

# --- allocation and revenue rules: properties ------------------------------------------------

PARTY_NAMES = st.sampled_from(["market", "tax", "hrss", "court", "exchange", OPERATOR, "a", "b"])
WEIGHTS = st.dictionaries(PARTY_NAMES, st.integers(0, 10**6), min_size=1, max_size=8).filter(
    lambda w: sum(w.values()) > 0
)
AMOUNTS = st.one_of(st.just(0), st.integers(-(10**12), 10**12), st.integers(-50, 50))
PROPERTIES = settings(max_examples=100, deadline=None)


@PROPERTIES
@given(AMOUNTS, WEIGHTS)
def test_allocate_sums_to_the_amount_and_each_part_is_within_a_fen_of_its_share(
    amount: int, weights: dict[str, int]
) -> None:
    parts = allocate(amount, weights)
    total = sum(weights.values())
    assert set(parts) == set(weights)
    assert sum(parts.values()) == amount
    for party, weight in weights.items():
        assert abs(parts[party] - Fraction(amount * weight, total)) < 1
        if weight == 0:
            assert parts[party] == 0  # a party without weight never receives a leftover fen


@PROPERTIES
@given(AMOUNTS, WEIGHTS, st.data())
def test_allocate_is_deterministic_whatever_the_order_of_the_weights(
    amount: int, weights: dict[str, int], data: st.DataObject
) -> None:
    reordered = dict(data.draw(st.permutations(list(weights.items()))))
    assert allocate(amount, reordered) == allocate(amount, weights) == allocate(amount, weights)


@PROPERTIES
@given(st.integers(1, 10**12), WEIGHTS)
def test_a_net_refund_is_split_as_the_mirror_of_the_same_charge(
    amount: int, weights: dict[str, int]
) -> None:
    charge = allocate(amount, weights)
    assert allocate(-amount, weights) == {party: -fen for party, fen in charge.items()}


def test_allocate_refuses_weights_that_cannot_split() -> None:
    for bad in ({}, {"a": 0}, {"a": 5, "b": -1}):
        with pytest.raises(ValueError, match="weights"):
            allocate(100, bad)


DEPARTMENTS = ("market", "tax", "hrss", "utilities", "credit", "court")
OTHERS = ("exchange", "fund")


@st.composite
def rules(draw: st.DrawFn) -> RevenueRule:
    """A valid rule: by declared department weights or by an inputs pool, with other parties."""
    others = draw(st.dictionaries(st.sampled_from(OTHERS), st.integers(0, 2000), max_size=2))
    budget = FULL_BP - sum(others.values())
    if draw(st.booleans()):
        return RevenueRule(inputs_pool_bp=draw(st.integers(0, budget)), others_bp=others)
    each = st.integers(0, budget // len(DEPARTMENTS))
    departments = draw(st.dictionaries(st.sampled_from(DEPARTMENTS), each, max_size=6))
    return RevenueRule(departments_bp=departments, others_bp=others)


INPUTS = st.lists(st.sampled_from(DEPARTMENTS), min_size=1, max_size=8)


@PROPERTIES
@given(rules(), INPUTS, AMOUNTS, st.data())
def test_a_rules_weights_give_each_party_its_declared_share_and_split_exactly(
    rule: RevenueRule, inputs: list[str], amount: int, data: st.DataObject
) -> None:
    weights = rule.weights(inputs)
    total = sum(weights.values())
    tables = Counter(inputs)
    n = len(inputs) if rule.inputs_pool_bp is not None else 1
    assert total == FULL_BP * n and all(isinstance(w, int) and w > 0 for w in weights.values())
    declared: dict[str, Fraction] = {p: Fraction(bp) for p, bp in rule.others_bp.items()}
    if rule.inputs_pool_bp is None:
        declared |= {p: Fraction(bp) for p, bp in rule.departments_bp.items()}
    else:  # the pool is shared in proportion to the input tables each department supplies
        declared |= {d: Fraction(rule.inputs_pool_bp * k, len(inputs)) for d, k in tables.items()}
    for party, bp in declared.items():
        assert Fraction(weights.get(party, 0), total) == bp / FULL_BP
    operator = FULL_BP - sum(declared.values())
    assert Fraction(weights.get(OPERATOR, 0), total) == operator / FULL_BP
    shuffled = data.draw(st.permutations(inputs))
    assert rule.weights(shuffled) == weights  # which table comes first does not matter
    assert sum(allocate(amount, weights).values()) == amount


def test_rule_weights_for_the_shipped_products() -> None:
    """credit_risk declares department weights; operating_status pools its share by tables."""
    credit = product("credit_risk")
    declared = dict(credit.revenue.departments_bp)
    assert credit.revenue.inputs_pool_bp is None and declared
    assert credit.revenue_weights() == dict(
        sorted((declared | {OPERATOR: FULL_BP - sum(declared.values())}).items())
    )
    status = product("operating_status")
    pool = status.revenue.inputs_pool_bp
    assert pool is not None and len(status.inputs) == 2
    # both of its tables come from the market regulator: the whole pool goes to it
    assert status.revenue_weights() == {"market": 2 * pool, OPERATOR: 2 * (FULL_BP - pool)}
    rule = RevenueRule(inputs_pool_bp=3000, others_bp={"exchange": 500})
    assert rule.weights(["market", "tax", "market"]) == {
        "exchange": 1500,
        "market": 6000,
        OPERATOR: 19_500,
        "tax": 3000,
    }
    with pytest.raises(ValueError, match="at least one input table"):
        rule.weights([])


def test_a_department_named_again_as_another_party_does_not_lose_its_pool_share() -> None:
    """A rule by inputs that also names a source department among its other parties: the
    department must get both shares, or the rule be refused as declaring it twice (as a rule
    by weights is) — never have its pool share silently go to the operator."""
    rule = RevenueRule(inputs_pool_bp=3000, others_bp={"market": 500})
    try:
        weights = rule.weights(["market", "tax"])
    except ValueError as refused:
        assert "market" in str(refused)
        return
    total = sum(weights.values())
    # market: half the 30% pool for one of the two tables, plus its own 5%
    assert Fraction(weights["market"], total) == Fraction(1500 + 500, FULL_BP)
    assert Fraction(weights[OPERATOR], total) == Fraction(FULL_BP - 3000 - 500, FULL_BP)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"departments_bp": {"tax": 100}, "inputs_pool_bp": 100}, "not both"),
        ({"departments_bp": {"tax": -1}}, "negative"),
        ({"departments_bp": {"tax": 6000}, "others_bp": {"exchange": 4001}}, "exceed 100%"),
        ({"departments_bp": {"tax": 100}, "others_bp": {"tax": 100}}, "declared twice"),
        ({"others_bp": {OPERATOR: 100}}, "declared twice"),
    ],
)
def test_an_impossible_rule_is_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RevenueRule(**kwargs)


def test_breaches_of_terms_name_a_share_below_the_grants_minimum() -> None:
    shares = {"market": 1500, "tax": 1500, "hrss": 1000, "utilities": 800, "court": 1200}
    weights = RevenueRule(departments_bp=shares).weights([])  # departments together: 60%
    departments = set(shares)
    assert (
        breaches_of_terms(
            weights, departments=departments, min_department_share_bp=6000, revenue_parties=[]
        )
        == []
    )
    (problem,) = breaches_of_terms(
        weights, departments=departments, min_department_share_bp=6001, revenue_parties=[]
    )
    assert "60.00%" in problem and "at least 60.01%" in problem
    # a department the grant does not cover is not a source department: its share does not count
    (unnamed, short) = breaches_of_terms(
        weights,
        departments=departments - {"court"},
        min_department_share_bp=5500,
        revenue_parties=[],
    )
    assert "'court'" in unnamed and "48.00%" in short and "55.00%" in short


def test_breaches_of_terms_name_a_party_the_grant_does_not() -> None:
    rule = RevenueRule(inputs_pool_bp=3000, others_bp={"exchange": 500})
    weights = rule.weights(["market", "tax"])
    sources = {"market", "tax"}
    (problem,) = breaches_of_terms(
        weights, departments=sources, min_department_share_bp=3000, revenue_parties=[]
    )
    assert "'exchange'" in problem and "revenue terms" in problem
    assert (
        breaches_of_terms(
            weights, departments=sources, min_department_share_bp=3000, revenue_parties=["exchange"]
        )
        == []
    )


# --- a real ledger: two versions, three subscriptions, usage in back-dated months ------------

STATUS_VERSION = "operating_status@1"
STATUS_RULE = RevenueRule(inputs_pool_bp=3000, others_bp={"exchange": 500})
STATUS_INPUTS = ["market", "market", "tax"]  # the department of each of its input tables
CREDIT_WEIGHTS = RevenueRule(departments_bp=SHARES_BP).weights([])  # as tests/delivery_seed.py
# Whether each subscription's plan refunds withheld results (crafty: a bank on the standard plan)
PLAN_REFUNDS = {"metered": True, "norefund": False, "status": True, "crafty": True}
NOW = dt.datetime(2026, 12, 1, 3, 0, tzinfo=UTC)  # September to November 2026 are closed


@dataclass(frozen=True)
class Books:
    """A seeded ledger and its subscriptions by role.

    metered: 甲银行 on credit_risk at 150 fen, quota 3, overage 200, refunds withheld results;
    norefund: 乙银行 on credit_risk at 120 fen, no refunds; status: 甲银行 on operating_status.
    """

    settings: Settings
    engine: Engine
    subscriptions: dict[str, int]


@dataclass(frozen=True)
class Use:
    """A usage event to write: on which subscription, when, at what price, how it was served."""

    sub: str
    at: dt.datetime
    price_fen: int
    status: str = "served"
    overage: bool = False
    units: int = 1
    kind: str = "query"

    @property
    def version(self) -> str:
        return STATUS_VERSION if self.sub == "status" else VERSION

    @property
    def refund(self) -> int:
        return self.price_fen if self.status == "withheld" and PLAN_REFUNDS[self.sub] else 0


def open_books(home: Path, database_url: str | None = None) -> Books:
    """tests/delivery_seed.py's ledger, operating_status@1 (a rule by input tables), plans."""
    ledger = seed_delivery(home, database_url)
    with session_scope(ledger.engine) as s:
        credit = s.get(ProductVersion, VERSION)
        assert credit is not None
        status = Product(
            name="operating_status",
            title_zh="经营状态核验",
            title_en="Enterprise operating-status verification",
            purposes=["贷前审查", "贷后管理"],
            price_fen=50,
        )
        s.add(status)
        s.flush()
        s.add(
            ProductVersion(
                id=STATUS_VERSION,
                product_name="operating_status",
                version=1,
                run_id=credit.run_id,
                signoff_id=credit.signoff_id,
                output_hash="c" * 64,
                as_of=dt.date(2026, 9, 1),
                revenue_rule=STATUS_RULE.describe(),
                revenue_weights=STATUS_RULE.weights(STATUS_INPUTS),
            )
        )
        metered = add_plan(
            s,
            product_name="credit_risk",
            name="metered",
            title_zh="按量套餐",
            price_fen=150,
            monthly_quota=3,
            overage_price_fen=200,
            validity_days=365,
            refund_withheld=True,
            actor="operator",
        )
        norefund = add_plan(
            s,
            product_name="credit_risk",
            name="norefund",
            title_zh="不退款套餐",
            price_fen=120,
            monthly_quota=None,
            validity_days=365,
            refund_withheld=False,
            actor="operator",
        )
        a, b = find_subscriber(s, A), find_subscriber(s, B)
        subs = {
            "metered": subscribe(s, a, metered.id, "operator").id,
            "norefund": subscribe(s, b, norefund.id, "operator").id,
            "status": subscribe(s, a, ensure_default_plan(s, status).id, "operator").id,
        }
    return Books(ledger.settings, ledger.engine, {k: v for k, v in subs.items() if v is not None})


def write_usage(books: Books, uses: Sequence[Use]) -> list[str]:
    """Usage events as the ledger stores them, each with its record on the audit chain."""
    ids = []
    with session_scope(books.engine) as s:
        for use in uses:
            sub = s.get(Subscription, books.subscriptions[use.sub])
            assert sub is not None
            usage = UsageEvent(
                subscriber_id=sub.subscriber_id,
                subscription_id=sub.id,
                product_version_id=use.version,
                kind=use.kind,
                status=use.status,
                uscc=None if use.kind == "batch" else "91310000MA1K0000X0",
                purpose="贷前审查",
                units=use.units,
                price_fen=use.price_fen,
                overage=use.overage,
                served_at=use.at,
            )
            s.add(usage)
            s.flush()
            audit.record(
                s,
                f"subscriber:{sub.subscriber_id}",
                USAGE_ACTIONS[use.kind],
                usage.id,
                **details_of(usage),
            )
            ids.append(usage.id)
    return ids


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def month_of(at: dt.datetime) -> str:
    """The business month of an instant, in Beijing time (UTC+8)."""
    return at.astimezone(BEIJING).strftime("%Y-%m")


def month_end(period: str) -> dt.datetime:
    """The first instant after a business month (00:00 Beijing on the next month's first)."""
    year, month = map(int, period.split("-"))
    return dt.datetime(year + month // 12, month % 12 + 1, 1, tzinfo=BEIJING).astimezone(UTC)


SEPTEMBER = [
    Use("metered", utc("2026-09-10T02:00:00"), 150),
    Use("metered", utc("2026-09-30T15:59:59"), 150),  # 23:59:59 on 30 Sept in Beijing
    Use("norefund", utc("2026-09-12T08:00:00"), 120, status="withheld"),
]
OCTOBER = [
    Use("metered", utc("2026-09-30T16:00:00"), 150),  # 00:00 on 1 Oct in Beijing
    Use("metered", utc("2026-10-08T01:00:00"), 150, status="withheld"),
    Use("metered", utc("2026-10-09T01:00:00"), 150),
    Use("metered", utc("2026-10-20T01:00:00"), 200, overage=True),
    Use("metered", utc("2026-10-21T01:00:00"), 200, status="withheld", overage=True),
    Use("norefund", utc("2026-10-03T01:00:00"), 120),
    Use("norefund", utc("2026-10-04T01:00:00"), 120),
    Use("norefund", utc("2026-10-07T01:00:00"), 120, status="withheld"),
    Use("status", utc("2026-10-15T01:00:00"), 7 * 50, units=7, kind="batch"),
    Use("status", utc("2026-10-16T01:00:00"), 50),
    Use("status", utc("2026-10-17T01:00:00"), 50, status="withheld"),
]
NOVEMBER = [Use("metered", utc("2026-10-31T16:00:00"), 150)]  # 00:00 on 1 Nov in Beijing
SCENARIO = [*SEPTEMBER, *OCTOBER, *NOVEMBER]


@dataclass
class Expected:
    """A period's figures as the test computes them from the events it wrote."""

    events: int = 0
    billed: dict[str, int] = field(default_factory=dict)  # version → fen
    refunded: dict[str, int] = field(default_factory=dict)
    statements: dict[tuple[str, str], tuple[int, ...]] = field(default_factory=dict)

    @property
    def billed_fen(self) -> int:
        return sum(self.billed.values())

    @property
    def refunded_fen(self) -> int:
        return sum(self.refunded.values())

    def net(self, version: str) -> int:
        return self.billed[version] - self.refunded[version]


def expect(uses: Sequence[Use]) -> Expected:
    """Billed and refunded per version; per subscription and kind: units, overage units, withheld
    units, charged, refunded."""
    out = Expected(events=len(uses))
    lines: dict[tuple[str, str], list[int]] = {}
    for u in uses:
        out.billed[u.version] = out.billed.get(u.version, 0) + u.price_fen
        out.refunded[u.version] = out.refunded.get(u.version, 0) + u.refund
        line = lines.setdefault((u.sub, u.kind), [0, 0, 0, 0, 0])
        withheld = u.units if u.status == "withheld" else 0
        for i, value in enumerate(
            (u.units, u.units if u.overage else 0, withheld, u.price_fen, u.refund)
        ):
            line[i] += value
    out.statements = {key: tuple(v) for key, v in lines.items()}
    return out


WEIGHTS_OF = {VERSION: CREDIT_WEIGHTS, STATUS_VERSION: STATUS_RULE.weights(STATUS_INPUTS)}


def settle_now(books: Books, period: str, now: dt.datetime = NOW) -> Settlement:
    with session_scope(books.engine) as s:
        return settle(s, period, "operator", now)


def counts(engine: Engine) -> dict[str, int]:
    """Rows a settlement writes, and how many usage events are still unsettled."""
    with Session(engine) as s:
        tally = {
            m.__name__: int(s.exec(select(func.count()).select_from(m)).one())
            for m in (Settlement, SettlementLine, StatementLine, AuditEvent)
        }
        tally["unsettled"] = int(
            s.exec(select(func.count()).where(col(UsageEvent.settled_period).is_(None))).one()
        )
    return tally


def assert_settled_as(books: Books, period: str, uses: Sequence[Use]) -> None:
    """The settlement, its lines and its statements are exactly what these events give."""
    want = expect(uses)
    subs = {v: k for k, v in books.subscriptions.items()}
    with Session(books.engine) as s:
        closed = s.get(Settlement, period)
        assert closed is not None
        assert (closed.events, closed.billed_fen, closed.refunded_fen, closed.net_fen) == (
            want.events,
            want.billed_fen,
            want.refunded_fen,
            want.billed_fen - want.refunded_fen,
        )
        lines = s.exec(select(SettlementLine).where(SettlementLine.period == period)).all()
        statements = s.exec(select(StatementLine).where(StatementLine.period == period)).all()
        assert reconciles(s, closed)
    by_version: dict[str, dict[str, tuple[int, int]]] = {}
    for line in lines:
        by_version.setdefault(line.product_version_id, {})[line.party] = (
            line.weight,
            line.amount_fen,
        )
    assert set(by_version) == set(want.billed)
    for version, parts in by_version.items():
        weights, net = WEIGHTS_OF[version], want.net(version)
        assert {p: w for p, (w, _) in parts.items()} == weights
        assert sum(fen for _, fen in parts.values()) == net  # to the fen
        total = sum(weights.values())
        for weight, fen in parts.values():
            assert abs(fen - Fraction(net * weight, total)) < 1
        assert {p: fen for p, (_, fen) in parts.items()} == allocate(net, weights)
    assert sum(line.amount_fen for line in lines) == want.billed_fen - want.refunded_fen
    got = {
        (subs[st.subscription_id or 0], st.kind): (
            st.units,
            st.overage_units,
            st.withheld_units,
            st.charged_fen,
            st.refunded_fen,
        )
        for st in statements
    }
    assert got == want.statements
    assert all(st.net_fen == st.charged_fen - st.refunded_fen for st in statements)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    if request.param == "sqlite":
        yield None
    else:
        with fresh_database() as url:
            yield url


@pytest.fixture
def books(tmp_path: Path, database_url: str | None) -> Iterator[Books]:
    opened = open_books(tmp_path, database_url)
    write_usage(opened, SCENARIO)
    yield opened
    opened.engine.dispose()


def test_each_versions_lines_sum_to_its_net_and_the_total_is_billed_less_refunds(
    books: Books,
) -> None:
    settle_now(books, "2026-09")
    settle_now(books, "2026-10")
    assert_settled_as(books, "2026-09", SEPTEMBER)
    assert_settled_as(books, "2026-10", OCTOBER)
    with Session(books.engine) as s:
        periods = {u.served_at: u.settled_period for u in s.exec(select(UsageEvent))}
    # months are Beijing months: 15:59:59 UTC on 30 Sept is September, 16:00 is October
    assert periods == {
        u.at: month_of(u.at) if month_of(u.at) != "2026-11" else None for u in SCENARIO
    }
    assert periods[utc("2026-09-30T15:59:59")] == "2026-09"
    assert periods[utc("2026-09-30T16:00:00")] == "2026-10"


def test_withheld_results_are_refunded_only_when_the_plan_refunds_them(books: Books) -> None:
    settle_now(books, "2026-10")  # takes September's unsettled usage in too
    with Session(books.engine) as s:
        lines = {
            line.subscription_id: line
            for line in s.exec(select(StatementLine).where(StatementLine.kind == "query"))
        }
    metered = lines[books.subscriptions["metered"]]
    norefund = lines[books.subscriptions["norefund"]]
    status = lines[books.subscriptions["status"]]
    assert (metered.withheld_units, metered.refunded_fen) == (2, 150 + 200)
    assert (norefund.withheld_units, norefund.refunded_fen) == (2, 0)  # the plan keeps them
    assert (norefund.charged_fen, norefund.net_fen) == (4 * 120, 4 * 120)
    assert (status.withheld_units, status.refunded_fen) == (1, 50)


def test_overage_units_are_on_the_statement(books: Books) -> None:
    settle_now(books, "2026-09")
    settle_now(books, "2026-10")
    with Session(books.engine) as s:
        line = s.exec(
            select(StatementLine).where(
                StatementLine.period == "2026-10",
                StatementLine.subscription_id == books.subscriptions["metered"],
            )
        ).one()
    assert (line.plan_id, line.monthly_quota) == ("credit_risk/metered", 3)
    assert (line.units, line.overage_units) == (5, 2)
    assert line.charged_fen == 3 * 150 + 2 * 200


def test_a_metered_delivery_is_billed_once_by_its_units(tmp_path: Path) -> None:
    books = open_books(tmp_path)
    with session_scope(books.engine) as s:
        sub = s.get(Subscription, books.subscriptions["status"])
        assert sub is not None
        first = meter_delivery(
            s,
            subscription=sub,
            product_version_id=STATUS_VERSION,
            kind="batch",
            purpose="贷后管理",
            units=40,
            delivery_key="batch:file-1",
        )
        again = meter_delivery(
            s,
            subscription=sub,
            product_version_id=STATUS_VERSION,
            kind="batch",
            purpose="贷后管理",
            units=40,
            delivery_key="batch:file-1",
        )
    assert again.id == first.id
    period = month_of(first.served_at)
    settle_now(books, period, month_end(period) + dt.timedelta(minutes=1))
    with Session(books.engine) as s:
        line = s.exec(select(StatementLine)).one()
        closed = s.get(Settlement, period)
    assert (line.kind, line.units, line.charged_fen, line.net_fen) == ("batch", 40, 2000, 2000)
    assert closed is not None and (closed.events, closed.net_fen) == (1, 40 * 50)


def test_settling_again_returns_the_same_settlement_and_writes_nothing(books: Books) -> None:
    first = settle_now(books, "2026-10")
    before = counts(books.engine)
    with session_scope(books.engine) as s:
        again = settle(s, "2026-10", "someone-else", NOW + dt.timedelta(days=30))
        assert (again.digest, again.closed_at, again.closed_by, again.net_fen) == (
            first.digest,
            first.closed_at,
            "operator",
            first.net_fen,
        )
    assert counts(books.engine) == before
    assert_settled_as(books, "2026-10", [*SEPTEMBER, *OCTOBER])


def test_an_open_or_malformed_period_is_refused_with_a_clear_message(books: Books) -> None:
    before = counts(books.engine)
    still_open = utc("2026-11-30T15:59:00")  # 23:59 on 30 Nov in Beijing
    with session_scope(books.engine) as s, pytest.raises(SettlementError) as refused:
        settle(s, "2026-11", "operator", still_open)
    assert str(refused.value) == (
        "period 2026-11 is still open: it closes at 2026-12-01 00:00 北京时间"
    )
    for bad in ("2026-13", "2026-1", "November"):
        with session_scope(books.engine) as s, pytest.raises(SettlementError, match="look like"):
            settle(s, bad, "operator", NOW)
    assert counts(books.engine) == before


def test_a_period_before_a_closed_one_is_refused(books: Books) -> None:
    settle_now(books, "2026-10")
    before = counts(books.engine)
    with session_scope(books.engine) as s, pytest.raises(SettlementError) as refused:
        settle(s, "2026-09", "operator", NOW)
    assert "2026-10 is already settled" in str(refused.value)
    assert counts(books.engine) == before
    with Session(books.engine) as s:
        assert s.get(Settlement, "2026-09") is None
    # September's usage was not lost: October took it in
    assert_settled_as(books, "2026-10", [*SEPTEMBER, *OCTOBER])


def test_late_usage_goes_to_the_next_settlement_and_never_rewrites_a_closed_one(
    books: Books,
) -> None:
    settle_now(books, "2026-09")
    with Session(books.engine) as s:
        closed = s.get(Settlement, "2026-09")
        assert closed is not None
        lines = sorted(
            (x.product_version_id, x.party, x.amount_fen)
            for x in s.exec(select(SettlementLine).where(SettlementLine.period == "2026-09"))
        )
    late = [
        Use("norefund", utc("2026-09-20T03:00:00"), 120),  # served in September, committed now
        Use("metered", utc("2026-09-21T03:00:00"), 150, status="withheld"),
    ]
    late_ids = write_usage(books, late)
    with Session(books.engine) as s:
        still = s.get(Settlement, "2026-09")
        assert still is not None and reconciles(s, still)
        assert (still.digest, still.net_fen) == (closed.digest, closed.net_fen)
        assert (
            sorted(
                (x.product_version_id, x.party, x.amount_fen)
                for x in s.exec(select(SettlementLine).where(SettlementLine.period == "2026-09"))
            )
            == lines
        )
    assert_settled_as(books, "2026-09", SEPTEMBER)
    settle_now(books, "2026-10")
    assert_settled_as(books, "2026-09", SEPTEMBER)
    assert_settled_as(books, "2026-10", [*OCTOBER, *late])
    with Session(books.engine) as s:
        taken = {s.get(UsageEvent, i).settled_period for i in late_ids}  # type: ignore[union-attr]
    assert taken == {"2026-10"}


PROVINCE_MONTH = [  # 15 batch files of a million records at 150 fen: 22.5M 元, past 2^31 fen
    Use(
        "metered",
        utc(f"2026-10-{day:02d}T02:00:00"),
        1_000_000 * 150,
        units=1_000_000,
        kind="batch",
    )
    for day in range(1, 16)
]


def test_a_month_billing_past_2_to_the_31_fen_settles_and_such_a_plan_is_stored(
    tmp_path: Path, database_url: str | None
) -> None:
    """Fen and count columns are 64-bit: on PostgreSQL a 32-bit INTEGER could not hold a
    province's month (over 21.47M 元) nor a plan priced inside plans.py's bounds."""
    opened = open_books(tmp_path, database_url)
    try:
        with session_scope(opened.engine) as s:
            bulk = add_plan(
                s,
                product_name="credit_risk",
                name="bulk",
                title_zh="大额套餐",
                price_fen=3_000_000_000,
                monthly_quota=None,
                validity_days=365,
                refund_withheld=True,
                actor="operator",
            ).id
        write_usage(opened, PROVINCE_MONTH)
        closed = settle_now(opened, "2026-10")
        assert closed.billed_fen == 2_250_000_000 > 2**31
        assert_settled_as(opened, "2026-10", PROVINCE_MONTH)
        with Session(opened.engine) as s:
            stored = s.get(Plan, bulk)
            assert stored is not None and stored.price_fen == 3_000_000_000
    finally:
        opened.engine.dispose()


def test_a_month_whose_usage_no_longer_matches_the_audit_chain_is_not_settled(
    books: Books,
) -> None:
    """Settling bills and signs only usage its chain record vouches for: a price lowered in
    usage_event behind the API's back is refused with the event named, and nothing is written."""
    with session_scope(books.engine) as s:
        target = s.exec(select(UsageEvent.id).where(UsageEvent.served_at == OCTOBER[2].at)).one()
        s.execute(text("UPDATE usage_event SET price_fen = 1 WHERE id = :u"), {"u": target})
    before = counts(books.engine)
    refused = pdo(books, "settle", "--period", "2026-10")
    assert refused.exit_code == 1 and isinstance(refused.exception, SystemExit)
    assert "period 2026-10 was not settled: 1 of its usage events" in refused.output
    assert f"{target}: differs from its audit record in: price_fen" in refused.output
    assert counts(books.engine) == before
    with Session(books.engine) as s:
        assert s.get(Settlement, "2026-10") is None and not s.exec(select(AuditCheckpoint)).all()


def test_a_later_month_altered_does_not_stop_this_one_which_is_read_once(books: Books) -> None:
    """Closing October compares October's usage with the chain and not November's (that is
    November's close to refuse), reading the unsettled usage in one pass."""
    with session_scope(books.engine) as s:
        later = s.exec(select(UsageEvent.id).where(UsageEvent.served_at == NOVEMBER[0].at)).one()
        s.execute(text("UPDATE usage_event SET price_fen = 1 WHERE id = :u"), {"u": later})
    usage_reads: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().startswith("SELECT") and "FROM usage_event" in statement:
            usage_reads.append(statement)

    settle_now(books, "2026-09")
    event.listen(books.engine, "before_cursor_execute", count)
    try:
        closed = settle_now(books, "2026-10")
    finally:
        event.remove(books.engine, "before_cursor_execute", count)
    assert closed.events == len(OCTOBER)
    scans = [q for q in usage_reads if "settled_period IS NULL" in q]
    assert len(scans) == 1, scans
    refused = pdo(books, "settle", "--period", "2026-11")
    assert refused.exit_code == 1 and f"{later}: differs from its audit record" in refused.output


@pytest.mark.parametrize("month", ["2026-10-20T01:00:00", "2026-11-10T02:00:00"])
def test_a_month_is_not_settled_while_events_are_already_marked_as_billed_in_it(
    books: Books, month: str
) -> None:
    """The close bills every row marked with its period, so one marked behind the ledger's back
    (its price altered too, or served in another month) is refused, not billed unchecked."""
    settle_now(books, "2026-09")
    with Session(books.engine) as s:
        target = s.exec(select(UsageEvent.id).where(UsageEvent.served_at == utc(month))).first()
    if target is None:  # the later month's event is written by this test
        (target,) = write_usage(books, [Use("metered", utc(month), 150)])
    with session_scope(books.engine) as s:
        marked = "UPDATE usage_event SET price_fen = 9999, settled_period = '2026-10' WHERE id = :u"
        s.execute(text(marked), {"u": target})
    before = counts(books.engine)
    refused = pdo(books, "settle", "--period", "2026-10")
    assert refused.exit_code == 1 and isinstance(refused.exception, SystemExit)
    assert "1 usage events are already marked as billed in it" in refused.output
    assert target in refused.output
    assert counts(books.engine) == before
    with Session(books.engine) as s:
        assert s.get(Settlement, "2026-10") is None


@pytest.fixture
def sqlite_books(tmp_path: Path) -> Iterator[Books]:
    """The books on SQLite alone: it keeps any text in a typed column (PostgreSQL refuses it)."""
    opened = open_books(tmp_path)
    write_usage(opened, SCENARIO)
    yield opened
    opened.engine.dispose()


def _garble(books: Books, column: str, value: str, where: str) -> str:
    """Write an unreadable value into one usage row behind the API's back; its usage id."""
    with session_scope(books.engine) as s:
        first = f"SELECT id FROM usage_event WHERE {where} ORDER BY id LIMIT 1"
        target = str(s.execute(text(first)).scalar_one())
        s.execute(
            text(f"UPDATE usage_event SET {column} = :v WHERE id = :u"), {"v": value, "u": target}
        )
    return target


def test_a_month_is_not_settled_while_an_unsettled_event_cannot_be_read(
    sqlite_books: Books,
) -> None:
    """An October event whose served_at is garbled matches no month's filter: closing October
    without it would sign 13 of 14 events and never bill the last; settling refuses instead."""
    october = "served_at >= '2026-10-05' AND served_at < '2026-10-10'"
    target = _garble(sqlite_books, "served_at", "yesterday", october)
    before = counts(sqlite_books.engine)
    refused = pdo(sqlite_books, "settle", "--period", "2026-10")
    assert refused.exit_code == 1 and isinstance(refused.exception, SystemExit)
    assert "period 2026-10 was not settled: 1 unsettled usage events cannot be read" in (
        refused.output
    )
    assert f"{target}: unreadable served_at" in refused.output
    assert counts(sqlite_books.engine) == before
    with Session(sqlite_books.engine) as s:
        assert s.get(Settlement, "2026-10") is None


def test_verify_names_a_settled_event_whose_price_cannot_be_read(sqlite_books: Books) -> None:
    settle_now(sqlite_books, "2026-10")
    target = _garble(sqlite_books, "price_fen", "x150", "settled_period = '2026-10'")
    result = pdo(sqlite_books, "audit", "verify", "--json")
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    usage = json.loads(result.stdout)["usage"]
    assert [target, "unreadable price_fen: not a valid stored value (changed?)"] in (
        usage["first_problems"]
    )


def test_the_close_is_on_the_audit_chain_and_the_chain_verifies(books: Books) -> None:
    closed = settle_now(books, "2026-10")
    settle_now(books, "2026-10")  # settling again appends nothing
    want = expect([*SEPTEMBER, *OCTOBER])
    with Session(books.engine) as s:
        (record,) = s.exec(select(AuditEvent).where(AuditEvent.action == "settlement.close"))
        last = s.exec(select(func.max(AuditEvent.seq))).one()
        assert audit.verify(s).ok
        lines = s.exec(select(SettlementLine).where(SettlementLine.period == "2026-10")).all()
    by_party: Counter[str] = Counter()
    for line in lines:
        by_party[line.party] += line.amount_fen
    assert (record.subject, record.actor, record.seq) == ("2026-10", "operator", last)
    assert record.details["digest"] == closed.digest
    assert record.details["billed_fen"] == want.billed_fen
    assert record.details["refunded_fen"] == want.refunded_fen
    assert record.details["net_fen"] == want.billed_fen - want.refunded_fen
    assert record.details["events"] == want.events
    assert record.details["by_party"] == dict(by_party)


# --- settle, late usage, settle again: stable, whatever the usage ----------------------------

MONTHS = ("2026-07", "2026-08", "2026-09")
SUBS = ("metered", "norefund", "status")


@st.composite
def usage(draw: st.DrawFn, months: Sequence[str] = MONTHS) -> Use:
    period = draw(st.sampled_from(months))
    start = month_end(period) - dt.timedelta(days=28)  # within the month, in Beijing time
    at = start + dt.timedelta(seconds=draw(st.integers(0, 28 * 86_400 - 1)))
    units = draw(st.integers(1, 5))
    return Use(
        draw(st.sampled_from(SUBS)),
        at,
        units * draw(st.integers(0, 997)),
        status=draw(st.sampled_from(["served", "served", "withheld"])),
        overage=draw(st.booleans()),
        units=units,
        kind=draw(st.sampled_from(["query", "batch"])),
    )


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A seeded SQLite home each example copies (seeding per example would be slow)."""
    home = tmp_path_factory.mktemp("template")
    open_books(home).engine.dispose()
    return home


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(usage(), max_size=12),
    st.lists(st.tuples(st.integers(0, 2), usage()), max_size=4),
)
def test_settling_month_by_month_is_exact_and_stable_under_reruns(
    template: Path, first: list[Use], late: list[tuple[int, Use]]
) -> None:
    """Usage in three months, late usage after each close: every settlement sums exactly, a
    rerun changes nothing, and no closed month is rewritten."""
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        shutil.copytree(template, home)
        settings_ = Settings(home=home, database_url=None)
        engine = make_engine(settings_.db_url)
        try:
            with session_scope(engine) as s:
                subs = {
                    role: s.exec(select(Subscription.id).where(Subscription.plan_id == plan)).one()
                    for role, plan in (
                        ("metered", "credit_risk/metered"),
                        ("norefund", "credit_risk/norefund"),
                        ("status", "operating_status/standard"),
                    )
                }
            books = Books(settings_, engine, {k: int(v) for k, v in subs.items() if v is not None})
            write_usage(books, first)
            pending = list(first)
            closed: dict[str, list[Use]] = {}
            for i, period in enumerate(MONTHS):
                end = month_end(period)
                taken = [u for u in pending if u.at < end]
                pending = [u for u in pending if u.at >= end]
                settle_now(books, period)
                before = counts(engine)
                settle_now(books, period, NOW + dt.timedelta(days=1))
                assert counts(engine) == before
                closed[period] = taken
                arriving = [u for k, u in late if k == i]  # served in any month, arriving now
                write_usage(books, arriving)
                pending += arriving
                for earlier, uses in closed.items():
                    if uses:
                        assert_settled_as(books, earlier, uses)
                    else:  # an empty month closes too, with no lines
                        with Session(engine) as s:
                            empty = s.get(Settlement, earlier)
                            assert empty is not None and empty.net_fen == 0
            with Session(engine) as s:
                assert audit.verify(s).ok
                left = s.exec(
                    select(func.count()).where(col(UsageEvent.settled_period).is_(None))
                ).one()
            assert left == len(pending)
        finally:
            engine.dispose()


# --- the CLI: pdo settle and pdo statement ---------------------------------------------------

HYPERLINK = '=HYPERLINK("http://x","y")'


def pdo(books: Books, *args: str) -> Any:
    env = {
        "PDO_HOME": str(books.settings.resolved_home),
        "PDO_DATABASE_URL": books.settings.database_url,
        "COLUMNS": "400",  # rich tables unwrapped
    }
    return CliRunner().invoke(app, list(args), env=env)


def pdo_json(books: Books, *args: str) -> Any:
    result = pdo(books, *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_cli_settle_reports_the_figures_the_ledger_holds(books: Books) -> None:
    september = pdo_json(books, "settle", "--period", "2026-09")
    october = pdo_json(books, "settle", "--period", "2026-10")
    rerun = pdo_json(books, "settle", "--period", "2026-10")
    # each close seals the chain with a checkpoint; the rerun changes nothing and seals nothing
    sealed = october.pop("checkpoint")
    assert rerun.pop("checkpoint") is None and rerun == october
    assert september["checkpoint"]["id"] < sealed["id"]
    with session_scope(books.engine) as s:
        stored = s.get(AuditCheckpoint, sealed["id"])
        assert stored is not None and stored.merkle_root == sealed["merkle_root"]
        assert audit.verify(s).ok
    for period, shown, uses in (
        ("2026-09", september, SEPTEMBER),
        ("2026-10", october, OCTOBER),
    ):
        want = expect(uses)
        with Session(books.engine) as s:
            closed = s.get(Settlement, period)
            lines = s.exec(select(SettlementLine).where(SettlementLine.period == period)).all()
        assert closed is not None and shown["settled"] is True and shown["reconciles"] is True
        assert (shown["events"], shown["billed_fen"], shown["refunded_fen"], shown["net_fen"]) == (
            closed.events,
            closed.billed_fen,
            closed.refunded_fen,
            closed.net_fen,
        )
        assert (shown["billed_fen"], shown["refunded_fen"]) == (
            want.billed_fen,
            want.refunded_fen,
        )
        parties: Counter[str] = Counter()
        per_version: dict[str, dict[str, int]] = {}
        for line in lines:
            parties[line.party] += line.amount_fen
            per_version.setdefault(line.product_version_id, {})[line.party] = line.amount_fen
        assert shown["by_party"] == dict(parties)
        assert {v["version"]: v["parts"] for v in shown["versions"]} == per_version
        assert {v["version"]: v["net_fen"] for v in shown["versions"]} == {
            v: want.net(v) for v in want.billed
        }


def test_cli_dry_run_shows_the_figures_and_writes_nothing(books: Books) -> None:
    before = counts(books.engine)
    shown = pdo_json(books, "settle", "--period", "2026-10", "--dry-run")
    assert counts(books.engine) == before
    want = expect([*SEPTEMBER, *OCTOBER])  # what settling October now would take in
    assert shown["settled"] is False and shown["reconciles"] is None
    assert (shown["events"], shown["billed_fen"], shown["refunded_fen"]) == (
        want.events,
        want.billed_fen,
        want.refunded_fen,
    )
    assert {v["version"]: v["parts"] for v in shown["versions"]} == {
        v: allocate(want.net(v), WEIGHTS_OF[v]) for v in want.billed
    }
    refused = pdo(books, "settle", "--period", "2026-12")
    assert refused.exit_code == 1 and "still open" in refused.output
    assert counts(books.engine) == before


def test_cli_dry_run_and_statement_refuse_a_month_that_can_no_longer_be_settled(
    books: Books,
) -> None:
    """A dry run says what the real run would do: for a month before a closed one, refuse and
    name the open month that bills its late usage, never show figures nobody will bill."""
    settle_now(books, "2026-09")
    settle_now(books, "2026-10")
    late = Use("metered", utc("2026-08-20T02:00:00"), 150)  # served in August, committed now
    write_usage(books, [late])
    before = counts(books.engine)
    for args in (
        ("settle", "--period", "2026-08", "--dry-run"),
        ("statement", "--period", "2026-08"),
        ("settle", "--period", "2026-08"),
    ):
        refused = pdo(books, *args)
        assert refused.exit_code == 1, args
        assert "period 2026-10 is already settled" in refused.output
        assert "late usage will be billed in 2026-11" in refused.output
    assert counts(books.engine) == before
    november = pdo_json(books, "settle", "--period", "2026-11", "--dry-run")
    assert november["events"] == len([*NOVEMBER, late])
    assert november["billed_fen"] == expect([*NOVEMBER, late]).billed_fen


def test_cli_settle_flags_a_closed_month_whose_events_were_altered(books: Books) -> None:
    pdo_json(books, "settle", "--period", "2026-10")
    with session_scope(books.engine) as s:  # someone edits a billed event behind the ledger's back
        s.execute(
            text("UPDATE usage_event SET price_fen = price_fen + 1 WHERE settled_period = :p"),
            {"p": "2026-10"},
        )
    result = pdo(books, "settle", "--period", "2026-10")
    assert result.exit_code == 1
    assert "no longer give its recorded lines" in result.output
    earlier = pdo(books, "settle", "--period", "2026-09")
    assert earlier.exit_code == 1 and "2026-10 is already settled" in earlier.output


def test_cli_statement_of_a_closed_month_never_shows_other_amounts_than_were_billed(
    books: Books,
) -> None:
    """The statement lines frozen at close are what a bank was billed: after a settled event is
    altered, `pdo statement` must still show them, or refuse like `pdo settle` does — not
    quietly show amounts recomputed from the altered events."""
    pdo_json(books, "settle", "--period", "2026-10")
    with Session(books.engine) as s:
        frozen = {
            line.subscription_id: line.charged_fen
            for line in s.exec(select(StatementLine).where(StatementLine.kind == "query"))
        }
    with session_scope(books.engine) as s:
        s.execute(
            text("UPDATE usage_event SET price_fen = price_fen + 1 WHERE settled_period = :p"),
            {"p": "2026-10"},
        )
    result = pdo(books, "statement", "--period", "2026-10", "--json")
    if result.exit_code == 0:
        shown = {
            line["订阅 subscription"]: line["计费（分）charged"]
            for line in json.loads(result.stdout)["lines"]
            if line["类型 kind"] == "query"
        }
        assert shown == frozen
    else:
        assert result.exit_code == 1 and "no longer" in result.output


def test_cli_plain_output_names_the_parties(books: Books) -> None:
    trial = pdo(books, "settle", "--period", "2026-10", "--dry-run")
    assert trial.exit_code == 0, trial.output
    assert "试算 provisional" in trial.output
    assert "市场监督管理局" in trial.output and "授权运营单位" in trial.output
    closed = pdo(books, "settle", "--period", "2026-10")
    assert closed.exit_code == 0 and "结算完成 closed now" in closed.output
    again = pdo(books, "settle", "--period", "2026-10")
    assert again.exit_code == 0 and "already closed, unchanged" in again.output
    statement = pdo(books, "statement", "--period", "2026-10", "--subscriber", A)
    assert statement.exit_code == 0 and "已结算 settled" in statement.output
    assert A in statement.output and "credit_risk/metered" in statement.output
    assert B not in statement.output


def _read_csv(path: Path) -> list[dict[str, str]]:
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # a BOM, so Excel reads the Chinese headers
    return list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))


def test_cli_exports_csv_and_xlsx_that_agree_and_never_run_a_formula(
    tmp_path: Path, books: Books
) -> None:
    from openpyxl import load_workbook

    with session_scope(books.engine) as s:
        crafty, _ = add_subscriber(s, HYPERLINK, "operator", ["credit_risk"])
        sub = s.exec(
            select(Subscription).where(
                Subscription.subscriber_id == crafty.id, col(Subscription.cancelled_at).is_(None)
            )
        ).one()
    assert sub.id is not None
    books.subscriptions["crafty"] = sub.id
    crafty_use = Use("crafty", utc("2026-10-11T01:00:00"), 150)
    write_usage(books, [crafty_use])
    want = expect([*SEPTEMBER, *OCTOBER, crafty_use])
    out = tmp_path / "exports"
    shown = pdo_json(books, "settle", "--period", "2026-10", "--export", str(out))
    stem = out / "settlement-2026-10-settled"
    files = {Path(f).name for f in shown["files"]}
    assert files == {
        f"{stem.name}-allocations.csv",
        f"{stem.name}-statements.csv",
        f"{stem.name}.xlsx",
    }
    net = want.billed_fen - want.refunded_fen
    allocations = _read_csv(out / f"{stem.name}-allocations.csv")
    statements = _read_csv(out / f"{stem.name}-statements.csv")
    assert sum(int(r["金额（分）fen"]) for r in allocations) == net == shown["net_fen"]
    assert sum(int(r["应付（分）due"]) for r in statements) == net
    assert sum(int(r["计费（分）charged"]) for r in statements) == want.billed_fen
    names = [r["银行 subscriber"] for r in statements]
    assert "'" + HYPERLINK in names and HYPERLINK not in names  # shown, never run
    book = load_workbook(out / f"{stem.name}.xlsx")
    sheets = {ws.title: list(ws.iter_rows()) for ws in book.worksheets}
    assert set(sheets) == {"收益分配 allocations", "对账单 statements"}
    kinds = {c.data_type for rows in sheets.values() for row in rows for c in row}
    assert "f" not in kinds  # no cell anywhere is a formula
    alloc_rows, stmt_rows = sheets["收益分配 allocations"], sheets["对账单 statements"]
    alloc_header = [c.value for c in alloc_rows[0]]
    stmt_header = [c.value for c in stmt_rows[0]]
    fen = alloc_header.index("金额（分）fen")
    due = stmt_header.index("应付（分）due")
    bank = stmt_header.index("银行 subscriber")
    assert sum(int(r[fen].value) for r in alloc_rows[1:]) == net
    assert sum(int(r[due].value) for r in stmt_rows[1:]) == net
    (cell,) = [r[bank] for r in stmt_rows[1:] if str(r[bank].value).lstrip("'") == HYPERLINK]
    assert cell.data_type == "s" and str(cell.value).startswith("'")
    assert len(alloc_rows) - 1 == len(allocations) and len(stmt_rows) - 1 == len(statements)


def test_cli_a_failed_export_is_one_line_that_says_the_month_is_closed(
    tmp_path: Path, books: Books
) -> None:
    """The files are written after the close commits, staged and moved in together: a failure is
    a one-line error saying the month was closed, and files named "settled" are true."""
    out = tmp_path / "exports"
    stem = "settlement-2026-10-settled"
    (out / f"{stem}.xlsx").mkdir(parents=True)  # the workbook's name is taken by a folder
    failed = pdo(books, "settle", "--period", "2026-10", "--export", str(out))
    assert failed.exit_code == 1 and isinstance(failed.exception, SystemExit)
    assert "period 2026-10 is closed, but writing its files" in failed.output
    assert "Traceback" not in failed.output
    with Session(books.engine) as s:
        assert s.get(Settlement, "2026-10") is not None
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no staging left behind
    (out / f"{stem}.xlsx").rmdir()
    again = pdo_json(books, "settle", "--period", "2026-10", "--export", str(out))
    assert {Path(f).name for f in again["files"]} == {
        f"{stem}-allocations.csv",
        f"{stem}-statements.csv",
        f"{stem}.xlsx",
    }
    not_a_folder = tmp_path / "not-a-folder"
    not_a_folder.write_text("x")
    trial = pdo(books, "settle", "--period", "2026-11", "--dry-run", "--export", str(not_a_folder))
    assert trial.exit_code == 1 and isinstance(trial.exception, SystemExit)
    assert "nothing was settled for 2026-11, but writing its files" in trial.output


def test_cli_settle_refuses_before_closing_when_the_signing_key_does_not_load(
    books: Books,
) -> None:
    """A close must be sealed by a checkpoint: a key that does not load is found before anything
    is written, and a rerun seals a close that has no checkpoint yet (e.g. one that failed)."""
    key = books.settings.audit_signing_key_file or (
        books.settings.resolved_home / "secrets" / "audit-signing.pem"
    )
    key.parent.mkdir(parents=True, exist_ok=True)
    key.write_text("not a key\n")  # a truncated or mis-mounted secret
    before = counts(books.engine)
    refused = pdo(books, "settle", "--period", "2026-10")
    assert refused.exit_code == 1 and isinstance(refused.exception, SystemExit)
    assert "the audit signing key does not load, nothing was settled" in refused.output
    assert counts(books.engine) == before
    key.unlink()  # fixed: a new key is made on first use
    closed = settle_now(books, "2026-10")  # closed, but no checkpoint was made
    rerun = pdo_json(books, "settle", "--period", "2026-10")
    with Session(books.engine) as s:
        (close,) = s.exec(select(AuditEvent).where(AuditEvent.action == "settlement.close"))
        seal = s.get(AuditCheckpoint, rerun["checkpoint"]["id"])
    assert seal is not None and seal.last_seq >= close.seq and close.subject == closed.period
    assert pdo_json(books, "settle", "--period", "2026-10")["checkpoint"] is None  # sealed once


def test_cli_statement_shows_one_banks_lines(books: Books) -> None:
    settle_now(books, "2026-09")
    settle_now(books, "2026-10")
    shown = pdo_json(books, "statement", "--period", "2026-10", "--subscriber", B)
    assert shown["period"] == "2026-10" and shown["settled"] is True
    want = expect(OCTOBER).statements[("norefund", "query")]
    (line,) = shown["lines"]
    assert line["银行 subscriber"] == B and line["套餐 plan"] == "credit_risk/norefund"
    assert (
        line["用量 units"],
        line["超额 overage"],
        line["异议暂缓 withheld"],
        line["计费（分）charged"],
        line["退款（分）refunded"],
    ) == want
    assert line["应付（分）due"] == want[3] - want[4]
    everyone = pdo_json(books, "statement", "--period", "2026-10")
    assert {x["银行 subscriber"] for x in everyone["lines"]} == {A, B}
    unknown = pdo(books, "statement", "--period", "2026-10", "--subscriber", "丙银行")
    assert unknown.exit_code == 1 and "no subscriber named '丙银行'" in unknown.output
